/**
 * One audit log line (docs/audit.md "An entry"): the one serializer, and the byte-level reader of
 * the chain fields. The fingerprint, the previous fingerprint, the index and the origin sit at
 * fixed places at the start of the line, so reading them needs no JSON parser, and a reader can
 * stream a log of any size through a fixed buffer. The event's body after them is never parsed
 * here: the fingerprint covers its bytes.
 */
import {hash} from 'node:crypto'
import {AirlockError} from '../errors.js'

/** An OCSF event without `attestation_list`: the serializer puts that first. */
export type AuditEvent = Record<string, unknown>

/** One line of events.jsonl as read. */
export interface LogEntry {
  /** The entry's `uid` (its position in a log that verifies). */
  index: number
  /** The line's bytes without the `\n`. */
  line: Buffer
  /** The fingerprint the line claims, 64 lowercase hex (a pruned stub's recorded fingerprint). */
  fingerprint: string
  /** The previous entry's fingerprint the line names; null on entry 0. */
  prev: string | null
  /** A pruned stub: the body is gone, the fingerprint and link remain. */
  pruned: boolean
  /** Byte offset of the line in events.jsonl. */
  offset: number
  /** 1-based line number in events.jsonl. */
  lineNumber: number
  /** The `chain_uid` (the origin of the log that wrote it); null for a pruned stub. */
  chainUid: string | null
}

/** OCSF fingerprint algorithm_id 3: SHA-256. */
const SHA256_ID = 3
const HEAD = '{"attestation_list":[{'
const FP_OPEN = `"fingerprint":{"algorithm_id":${SHA256_ID},"value":"`
const FP_CLOSE = '"},'
const CHAIN = '"chain_uid":"'
const PREV_OPEN = `"prev_event":{"fingerprint":{"algorithm_id":${SHA256_ID},"value":"`
const PREV_UID = '"},"uid":"'
const PREV_CLOSE = '"},'
const UID = '"uid":"'
const ATT_CLOSE = '"}]'
const PRUNED_OPEN = '{"pruned":{"uid":"'
const PRUNED_FP = '","fingerprint":"'
const PRUNED_PREV = '","prev":'
const PRUNED_TIME = ',"time":'
const PRUNED_CLOSE = '}}'

/** Where the fingerprint's hex starts in every full entry, and where the fingerprinted bytes resume. */
export const FINGERPRINT_AT = HEAD.length + FP_OPEN.length
const HOLE_END = FINGERPRINT_AT + 64 + FP_CLOSE.length
const HEAD_BYTES = Buffer.from(HEAD)

const b = (s: string) => Buffer.from(s, 'latin1')
const B = {
  head: b(HEAD + FP_OPEN),
  fpClose: b(FP_CLOSE + CHAIN),
  prevOpen: b(PREV_OPEN),
  prevUid: b(PREV_UID),
  prevClose: b(PREV_CLOSE),
  uid: b(UID),
  attClose: b(ATT_CLOSE),
  prunedOpen: b(PRUNED_OPEN),
  prunedFp: b(PRUNED_FP),
  prunedPrev: b(PRUNED_PREV),
  prunedTime: b(PRUNED_TIME),
  prunedClose: b(PRUNED_CLOSE),
  nul: b('null'),
}

/**
 * Serializes an entry: `attestation_list` first with `fingerprint` first inside it, then the
 * event's own keys in their given order. The fingerprint is SHA-256 over the line with the
 * fingerprint object and its comma left out (docs/audit.md).
 */
export function serializeEntry(event: AuditEvent, at: {index: number; prev: string | null; origin: string}): {line: string; fingerprint: string} {
  const {bytes, fingerprint} = encodeEntry(event, at)
  return {line: bytes.toString('utf8', 0, bytes.length - 1), fingerprint}
}

/**
 * serializeEntry's bytes, with the final `\n`: what appends write. The line is encoded once, into
 * its own buffer; the fingerprint is hashed over that buffer with `HEAD` laid over the end of the
 * fingerprint's place, which the fingerprint object then overwrites.
 */
export function encodeEntry(event: AuditEvent, at: {index: number; prev: string | null; origin: string}): {bytes: Buffer; fingerprint: string} {
  const arena = new Arena(0)
  const {fingerprint} = encodeEntryInto(arena, event, at)
  return {bytes: arena.bytes(), fingerprint}
}

