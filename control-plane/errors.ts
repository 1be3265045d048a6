/**
 * One error base for the whole core. Callers switch on `code`; the table below is the only
 * place that maps a code to a process exit code (DESIGN.md: 1 check failed, 2 invalid input,
 * 3 conflict).
 */
export type ErrorCode =
  // 2: invalid input or usage
  | 'USAGE'
  | 'INVALID_INPUT'
  | 'YAML_ERROR'
  | 'SCHEMA_VIOLATION'
  | 'TOO_LARGE'
  | 'NOT_PINNED'
  | 'BAD_DIGEST'
  | 'UNKNOWN_IMAGE'
  | 'UNKNOWN_CHANNEL'
  | 'PATH_OUTSIDE_REPO'
  | 'NOT_A_REPOSITORY'
  | 'UNSUPPORTED_REPOSITORY'
  | 'KEY_MISSING'
  | 'KEY_PERMISSIONS'
  | 'KEY_INVALID'
  | 'KEY_EXISTS'
  | 'PLAN_INVALID'
  | 'PLAN_TAMPERED'
  | 'PLAN_MISMATCH'
  | 'TARGET_EXISTS'
  | 'TARGET_NOT_REGULAR'
  /** A place nothing can be written: a kernel pseudo file system (/proc, /sys, /dev), a file on the way, no permission. */
  | 'TARGET_UNWRITABLE'
  | 'INVALID_POLICY_SOURCE'
  /** A file under a signed folder that matches no kind of desired state. */
  | 'UNKNOWN_KIND'
  /** A secrets baseline holding what looks like a secret (it may list fingerprints only). */
  | 'SECRET_IN_BASELINE'
  // 1: a check failed
  | 'VERIFICATION_FAILED'
  | 'BASE_UNVERIFIED'
  /** No trust anchor from outside the repository (--trust-anchor, AIRLOCK_TRUST_ANCHOR, git config). */
  | 'ANCHOR_NOT_PINNED'
  // 1: history and receipts (evidence/history.ts): each finding's code
  | 'MALFORMED'
  | 'KEY_NOT_VALID_AT_SIGNING'
  | 'RECEIPT_MODIFIED'
  | 'RECEIPT_DELETED'
  | 'BASE_MISMATCH'
  | 'UNSIGNED_COMMIT'
  | 'DRILL_COMMIT'
  | 'BAD_COMMIT_SIGNATURE'
  | 'UNTRUSTED_COMMIT_SIGNER'
  | 'HISTORY_INCOMPLETE'
  | 'MULTIPLE_ROOTS'
  | 'ANCHOR_NOT_IN_HISTORY'
  | 'UNANCHORED_PARENT'
  | 'NOT_A_FOLDER'
  /** Dated earlier than a parent (a signer moving its signature back into a key's validity). */
  | 'BACKDATED'
  /** Dated beyond the verifier's clock plus the allowed skew. */
  | 'FUTURE_DATED'
  /** A branch HEAD that does not descend from what this clone verified on it before. */
  | 'ROLLED_BACK'
  /** The embedded example fleet's history is not the one pinned in the code (bundle absent, unreadable, or rooted elsewhere). */
  | 'EXAMPLE_UNANCHORED'
  /** A file of the project's top-level manifests/, policies/ or docs/evidence/ is not what the example's verified history holds. */
  | 'EXAMPLE_MISMATCH'
  // 1: a signed policy bundle failed verification (issue 3's codes)
  | 'BAD_SIGNATURE'
  | 'THRESHOLD_NOT_MET'
  | 'UNKNOWN_KEY'
  | 'KEY_NOT_VALID_AT_ISSUE'
  | 'EXPIRED'
  | 'DOWNGRADE'
  | 'SCOPE_MISMATCH'
  | 'INVALID_POLICY'
  | 'EQUAL_VERSION_CONFLICT'
  /** A bundle living longer (expiresAt − issuedAt) than trust.yaml allows. */
  | 'LIFETIME_EXCEEDED'
  | 'INVALID_TOKEN'
  | 'DENIED'
  /** A channel's evidence requirements (suite receipts for the digest, soak time) are not met: the message names what is missing. */
  | 'EVIDENCE_MISSING'
  /** A single-use tool-call approval presented again (its nonce is in the host's store of used approvals). */
  | 'APPROVAL_REPLAYED'
  /** The Cedar engine (wasm) trapped or threw: nothing it said is trusted, so whatever was asked is denied. */
  | 'POLICY_ENGINE_FAILED'
  // 1: the audit log (control-plane/audit/)
  /** The audit log cannot be written (a mutating command fails closed) or read. */
  | 'AUDIT_UNAVAILABLE'
  /** An entry, a checkpoint or a published checkpoint does not verify: the message names the first bad one. */
  | 'AUDIT_TAMPERED'
  /** The log ends in a partial line (an append interrupted, e.g. by kill -9): reported, never merged or dropped. */
  | 'AUDIT_TORN_TAIL'
  /** A signed checkpoint that does not verify (forged, another log's origin, a smaller tree than one before). */
  | 'AUDIT_CHECKPOINT_INVALID'
  /** A SIEM sink that did not take a batch (after the retries); the cursor stays where it was. */
  | 'AUDIT_SINK_FAILED'
  // 1: an image signature did not verify (the reason is the code: IMAGE_NO_SIGNATURE, …)
  | ImageErrorCode
  // 1: a registry or runtime could not be read, or answered with the wrong thing
  | RegistryErrorCode
  | 'DIGEST_MISMATCH'
  | 'RUNTIME_UNAVAILABLE'
  // 1: the repository holds a missing or malformed object (made by someone else)
  | 'BROKEN_OBJECT'
  | 'INTERNAL'
  // 3: conflict
  | 'STALE_PLAN'
  | 'CONFLICT'
  | 'LOCK_HELD'
  | 'UNCOMMITTED_CHANGES'
  /** Another process holds the audit log's lock past the wait. */
  | 'AUDIT_LOCKED'

