/**
 * The audit log's text formats, as C2SP specifies them:
 *
 * - signed notes (c2sp.org/signed-note): a text, a blank line, then `— <name> <base64(keyID ‖ sig)>`
 *   lines, with Ed25519 keys (signature type 0x01) and verifier keys `<name>+<hex keyID>+<base64(0x01 ‖ key)>`;
 * - checkpoints (c2sp.org/tlog-checkpoint): the note text `origin`, `tree size`, `root hash`, extensions;
 * - proofs (c2sp.org/tlog-proof): `c2sp.org/tlog-proof@v1`, optional `extra`, `index`, the inclusion
 *   proof hashes, a blank line and the signed checkpoint verbatim.
 *
 * Parsing is strict: whatever the specifications or Go's golang.org/x/mod/sumdb/note refuse is refused
 * here too, and a little more where Go is lenient (non-canonical base64, uppercase hex key IDs). The
 * Merkle arithmetic of a proof is merkle.ts's; this module only reads and writes the text.
 */
import {createHash} from 'node:crypto'
import {AirlockError, type ErrorCode} from '../errors.js'
import {verifyEd25519, type Signer} from '../crypto/keys.js'

/** How much of a note or proof is read; over a limit is TOO_LARGE. */
export interface NoteLimits {
  /** Largest signed note (or proof) read, in bytes. */
  maxBytes: number
  /**
   * Signature lines one note may hold. The specification asks verifiers to accept at least 16;
   * Go's reference implementation refuses a 101st, and so do we.
   */
  maxSignatures: number
}

export const DEFAULT_NOTE_LIMITS: Readonly<NoteLimits> = Object.freeze({maxBytes: 1024 * 1024, maxSignatures: 100})

/** What is wrong with a note, checkpoint, proof or key; every error carries one in `details.problem`. */
export type NoteProblem =
  | 'TOO_LARGE'
  | 'NOT_UTF8'
  | 'CONTROL_CHARACTER'
  | 'EMPTY_TEXT'
  | 'NO_FINAL_NEWLINE'
  | 'NO_BLANK_LINE'
  | 'NO_SIGNATURES'
  | 'NOT_A_SIGNATURE_LINE'
  | 'BAD_KEY_NAME'
  | 'BAD_BASE64'
  | 'SIGNATURE_TOO_SHORT'
  | 'TOO_MANY_SIGNATURES'
  | 'DUPLICATE_SIGNER'
  | 'KEY_ID_MISMATCH'
  | 'BAD_VERIFIER_KEY'
  | 'UNKNOWN_ALGORITHM'
  | 'BAD_KEY_LENGTH'
  | 'AMBIGUOUS_KEY'
  | 'BAD_SIGNATURE'
  | 'NO_KNOWN_SIGNATURE'
  | 'TOO_FEW_LINES'
  | 'EMPTY_LINE'
  | 'BAD_TREE_SIZE'
  | 'BAD_ROOT_HASH'
  | 'BAD_HEADER'
  | 'BAD_EXTRA'
  | 'BAD_INDEX'
  | 'BAD_PROOF_HASH'
  | 'TOO_MANY_PROOF_HASHES'
  | 'NO_CHECKPOINT'
  | 'INDEX_OUT_OF_RANGE'

function fail(code: ErrorCode, problem: NoteProblem, message: string, extra: Record<string, unknown> = {}): AirlockError {
  return new AirlockError(code, message, {problem, ...extra})
}

/** The signature type byte of Ed25519 in signed notes, key IDs and verifier keys. */
const ED25519 = 0x01
const EM_DASH_SPACE = '\u2014 '
const HASH_BYTES = 32
const PROOF_HEADER = 'c2sp.org/tlog-proof@v1'
/** No tree of fewer than 2^64 leaves has a longer inclusion proof. */
const MAX_PROOF_HASHES = 64

// ---------------------------------------------------------------------------------------------
// Encodings

/** Standard base64 (RFC 4648 §4), padded, in its one canonical form (Node's decoder takes anything). */
function decodeBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined
  const bytes = Buffer.from(text, 'base64')
  // Non-zero padding bits or misplaced `=` give another text on re-encoding: the same bytes must
  // have one spelling, or a signature line could be rewritten and still verify.
  return bytes.toString('base64') === text ? new Uint8Array(bytes) : undefined
}

