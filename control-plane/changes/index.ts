/**
 * The kinds of change, one builder each: what a request asks for, read at the base commit, as a
 * Draft the pipeline then authorizes, verifies, seals and applies. A request kind without a
 * builder does not compile; a new capability is a new row here, never a second path.
 */
import {AirlockError} from '../errors.js'
import type {ChangeRequest} from '../plan/plan.js'
import type {Base, Draft, PipelineContext} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'
import {buildAddKey} from './add-key.js'
import {buildAuditPublish} from './audit-publish.js'
import {buildDesiredStateChange} from './desired-state.js'
import {buildGateReceipt, checkGateReceiptBase} from './gate-receipt.js'
import {buildInit} from './init.js'
import {buildBundle} from './policy-bundle.js'
import {buildPromote} from './promote.js'
import {buildRollback} from './rollback.js'
import {buildStoreSignature} from './store-signature.js'

type Kind = ChangeRequest['kind']
/** A builder reads the base (absent only for init, which makes the repository). */
type Builder<K extends Kind> = (at: {repo: Repository; commit: string}, request: Extract<ChangeRequest, {kind: K}>, ctx: PipelineContext) => Promise<Draft>

const CHANGE_KINDS: {[K in Exclude<Kind, 'init'>]: Builder<K>} = {
  promote: ({repo, commit}, req, ctx) => buildPromote(repo, commit, req, ctx.limits),
  rollback: ({repo, commit}, req, ctx) => buildRollback(repo, commit, req, ctx.reason, ctx.limits),
  'store-signature': ({repo, commit}, req, ctx) => buildStoreSignature(repo, commit, req, ctx.limits),
  'add-key': ({repo, commit}, req, ctx) => buildAddKey(repo, commit, req, ctx.now, ctx.limits),
  'policy-bundle': ({repo, commit}, req, ctx) => buildBundle(repo, commit, req, ctx.now, ctx.limits),
  change: ({repo, commit}, req, ctx) => buildDesiredStateChange(repo, commit, req, ctx.limits),
  'gate-receipt': async ({repo, commit}, req, ctx) => {
    const base = {commit, branch: (await repo.head()).ref}
    const draft = buildGateReceipt(base, req, ctx.limits)
    await checkGateReceiptBase(repo, base, draft.statement!, ctx.limits)
    return draft
  },
  'audit-publish': ({repo, commit}, req, ctx) => buildAuditPublish(repo, commit, req, ctx.now, ctx.limits),
}

/** Step 2 — build the changes a request asks for, read at the base commit. */
export async function buildChange(repo: Repository | null, base: Base, request: ChangeRequest, ctx: PipelineContext): Promise<Draft> {
  if (request.kind === 'init') return buildInit(request)
  if (!repo || base.commit === null) throw new AirlockError('INVALID_INPUT', 'this change needs a repository with a commit')
  const build = CHANGE_KINDS[request.kind] as Builder<Kind>
  return build({repo, commit: base.commit}, request, ctx)
}
