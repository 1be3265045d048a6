import type {ChangeRequest} from '../plan/plan.js'
import type {Draft} from '../pipeline/draft.js'

/** A new repository's first commit: the scaffold's files, each created (there is no base to read). */
export async function buildInit(request: Extract<ChangeRequest, {kind: 'init'}>): Promise<Draft> {
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