function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64')
}

/** ASCII decimal with no leading zeroes, as a safe integer. */
function parseDecimal(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]*)$/.test(text)) return undefined
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : undefined
}

const utf8 = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true})

/** A lone surrogate has no UTF-8 encoding: Buffer.from would write U+FFFD in its place. */
const LONE_SURROGATE = /\p{Cs}/u
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/

function lineOf(text: string, index: number): number {
  let line = 1
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++
  return line
}

function controlName(ch: string): string {
  const cp = `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`
  if (ch === '\r') return `${cp} (a carriage return: lines end in LF alone, never CRLF)`
  if (ch === '\t') return `${cp} (a tab)`
  return cp
}

/**
 * Bytes (or a string) as text that is valid UTF-8 holding no ASCII control character other than
 * newline — what every one of these formats requires of all of its bytes.
 */
function readText(input: Uint8Array | string, what: string, code: ErrorCode, limits: NoteLimits): string {
  let text: string
  if (typeof input === 'string') {
    if (LONE_SURROGATE.test(input)) throw fail(code, 'NOT_UTF8', `${what}: holds a lone UTF-16 surrogate, which has no UTF-8 encoding`)
    text = input
    if (Buffer.byteLength(text) > limits.maxBytes) throw fail('TOO_LARGE', 'TOO_LARGE', `${what}: larger than ${limits.maxBytes} bytes`)
  } else {
    if (input.length > limits.maxBytes) throw fail('TOO_LARGE', 'TOO_LARGE', `${what}: ${input.length} bytes, more than the ${limits.maxBytes} allowed`)
    try {
      text = utf8.decode(input)
    } catch {
      throw fail(code, 'NOT_UTF8', `${what}: not valid UTF-8`)
    }
  }
  const m = CONTROL.exec(text)
  if (m) {
    const line = lineOf(text, m.index)
    throw fail(code, 'CONTROL_CHARACTER', `${what} line ${line}: holds ${controlName(m[0])}; only newline may be a control character`, {line})
  }
  return text
}

// ---------------------------------------------------------------------------------------------
// Keys

/** A key name: non-empty, no Unicode white space, no plus (and, here, no control character). */
export function isValidKeyName(name: string): boolean {
  return name !== '' && !/[\p{White_Space}+\u0000-\u001f]/u.test(name) && !LONE_SURROGATE.test(name)
}

/** The Ed25519 key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4], as 8 lowercase hex digits. */
export function noteKeyId(name: string, publicKey: Uint8Array): string {
  return createHash('sha256').update(name).update(Uint8Array.of(0x0a, ED25519)).update(publicKey).digest().subarray(0, 4).toString('hex')
}

/** A key trusted to sign notes, by name and key ID; `text` is its verifier-key form. */
export interface VerifierKey {
  readonly name: string
  /** 8 lowercase hex digits. */
  readonly keyId: string
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array
  /** `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`. */
  readonly text: string
}

/** The verifier key of an Ed25519 public key under a name (Go's note.NewEd25519VerifierKey). */
export function verifierKeyOf(name: string, publicKey: Uint8Array): VerifierKey {
  if (!isValidKeyName(name)) throw fail('KEY_INVALID', 'BAD_KEY_NAME', `key name ${JSON.stringify(name)}: must be non-empty with no spaces, plus signs or control characters`)
  if (publicKey.length !== 32) throw fail('KEY_INVALID', 'BAD_KEY_LENGTH', `an Ed25519 public key has 32 bytes, this one has ${publicKey.length}`)
  const keyId = noteKeyId(name, publicKey)
  const key = Uint8Array.from(publicKey)
  return {name, keyId, publicKey: key, text: `${name}+${keyId}+${encodeBase64(Uint8Array.of(ED25519, ...key))}`}
}

