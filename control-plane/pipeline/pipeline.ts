/**
 * The one change pipeline (DESIGN.md). Every change — promote, rollback, image signatures, keys,
 * policy bundles, init, hand edits — takes the same ordered path:
 *
 *   resolve + verify base → build changes → authorize → verify signatures → evidence
 *   requirements → seal → apply (CAS commit + receipt) → record
 *
 * Each step is a function of typed input and output that refuses with a typed AirlockError. A
 * saved plan is a proposal: applying it runs the pipeline again on its request and applies only
 * what that run computes, and only if it equals the saved plan.
 */
import {freeText, identityText} from '../identity/text.js'
import {AirlockError} from '../errors.js'
import {canonicalJson} from '../crypto/digest.js'
import {receiptPathFor} from '../evidence/receipt.js'
import {keysFor, loadTrust, parseTrust} from '../manifests/load.js'
import {ROLES, TRUST_FILE, type TrustPolicy} from '../manifests/models.js'
import {applyPlan, type ApplyContext, type ApplyResult} from '../plan/apply.js'
import {sealPlan, type AuthorizationRecord, type BaseRecord, type ChangeRequest, type Plan, type SignatureVerification} from '../plan/plan.js'
import type {Repository} from '../repo/repository.js'
import {authorizeDraft} from './authorize.js'
import {resolveAnchor, unverifiedBase, verifyBase} from './base.js'
import type {Base, Draft, PipelineContext, PlanInput} from './draft.js'
import {buildChange} from '../changes/index.js'

/** Step 1 — the base: the branch HEAD names, its commit, and whether its history verifies. */
export async function resolveBase(repo: Repository | null, request: ChangeRequest, ctx: PipelineContext): Promise<{base: Base; record?: BaseRecord}> {
  if (request.kind === 'init') return {base: {branch: 'refs/heads/main', commit: null}}
  if (!repo) throw new AirlockError('NOT_A_REPOSITORY', 'this change needs a repository')
  const head = await repo.head()
  if (!head.oid) throw new AirlockError('INVALID_INPUT', `${head.ref} has no commit yet; nothing to plan against`, {branch: head.ref})
  const anchor = await resolveAnchor(repo, ctx.anchor)
  const v = await verifyBase(repo, head.oid, {anchor, limits: ctx.limits, now: ctx.now})
  return {base: {branch: head.ref, commit: head.oid}, record: {verified: v.verified, anchor: v.anchor, problems: v.problems}}
}

/** Step 3 — authorize whoever acts now, with the base's own policies. */
async function authorize(repo: Repository | null, base: Base, draft: Draft, ctx: PipelineContext): Promise<AuthorizationRecord | undefined> {
  // init makes the repository and its first policies: there is nothing to ask yet.
  if (!repo || base.commit === null || draft.changes.length === 0) return undefined
  // Fail closed: a change with no one to authorize is never planned as if it were allowed.
  if (!ctx.identity) throw new AirlockError('INTERNAL', 'a change was planned without an acting identity')
  return authorizeDraft(repo, base.commit, draft, {identity: ctx.identity, reason: ctx.reason, limits: ctx.limits})
}

/**
 * A trust policy every later change can still be checked against: parsable, and for each role
 * in use a threshold that the keys valid now can meet (evidence always: without it nothing can
 * be signed again).
 */
export function checkTrustSatisfiable(trust: TrustPolicy, now: Date): void {
  for (const role of ROLES) {
    const valid = keysFor(trust, role, now).length
    const listed = trust.keys.some((k) => k.roles.includes(role))
    if ((role === 'evidence' || listed) && trust.thresholds[role] > valid) {
      throw new AirlockError('INVALID_INPUT', `${TRUST_FILE}: spec.thresholds.${role}: ${trust.thresholds[role]} signatures needed but only ${valid} ${role} key(s) are valid now; no set of keys could meet it`, {
        file: TRUST_FILE,
        field: `spec.thresholds.${role}`,
      })
    }
  }
}

/**
 * Step 4 — verify: every digest the change would newly pin has a signature that verifies under
 * the image's policy and the *base's* trust (a key the change itself adds vouches for nothing),
 * and a changed trust.yaml parses and can be satisfied.
 */
async function verify(repo: Repository | null, base: Base, draft: Draft, ctx: PipelineContext): Promise<{signature?: SignatureVerification; inputs: PlanInput[]}> {
  const trustChange = draft.changes.find((c) => c.path === TRUST_FILE)
  if (trustChange) {
    if (trustChange.after === null) throw new AirlockError('INVALID_INPUT', `${TRUST_FILE}: a change may not delete the trust policy`, {file: TRUST_FILE})
    checkTrustSatisfiable(parseTrust(trustChange.after, TRUST_FILE, null, ctx.limits), ctx.now)
  }
  if (!repo || base.commit === null || draft.pins.length === 0) return {inputs: []}
  const trust = await loadTrust(repo, base.commit, ctx.limits)
  const inputs: PlanInput[] = [{path: TRUST_FILE, oid: trust.oid}]
  let signature: SignatureVerification | undefined
  for (const pin of draft.pins) {
    // A signature being stored must verify itself; a digest being pinned needs its threshold.
    const r = pin.bundle ? await ctx.verifier.bundle(repo, base.commit, pin.image, pin.digest, pin.bundle, trust) : await ctx.verifier.pinned(repo, base.commit, pin.image, pin.digest, trust, pin.bundles)
    signature ??= r.record
    inputs.push(...r.inputs)
  }
  return {signature, inputs}
}

