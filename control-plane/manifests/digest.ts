import {AirlockError, type ErrorCode} from '../errors.js'

const DIGEST = /^sha256:[0-9a-f]{64}$/

/** Why a string is not a `sha256:<64 lowercase hex>` digest, or null when it is one. */
export function digestProblem(input: string): {code: ErrorCode; message: string} | null {
  if (DIGEST.test(input)) return null
  const tag = {code: 'NOT_PINNED' as const, message: `"${input}" is a tag, not a digest; a tag is never a pin: use sha256:<64 hex>`}
  const colon = input.indexOf(':')
  if (colon < 0) {
    return /^[0-9a-fA-F]{64}$/.test(input) ? {code: 'BAD_DIGEST', message: 'a digest needs its algorithm: write sha256:<64 hex>'} : tag
  }
  const algo = input.slice(0, colon)
  const hex = input.slice(colon + 1)
  if (algo !== 'sha256') {
    return /^[0-9a-f]{32,}$/i.test(hex) ? {code: 'BAD_DIGEST', message: `algorithm "${algo}" is not accepted; images are pinned by sha256 digests`} : tag
  }
  if (/[A-F]/.test(hex)) return {code: 'BAD_DIGEST', message: 'digest hex must be lowercase'}
  if (!/^[0-9a-f]*$/.test(hex)) return {code: 'BAD_DIGEST', message: 'digest has characters that are not hex'}
  return {code: 'BAD_DIGEST', message: `digest has ${hex.length} hex characters, a sha256 digest has 64`}
}

/** Accepts `sha256:<hex>` or `repo@sha256:<hex>`; refuses tags and malformed digests. */
export function parseDigestRef(input: string, field = 'digest'): {repository?: string; digest: string} {
  const at = input.lastIndexOf('@')
  const digest = at >= 0 ? input.slice(at + 1) : input
  const problem = digestProblem(digest)
  if (problem) throw new AirlockError(problem.code, `${field}: ${problem.message}`, {field, value: input})
  return at >= 0 ? {repository: input.slice(0, at), digest} : {digest}
}