/** Reads a verifier key `<name>+<hex key ID>+<base64(type ‖ key)>`; only Ed25519 (type 0x01) is known. */
export function parseVerifierKey(text: string): VerifierKey {
  const what = `verifier key ${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text)}`
  const first = text.indexOf('+')
  const second = first === -1 ? -1 : text.indexOf('+', first + 1)
  if (second === -1) throw fail('KEY_INVALID', 'BAD_VERIFIER_KEY', `${what}: not <name>+<key ID>+<key>`)
  const name = text.slice(0, first)
  const id = text.slice(first + 1, second)
  const encoded = text.slice(second + 1)
  if (!isValidKeyName(name)) throw fail('KEY_INVALID', 'BAD_KEY_NAME', `${what}: the name must be non-empty with no spaces, plus signs or control characters`)
  if (!/^[0-9a-f]{8}$/.test(id)) throw fail('KEY_INVALID', 'BAD_VERIFIER_KEY', `${what}: the key ID must be 8 lowercase hex digits`)
  const key = decodeBase64(encoded)
  if (!key || key.length === 0) throw fail('KEY_INVALID', 'BAD_BASE64', `${what}: the key is not canonical base64`)
  if (key[0] !== ED25519) throw fail('KEY_INVALID', 'UNKNOWN_ALGORITHM', `${what}: signature type 0x${key[0]!.toString(16).padStart(2, '0')}; only Ed25519 (0x01) is known`)
  if (key.length !== 33) throw fail('KEY_INVALID', 'BAD_KEY_LENGTH', `${what}: an Ed25519 public key has 32 bytes, this one has ${key.length - 1}`)
  const publicKey = key.subarray(1)
  const expected = noteKeyId(name, publicKey)
  if (expected !== id) throw fail('KEY_INVALID', 'KEY_ID_MISMATCH', `${what}: key ID ${id} is not the key's, ${expected}`)
  return {name, keyId: id, publicKey, text}
}

// ---------------------------------------------------------------------------------------------
// Signed notes

/** One signature line of a note, verified or not. */
export interface NoteSignature {
  readonly name: string
  /** The first 4 bytes of the signature, as 8 lowercase hex digits. */
  readonly keyId: string
  /** The signature proper, without the key ID. */
  readonly signature: Uint8Array
  /** The line's base64, exactly as written (key ID ‖ signature). */
  readonly base64: string
}

export interface ParsedNote {
  /** The note text, its final newline included and the separating blank line not. */
  readonly text: string
  readonly signatures: readonly NoteSignature[]
}

/**
 * Reads a signed note (c2sp.org/signed-note). Checks syntax only: signatures are verified by
 * verifyNote. Every way of failing is MALFORMED (TOO_LARGE over a limit) with `details.problem`.
 */
export function parseNote(input: Uint8Array | string, limits: Partial<NoteLimits> = {}): ParsedNote {
  const lim = {...DEFAULT_NOTE_LIMITS, ...limits}
  const msg = readText(input, 'signed note', 'MALFORMED', lim)
  // The text ends with a newline and is followed by a blank line: the last "\n\n" separates them.
  const split = msg.lastIndexOf('\n\n')
  if (split === -1) throw fail('MALFORMED', 'NO_BLANK_LINE', 'signed note: no blank line between the text and the signatures')
  const text = msg.slice(0, split + 1)
  const block = msg.slice(split + 2)
  const firstLine = lineOf(msg, split + 2)
  if (block === '') throw fail('MALFORMED', 'NO_SIGNATURES', `signed note line ${firstLine}: no signature lines after the blank line`, {line: firstLine})
  if (!block.endsWith('\n')) throw fail('MALFORMED', 'NO_FINAL_NEWLINE', 'signed note: the last signature line does not end with a newline')
  const lines = block.slice(0, -1).split('\n')
  const signatures: NoteSignature[] = []
  for (const [i, line] of lines.entries()) {
    const at = firstLine + i
    // Counted before reading, as Go does, so a huge note is refused without decoding it all.
    if (i + 1 > lim.maxSignatures) throw fail('TOO_LARGE', 'TOO_MANY_SIGNATURES', `signed note: more than ${lim.maxSignatures} signature lines`, {line: at})
    signatures.push(parseSignatureLine(line, at))
  }
  return {text, signatures}
}

