/**
 * The one change pipeline (DESIGN.md). Every change — promote, rollback, image signatures, keys,
 * policy bundles, init, hand edits — takes the same ordered path:
 *
 *   resolve + verify base → build changes → validate (kinds) → authorize → verify signatures
 *     → evidence requirements → seal → apply (CAS commit + receipt) → record
 *
 * `execute(input, mode)` owns the whole run and returns a typed outcome — planned, saved,
 * applied, refused (with the reason), noop — and `record` sees every outcome, refusals included.
 * Commands map flags to a mode and render the outcome. A saved plan is a proposal: applying it
 * runs the pipeline again on its request and applies only what that run computes, and only if
 * it equals the saved plan.
 */
import {unlink} from 'node:fs/promises'
import {join, resolve} from 'node:path'
import {freeText, identityText} from '../identity/text.js'
import {AirlockError, asAirlockError} from '../errors.js'
import {canonicalJson} from '../crypto/digest.js'
import {stagePrivateFile} from '../crypto/keyfile.js'
import type {Signer} from '../crypto/keys.js'
import {receiptPathFor} from '../evidence/receipt.js'
import {inSignedFolder, requireKind, type KindContext} from '../manifests/kinds.js'
import {TRUST_FILE} from '../manifests/models.js'
import {applyPlan, staleness, type ApplyResult} from '../plan/apply.js'
import {isNoop, sealPlan, serializePlan, type AuthorizationRecord, type BaseRecord, type ChangeRequest, type Plan, type SignatureVerification} from '../plan/plan.js'
import {unfinishedCheckout} from '../plan/repair.js'
import {checkInside, writeFileAtomic} from '../repo/files.js'
import type {Repository} from '../repo/repository.js'
import {buildChange} from '../changes/index.js'
import {describeMissing, evidenceOf, type EvidenceRecord} from '../evidence/decision.js'
import {findEvidence, type GatedPin} from '../evidence/promotion.js'
import {loadImage, loadTrust} from '../manifests/load.js'
import {authorizeAsks, authorizeDraft, channelAsk, mergeAuthorizations} from './authorize.js'
import {baseRefusal, resolveAnchor, verifyBase} from './base.js'
import type {Base, Draft, PipelineContext, PlanInput} from './draft.js'

/** Step 1 — the base: the branch HEAD names, its commit, and whether its history verifies from the pinned anchor. */
export async function resolveBase(repo: Repository | null, request: ChangeRequest, ctx: PipelineContext): Promise<{base: Base; record?: BaseRecord}> {
  if (request.kind === 'init') return {base: {branch: 'refs/heads/main', commit: null}}
  if (!repo) throw new AirlockError('NOT_A_REPOSITORY', 'this change needs a repository')
  const head = await repo.head()
  if (!head.oid) throw new AirlockError('INVALID_INPUT', `${head.ref} has no commit yet; nothing to plan against`, {branch: head.ref})
  const anchor = await resolveAnchor(repo, ctx.anchor)
  const v = await verifyBase(repo, head.oid, {anchor: anchor.commit, limits: ctx.limits, now: ctx.now, branch: head.ref, ...(ctx.drill ? {drill: ctx.drill} : {})})
  return {base: {branch: head.ref, commit: head.oid}, record: {verified: v.verified, anchor: v.anchor, problems: v.problems}}
}

/**
 * Step 2b — validate: every file the change writes is a known kind of desired state, checked as
 * its loader checks it (whatever kind of change wrote it), and none the kind forbids is deleted.
 */
async function validate(repo: Repository | null, base: Base, draft: Draft, ctx: PipelineContext): Promise<void> {
  if (!repo || base.commit === null || draft.changes.length === 0) return
  const files = new Map(draft.changes.map((c) => [c.path, c.after]))
  const kctx: KindContext = {limits: ctx.limits, now: ctx.now, files, base: {repo, commit: base.commit, trust: await loadTrust(repo, base.commit, ctx.limits)}}
  const together = new Map<NonNullable<ReturnType<typeof requireKind>['checkTogether']>, string[]>()
  for (const change of draft.changes) {
    if (!inSignedFolder(change.path)) throw new AirlockError('USAGE', `${change.path}: a change writes desired state only (manifests/, policies/, bundles/, .airlock-secrets-baseline)`, {file: change.path})
    const kind = requireKind(change.path, change.after ?? change.before)
    if (!kind.editable && kind.writtenBy !== draft.operation) throw new AirlockError('INVALID_INPUT', `${change.path}: a ${kind.kind} is written only by airlock's apply, never by a change`, {file: change.path})
    if (change.after === null) {
      if (!kind.deletable) throw new AirlockError('INVALID_INPUT', `${change.path}: a change may not delete the ${kind.kind}`, {file: change.path})
      continue
    }
    await kind.check?.(change.after, change.path, kctx)
    if (kind.checkTogether) together.set(kind.checkTogether, [...(together.get(kind.checkTogether) ?? []), change.path])
  }
  for (const [check, paths] of together) await check(paths, kctx)
}

