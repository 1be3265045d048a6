/**
 * One audit log line (docs/audit.md "An entry"): the one serializer, and the byte-level reader of
 * the chain fields. The fingerprint, the previous fingerprint, the index and the origin sit at
 * fixed places at the start of the line, so reading them needs no JSON parser, and a reader can
 * stream a log of any size through a fixed buffer. The event's body after them is never parsed
 * here: the fingerprint covers its bytes.
 */
import {createHash, hash} from 'node:crypto'
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
  const {index, prev, origin} = at
  if (!Number.isSafeInteger(index) || index < 0) throw new AirlockError('INVALID_INPUT', `audit entry index ${index} is not a non-negative safe integer`)
  if ((index === 0) !== (prev === null)) throw new AirlockError('INVALID_INPUT', `audit entry ${index}: entry 0 and only entry 0 has no previous fingerprint`)
  if (prev !== null && !isHex64(prev)) throw new AirlockError('INVALID_INPUT', `audit entry ${index}: the previous fingerprint is not 64 lowercase hex digits`)
  if (!/^[\x21-\x7e]+$/.test(origin) || origin.includes('"') || origin.includes('\\') || origin.includes('+')) {
    throw new AirlockError('INVALID_INPUT', `audit origin ${JSON.stringify(origin)} is not printable ASCII without quotes, backslashes, plus signs or spaces`)
  }
  if (Object.hasOwn(event, 'attestation_list') || Object.hasOwn(event, 'pruned')) {
    throw new AirlockError('INVALID_INPUT', 'an audit event must not carry attestation_list or pruned: the log writes them')
  }
  const body = JSON.stringify(event)
  if (typeof body !== 'string' || !body.startsWith('{')) throw new AirlockError('INVALID_INPUT', 'an audit event must be a JSON object')
  const inner = body.slice(1)
  const chain = `${CHAIN}${origin}",${prev === null ? '' : `${PREV_OPEN}${prev}${PREV_UID}${index - 1}${PREV_CLOSE}`}${UID}${index}${ATT_CLOSE}${inner === '}' ? '}' : `,${inner}`}`
  const fingerprint = createHash('sha256').update(HEAD).update(chain).digest('hex')
  return {line: `${HEAD}${FP_OPEN}${fingerprint}${FP_CLOSE}${chain}`, fingerprint}
}

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

/** The claimed fingerprint's bytes of a full entry (hex at FINGERPRINT_AT), or of a pruned stub. */
export function claimedFingerprint(entry: LogEntry): Buffer {
  return Buffer.from(entry.fingerprint, 'hex')
}

/** Why a line is not an entry; thrown by parseLine as AUDIT_TAMPERED with details.problem MALFORMED. */
function malformed(lineNumber: number, offset: number, what: string): AirlockError {
  return new AirlockError('AUDIT_TAMPERED', `events.jsonl line ${lineNumber} (byte ${offset}): ${what}`, {problem: 'MALFORMED', line: lineNumber, offset})
}

/** Reads the chain fields of one line (without its `\n`); anything else than docs/audit.md's layout is AUDIT_TAMPERED. */
export function parseLine(line: Buffer, lineNumber: number, offset: number): LogEntry {
  const bad = (what: string) => malformed(lineNumber, offset, what)
  if (startsAt(line, 0, B.prunedOpen)) return parsePruned(line, lineNumber, offset, bad)
  if (!startsAt(line, 0, B.head)) throw bad(`does not start with ${HEAD}${FP_OPEN} (or is not a pruned stub)`)
  let at = B.head.length
  const fingerprint = hexAt(line, at)
  if (fingerprint === null) throw bad('the fingerprint is not 64 lowercase hex digits')
  at += 64
  if (!startsAt(line, at, B.fpClose)) throw bad('the fingerprint object is not followed by chain_uid')
  at += B.fpClose.length
  const quote = line.indexOf(0x22, at)
  if (quote < 0) throw bad('chain_uid is not closed')
  for (let i = at; i < quote; i++) if (line[i]! <= 0x20 || line[i]! >= 0x7f || line[i] === 0x5c) throw bad('chain_uid holds a character an origin cannot hold')
  const chainUid = line.toString('latin1', at, quote)
  at = quote + 1
  if (line[at] !== 0x2c) throw bad('chain_uid is not followed by a comma')
  at++
  let prev: string | null = null
  let prevIndex: number | null = null
  if (startsAt(line, at, B.prevOpen)) {
    at += B.prevOpen.length
    prev = hexAt(line, at)
    if (prev === null) throw bad('the previous fingerprint is not 64 lowercase hex digits')
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
  if (prev === null && index !== 0) throw bad(`entry ${index} has no prev_event; only entry 0 may lack one`)
  if (at === line.length - 1 ? line[at] !== 0x7d : line[at] !== 0x2c || line[line.length - 1] !== 0x7d) throw bad('the event does not close as a JSON object')
  return {index, line, fingerprint, prev, pruned: false, offset, lineNumber, chainUid}
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

function startsAt(buf: Buffer, at: number, what: Buffer): boolean {
  return buf.length - at >= what.length && buf.compare(what, 0, what.length, at, at + what.length) === 0
}

/** 64 lowercase hex digits at `at`, or null. */
function hexAt(buf: Buffer, at: number): string | null {
  if (buf.length - at < 64) return null
  for (let i = at; i < at + 64; i++) {
    const c = buf[i]!
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return null
  }
  return buf.toString('latin1', at, at + 64)
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