function parseSignatureLine(line: string, at: number): NoteSignature {
  const where = `signed note line ${at}`
  if (!line.startsWith(EM_DASH_SPACE)) {
    const lead = line.codePointAt(0)
    const found = lead === undefined ? 'nothing' : `U+${lead.toString(16).toUpperCase().padStart(4, '0')}`
    throw fail('MALFORMED', 'NOT_A_SIGNATURE_LINE', `${where}: a signature line starts with an em dash (U+2014) and a space; found ${found}${lead === 0x2014 ? ' not followed by a space' : ''}`, {line: at})
  }
  const rest = line.slice(EM_DASH_SPACE.length)
  const space = rest.indexOf(' ')
  const name = space === -1 ? rest : rest.slice(0, space)
  const b64 = space === -1 ? '' : rest.slice(space + 1)
  if (!isValidKeyName(name)) throw fail('MALFORMED', 'BAD_KEY_NAME', `${where}: key name ${JSON.stringify(name)} must be non-empty with no spaces or plus signs`, {line: at})
  const raw = decodeBase64(b64)
  if (!raw || b64 === '') throw fail('MALFORMED', 'BAD_BASE64', `${where}: the signature ${JSON.stringify(b64.length > 120 ? `${b64.slice(0, 120)}…` : b64)} is not canonical base64 (a single space after the name, none after the signature)`, {line: at})
  if (raw.length < 5) throw fail('MALFORMED', 'SIGNATURE_TOO_SHORT', `${where}: ${raw.length} bytes; a signature is a 4-byte key ID and at least one byte more`, {line: at})
  return {name, keyId: Buffer.from(raw.subarray(0, 4)).toString('hex'), signature: raw.subarray(4), base64: b64}
}

/** A key that signs notes under a name. */
export interface NoteSigner {
  readonly name: string
  readonly signer: Signer
}

/** Checks a text can be a note's: non-empty, ending in newline, UTF-8 with no control character but newline. */
function checkNoteText(text: string, code: ErrorCode, what: string): void {
  readText(text, what, code, {...DEFAULT_NOTE_LIMITS, maxBytes: Number.MAX_SAFE_INTEGER})
  if (text === '') throw fail(code, 'EMPTY_TEXT', `${what}: empty`)
  if (!text.endsWith('\n')) throw fail(code, 'NO_FINAL_NEWLINE', `${what}: does not end with a newline`)
}

/**
 * Signs a note text with each signer (Go's note.Sign). Given a parsed note, its signatures are kept,
 * first, except those by a key that signs again here; the new ones follow.
 */
export function signNote(note: string | ParsedNote, signers: readonly NoteSigner[], limits: Partial<NoteLimits> = {}): string {
  const lim = {...DEFAULT_NOTE_LIMITS, ...limits}
  const text = typeof note === 'string' ? note : note.text
  const existing = typeof note === 'string' ? [] : note.signatures
  checkNoteText(text, 'INVALID_INPUT', 'note text')
  const data = Buffer.from(text)
  const fresh: string[] = []
  const signing = new Set<string>()
  for (const {name, signer} of signers) {
    const key = verifierKeyOf(name, signer.publicKey)
    const id = `${name}+${key.keyId}`
    if (signing.has(id)) throw fail('INVALID_INPUT', 'DUPLICATE_SIGNER', `key ${id} is given twice`)
    signing.add(id)
    const signature = signer.sign(data)
    fresh.push(`${EM_DASH_SPACE}${name} ${encodeBase64(Buffer.concat([Buffer.from(key.keyId, 'hex'), signature]))}\n`)
  }
  const kept: string[] = []
  for (const sig of existing) {
    if (signing.has(`${sig.name}+${sig.keyId}`)) continue
    // Re-checked as parseNote would read it: a hand-built signature must not make a note it refuses.
    const raw = decodeBase64(sig.base64)
    if (!isValidKeyName(sig.name) || !raw || raw.length < 5 || Buffer.from(raw.subarray(0, 4)).toString('hex') !== sig.keyId) {
      throw fail('INVALID_INPUT', 'KEY_ID_MISMATCH', `existing signature by ${JSON.stringify(sig.name)}: its name, base64 or key ID ${sig.keyId} is not a signature line's`)
    }
    kept.push(`${EM_DASH_SPACE}${sig.name} ${sig.base64}\n`)
  }
  const lines = [...kept, ...fresh]
  if (lines.length === 0) throw fail('INVALID_INPUT', 'NO_SIGNATURES', 'a signed note needs at least one signature')
  if (lines.length > lim.maxSignatures) throw fail('TOO_LARGE', 'TOO_MANY_SIGNATURES', `${lines.length} signatures, more than the ${lim.maxSignatures} a note may hold`)
  return `${text}\n${lines.join('')}`
}

