/**
 * Signed envelopes, read and counted in one place. Policy bundles, evidence receipts and tool
 * approvals are DSSE envelopes (dsse.ts); each is parsed by `parseEnvelope` and its signers are
 * counted by `countSigners`: distinct keys of one role, valid at one time, against a threshold.
 * No other code parses an envelope or counts a threshold.
 */
import {AirlockError, type ErrorCode} from '../errors.js'
import {checkNesting} from '../limits.js'
import {keysFor} from '../manifests/load.js'
import type {Role, TrustPolicy} from '../manifests/models.js'
import {checkEnvelopeSignatures, type Envelope} from './dsse.js'

/** What an envelope may weigh: bytes of its text, nesting of its JSON (and of its payload's). */
export interface EnvelopeLimits {
  maxBytes: number
  maxDepth: number
}

function refuse(source: string, field: string | null, problem: string, code: ErrorCode = 'INVALID_INPUT'): AirlockError {
  return new AirlockError(code, `${source}: ${field ? `${field} ` : ''}${problem}`, {file: source, ...(field ? {field} : {})})
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * The DSSE envelope in `text`, of type `payloadType`: within the size and nesting limits, JSON,
 * `{payloadType, payload, signatures: [{keyid, sig}]}` with strings where strings belong, and a
 * base64 payload. Anything else is one error naming the source and the field (INVALID_INPUT;
 * TOO_LARGE past a limit). Only the envelope's own fields are kept.
 */
export function parseEnvelope(text: string, source: string, opts: {payloadType: string; limits: EnvelopeLimits}): Envelope {
  if (Buffer.byteLength(text) > opts.limits.maxBytes) throw refuse(source, null, `is larger than ${opts.limits.maxBytes} bytes`, 'TOO_LARGE')
  checkNesting(text, source, 'json', opts.limits.maxDepth)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw refuse(source, null, 'is not JSON (truncated or corrupted?)')
  }
  if (!isRecord(value)) throw refuse(source, null, 'is not a DSSE envelope (an object with payloadType, payload and signatures)')
  for (const field of ['payloadType', 'payload'] as const) if (typeof value[field] !== 'string') throw refuse(source, field, 'must be a string (not a DSSE envelope)')
  if (!Array.isArray(value.signatures)) throw refuse(source, 'signatures', 'must be a list (not a DSSE envelope)')
  const signatures = value.signatures.map((s: unknown, i) => {
    for (const field of ['keyid', 'sig'] as const) if (!isRecord(s) || typeof s[field] !== 'string') throw refuse(source, `signatures[${i}].${field}`, 'must be a string')
    return {keyid: (s as {keyid: string}).keyid, sig: (s as {sig: string}).sig}
  })
  if (value.payloadType !== opts.payloadType) throw refuse(source, 'payloadType', `is ${JSON.stringify(value.payloadType)}, not ${opts.payloadType}`)
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(value.payload as string)) throw refuse(source, 'payload', 'is not base64')
  return {payloadType: value.payloadType, payload: value.payload as string, signatures}
}

/** The envelope's payload as a JSON object (within the nesting limit), or one error naming the source. */
export function envelopeJson(envelope: Envelope, source: string, maxDepth: number): Record<string, unknown> {
  const text = Buffer.from(envelope.payload, 'base64').toString('utf8')
  checkNesting(text, `${source}#payload`, 'json', maxDepth)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw refuse(source, 'payload', 'is not JSON')
  }
  if (!isRecord(value)) throw refuse(source, 'payload', 'is not a JSON object')
  return value
}

/** The code for a key whose signature verifies but who was not valid at the time it is judged at. */
export type NotValidCode = 'KEY_NOT_VALID_AT_SIGNING' | 'KEY_NOT_VALID_AT_ISSUE'

/** Why a role's signatures fall short; the code names the first signature at fault, if any. */
export type QuorumFailure<N extends NotValidCode = NotValidCode> = 'BAD_SIGNATURE' | 'UNKNOWN_KEY' | N | 'THRESHOLD_NOT_MET'

export interface QuorumRequest<N extends NotValidCode> {
  trust: TrustPolicy
  role: Role
  /** The time the keys are judged at (a bundle's issuedAt, a receipt's signing time, an approval's check). */
  at: Date
  /** Distinct valid signers needed; default the trust policy's threshold for the role (never below 1). */
  threshold?: number
  /** The code for a key of the role whose signature verifies but who was not valid at `at`. */
  notValid: N
  /** What is signed, for messages (a file, "the approval"). */
  what: string
}

export interface Quorum<N extends NotValidCode> {
  /** Distinct keys of the role, valid at `at`, whose signatures verify. */
  signers: string[]
  threshold: number
  /** When the threshold is not met: why, naming the signature at fault. */
  failure?: {code: QuorumFailure<N>; message: string; keyid?: string}
}

/**
 * Counts the distinct keys of `role` in the trust policy, valid at `at`, whose signatures over
 * the envelope verify (a key signing twice counts once; a signature by a key without the role
 * never counts). When fewer than the threshold sign, the failure names the first signature at
 * fault, most telling first: one that does not match (BAD_SIGNATURE: edited after signing),
 * one by a key of the role outside its validity at `at` (retired or not yet valid), one by a key
 * that is not of the role (UNKNOWN_KEY); else THRESHOLD_NOT_MET. A document with no signature
 * never passes, whatever the threshold says.
 */
export function countSigners<N extends NotValidCode>(envelope: Envelope, req: QuorumRequest<N>): Quorum<N> {
  const ofRole = new Map(req.trust.keys.filter((k) => k.roles.includes(req.role)).map((k) => [k.id, k.publicKey]))
  const current = new Set(keysFor(req.trust, req.role, req.at).map((k) => k.id))
  const checks = checkEnvelopeSignatures(envelope, (id) => ofRole.get(id))
  const signers = [...new Set(checks.filter((c) => c.valid && current.has(c.keyid)).map((c) => c.keyid))]
  const threshold = Math.max(1, req.threshold ?? req.trust.thresholds[req.role])
  if (signers.length >= threshold) return {signers, threshold}
  const id = (keyid: string) => `${keyid.slice(0, 16)}…`
  const bad = checks.find((c) => c.reason === 'BAD_SIGNATURE')
  const retired = checks.find((c) => c.valid && !current.has(c.keyid))
  const unknown = checks.find((c) => c.reason === 'UNKNOWN_KEY')
  const failure: Quorum<N>['failure'] = bad
    ? {code: 'BAD_SIGNATURE', keyid: bad.keyid, message: `${req.what}: the signature by ${id(bad.keyid)} does not match (edited after signing?)`}
    : retired
      ? {code: req.notValid, keyid: retired.keyid, message: `${req.what}: signed by ${id(retired.keyid)}, a ${req.role} key not valid at ${req.at.toISOString()}`}
      : unknown
        ? {code: 'UNKNOWN_KEY', keyid: unknown.keyid, message: `${req.what}: signed by ${id(unknown.keyid)}, which is not a ${req.role} key in ${req.trust.file}`}
        : {code: 'THRESHOLD_NOT_MET', message: checks.length === 0 ? `${req.what}: carries no signature` : `${req.what}: ${signers.length} valid ${req.role} signature(s), ${threshold} needed`}
  return {signers, threshold, failure}
}