/** Step 3 — authorize whoever acts now, with the base's own policies. */
async function authorize(repo: Repository | null, base: Base, draft: Draft, ctx: PipelineContext): Promise<AuthorizationRecord | undefined> {
  // init makes the repository and its first policies: there is nothing to ask yet.
  if (!repo || base.commit === null || (draft.changes.length === 0 && !draft.statement)) return undefined
  // Fail closed: a change with no one to authorize is never planned as if it were allowed.
  if (!ctx.identity) throw new AirlockError('INTERNAL', 'a change was planned without an acting identity')
  return authorizeDraft(repo, base.commit, draft, {identity: ctx.identity, reason: ctx.reason, limits: ctx.limits})
}

/**
 * Step 4 — verify: every digest the change would newly pin has a signature that verifies under
 * the image's policy and the *base's* trust (a key the change itself adds vouches for nothing).
 */
async function verify(repo: Repository | null, base: Base, draft: Draft, ctx: PipelineContext): Promise<{signature?: SignatureVerification; inputs: PlanInput[]}> {
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

/**
 * Step 5 — evidence requirements (gates, soak). A digest about to be pinned on a channel whose
 * `requires` (read at the base: signed desired state, never what the change itself writes) asks
 * for suite receipts is judged against the receipts of the base (evidence/promotion.ts). Not a
 * rollback to the channel's recorded previous digest: that digest was live there before, and a
 * rollback is how an incident is stopped — a soak clock must never keep a bad digest running (a
 * rollback to any other digest is judged like a promotion). What is missing refuses the plan
 * (`refusal`: EVIDENCE_MISSING), unless the request asks to override and Cedar permits Override
 * on the channel; the decision goes into the plan's details, so the receipt carries it.
 */
async function evidenceRequirements(
  repo: Repository | null,
  base: Base,
  request: ChangeRequest,
  draft: Draft,
  ctx: PipelineContext,
  extra: {record?: BaseRecord; authorization?: AuthorizationRecord},
): Promise<{details: Record<string, unknown>; authorization?: AuthorizationRecord}> {
  const unchanged = {details: draft.details, authorization: extra.authorization}
  if (!repo || base.commit === null || draft.changes.length === 0) return unchanged
  const gated: GatedPin[] = []
  for (const pin of draft.pins) {
    if (!pin.channel) continue
    // The requirement as signed at the base (a new image or channel has none yet).
    const atBase = await loadImage(repo, base.commit, pin.image.name, ctx.limits).catch((error: unknown) => {
      if (error instanceof AirlockError && error.code === 'UNKNOWN_IMAGE') return null
      throw error
    })
    const channel = atBase?.channels[pin.channel]
    if (!atBase || !channel?.requires) continue
    if (draft.operation === 'rollback' && channel.previous === pin.digest) continue
    gated.push({image: atBase.name, repository: atBase.repository, channel: pin.channel, digest: pin.digest, requires: channel.requires})
  }
  if (gated.length === 0) return unchanged
  const checks = await findEvidence(repo, base.commit, gated, {anchor: extra.record?.anchor.commit ?? null, limits: ctx.limits, now: ctx.now})
  const missing = checks.flatMap((c) => c.missing)
  const record: EvidenceRecord = {decision: missing.length ? 'missing' : 'satisfied', checks}
  let authorization = extra.authorization
  if (missing.length && request.kind === 'promote' && request.override) {
    if (!ctx.reason.trim()) throw new AirlockError('USAGE', '--override needs --reason: why the missing evidence is overridden goes into the commit and the receipt', {field: '--reason'})
    if (!ctx.identity) throw new AirlockError('INTERNAL', 'an override was planned without an acting identity')
    const channels = [...new Map(missing.map((m) => [`${m.image}/${m.channel}`, m])).values()]
    const override = await authorizeAsks(repo, base.commit, channels.map((m) => channelAsk('Override', m.image, m.channel)), {identity: ctx.identity, reason: ctx.reason, limits: ctx.limits})
    authorization = authorization ? mergeAuthorizations(authorization, override) : override
    record.override = {reason: ctx.reason, missing: missing.map(({suite, image, channel, digest, problem}) => ({suite, image, channel, digest, problem}))}
    if (override.decision === 'allow') record.decision = 'overridden'
  }
  return {details: {...draft.details, evidence: record}, authorization}
}

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
    ...(draft.statement ? {statement: draft.statement} : {}),
  }
  return sealPlan({...unsigned, receiptPath: draft.changes.length || draft.statement ? receiptPathFor(unsigned, draft.slug) : null})
}