/** A growing buffer a batch of entries is encoded into, so a batch is one allocation and one write. */
export class Arena {
  #buf: Buffer
  #pos = 0
  constructor(capacity: number) {
    this.#buf = Buffer.allocUnsafe(capacity)
  }
  get length(): number {
    return this.#pos
  }
  /** Room for `n` more bytes at the end; returns where they start. */
  reserve(n: number): {buf: Buffer; at: number} {
    if (this.#pos + n > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n))
      this.#buf.copy(grown, 0, 0, this.#pos)
      this.#buf = grown
    }
    const at = this.#pos
    this.#pos += n
    return {buf: this.#buf, at}
  }
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#pos)
  }
}

/** Appends one entry's line and `\n` to the arena; returns its fingerprint and length. */
export function encodeEntryInto(arena: Arena, event: AuditEvent, at: {index: number; prev: string | null; origin: string}): {fingerprint: string; length: number} {
  const {index, prev, origin} = at
  if (!Number.isSafeInteger(index) || index < 0) throw new AirlockError('INVALID_INPUT', `audit entry index ${index} is not a non-negative safe integer`)
  if ((index === 0) !== (prev === null)) throw new AirlockError('INVALID_INPUT', `audit entry ${index}: entry 0 and only entry 0 has no previous fingerprint`)
  if (prev !== null && !isHex64(prev)) throw new AirlockError('INVALID_INPUT', `audit entry ${index}: the previous fingerprint is not 64 lowercase hex digits`)
  if (!ORIGIN_TEXT.test(origin)) {
    throw new AirlockError('INVALID_INPUT', `audit origin ${JSON.stringify(origin)} is not printable ASCII without quotes, backslashes, plus signs or spaces`)
  }
  if (Object.hasOwn(event, 'attestation_list') || Object.hasOwn(event, 'pruned')) {
    throw new AirlockError('INVALID_INPUT', 'an audit event must not carry attestation_list or pruned: the log writes them')
  }
  const body = JSON.stringify(event)
  if (typeof body !== 'string' || !body.startsWith('{')) throw new AirlockError('INVALID_INPUT', 'an audit event must be a JSON object')
  const inner = body.slice(1)
  const chain = `${CHAIN}${origin}",${prev === null ? '' : `${PREV_OPEN}${prev}${PREV_UID}${index - 1}${PREV_CLOSE}`}${UID}${index}${ATT_CLOSE}${inner === '}' ? '}' : `,${inner}`}\n`
  const length = HOLE_END + Buffer.byteLength(chain)
  const {buf, at: lineAt} = arena.reserve(length)
  buf.write(chain, lineAt + HOLE_END)
  const start = lineAt + HOLE_END - HEAD_BYTES.length
  HEAD_BYTES.copy(buf, start)
  const fingerprint = hash('sha256', buf.subarray(start, lineAt + length - 1), 'hex')
  B.head.copy(buf, lineAt)
  buf.write(fingerprint, lineAt + B.head.length, 'latin1')
  B.fpClose.copy(buf, lineAt + B.head.length + 64, 0, FP_CLOSE.length)
  return {fingerprint, length}
}

const ORIGIN_TEXT = /^[\x21\x23-\x2a\x2c-\x5b\x5d-\x7e]+$/

/** A pruned stub line (docs/audit.md): what retention leaves of an entry. */
export function prunedLine(stub: {index: number; fingerprint: string; prev: string | null; time: number}): string {
  if (!isHex64(stub.fingerprint) || (stub.prev !== null && !isHex64(stub.prev))) throw new AirlockError('INVALID_INPUT', `pruned stub ${stub.index}: fingerprints are 64 lowercase hex digits`)
  return `${PRUNED_OPEN}${stub.index}${PRUNED_FP}${stub.fingerprint}${PRUNED_PREV}${stub.prev === null ? 'null' : `"${stub.prev}"`}${PRUNED_TIME}${Math.trunc(stub.time)}${PRUNED_CLOSE}`
}

/**
 * Recomputes a full entry's fingerprint (the claimed one is not looked at); null for a pruned stub.
 * The fingerprinted bytes are the line with its fingerprint object cut out: `HEAD` is written over
 * the end of that object in a scratch copy-free way (saved and restored), so one hash call runs
 * over one contiguous slice.
 */
export function fingerprintOf(line: Buffer): Buffer {
  if (line.length < HOLE_END) throw new AirlockError('AUDIT_TAMPERED', 'line too short for an entry')
  const start = HOLE_END - HEAD_BYTES.length
  const saved = Buffer.from(line.subarray(start, HOLE_END))
  HEAD_BYTES.copy(line, start)
  try {
    return hash('sha256', line.subarray(start), 'buffer')
  } finally {
    saved.copy(line, start)
  }
}