export interface VerifiedNote {
  readonly text: string
  /** The known keys whose signatures verified, each once, in the order they first sign. */
  readonly verifiedBy: readonly VerifierKey[]
  /** Signatures by keys not known (name or key ID matching none): ignored, as the specification requires. */
  readonly unknown: readonly NoteSignature[]
}

/**
 * Verifies a signed note against the keys the caller trusts (c2sp.org/signed-note, "Signatures"):
 *
 * 1. Each known key is identified by name and key ID; two different keys under one name and ID are
 *    refused (KEY_INVALID): a trust list that cannot say which key signed is no trust list.
 * 2. A signature whose name and key ID match no known key is ignored, even if one of them matches:
 *    rotated-out keys and witness cosignatures must not break a note.
 * 3. Every signature by a known key is verified, repeats included; one that fails rejects the whole
 *    note (BAD_SIGNATURE): a forged line must not hide behind a good one.
 * 4. A note that no known key signed is rejected (UNKNOWN_KEY).
 */
export function verifyNote(note: ParsedNote | Uint8Array | string, keys: readonly VerifierKey[], limits: Partial<NoteLimits> = {}): VerifiedNote {
  const parsed = typeof note === 'string' || note instanceof Uint8Array ? parseNote(note, limits) : note
  // Step 1: the trust list.
  const known = new Map<string, VerifierKey>()
  for (const key of keys) {
    const id = `${key.name}+${key.keyId}`
    if (!isValidKeyName(key.name) || key.publicKey.length !== 32 || noteKeyId(key.name, key.publicKey) !== key.keyId) {
      throw fail('KEY_INVALID', 'KEY_ID_MISMATCH', `known key ${id}: its key ID is not that of its name and public key`)
    }
    const other = known.get(id)
    if (other && !Buffer.from(other.publicKey).equals(key.publicKey)) throw fail('KEY_INVALID', 'AMBIGUOUS_KEY', `two different known keys are named ${id}`)
    known.set(id, key)
  }
  const data = Buffer.from(parsed.text)
  const verified = new Map<string, VerifierKey>()
  const unknown: NoteSignature[] = []
  for (const sig of parsed.signatures) {
    const id = `${sig.name}+${sig.keyId}`
    const key = known.get(id)
    // Step 2: unknown keys are ignored.
    if (!key) {
      unknown.push(sig)
      continue
    }
    // Step 3: a known key's signature must verify.
    if (!verifyEd25519(key.publicKey, data, sig.signature)) throw fail('BAD_SIGNATURE', 'BAD_SIGNATURE', `signed note: the signature by ${id} does not verify`, {key: id})
    if (!verified.has(id)) verified.set(id, key)
  }
  // Step 4: at least one known key signed.
  if (verified.size === 0) {
    const by = parsed.signatures.map((s) => `${s.name}+${s.keyId}`)
    throw fail('UNKNOWN_KEY', 'NO_KNOWN_SIGNATURE', `signed note: signed by none of the ${known.size} known keys (signed by ${by.join(', ')})`, {signers: by})
  }
  return {text: parsed.text, verifiedBy: [...verified.values()], unknown}
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/** A log's tree head (c2sp.org/tlog-checkpoint): the text a checkpoint note signs. */
export interface Checkpoint {
  /** The log's identity; the specification promises nothing of its form but that it is not empty. */
  readonly origin: string
  /** Leaves in the tree. */
  readonly size: number
  /** The RFC 6962 Merkle tree hash (SHA-256) at that size. */
  readonly rootHash: Uint8Array
  /** Opaque extension lines, each non-empty (not recommended: monitors cannot audit them). */
  readonly extensions: readonly string[]
}

/** The note text of a checkpoint; sign it with signNote. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const {origin, size, rootHash, extensions} = checkpoint
  if (!Number.isSafeInteger(size) || size < 0) throw fail('INVALID_INPUT', 'BAD_TREE_SIZE', `checkpoint: tree size ${size} is not a non-negative safe integer`)
  if (rootHash.length !== HASH_BYTES) throw fail('INVALID_INPUT', 'BAD_ROOT_HASH', `checkpoint: a root hash has ${HASH_BYTES} bytes, this one has ${rootHash.length}`)
  for (const [field, line] of [['origin', origin], ...extensions.map((e) => ['extension line', e] as const)] as const) {
    if (line === '') throw fail('INVALID_INPUT', 'EMPTY_LINE', `checkpoint: the ${field} is empty`)
    if (line.includes('\n')) throw fail('INVALID_INPUT', 'CONTROL_CHARACTER', `checkpoint: the ${field} holds a newline`)
  }
  const text = [origin, String(size), encodeBase64(rootHash), ...extensions].join('\n') + '\n'
  checkNoteText(text, 'INVALID_INPUT', 'checkpoint')
  return text
}

/** Reads a checkpoint from a note text (ParsedNote.text, or verifyNote's text once verified). */
export function parseCheckpoint(text: string): Checkpoint {
  checkNoteText(text, 'MALFORMED', 'checkpoint')
  const lines = text.slice(0, -1).split('\n')
  if (lines.length < 3) throw fail('MALFORMED', 'TOO_FEW_LINES', `checkpoint: ${lines.length} lines; a checkpoint has an origin, a tree size and a root hash`)
  const empty = lines.findIndex((l) => l === '')
  if (empty !== -1) {
    const field = empty === 0 ? 'the origin' : empty === 1 ? 'the tree size' : empty === 2 ? 'the root hash' : 'an extension line'
    throw fail('MALFORMED', 'EMPTY_LINE', `checkpoint line ${empty + 1}: ${field} is empty`, {line: empty + 1})
  }
  const [origin, sizeText, hashText, ...extensions] = lines as [string, string, string, ...string[]]
  const size = parseDecimal(sizeText)
  if (size === undefined) {
    throw fail('MALFORMED', 'BAD_TREE_SIZE', `checkpoint line 2: tree size ${JSON.stringify(sizeText)} is not a decimal with no leading zeroes, at most 2^53-1`, {line: 2})
  }
  const rootHash = decodeBase64(hashText)
  if (!rootHash) throw fail('MALFORMED', 'BAD_ROOT_HASH', `checkpoint line 3: root hash ${JSON.stringify(hashText)} is not canonical base64`, {line: 3})
  if (rootHash.length !== HASH_BYTES) throw fail('MALFORMED', 'BAD_ROOT_HASH', `checkpoint line 3: the root hash has ${rootHash.length} bytes, not ${HASH_BYTES}`, {line: 3})
  return {origin, size, rootHash, extensions}
}

// ---------------------------------------------------------------------------------------------
// Proofs

/** An inclusion proof bundle (c2sp.org/tlog-proof). */
export interface TlogProof {
  /** Opaque, unauthenticated extra data; absent when there is none. */
  readonly extra?: Uint8Array
  /** The zero-based index of the entry. */
  readonly index: number
  /** The inclusion proof, from the leaf's sibling up to the root's child. */
  readonly proof: readonly Uint8Array[]
  /** The signed checkpoint note, verbatim. */
  readonly checkpoint: string
}

export interface ParsedTlogProof extends TlogProof {
  /** The checkpoint note as read (not verified: verifyNote it with the log's and witnesses' keys). */
  readonly note: ParsedNote
  readonly tree: Checkpoint
}

/** Writes a proof; the checkpoint must be a signed checkpoint note whose tree holds the index. */
export function formatTlogProof(proof: TlogProof): string {
  const {extra, index, proof: hashes, checkpoint} = proof
  if (extra !== undefined && extra.length === 0) throw fail('INVALID_INPUT', 'BAD_EXTRA', 'tlog proof: empty extra data is written by leaving the extra line out')
  if (!Number.isSafeInteger(index) || index < 0) throw fail('INVALID_INPUT', 'BAD_INDEX', `tlog proof: index ${index} is not a non-negative safe integer`)
  if (hashes.length > MAX_PROOF_HASHES) throw fail('INVALID_INPUT', 'TOO_MANY_PROOF_HASHES', `tlog proof: ${hashes.length} proof hashes, more than the ${MAX_PROOF_HASHES} any inclusion proof has`)
  for (const [i, h] of hashes.entries()) {
    if (h.length !== HASH_BYTES) throw fail('INVALID_INPUT', 'BAD_PROOF_HASH', `tlog proof: proof hash ${i + 1} has ${h.length} bytes, not ${HASH_BYTES}`)
  }
  const tree = parseCheckpoint(parseNote(checkpoint).text)
  if (index >= tree.size) throw fail('INVALID_INPUT', 'INDEX_OUT_OF_RANGE', `tlog proof: index ${index} is not in a tree of ${tree.size} leaves`)
  const head = [PROOF_HEADER, ...(extra ? [`extra ${encodeBase64(extra)}`] : []), `index ${index}`, ...hashes.map(encodeBase64)]
  return `${head.join('\n')}\n\n${checkpoint}`
}

/**
 * Reads a proof: the header, the optional extra line, the index, the proof hashes, a blank line and
 * the checkpoint note. Checks the checkpoint's syntax and that its tree holds the index; the
 * inclusion proof itself is checked by merkle.ts and the signatures by verifyNote.
 */
export function parseTlogProof(input: Uint8Array | string, limits: Partial<NoteLimits> = {}): ParsedTlogProof {
  const lim = {...DEFAULT_NOTE_LIMITS, ...limits}
  const msg = readText(input, 'tlog proof', 'MALFORMED', lim)
  // The proof lines hold no blank line; the first one ends them and the checkpoint follows.
  const split = msg.indexOf('\n\n')
  if (split === -1) throw fail('MALFORMED', 'NO_CHECKPOINT', 'tlog proof: no blank line before the checkpoint')
  const lines = msg.slice(0, split).split('\n')
  const checkpoint = msg.slice(split + 2)
  let at = 0
  if (lines[at] !== PROOF_HEADER) throw fail('MALFORMED', 'BAD_HEADER', `tlog proof line 1: not ${PROOF_HEADER}`, {line: 1})
  at++
  let extra: Uint8Array | undefined
  if (lines[at]?.startsWith('extra')) {
    const value = lines[at]!.startsWith('extra ') ? decodeBase64(lines[at]!.slice('extra '.length)) : undefined
    if (!value || value.length === 0) throw fail('MALFORMED', 'BAD_EXTRA', `tlog proof line ${at + 1}: not "extra", a space and non-empty canonical base64`, {line: at + 1})
    extra = value
    at++
  }
  const indexLine = lines[at] ?? ''
  const index = indexLine.startsWith('index ') ? parseDecimal(indexLine.slice('index '.length)) : undefined
  if (index === undefined) throw fail('MALFORMED', 'BAD_INDEX', `tlog proof line ${at + 1}: not "index", a space and a decimal with no leading zeroes, at most 2^53-1`, {line: at + 1})
  at++
  const hashLines = lines.slice(at)
  if (hashLines.length > MAX_PROOF_HASHES) throw fail('MALFORMED', 'TOO_MANY_PROOF_HASHES', `tlog proof: ${hashLines.length} proof hashes, more than the ${MAX_PROOF_HASHES} any inclusion proof has`)
  const proof = hashLines.map((line, i) => {
    const h = decodeBase64(line)
    const n = at + i + 1
    if (!h || line === '') throw fail('MALFORMED', 'BAD_PROOF_HASH', `tlog proof line ${n}: proof hash ${JSON.stringify(line.length > 120 ? `${line.slice(0, 120)}…` : line)} is not canonical base64`, {line: n})
    if (h.length !== HASH_BYTES) throw fail('MALFORMED', 'BAD_PROOF_HASH', `tlog proof line ${n}: the proof hash has ${h.length} bytes, not ${HASH_BYTES}`, {line: n})
    return h
  })
  const note = parseNote(checkpoint, lim)
  const tree = parseCheckpoint(note.text)
  if (index >= tree.size) throw fail('MALFORMED', 'INDEX_OUT_OF_RANGE', `tlog proof: index ${index} is not in the checkpoint's tree of ${tree.size} leaves`)
  return {...(extra ? {extra} : {}), index, proof, checkpoint, note, tree}
}