/** Steps 1–6: computes the plan for a request. Changes nothing. */
export async function planChange(repo: Repository | null, request: ChangeRequest, given: PipelineContext): Promise<Plan> {
  // Who asks and why are data: the one normalizer, for fresh requests and saved plans alike.
  const ctx = {...given, reason: freeText(given.reason, '--reason'), requestedBy: {...given.requestedBy, actor: identityText(given.requestedBy.actor, '--actor')}}
  const {base, record} = await resolveBase(repo, request, ctx)
  const draft = await buildChange(repo, base, request, ctx)
  await validate(repo, base, draft, ctx)
  const authorization = await authorize(repo, base, draft, ctx)
  const verified = draft.changes.length ? await verify(repo, base, draft, ctx) : {inputs: []}
  const evidence = await evidenceRequirements(repo, base, request, draft, ctx, {record, authorization})
  return seal(base, request, {...draft, details: evidence.details}, ctx, {record, authorization: evidence.authorization, ...verified})
}

/** Why a plan may not be applied or saved: no pinned anchor, an unverified base, or a denial. */
export function refusal(plan: Plan): AirlockError | null {
  if (plan.base && plan.baseCommit) {
    const refused = baseRefusal(plan.baseCommit, plan.base)
    if (refused) return refused
  }
  const a = plan.authorization
  if (a && a.decision === 'deny') {
    const why = a.reasons.length ? ` (${a.reasons.join(', ')})` : a.note ? ` (${a.note})` : ' (no policy permits it)'
    return new AirlockError('DENIED', `policy denies ${a.action} of ${a.resource} to ${a.principal}${a.authenticated ? '' : ', an unauthenticated local operator'}${why}`, {authorization: a})
  }
  const e = evidenceOf(plan)
  if (e && e.decision === 'missing') {
    const missing = e.checks.flatMap((c) => c.missing)
    const how = plan.request.kind === 'promote' ? '; run the suites, wait out the soak, or --override --reason "…" where policy permits Override' : ''
    return new AirlockError('EVIDENCE_MISSING', `the evidence ${missing.length === 1 ? 'a channel requires' : 'the channels require'} of the digest is missing${how}:\n${describeMissing(missing, new Date(plan.createdAt))}`, {missing, checks: e.checks})
  }
  return null
}

/**
 * The fields of a plan the pipeline computes, which must come out the same when it runs again
 * (reason, requester and plan time are the request's own, handed back in as they were).
 */
const COMPARED = ['operation', 'summary', 'branch', 'baseCommit', 'inputs', 'details', 'subjects', 'changes', 'signature', 'statement', 'receiptPath'] as const

/**
 * A saved plan is a proposal, never a credential: the pipeline runs again from the plan's
 * request on the current HEAD — verifying the base, authorizing whoever applies now, verifying
 * the pinned signatures now — and the result must equal the saved plan field by field.
 */
async function replan(repo: Repository, saved: Plan, ctx: PipelineContext): Promise<Plan> {
  const review = await reviewSaved(repo, saved, ctx)
  if (review.refusal) throw review.refusal
  return review.recomputed!
}

/** What running a saved plan's request again came to: the plan it computes now, and why apply would refuse it. */
export interface SavedPlanReview {
  /** The plan its request computes now (null: stale, or the request does not compute). */
  recomputed: Plan | null
  /** The compared fields in which the saved plan is not what its request computes now. */
  differs: string[]
  /** Why `apply` would refuse the saved plan now (null: it would apply it, as the one who asked). */
  refusal: AirlockError | null
}

/**
 * The checks `apply` makes of a saved plan, without applying anything (`plan show` renders
 * them): not stale, its request computes now, whoever asks is allowed, on a base that verifies,
 * and the result equals the saved plan. Refusals are returned in the order `apply` meets them.
 */
