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
  | 'INVALID_POLICY_SOURCE'
  // 1: a check failed
  | 'VERIFICATION_FAILED'
  | 'BASE_UNVERIFIED'
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
  | 'INVALID_TOKEN'
  | 'DENIED'
  // 1: a registry or runtime could not be read, or answered with the wrong thing
  | 'REGISTRY_ERROR'
  | 'DIGEST_MISMATCH'
  | 'RUNTIME_UNAVAILABLE'
  | 'INTERNAL'
  // 3: conflict
  | 'STALE_PLAN'
  | 'CONFLICT'
  | 'LOCK_HELD'
  | 'UNCOMMITTED_CHANGES'

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
  USAGE: 2,
  INVALID_INPUT: 2,
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
  INVALID_POLICY_SOURCE: 2,
  VERIFICATION_FAILED: 1,
  BASE_UNVERIFIED: 1,
  BAD_SIGNATURE: 1,
  THRESHOLD_NOT_MET: 1,
  UNKNOWN_KEY: 1,
  KEY_NOT_VALID_AT_ISSUE: 1,
  EXPIRED: 1,
  DOWNGRADE: 1,
  SCOPE_MISMATCH: 1,
  INVALID_POLICY: 1,
  EQUAL_VERSION_CONFLICT: 1,
  INVALID_TOKEN: 1,
  DENIED: 1,
  REGISTRY_ERROR: 1,
  DIGEST_MISMATCH: 1,
  RUNTIME_UNAVAILABLE: 1,
  INTERNAL: 1,
  STALE_PLAN: 3,
  CONFLICT: 3,
  LOCK_HELD: 3,
  UNCOMMITTED_CHANGES: 3,
}

export function exitCodeOf(code: ErrorCode): 1 | 2 | 3 {
  return EXIT_CODES[code]
}

export interface ErrorJson {
  error: {code: ErrorCode; message: string; details: Record<string, unknown>}
}

export function toErrorJson(err: AirlockError): ErrorJson {
  return {error: {code: err.code, message: err.message, details: err.details}}
}
