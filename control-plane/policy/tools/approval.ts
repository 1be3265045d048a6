/**
 * Approvals of tool calls: a signed, expiring statement that one call — this tool, with its
 * parameter schema as it is now, with exactly these parameters — may go ahead. A DSSE envelope
 * (the one signing mechanism) signed by keys of role `approval` in trust.yaml; the token is the
 * envelope's JSON, base64url, so it fits in a flag or a header.
 */
import {checkEnvelopeSignatures, signEnvelope, type Envelope} from '../../crypto/dsse.js'
import type {Signer} from '../../crypto/keys.js'
import {AirlockError} from '../../errors.js'
import {checkNesting} from '../../limits.js'
import {keysFor} from '../../manifests/load.js'
import type {TrustPolicy} from '../../manifests/models.js'
import type {AllowedTool, ApprovalCheck} from './tools.js'

export const APPROVAL_PAYLOAD_TYPE = 'application/vnd.airlock.tool-approval.v1+json'
const APPROVAL_TYPE = 'https://airlock.dev/tool-approval/v1'
/** The longest an approval may live: it approves one call, not a standing permission. */
export const MAX_APPROVAL_TTL_MS = 24 * 60 * 60 * 1000
/** Clock difference tolerated between the approver and the checker. */
const SKEW_MS = 60 * 1000
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
}

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
  }
  const envelope = signEnvelope(APPROVAL_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), [opts.signer])
  return {token: Buffer.from(JSON.stringify(envelope)).toString('base64url'), statement}
}

function decode(token: string): {envelope: Envelope; statement: ApprovalStatement} | string {
  if (token.length > MAX_TOKEN_BYTES) return `the token is longer than ${MAX_TOKEN_BYTES} characters`
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(token)) return 'the token is not base64url'
  const text = Buffer.from(token, 'base64url').toString('utf8')
  let envelope: Envelope
  try {
    checkNesting(text, 'the approval token', 'json')
    envelope = JSON.parse(text) as Envelope
  } catch (error) {
    return error instanceof AirlockError ? error.message : 'the token is not a DSSE envelope (JSON)'
  }
  if (!envelope || typeof envelope !== 'object' || typeof envelope.payload !== 'string' || !Array.isArray(envelope.signatures)) return 'the token is not a DSSE envelope'
  if (envelope.payloadType !== APPROVAL_PAYLOAD_TYPE) return `payloadType is ${JSON.stringify(envelope.payloadType)}, not ${APPROVAL_PAYLOAD_TYPE}`
  if (!envelope.signatures.every((s) => s && typeof s.keyid === 'string' && typeof s.sig === 'string')) return 'a signature is not {keyid, sig}'
  let statement: ApprovalStatement
  try {
    statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as ApprovalStatement
  } catch {
    return 'the payload is not JSON'
  }
  const fields = ['tool', 'schemaHash', 'paramsDigest', 'approvedBy', 'reason', 'issuedAt', 'expiresAt'] as const
  if (!statement || statement._type !== APPROVAL_TYPE || !fields.every((f) => typeof statement[f] === 'string')) return `the payload is not a ${APPROVAL_TYPE} statement`
  return {envelope, statement}
}

/**
 * The check `checkTool` runs on a token: signed by enough distinct approval keys valid now (the
 * trust policy's `thresholds.approval`), not expired, issued at most 24 h before it expires, and
 * naming this tool, its current schema hash and these parameters.
 */
export function approvalCheck(token: string, trust: TrustPolicy, now: Date): ApprovalCheck {
  return (tool, paramsDigest) => {
    const decoded = decode(token)
    if (typeof decoded === 'string') return {ok: false, problem: decoded}
    const {envelope, statement} = decoded
    const keys = new Map(keysFor(trust, 'approval', now).map((k) => [k.id, k.publicKey]))
    const valid = [...new Set(checkEnvelopeSignatures(envelope, (id) => keys.get(id)).filter((c) => c.valid).map((c) => c.keyid))]
    const needed = trust.thresholds.approval
    if (valid.length < needed) return {ok: false, problem: `signed by ${valid.length} trusted approval key(s) valid now, ${needed} needed (${trust.file} roles: approval)`}
    const issued = Date.parse(statement.issuedAt)
    const expires = Date.parse(statement.expiresAt)
    if (Number.isNaN(issued) || Number.isNaN(expires)) return {ok: false, problem: 'issuedAt or expiresAt is not a time'}
    if (expires - issued > MAX_APPROVAL_TTL_MS) return {ok: false, problem: 'the approval lives longer than 24 h'}
    if (issued > now.getTime() + SKEW_MS) return {ok: false, problem: `issued in the future (${statement.issuedAt})`}
    if (now.getTime() >= expires) return {ok: false, problem: `expired at ${statement.expiresAt}`}
    if (statement.tool !== tool.name) return {ok: false, problem: `it approves ${JSON.stringify(statement.tool)}, not ${tool.name}`}
    if (statement.schemaHash !== tool.schemaHash) return {ok: false, problem: `it approves ${tool.name} with schema ${statement.schemaHash}; the schema is now ${tool.schemaHash}`}
    if (statement.paramsDigest !== paramsDigest) return {ok: false, problem: `it approves parameters ${statement.paramsDigest}, these are ${paramsDigest}`}
    return {ok: true, keyids: valid, expiresAt: statement.expiresAt, approvedBy: statement.approvedBy}
  }
}