const leafInput = Buffer.alloc(33)

/** The Merkle leaf of an entry: SHA-256(0x00 ‖ fingerprint) (docs/audit.md), one-shot over a scratch buffer. */
export function leafOf(fingerprint: Uint8Array | string): Buffer {
  if (typeof fingerprint === 'string') leafInput.write(fingerprint, 1, 32, 'hex')
  else leafInput.set(fingerprint, 1)
  return hash('sha256', leafInput, 'buffer')
}

/** Why a line is not an entry; thrown by parseLine as AUDIT_TAMPERED with details.problem MALFORMED. */
function malformed(lineNumber: number, offset: number, what: string): AirlockError {
  return new AirlockError('AUDIT_TAMPERED', `events.jsonl line ${lineNumber} (byte ${offset}): ${what}`, {problem: 'MALFORMED', line: lineNumber, offset})
}

/** Where a full entry's chain fields are in its line (byte offsets), for readers that compare bytes. */
export interface LineLayout {
  /** The claimed fingerprint's 64 hex digits. */
  fpAt: number
  /** The previous fingerprint's 64 hex digits; −1 on entry 0. */
  prevAt: number
  /** chain_uid's value: [chainAt, chainEnd). */
  chainAt: number
  chainEnd: number
  index: number
}

/** Reads the chain fields of one line (without its `\n`); anything else than docs/audit.md's layout is AUDIT_TAMPERED. */
export function parseLine(line: Buffer, lineNumber: number, offset: number): LogEntry {
  const bad = (what: string) => malformed(lineNumber, offset, what)
  if (startsAt(line, 0, B.prunedOpen)) return parsePruned(line, lineNumber, offset, bad)
  const l = locateEntry(line, lineNumber, offset)
  return {
    index: l.index,
    line,
    fingerprint: line.toString('latin1', l.fpAt, l.fpAt + 64),
    prev: l.prevAt < 0 ? null : line.toString('latin1', l.prevAt, l.prevAt + 64),
    pruned: false,
    offset,
    lineNumber,
    chainUid: line.toString('latin1', l.chainAt, l.chainEnd),
  }
}

/** Whether a line is a pruned stub (read it with parseLine). */
export function isPrunedLine(line: Buffer): boolean {
  return startsAt(line, 0, B.prunedOpen)
}

/** The layout of a full entry's line, with no string made; AUDIT_TAMPERED as parseLine. */
export function locateEntry(line: Buffer, lineNumber: number, offset: number): LineLayout {
  const bad = (what: string) => malformed(lineNumber, offset, what)
  if (!startsAt(line, 0, B.head)) throw bad(`does not start with ${HEAD}${FP_OPEN} (or is not a pruned stub)`)
  let at = B.head.length
  const fpAt = at
  if (!isHexAt(line, at)) throw bad('the fingerprint is not 64 lowercase hex digits')
  at += 64
  if (!startsAt(line, at, B.fpClose)) throw bad('the fingerprint object is not followed by chain_uid')
  at += B.fpClose.length
  const quote = line.indexOf(0x22, at)
  if (quote < 0) throw bad('chain_uid is not closed')
  for (let i = at; i < quote; i++) if (line[i]! <= 0x20 || line[i]! >= 0x7f || line[i] === 0x5c) throw bad('chain_uid holds a character an origin cannot hold')
  const chainAt = at
  const chainEnd = quote
  at = quote + 1
  if (line[at] !== 0x2c) throw bad('chain_uid is not followed by a comma')
  at++
  let prevAt = -1
  let prevIndex: number | null = null
  if (startsAt(line, at, B.prevOpen)) {
    at += B.prevOpen.length
    if (!isHexAt(line, at)) throw bad('the previous fingerprint is not 64 lowercase hex digits')
    prevAt = at
    at += 64
    if (!startsAt(line, at, B.prevUid)) throw bad('prev_event has no uid after its fingerprint')
    at += B.prevUid.length
    const n = decimalAt(line, at, 0x22)
    if (!n) throw bad('prev_event.uid is not a decimal')
    prevIndex = n.value
    at = n.end + 1
    if (line[at] !== 0x7d || line[at + 1] !== 0x2c) throw bad('prev_event is not closed')
    at += 2
  }
  if (!startsAt(line, at, B.uid)) throw bad('uid is not where it belongs (after chain_uid and prev_event)')
  at += B.uid.length
  const n = decimalAt(line, at, 0x22)
  if (!n) throw bad('uid is not a decimal with no leading zeroes')
  const index = n.value
  at = n.end
  if (!startsAt(line, at, B.attClose)) throw bad('attestation_list does not end after uid')
  at += B.attClose.length
  if (prevIndex !== null && prevIndex !== index - 1) throw bad(`prev_event.uid ${prevIndex} is not uid ${index} − 1`)
  if (prevAt < 0 && index !== 0) throw bad(`entry ${index} has no prev_event; only entry 0 may lack one`)
  if (at === line.length - 1 ? line[at] !== 0x7d : line[at] !== 0x2c || line[line.length - 1] !== 0x7d) throw bad('the event does not close as a JSON object')
  return {fpAt, prevAt, chainAt, chainEnd, index}
}