export async function reviewSaved(repo: Repository, saved: Plan, ctx: PipelineContext): Promise<SavedPlanReview> {
  const stale = staleness(saved, await repo.head())
  if (stale) return {recomputed: null, differs: [], refusal: stale}
  let again: Plan
  try {
    again = await planChange(repo, saved.request, {...ctx, createdAt: saved.createdAt, reason: saved.reason, requestedBy: saved.requestedBy})
  } catch (error) {
    const e = asAirlockError(error)
    if (e.code === 'INTERNAL') throw error
    return {recomputed: null, differs: [], refusal: e}
  }
  const differs = COMPARED.filter((f) => canonicalJson(saved[f] ?? null) !== canonicalJson(again[f] ?? null))
  // Whoever applies must be allowed now, on a base that verifies now, whatever the file says.
  const refused =
    refusal(again) ??
    (differs.length > 0
      ? new AirlockError('PLAN_MISMATCH', `the saved plan is not what its request computes now (${differs.join(', ')} differ); it was edited or made by another version; make a new plan`, {fields: differs})
      : null)
  return {recomputed: again, differs, refusal: refused}
}

/** A candidate request (e.g. one signature a registry holds) and what to call it in the outcome. */
export interface Candidate {
  request: ChangeRequest
  describe: Record<string, unknown>
}

/** What one candidate came to: the first that verifies is planned, the rest say why not. */
export type CandidateResult = Record<string, unknown> & {verified: boolean; reason?: string}

/**
 * What the pipeline runs on: a request; a saved plan (`airlock apply`); or candidate requests,
 * tried in order until one verifies (fetch-signature). A request may bring a new private key
 * (keys generate), written only once the change trusting it is committed.
 */
export type PipelineInput =
  | {request: ChangeRequest; newKey?: {file: string; pem: string}}
  | {saved: Plan}
  | {candidates: AsyncIterable<Candidate>; none: () => AirlockError}

/**
 * How far to go: show the plan, save it for review, apply it as one signed commit, or stage its
 * files in the work tree for a later `airlock change` (a pull request made of several steps).
 */
export type Mode = {kind: 'plan'} | {kind: 'save'; out: string} | {kind: 'apply'; signer: () => Promise<Signer>; toolVersion: string} | {kind: 'stage'}

export type Outcome = (
  | {status: 'planned'; plan: Plan; refusal: AirlockError | null; checkFailed: boolean}
  | {status: 'saved'; plan: Plan; savedTo: string}
  | {status: 'applied'; plan: Plan; applied: ApplyResult}
  | {status: 'noop'; plan: Plan}
  | {status: 'staged'; plan: Plan; written: string[]}
  | {status: 'refused'; plan: Plan | null; error: AirlockError}
) & {candidates?: CandidateResult[]}

/** The first candidate whose plan computes: one whose signature does not verify is the next one's turn. */
async function firstCandidate(repo: Repository, input: Extract<PipelineInput, {candidates: unknown}>, ctx: PipelineContext, tried: CandidateResult[]): Promise<Plan> {
  let last: AirlockError | null = null
  for await (const c of input.candidates) {
    try {
      const plan = await planChange(repo, c.request, ctx)
      tried.push({...c.describe, verified: true})
      return plan
    } catch (error) {
      const e = asAirlockError(error)
      if (!e.code.startsWith('IMAGE_') && e.code !== 'INVALID_INPUT') throw error
      tried.push({...c.describe, verified: false, reason: e.code})
      last = e
    }
  }
  if (!last) throw input.none()
  const reason = last.code.startsWith('IMAGE_') ? last.code : 'IMAGE_SIGNATURE_ERROR'
  throw new AirlockError(reason as AirlockError['code'], `none of the ${tried.length} candidate(s) verifies (last: ${last.message})`, {...last.details, found: tried})
}

/** Step 7 — apply: one CAS commit with its receipt (and a new key put in place once it is trusted). */
async function apply(repo: Repository, plan: Plan, input: PipelineInput, mode: Extract<Mode, {kind: 'apply'}>, ctx: PipelineContext): Promise<Outcome> {
  if (isNoop(plan)) {
    // Nothing to change may mean an earlier apply committed and was killed before the work
    // tree caught up: say so rather than succeed silently over a staged revert.
    const [left] = await unfinishedCheckout(repo)
    if (left) throw new AirlockError('UNCOMMITTED_CHANGES', `nothing to apply, but ${left.problem}; run \`airlock repair --apply\``, {finding: left})
    return {status: 'noop', plan}
  }
  const signer = await mode.signer()
  const key = 'newKey' in input && input.newKey ? await stagePrivateFile(input.newKey.file, input.newKey.pem) : null
  try {
    const applied = await applyPlan(repo, plan, {signer, now: ctx.now, toolVersion: mode.toolVersion, limits: ctx.limits, ...(ctx.drill ? {drill: ctx.drill} : {})})
    await key?.commit()
    return {status: 'applied', plan, applied}
  } catch (error) {
    await key?.discard()
    throw error
  }
}

