import {canonicalJson, sha256Hex} from '../crypto/digest.js'
import {signEnvelope, type Envelope} from '../crypto/dsse.js'
import type {Signer} from '../crypto/keys.js'
import {EVIDENCE_DIR} from '../manifests/models.js'
import type {Plan, Requester, Subject, UnsignedPlan} from '../plan/plan.js'
import type {ReceiptKind} from './predicates.js'
import {evidenceOf, verificationSummary, type VerificationSummaryStatement} from './decision.js'

export const RECEIPT_PAYLOAD_TYPE = 'application/vnd.in-toto+json'
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
export const RECEIPT_PREDICATE_TYPE = 'https://airlock.dev/attestations/change/v1'

export interface ReceiptPredicate {
  operation: Plan['operation']
  summary: string
  reason: string
  requestedBy: Requester
  planDigest: string
  plannedAt: string
  appliedAt: string
  branch: string
  baseCommit: string | null
  details: Record<string, unknown>
  changes: Array<{path: string; action: string; before: string | null; after: string | null}>
  tool: {name: 'airlock'; version: string}
  result: 'applied'
  /** The policy decision on who asked, when the change was authorized (promote, rollback). */
  authorization?: Plan['authorization']
  /** The verified signature of the digest the change pins (promote, rollback). */
  signature?: Plan['signature']
  /**
   * Evidence-gated pins (details.evidence): the decision as SLSA Verification Summary
   * Attestation v1 statements, one per pin, signed with the receipt (so other tools read it).
   */
  verificationSummaries?: VerificationSummaryStatement[]
}

export interface ReceiptStatement {
  _type: typeof STATEMENT_TYPE
  subject: Subject[]
  predicateType: typeof RECEIPT_PREDICATE_TYPE
  predicate: ReceiptPredicate
}

/** Where a plan's receipt will be written: time, operation, subject, and a short content hash. */
export function receiptPathFor(plan: Omit<UnsignedPlan, 'receiptPath'>, slug: string): string {
  const stamp = plan.createdAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  const safe = slug.replace(/[^a-z0-9-]+/g, '-').slice(0, 80)
  return `${EVIDENCE_DIR}/${stamp}-${plan.operation}-${safe}-${sha256Hex(canonicalJson(plan)).slice(0, 8)}.json`
}

const blobDigest = (text: string | null) => (text === null ? null : `sha256:${sha256Hex(text)}`)

/** The in-toto statement for an applied plan: subjects are the image digests and the base commit. */
export function receiptStatement(plan: Plan, appliedAt: Date, toolVersion: string): ReceiptStatement {
  const evidence = evidenceOf(plan)
  const manifest = (image: string) => plan.inputs.find((i) => i.path === `manifests/images/${image}.yaml` || i.path === `manifests/images/${image}.yml`) ?? {path: `manifests/images/${image}.yaml`, oid: null}
  const summaries = evidence?.checks.map((check) =>
    verificationSummary(check, {decision: evidence.decision, manifest: manifest(check.image), baseCommit: plan.baseCommit, branch: plan.branch, timeVerified: appliedAt, toolVersion}),
  )
  const subject: Subject[] = [...plan.subjects]
  if (plan.baseCommit) subject.push({name: `git:${plan.branch}`, digest: {gitCommit: plan.baseCommit}})
  return {
    _type: STATEMENT_TYPE,
    subject,
    predicateType: RECEIPT_PREDICATE_TYPE,
    predicate: {
      operation: plan.operation,
      summary: plan.summary,
      reason: plan.reason,
      requestedBy: plan.requestedBy,
      planDigest: plan.digest,
      plannedAt: plan.createdAt,
      appliedAt: appliedAt.toISOString(),
      branch: plan.branch,
      baseCommit: plan.baseCommit,
      details: plan.details,
      changes: plan.changes.map((c) => ({path: c.path, action: c.action, before: blobDigest(c.before), after: blobDigest(c.after)})),
      tool: {name: 'airlock', version: toolVersion},
      result: 'applied',
      ...(plan.authorization ? {authorization: plan.authorization} : {}),
      ...(plan.signature ? {signature: plan.signature} : {}),
      ...(summaries ? {verificationSummaries: summaries} : {}),
    },
  }
}

export function signReceipt(statement: ReceiptStatement | import('./predicates.js').RegisteredStatement, signers: Signer[]): Envelope {
  return signEnvelope(RECEIPT_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), signers)
}

export function receiptText(envelope: Envelope): string {
  return `${JSON.stringify(envelope, null, 2)}\n`
}

/**
 * The change receipt as a registered kind (predicates.ts): its time is `appliedAt`, its base the
 * commit the change was applied on.
 */
export const CHANGE_RECEIPT: ReceiptKind<ReceiptStatement> = {
  predicateType: RECEIPT_PREDICATE_TYPE,
  shapeProblem(p) {
    for (const field of ['operation', 'summary', 'appliedAt'] as const) if (typeof p[field] !== 'string') return `predicate.${field} must be a string`
    if (p.baseCommit !== null && (typeof p.baseCommit !== 'string' || !/^[0-9a-f]{40}$/.test(p.baseCommit))) return 'predicate.baseCommit must be a commit id or null'
    if (!Array.isArray(p.changes)) return 'predicate.changes must be a list'
    return null
  },
  timeField: 'predicate.appliedAt',
  time: (s) => s.predicate.appliedAt,
  baseCommit: (s) => s.predicate.baseCommit,
  label: (s) => s.predicate.operation,
}
