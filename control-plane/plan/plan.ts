import {AirlockError} from '../errors.js'
import {digestOfJson} from '../crypto/digest.js'
import type {EvidenceProblem} from '../evidence/history.js'
import {checkNesting, type Limits} from '../limits.js'
import type {Role, TrustKey} from '../manifests/models.js'
import {repoPath} from '../repo/paths.js'
import type {TestResultStatement} from '../gates/types.js'

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

/**
 * What was asked, in the terms of the command: the input the pipeline computes a plan from. A
 * saved plan is applied by running the pipeline again on its request, never by trusting the
 * rest of the file.
 */
export type ChangeRequest =
  | {kind: 'promote'; image: string; to: string; digest?: string; from?: string; override?: boolean}
  | {kind: 'rollback'; image: string; channel: string; to: string}
  | {kind: 'store-signature'; operation: 'image-sign' | 'image-fetch-signature'; image: string; digest: string; bundle: string; payload?: string; details: Record<string, unknown>; newManifest?: {path: string; text: string}}
  | {kind: 'add-key'; name: string; role: Role; algorithm: TrustKey['algorithm']; publicKey: string; validFrom: string; validUntil?: string}
  | {kind: 'policy-bundle'; scope: string; bundle: string}
  | {kind: 'init'; files: Array<{path: string; content: string}>; keyid: string; imageKeyid: string}
  | {kind: 'change'; files: Array<{path: string; content: string | null}>}
  /** A gate suite run's test-result statement (JSON text), committed as its receipt. */
  | {kind: 'gate-receipt'; statement: string}
  /**
   * Publishing an audit log's checkpoint (a C2SP signed note, byte for byte) with the RFC 6962
   * consistency proof (base64 hashes) from the last checkpoint published for its origin.
   */
  | {kind: 'audit-publish'; checkpoint: string; proof: string[]}

export const REQUEST_KINDS = ['promote', 'rollback', 'store-signature', 'add-key', 'policy-bundle', 'init', 'change', 'gate-receipt', 'audit-publish'] as const

/** The base a plan was computed on and whether its history verifies back to the trust anchor. */
export interface BaseRecord {
  verified: boolean
  anchor: {commit: string | null; pinned: boolean}
  problems: EvidenceProblem[]
}

export interface Plan {
  apiVersion: 'airlock/v1'
  kind: 'Plan'
  operation: 'promote' | 'rollback' | 'trust-add-key' | 'init' | 'policy-bundle' | 'image-sign' | 'image-fetch-signature' | 'change' | 'gate-receipt' | 'audit-publish'
  request: ChangeRequest
  summary: string
  reason: string
  requestedBy: Requester
  createdAt: string
  branch: string
  baseCommit: string | null
  /** The history check of the base (absent for init, which has none). */
  base?: BaseRecord
  /** Every file the plan was computed from, with its blob id at the base commit (null: absent). */
  inputs: Array<{path: string; oid: string | null}>
  /** What the operation does, in its own terms (image, channel, from, to, rollback target…). */
  details: Record<string, unknown>
  subjects: Subject[]
  changes: PlannedChange[]
  /** The policy decision on the acting principal, made before the plan. */
  authorization?: AuthorizationRecord
  /** The signature check of the digest a promote or rollback pins, made before the plan. */
  signature?: SignatureVerification
  /** A gate-receipt plan: the test-result statement written (signed) as its receipt instead of a change receipt. */
  statement?: TestResultStatement
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
  /** Distinct signers the digest needs (the image's threshold), and each one that verified. */
  threshold?: number
  signers?: Array<{signer: {keyid: string} | {subject: string; issuer: string}; bundle: {path: string; oid: string}}>
}

export type UnsignedPlan = Omit<Plan, 'digest'>

/** Seals a plan: the digest covers everything it was computed from and everything it would do. */
export function sealPlan(plan: UnsignedPlan): Plan {
  return {...plan, digest: digestOfJson(plan)}
}

export function isNoop(plan: Plan): boolean {
  return plan.changes.length === 0 && !plan.statement
}

export function serializePlan(plan: Plan): string {
  return `${JSON.stringify(plan, null, 2)}\n`
}