/** Step 5 — evidence requirements (gates, soak). None are defined yet: the gates issue fills this. */
async function evidenceRequirements(_draft: Draft): Promise<void> {}

/** Step 6 — seal: the one place a plan's header is written. */
function seal(base: Base, request: ChangeRequest, draft: Draft, ctx: PipelineContext, extra: {record?: BaseRecord; authorization?: AuthorizationRecord; signature?: SignatureVerification; inputs: PlanInput[]}): Plan {
  // Each file once: the builder's reading of it, else the verifier's (both at the base commit).
  const inputs = [...new Map([...extra.inputs, ...draft.inputs].map((i) => [i.path, i])).values()]
  const unsigned = {
    apiVersion: 'airlock/v1' as const,
    kind: 'Plan' as const,
    operation: draft.operation,
    request,
    summary: draft.summary,
    reason: ctx.reason,
    requestedBy: ctx.requestedBy,
    createdAt: ctx.createdAt ?? ctx.now.toISOString(),
    branch: base.branch,
    baseCommit: base.commit,
    ...(extra.record ? {base: extra.record} : {}),
    inputs,
    details: draft.details,
    subjects: draft.subjects,
    changes: draft.changes,
    ...(extra.authorization ? {authorization: extra.authorization} : {}),
    ...(extra.signature ? {signature: extra.signature} : {}),
  }
  return sealPlan({...unsigned, receiptPath: draft.changes.length ? receiptPathFor(unsigned, draft.slug) : null})
}

/** Steps 1–6: computes the plan for a request. Changes nothing. */
export async function planChange(repo: Repository | null, request: ChangeRequest, given: PipelineContext): Promise<Plan> {
  // Who asks and why are data: the one normalizer, for fresh requests and saved plans alike.
  const ctx = {...given, reason: freeText(given.reason, '--reason'), requestedBy: {...given.requestedBy, actor: identityText(given.requestedBy.actor, '--actor')}}
  const {base, record} = await resolveBase(repo, request, ctx)
  const draft = await buildChange(repo, base, request, ctx)
  const authorization = await authorize(repo, base, draft, ctx)
  const verified = draft.changes.length ? await verify(repo, base, draft, ctx) : {inputs: []}
  await evidenceRequirements(draft)
  return seal(base, request, draft, ctx, {record, authorization, ...verified})
}

/** Why a plan may not be applied or saved: an unverified base, or a denial. */
export function refusal(plan: Plan): AirlockError | null {
  if (plan.base && !plan.base.verified && plan.baseCommit) return unverifiedBase(plan.baseCommit, {...plan.base, walked: 0, unverified: new Set()})
  const a = plan.authorization
  if (a && a.decision === 'deny') {
    const why = a.reasons.length ? ` (${a.reasons.join(', ')})` : a.note ? ` (${a.note})` : ' (no policy permits it)'
    return new AirlockError('DENIED', `policy denies ${a.action} of ${a.resource} to ${a.principal}${a.authenticated ? '' : ', an unauthenticated local operator'}${why}`, {authorization: a})
  }
  return null
}

/** Steps 7–8: apply (one CAS commit with its receipt, checked by our own verifier first), then record. */
export async function applyChange(repo: Repository, plan: Plan, ctx: ApplyContext): Promise<ApplyResult> {
  const refused = refusal(plan)
  if (refused) throw refused
  const result = await applyPlan(repo, plan, ctx)
  await record(plan, result)
  return result
}

/** Step 8 — record. Nothing yet: the audit issue writes the event here. */
async function record(_plan: Plan, _result: ApplyResult): Promise<void> {}

/**
 * The fields of a plan the pipeline computes, which must come out the same when it runs again
 * (reason, requester and plan time are the request's own, handed back in as they were).
 */
const COMPARED = ['operation', 'summary', 'branch', 'baseCommit', 'inputs', 'details', 'subjects', 'changes', 'signature', 'receiptPath'] as const

/**
 * A saved plan is a proposal, never a credential: the pipeline runs again from the plan's
 * request on the current HEAD — verifying the base, authorizing whoever applies now, verifying
 * the pinned signatures now — and the result must equal the saved plan field by field.
 */
export async function replan(repo: Repository, saved: Plan, ctx: PipelineContext): Promise<Plan> {
  const head = await repo.head()
  if (head.ref !== saved.branch || head.oid !== saved.baseCommit) {
    throw new AirlockError('STALE_PLAN', `the plan was made on ${saved.branch} @ ${saved.baseCommit?.slice(0, 12) ?? '(none)'}, but HEAD is ${head.ref} @ ${head.oid?.slice(0, 12) ?? '(none)'}; make a new plan`, {
      planned: {branch: saved.branch, commit: saved.baseCommit},
      actual: {branch: head.ref, commit: head.oid},
    })
  }
  const again = await planChange(repo, saved.request, {...ctx, createdAt: saved.createdAt, reason: saved.reason, requestedBy: saved.requestedBy})
  // Whoever applies now must be allowed now, on a base that verifies now, whatever the file says.
  const refused = refusal(again)
  if (refused) throw refused
  const differs = COMPARED.filter((f) => canonicalJson(saved[f] ?? null) !== canonicalJson(again[f] ?? null))
  if (differs.length > 0) {
    throw new AirlockError('PLAN_MISMATCH', `the saved plan is not what its request computes now (${differs.join(', ')} differ); it was edited or made by another version; make a new plan`, {fields: differs})
  }
  return again
}