/** Step 7, staged: the plan's files written into the work tree (each atomically), for `airlock change` to commit. */
async function stage(repo: Repository, plan: Plan): Promise<string[]> {
  const written: string[] = []
  for (const c of plan.changes) {
    if ((await repo.workTreeText(c.path)) === c.after) continue
    const abs = join(repo.dir, c.path)
    await checkInside(repo.dir, abs)
    if (c.after === null) await unlink(abs)
    else await writeFileAtomic(abs, c.after, 0o644, repo.dir)
    written.push(c.path)
  }
  return written
}

/** Step 8 — record: every outcome, refusals included (the audit log writes it here). */
async function record(outcome: Outcome, ctx: PipelineContext, input: PipelineInput): Promise<void> {
  // What was asked, for a refusal that came before any plan (the plan names it otherwise).
  const operation = 'request' in input ? input.request.kind : 'saved' in input ? input.saved.operation : undefined
  await ctx.record?.(outcome, {...(ctx.drill ? {drill: ctx.drill} : {}), ...(operation ? {operation} : {})})
}

/**
 * Runs the pipeline on `input` as far as `mode` says and returns how it ended. Every refusal —
 * a base that does not verify or has no pinned anchor, a denial, a stale or edited saved plan,
 * invalid input, a signature that does not verify — is an outcome the record step sees.
 */
export async function execute(repo: Repository | null, input: PipelineInput, mode: Mode, ctx: PipelineContext): Promise<Outcome> {
  let plan: Plan | null = null
  const tried: CandidateResult[] = []
  const withTried = (o: Outcome): Outcome => ('candidates' in input ? {...o, candidates: tried} : o)
  let outcome: Outcome
  try {
    if ('saved' in input) {
      if (!repo) throw new AirlockError('NOT_A_REPOSITORY', 'a saved plan applies to a repository')
      plan = await replan(repo, input.saved, ctx)
    } else if ('candidates' in input) {
      if (!repo) throw new AirlockError('NOT_A_REPOSITORY', 'this change needs a repository')
      plan = await firstCandidate(repo, input, ctx, tried)
    } else plan = await planChange(repo, input.request, ctx)
    const refused = refusal(plan)
    if (mode.kind === 'plan') {
      // A base that cannot be trusted is a failed check even for a plan-only run; a denial is the plan's answer.
      outcome = {status: 'planned', plan, refusal: refused, checkFailed: refused !== null && refused.code !== 'DENIED'}
    } else if (refused && !(mode.kind === 'stage' && refused.code === 'DENIED')) {
      // Staging writes the work tree only: who may commit it is asked when `change --apply` does.
      outcome = {status: 'refused', plan, error: refused}
    }
    else if (mode.kind === 'save') {
      if ('newKey' in input && input.newKey) throw new AirlockError('USAGE', `--out: ${input.newKey.file} does not exist yet, and a saved plan cannot carry a new private key; run with --apply`, {field: '--out'})
      const savedTo = resolve(mode.out)
      await writeFileAtomic(savedTo, serializePlan(plan))
      outcome = {status: 'saved', plan, savedTo}
    } else if (mode.kind === 'stage') {
      if (!repo) throw new AirlockError('NOT_A_REPOSITORY', 'this change needs a repository')
      outcome = {status: 'staged', plan, written: await stage(repo, plan)}
    } else {
      if (!repo) throw new AirlockError('NOT_A_REPOSITORY', 'this change needs a repository')
      outcome = await apply(repo, plan, input, mode, ctx)
    }
  } catch (error) {
    // Only what nothing anticipated escapes (INTERNAL); the command prints it with its stack.
    const e = asAirlockError(error)
    if (e.code === 'INTERNAL') {
      await record({status: 'refused', plan, error: e}, ctx, input)
      throw error
    }
    outcome = {status: 'refused', plan, error: e}
  }
  outcome = withTried(outcome)
  await record(outcome, ctx, input)
  return outcome
}
