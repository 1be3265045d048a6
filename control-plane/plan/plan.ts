import {AirlockError} from '../errors.js'
import {digestOfJson} from '../crypto/digest.js'
import type {Limits} from '../limits.js'

export interface PlannedChange {
  path: string
  action: 'create' | 'modify' | 'delete'
  before: string | null
  after: string | null
}

/** Who or what asked for a change: from flags and the CI environment. */
export interface Requester {
  actor: string
  via: 'cli' | 'ci'
  ci?: {system: string; run?: string; ref?: string}
}

/** A subject of the receipt: an image digest (the base commit is added by the receipt itself). */
export interface Subject {
  name: string
  digest: Record<string, string>
}

export interface Plan {
  apiVersion: 'airlock/v1'
  kind: 'Plan'
  operation: 'promote' | 'rollback' | 'trust-add-key' | 'init' | 'policy-bundle' | 'image-sign' | 'image-fetch-signature'
  summary: string
  reason: string
  requestedBy: Requester
  createdAt: string
  branch: string
  baseCommit: string | null
  /** Every file the plan was computed from, with its blob id at the base commit (null: absent). */
  inputs: Array<{path: string; oid: string | null}>
  /** What the operation does, in its own terms (image, channel, from, to, rollback target…). */
  details: Record<string, unknown>
  subjects: Subject[]
  changes: PlannedChange[]
  /** The policy decision on the acting principal, made before the plan (promote, rollback). */
  authorization?: AuthorizationRecord
  /** The signature check of the digest a promote or rollback pins, made before the plan. */
  signature?: SignatureVerification
  /** Where the signed receipt goes on apply; absent for a no-op plan. */
  receiptPath: string | null
  digest: string
}

export interface AuthorizationRecord {
  decision: 'allow' | 'deny'
  action: string
  principal: string
  /** False for an operator known only by the local git identity. */
  authenticated: boolean
  identity: string
  resource: string
  /** Determining policies as `id (file:line)`; when it failed closed, the ones that errored. */
  reasons: string[]
  errors: string[]
  failedClosed: boolean
  policySetDigest: string | null
  note: string | null
}

/** A verified image signature: the bundle in the repository, who signed, what the logs say. */
export interface SignatureVerification {
  digest: string
  verified: true
  bundleType: 'dsse' | 'message_signature'
  signer: {keyid: string} | {subject: string; issuer: string}
  bundle: {path: string; oid: string}
  tlogEntries: Array<{logIndex: string; integratedTime: string | null}>
  timestamps: number
  thresholds: {tlog: number; timestamp: number}
  policy: {keys: string[]; identities: Array<{issuer: string; subject?: string; subjectRegExp?: string}>; trustedRoot: string | null}
}

export type UnsignedPlan = Omit<Plan, 'digest'>

/** Seals a plan: the digest covers everything it was computed from and everything it would do. */
export function sealPlan(plan: UnsignedPlan): Plan {
  return {...plan, digest: digestOfJson(plan)}
}

export function isNoop(plan: Plan): boolean {
  return plan.changes.length === 0
}

export function serializePlan(plan: Plan): string {
  return `${JSON.stringify(plan, null, 2)}\n`
}

/** Reads a saved plan; an edited plan (digest mismatch) is refused before anything else. */
export function parsePlan(text: string, file: string, limits: Limits): Plan {
  if (Buffer.byteLength(text) > limits.maxFileBytes) throw new AirlockError('TOO_LARGE', `${file}: plan is larger than ${limits.maxFileBytes} bytes`, {file})
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new AirlockError('PLAN_INVALID', `${file}: not a JSON plan (${(error as Error).message})`, {file})
  }
  const plan = value as Partial<Plan>
  if (!plan || typeof plan !== 'object' || plan.apiVersion !== 'airlock/v1' || plan.kind !== 'Plan' || typeof plan.digest !== 'string' || !Array.isArray(plan.changes) || !Array.isArray(plan.inputs)) {
    throw new AirlockError('PLAN_INVALID', `${file}: not an airlock plan (apiVersion airlock/v1, kind Plan)`, {file})
  }
  const {digest, ...rest} = plan as Plan
  const actual = digestOfJson(rest)
  if (actual !== digest) {
    throw new AirlockError('PLAN_TAMPERED', `${file}: the plan was edited after it was made (digest ${actual} ≠ recorded ${digest}); make a new plan`, {file, expected: digest, actual})
  }
  return plan as Plan
}