const HEX = Buffer.from('0123456789abcdef', 'latin1')

/** Lowercase hex of `bytes` into `out` at `at` (no string made). */
export function hexInto(bytes: Uint8Array, out: Buffer, at = 0): void {
  for (let i = 0; i < bytes.length; i++) {
    out[at + 2 * i] = HEX[bytes[i]! >> 4]!
    out[at + 2 * i + 1] = HEX[bytes[i]! & 15]!
  }
}

function parsePruned(line: Buffer, lineNumber: number, offset: number, bad: (what: string) => AirlockError): LogEntry {
  let at = B.prunedOpen.length
  const n = decimalAt(line, at, 0x22)
  if (!n) throw bad('pruned.uid is not a decimal')
  at = n.end
  if (!startsAt(line, at, B.prunedFp)) throw bad('pruned stub: no fingerprint after uid')
  at += B.prunedFp.length
  const fingerprint = hexAt(line, at)
  if (fingerprint === null) throw bad('pruned stub: the fingerprint is not 64 lowercase hex digits')
  at += 64
  if (!startsAt(line, at, B.prunedPrev)) throw bad('pruned stub: no prev after fingerprint')
  at += B.prunedPrev.length
  let prev: string | null = null
  if (startsAt(line, at, B.nul)) at += 4
  else {
    prev = line[at] === 0x22 ? hexAt(line, at + 1) : null
    if (prev === null || line[at + 65] !== 0x22) throw bad('pruned stub: prev is neither null nor 64 lowercase hex digits in quotes')
    at += 66
  }
  if (!startsAt(line, at, B.prunedTime)) throw bad('pruned stub: no time after prev')
  at += B.prunedTime.length
  const t = decimalAt(line, at, 0x7d)
  if (!t) throw bad('pruned stub: time is not a decimal')
  at = t.end
  if (at + B.prunedClose.length !== line.length || !startsAt(line, at, B.prunedClose)) throw bad('pruned stub: does not end after time')
  if ((prev === null) !== (n.value === 0)) throw bad(`pruned stub ${n.value}: entry 0 and only entry 0 has prev null`)
  return {index: n.value, line, fingerprint, prev, pruned: true, offset, lineNumber, chainUid: null}
}

/** Whether `what` is at `at` (a plain loop: the constants are short, a native call costs more than comparing them). */
function startsAt(buf: Buffer, at: number, what: Buffer): boolean {
  if (buf.length - at < what.length) return false
  for (let i = 0; i < what.length; i++) if (buf[at + i] !== what[i]) return false
  return true
}

/** 64 lowercase hex digits at `at`. */
function isHexAt(buf: Buffer, at: number): boolean {
  if (buf.length - at < 64) return false
  for (let i = at; i < at + 64; i++) {
    const c = buf[i]!
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false
  }
  return true
}

/** 64 lowercase hex digits at `at`, or null. */
function hexAt(buf: Buffer, at: number): string | null {
  return isHexAt(buf, at) ? buf.toString('latin1', at, at + 64) : null
}

/** A decimal with no leading zero, at most 2^53−1, ending at the byte `end`. */
function decimalAt(buf: Buffer, at: number, end: number): {value: number; end: number} | null {
  let i = at
  let value = 0
  while (i < buf.length && buf[i]! >= 0x30 && buf[i]! <= 0x39) {
    value = value * 10 + (buf[i]! - 0x30)
    i++
  }
  if (i === at || i - at > 16 || buf[i] !== end || (buf[at] === 0x30 && i - at > 1) || !Number.isSafeInteger(value)) return null
  return {value, end: i}
}

export function isHex64(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s)
}