/** Why an image signature does not verify; each is its own top-level code, `IMAGE_<reason>`. */
export const IMAGE_REASONS = ['SIGNATURE_ERROR', 'SUBJECT_MISMATCH', 'UNTRUSTED_SIGNER', 'NO_TIMESTAMP', 'TLOG_ERROR', 'CERTIFICATE_ERROR', 'NOT_PINNED', 'NO_SIGNATURE', 'THRESHOLD_NOT_MET'] as const
export type ImageVerifyCode = (typeof IMAGE_REASONS)[number]
export type ImageErrorCode = `IMAGE_${ImageVerifyCode}`

/** Why a registry could not be used; each is its own top-level code, `REGISTRY_<reason>`. */
export const REGISTRY_REASONS = ['UNREACHABLE', 'TIMEOUT', 'AUTH_REQUIRED', 'NOT_FOUND', 'SERVER_ERROR', 'HTTP_ERROR', 'REDIRECT_LOOP', 'TOO_LARGE', 'BAD_RESPONSE'] as const
export type RegistryReason = (typeof REGISTRY_REASONS)[number]
export type RegistryErrorCode = `REGISTRY_${RegistryReason}`

export interface ErrorLocation {
  file?: string
  line?: number
  column?: number
  field?: string
}

export class AirlockError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown>

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.name = 'AirlockError'
    this.code = code
    this.details = details
  }
}

/** An input error at a place in a file: the message starts with `file:line:col: field:`. */
export function inputError(code: ErrorCode, where: ErrorLocation, problem: string, extra: Record<string, unknown> = {}): AirlockError {
  const pos = [where.file, where.line, where.column].filter((p) => p !== undefined).join(':')
  const prefix = [pos, where.field].filter(Boolean).join(': ')
  const details: Record<string, unknown> = {...extra}
  for (const [k, v] of Object.entries(where)) if (v !== undefined) details[k] = v
  return new AirlockError(code, prefix ? `${prefix}: ${problem}` : problem, details)
}

