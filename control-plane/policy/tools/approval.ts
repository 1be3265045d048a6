/**
 * Approvals of tool calls: a signed, expiring statement that one call — this tool, with its
 * parameter schema as it is now, with exactly these parameters — may go ahead, once. A DSSE
 * envelope (the one signing mechanism) signed by keys of role `approval` in trust.yaml; the token
 * is the envelope's JSON, base64url, so it fits in a flag or a header. Its signed nonce is what
 * the host's store of used approvals (used-approvals.ts) consumes: a second use is refused.
 */
import {randomBytes} from 'node:crypto'
import {signEnvelope, type Envelope} from '../../crypto/dsse.js'
import {countSigners, envelopeJson, parseEnvelope} from '../../crypto/envelope.js'
import type {Signer} from '../../crypto/keys.js'
import {AirlockError} from '../../errors.js'
import {DEFAULT_LIMITS, type Limits} from '../../limits.js'
import type {TrustPolicy} from '../../manifests/models.js'
import type {AllowedTool, ApprovalCheck} from './tools.js'

export const APPROVAL_PAYLOAD_TYPE = 'application/vnd.airlock.tool-approval.v1+json'
const APPROVAL_TYPE = 'https://airlock.dev/tool-approval/v1'
/** The longest an approval may live: it approves one call, not a standing permission. */
export const MAX_APPROVAL_TTL_MS = 24 * 60 * 60 * 1000
const MAX_TOKEN_BYTES = 64 * 1024

export interface ApprovalStatement {
  _type: typeof APPROVAL_TYPE
  tool: string
  /** The tool's parameter schema hash when approved: a redefined tool is not approved. */
  schemaHash: string
  /** RFC 8785 SHA-256 of the parameters approved. */
  paramsDigest: string
  approvedBy: string
  reason: string
  issuedAt: string
  expiresAt: string
  /** 128 random bits, base64url: the approval's identity in the store of used approvals. */
  nonce: string
}

/** A nonce as makeApproval writes one (and as the store of used approvals names its entries). */
export const NONCE = /^[A-Za-z0-9_-]{22,64}$/

export function makeApproval(tool: AllowedTool, paramsDigest: string, opts: {signer: Signer; approvedBy: string; reason: string; now: Date; ttlMs: number}): {token: string; statement: ApprovalStatement} {
  if (!(opts.ttlMs > 0) || opts.ttlMs > MAX_APPROVAL_TTL_MS) throw new AirlockError('USAGE', `--ttl: an approval lives more than 0 and at most ${MAX_APPROVAL_TTL_MS / 3_600_000} h`, {field: '--ttl'})
  const statement: ApprovalStatement = {
    _type: APPROVAL_TYPE,
    tool: tool.name,
    schemaHash: tool.schemaHash,
    paramsDigest,
    approvedBy: opts.approvedBy,
    reason: opts.reason,
    issuedAt: opts.now.toISOString(),
    expiresAt: new Date(opts.now.getTime() + opts.ttlMs).toISOString(),
    nonce: randomBytes(16).toString('base64url'),
  }
  const envelope = signEnvelope(APPROVAL_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), [opts.signer])
  return {token: Buffer.from(JSON.stringify(envelope)).toString('base64url'), statement}
}

function decode(token: string, limits: Limits): {envelope: Envelope; statement: ApprovalStatement} | string {
  if (token.length > MAX_TOKEN_BYTES) return `the token is longer than ${MAX_TOKEN_BYTES} characters`
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(token)) return 'the token is not base64url'
  try {
    const source = 'the approval token'
    const envelope = parseEnvelope(Buffer.from(token, 'base64url').toString('utf8'), source, {payloadType: APPROVAL_PAYLOAD_TYPE, limits: {maxBytes: MAX_TOKEN_BYTES, maxDepth: limits.maxDepth}})
    const statement = envelopeJson(envelope, source, limits.maxDepth) as unknown as ApprovalStatement
    const fields = ['tool', 'schemaHash', 'paramsDigest', 'approvedBy', 'reason', 'issuedAt', 'expiresAt'] as const
    if (statement._type !== APPROVAL_TYPE || !fields.every((f) => typeof statement[f] === 'string')) return `the payload is not a ${APPROVAL_TYPE} statement`
    // An approval from before approvals were single-use has no nonce: it could be replayed.
    if (statement.nonce === undefined) return 'it carries no nonce (made before approvals were single-use); approve the call again with `airlock tool approve`'
    if (typeof statement.nonce !== 'string' || !NONCE.test(statement.nonce)) return 'its nonce is not 22 to 64 base64url characters'
    return {envelope, statement}
  } catch (error) {
    if (error instanceof AirlockError) return error.message
    throw error
  }
}

/**
 * The check `checkTool` runs on a token: signed by enough distinct approval keys valid now (the
 * trust policy's `thresholds.approval`), not expired, issued at most 24 h before it expires and
 * not after now plus the clock skew, and naming this tool, its current schema hash and these
 * parameters.
 */
export function approvalCheck(token: string, trust: TrustPolicy, now: Date, limits: Limits = DEFAULT_LIMITS): ApprovalCheck {
  return (tool, paramsDigest) => {
    const decoded = decode(token, limits)
    if (typeof decoded === 'string') return {ok: false, problem: decoded}
    const {envelope, statement} = decoded
    const quorum = countSigners(envelope, {trust, role: 'approval', at: now, notValid: 'KEY_NOT_VALID_AT_SIGNING', what: 'the approval'})
    if (quorum.failure) {
      return {ok: false, problem: `signed by ${quorum.signers.length} trusted approval key(s) valid now, ${quorum.threshold} needed (${trust.file} roles: approval): ${quorum.failure.code} ${quorum.failure.message}`}
    }
    const issued = Date.parse(statement.issuedAt)
    const expires = Date.parse(statement.expiresAt)
    if (Number.isNaN(issued) || Number.isNaN(expires)) return {ok: false, problem: 'issuedAt or expiresAt is not a time'}
    if (expires - issued > MAX_APPROVAL_TTL_MS) return {ok: false, problem: 'the approval lives longer than 24 h'}
    if (issued > now.getTime() + limits.clockSkewMs) return {ok: false, problem: `issued in the future (${statement.issuedAt})`}
    if (now.getTime() >= expires) return {ok: false, problem: `expired at ${statement.expiresAt}`}
    if (statement.tool !== tool.name) return {ok: false, problem: `it approves ${JSON.stringify(statement.tool)}, not ${tool.name}`}
    if (statement.schemaHash !== tool.schemaHash) return {ok: false, problem: `it approves ${tool.name} with schema ${statement.schemaHash}; the schema is now ${tool.schemaHash}`}
    if (statement.paramsDigest !== paramsDigest) return {ok: false, problem: `it approves parameters ${statement.paramsDigest}, these are ${paramsDigest}`}
    return {ok: true, keyids: quorum.signers, expiresAt: statement.expiresAt, approvedBy: statement.approvedBy, nonce: statement.nonce}
  }
}