/** Reads a saved plan; an edited plan (digest mismatch) is refused before anything else. */
export function parsePlan(text: string, file: string, limits: Limits): Plan {
  if (Buffer.byteLength(text) > limits.maxFileBytes) throw new AirlockError('TOO_LARGE', `${file}: plan is larger than ${limits.maxFileBytes} bytes`, {file})
  checkNesting(text, file, 'json', limits.maxDepth)
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
  checkPlanShape(plan as Plan, file)
  const actual = digestOfJson(rest)
  if (actual !== digest) {
    throw new AirlockError('PLAN_TAMPERED', `${file}: the plan was edited after it was made (digest ${actual} ≠ recorded ${digest}); make a new plan`, {file, expected: digest, actual})
  }
  return plan as Plan
}

/**
 * What `apply` and `plan show` require of a plan before anything else: a known request, a
 * well-formed base commit and branch, and every path inside the repository and outside .git/.
 * (A plan is a proposal: passing this proves nothing about what it proposes.)
 */
function checkPlanShape(plan: Plan, file: string): void {
  const bad = (field: string, why: string) => new AirlockError('PLAN_INVALID', `${file}: ${field}: ${why}`, {file, field})
  const req = plan.request as {kind?: unknown} | undefined
  if (!req || typeof req !== 'object' || !REQUEST_KINDS.includes(req.kind as (typeof REQUEST_KINDS)[number])) throw bad('request', 'missing or of an unknown kind (a plan made by an older airlock? make a new plan)')
  // A suite's results are recorded only by the run that produced them (`airlock gate run SUITE
  // --apply`): a statement in a file is anyone's claim, and applying it would sign it.
  if (req.kind === 'gate-receipt') throw bad('request.kind', 'a gate suite\'s receipt is recorded only by the run that made it (airlock gate run SUITE --apply), never from a saved plan')
  for (const [k, v] of Object.entries(req)) {
    // Request fields are strings, numbers, booleans, flat records (details, a file) or lists of
    // files; no key may reach a prototype.
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') throw bad(`request.${k}`, 'is not a request field')
    const scalar = (x: unknown) => x === null || typeof x === 'string' || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x))
    const file = (x: unknown) => !!x && typeof x === 'object' && Object.values(x).every(scalar)
    const flat = (x: unknown) => file(x) && !Array.isArray(x) && Object.keys(x as object).every((key) => key !== '__proto__' && key !== 'constructor' && key !== 'prototype')
    if (!scalar(v) && !flat(v) && !(Array.isArray(v) && v.every((x) => scalar(x) || flat(x)))) throw bad(`request.${k}`, 'is not a string, number, boolean, flat record or list')
  }
  for (const k of ['image', 'to', 'from', 'channel', 'digest'] as const) {
    const v = (req as Record<string, unknown>)[k]
    if (v !== undefined && typeof v !== 'string') throw bad(`request.${k}`, 'must be a string')
  }
  if (typeof plan.reason !== 'string') throw bad('reason', 'must be a string')
  if (!plan.requestedBy || typeof plan.requestedBy !== 'object' || typeof plan.requestedBy.actor !== 'string') throw bad('requestedBy.actor', 'must be a string')
  if (typeof plan.createdAt !== 'string' || Number.isNaN(Date.parse(plan.createdAt))) throw bad('createdAt', 'must be a time (ISO 8601)')
  if (plan.baseCommit !== null && (typeof plan.baseCommit !== 'string' || !/^[0-9a-f]{40}$/.test(plan.baseCommit))) throw bad('baseCommit', 'not a full commit id')
  if (typeof plan.branch !== 'string' || !/^refs\/heads\/[A-Za-z0-9._/-]+$/.test(plan.branch) || plan.branch.split('/').some((p) => p === '' || p === '.' || p === '..' || p.endsWith('.lock'))) throw bad('branch', 'not a branch name (refs/heads/…)')
  const paths: Array<[string, unknown]> = [
    ...plan.changes.map((c, i): [string, unknown] => [`changes[${i}].path`, (c as {path?: unknown})?.path]),
    ...plan.inputs.map((c, i): [string, unknown] => [`inputs[${i}].path`, (c as {path?: unknown})?.path]),
    ...(plan.receiptPath === null ? [] : [['receiptPath', plan.receiptPath] as [string, unknown]]),
  ]
  for (const [field, path] of paths) {
    if (typeof path !== 'string') throw bad(field, 'not a path')
    try {
      repoPath(path, field)
    } catch {
      throw bad(field, `"${path}" is not a path inside the repository (outside it, or in .git/)`)
    }
  }
}