const EXIT_CODES: Record<ErrorCode, 1 | 2 | 3> = {
  ...(Object.fromEntries(IMAGE_REASONS.map((r) => [`IMAGE_${r}`, 1])) as Record<ImageErrorCode, 1>),
  ...(Object.fromEntries(REGISTRY_REASONS.map((r) => [`REGISTRY_${r}`, 1])) as Record<RegistryErrorCode, 1>),
  USAGE: 2,
  INVALID_INPUT: 2,
  SECRET_IN_BASELINE: 2,
  YAML_ERROR: 2,
  SCHEMA_VIOLATION: 2,
  TOO_LARGE: 2,
  NOT_PINNED: 2,
  BAD_DIGEST: 2,
  UNKNOWN_IMAGE: 2,
  UNKNOWN_CHANNEL: 2,
  PATH_OUTSIDE_REPO: 2,
  NOT_A_REPOSITORY: 2,
  UNSUPPORTED_REPOSITORY: 2,
  KEY_MISSING: 2,
  KEY_PERMISSIONS: 2,
  KEY_INVALID: 2,
  KEY_EXISTS: 2,
  PLAN_INVALID: 2,
  PLAN_TAMPERED: 2,
  PLAN_MISMATCH: 2,
  TARGET_EXISTS: 2,
  TARGET_NOT_REGULAR: 2,
  TARGET_UNWRITABLE: 2,
  INVALID_POLICY_SOURCE: 2,
  UNKNOWN_KIND: 2,
  VERIFICATION_FAILED: 1,
  BASE_UNVERIFIED: 1,
  ANCHOR_NOT_PINNED: 1,
  MALFORMED: 1,
  KEY_NOT_VALID_AT_SIGNING: 1,
  RECEIPT_MODIFIED: 1,
  RECEIPT_DELETED: 1,
  BASE_MISMATCH: 1,
  UNSIGNED_COMMIT: 1,
  DRILL_COMMIT: 1,
  BAD_COMMIT_SIGNATURE: 1,
  UNTRUSTED_COMMIT_SIGNER: 1,
  HISTORY_INCOMPLETE: 1,
  MULTIPLE_ROOTS: 1,
  ANCHOR_NOT_IN_HISTORY: 1,
  UNANCHORED_PARENT: 1,
  NOT_A_FOLDER: 1,
  BACKDATED: 1,
  FUTURE_DATED: 1,
  ROLLED_BACK: 1,
  EXAMPLE_UNANCHORED: 1,
  EXAMPLE_MISMATCH: 1,
  BAD_SIGNATURE: 1,
  THRESHOLD_NOT_MET: 1,
  UNKNOWN_KEY: 1,
  KEY_NOT_VALID_AT_ISSUE: 1,
  EXPIRED: 1,
  DOWNGRADE: 1,
  SCOPE_MISMATCH: 1,
  INVALID_POLICY: 1,
  EQUAL_VERSION_CONFLICT: 1,
  LIFETIME_EXCEEDED: 1,
  INVALID_TOKEN: 1,
  DENIED: 1,
  AUDIT_UNAVAILABLE: 1,
  AUDIT_TAMPERED: 1,
  AUDIT_TORN_TAIL: 1,
  AUDIT_CHECKPOINT_INVALID: 1,
  AUDIT_SINK_FAILED: 1,
  AUDIT_LOCKED: 3,
  EVIDENCE_MISSING: 1,
  APPROVAL_REPLAYED: 1,
  POLICY_ENGINE_FAILED: 1,
  DIGEST_MISMATCH: 1,
  RUNTIME_UNAVAILABLE: 1,
  BROKEN_OBJECT: 1,
  INTERNAL: 1,
  STALE_PLAN: 3,
  CONFLICT: 3,
  LOCK_HELD: 3,
  UNCOMMITTED_CHANGES: 3,
}

/**
 * How a command ended that did not throw: `ok`; `check_failed` (a verification, gate or policy
 * said no; the result is still printed); `invalid` (some of the input was bad, e.g. lines of
 * `authorize --batch`); `conflict`.
 */
export type Outcome = 'ok' | 'check_failed' | 'invalid' | 'conflict'

const OUTCOME_EXIT: Record<Outcome, 0 | 1 | 2 | 3> = {ok: 0, check_failed: 1, invalid: 2, conflict: 3}

/** The one place a command's outcome, or the error it ended with, becomes its exit code. */
export function exitFor(result: Outcome | AirlockError): 0 | 1 | 2 | 3 {
  return typeof result === 'string' ? OUTCOME_EXIT[result] : EXIT_CODES[result.code]
}

/**
 * Anything thrown, as an AirlockError: oclif's parse errors are USAGE, a parser's stack overflow
 * is TOO_LARGE; only what nothing anticipated is INTERNAL.
 */
export function asAirlockError(err: unknown): AirlockError {
  if (err instanceof AirlockError) return err
  const e = err as Error & {parse?: unknown; oclif?: {exit?: number}}
  if (e && (e.parse !== undefined || e.oclif?.exit === 2)) {
    return new AirlockError('USAGE', String(e.message).replace(/\nSee more help with --help$/, ''), {})
  }
  if (e instanceof RangeError && /call stack/i.test(e.message)) return new AirlockError('TOO_LARGE', 'the input is nested too deeply to process', {})
  return new AirlockError('INTERNAL', `internal error: ${e?.message ?? String(err)}`, {name: e?.name})
}


export interface ErrorJson {
  error: {code: ErrorCode; message: string; details: Record<string, unknown>}
}

export function toErrorJson(err: AirlockError): ErrorJson {
  return {error: {code: err.code, message: err.message, details: err.details}}
}
