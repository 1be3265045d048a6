import {AirlockError} from '../errors.js'
import {buildAddKey} from '../plan/trust-key.js'
import {buildStoreSignature} from '../plan/signature.js'
import type {ChangeRequest} from '../plan/plan.js'
import {buildBundle} from '../policy/publish.js'
import {buildPromote} from '../promote/promote.js'
import {buildRollback} from '../promote/rollback.js'
import type {Repository} from '../repo/repository.js'
import {buildDesiredStateChange} from './desired-state.js'
import type {Base, Draft, PipelineContext} from './draft.js'

/** Step 2 — build the changes a request asks for, read at the base commit. */
export async function buildChange(repo: Repository | null, base: Base, request: ChangeRequest, ctx: PipelineContext): Promise<Draft> {
  if (request.kind === 'init') {
    return {
      operation: 'init',
      summary: 'scaffold a GitOps repository with a signed example image, an evidence key and an image key',
      details: {keyid: request.keyid, imageKeyid: request.imageKeyid},
      subjects: [{name: 'ed25519-key:evidence', digest: {sha256: request.keyid}}],
      changes: request.files.map((f) => ({path: f.path, action: 'create' as const, before: null, after: f.content})),
      inputs: [],
      slug: 'repository',
      pins: [],
    }
  }
  if (!repo || base.commit === null) throw new AirlockError('INVALID_INPUT', 'this change needs a repository with a commit')
  const {commit} = base
  switch (request.kind) {
    case 'promote':
      return buildPromote(repo, commit, request, ctx.limits)
    case 'rollback':
      return buildRollback(repo, commit, request, ctx.reason, ctx.limits)
    case 'store-signature':
      return buildStoreSignature(repo, commit, request, ctx.limits)
    case 'add-key':
      return buildAddKey(repo, commit, request, ctx.now, ctx.limits)
    case 'policy-bundle':
      return buildBundle(repo, commit, request, ctx.now, ctx.limits)
    case 'change':
      return buildDesiredStateChange(repo, commit, request, ctx.now, ctx.limits)
  }
}
