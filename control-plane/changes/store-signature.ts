import {createHash} from 'node:crypto'
import type {Limits} from '../limits.js'
import {AirlockError} from '../errors.js'
import {isKind} from '../manifests/kinds.js'
import {findImageByRef, parseImage} from '../manifests/load.js'
import {SIGNATURES_DIR, signaturePath, signaturePayloadPath, signatureSlot} from '../manifests/models.js'
import type {Draft} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'
import type {ChangeRequest, PlannedChange} from '../plan/plan.js'

/** The git blob id `text` will have once committed. */
export function blobId(text: string): string {
  const body = Buffer.from(text)
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex')
}

/**
 * An image whose manifest is new in the work tree (a pull request adding it): its policy decides
 * whether the bundle verifies, with the base's trust, as the change committing both will.
 */
function newImage(manifest: {path: string; text: string}, limits: Limits) {
  if (!isKind('GoldenImage', manifest.path)) throw new AirlockError('INVALID_INPUT', `${manifest.path}: not an image manifest path`, {file: manifest.path})
  return parseImage(manifest.text, manifest.path, blobId(manifest.text), limits)
}

/** The request's own details that a plan shows: known keys, single-line strings, numbers and booleans only. */
const DETAIL_KEYS = ['keyid', 'algorithm', 'newImage', 'registry', 'layout', 'via', 'referrer', 'tag'] as const

function requestDetails(given: Record<string, unknown>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {}
  for (const k of DETAIL_KEYS) {
    const v = given?.[k]
    if (typeof v === 'number' || typeof v === 'boolean') out[k] = v
    else if (typeof v === 'string') {
      if (/[\u0000-\u001f\u007f-\u009f]/.test(v) || v.length > 512) throw new AirlockError('INVALID_INPUT', `request.details.${k}: not a single line of text`, {field: `request.details.${k}`})
      out[k] = v
    }
  }
  return out
}

/**
 * Stores a Sigstore bundle for `digest` of an image beside the manifests. The pipeline verifies
 * it under the image's policy at the base commit before anything is planned (a bundle that would
 * not verify is never stored). Storing the same bundle again changes nothing; another bundle for
 * a digest that has one goes into the next free slot (`sha256-<hex>.1.sigstore.json`, …), so
 * signatures by several keys can meet an image threshold.
 */
export async function buildStoreSignature(repo: Repository, commit: string, req: Extract<ChangeRequest, {kind: 'store-signature'}>, limits: Limits): Promise<Draft> {
  const image = req.newManifest ? newImage(req.newManifest, limits) : await findImageByRef(repo, commit, req.image, limits)
  // A new image is one the base has under neither NAME.yaml nor NAME.yml.
  if (req.newManifest && (await findImageByRef(repo, commit, image.name, limits).then(() => true, (error: {code?: string}) => (error.code === 'UNKNOWN_IMAGE' ? false : Promise.reject(error))))) {
    throw new AirlockError('INVALID_INPUT', `${image.file}: image ${image.name} is not new; sign it as it is at HEAD`, {file: image.file})
  }
  const slots = new Map<number, string>()
  for (const e of await repo.listDir(commit, `${SIGNATURES_DIR}/${image.name}`)) {
    const slot = signatureSlot(e.name, req.digest)
    if (slot !== null && e.type === 'blob') slots.set(slot, e.oid)
  }
  const same = [...slots].find(([, oid]) => oid === blobId(req.bundle))?.[0]
  let slot = same ?? 0
  while (same === undefined && slots.has(slot)) slot++
  const path = signaturePath(image.name, req.digest, slot)
  const payloadPath = signaturePayloadPath(image.name, req.digest, slot)
  const [existing, existingPayload] = await Promise.all([repo.readFile(commit, path), repo.readFile(commit, payloadPath)])
  const changes: PlannedChange[] = []
  if (existing?.text !== req.bundle) changes.push({path, action: existing ? 'modify' : 'create', before: existing?.text ?? null, after: req.bundle})
  // A payload left from an earlier cosign v2 signature would no longer belong to the bundle.
  const payloadAfter = req.payload ?? null
  if ((existingPayload?.text ?? null) !== payloadAfter) {
    changes.push({path: payloadPath, action: existingPayload ? (payloadAfter === null ? 'delete' : 'modify') : 'create', before: existingPayload?.text ?? null, after: payloadAfter})
  }
  const short = `${req.digest.slice(0, 19)}…`
  return {
    operation: req.operation,
    summary: changes.length ? `store the signature of ${image.name}@${short}` : `${path} already holds this signature`,
    // What the request says of where the signature came from, as data under its own keys: it
    // never overrides what the builder computed (image, repository, digest).
    details: {...requestDetails(req.details), image: image.name, repository: image.repository, digest: req.digest},
    subjects: [{name: image.repository, digest: {sha256: req.digest.slice('sha256:'.length)}}],
    changes,
    inputs: [{path: image.file, oid: image.oid}, {path, oid: existing?.oid ?? null}, {path: payloadPath, oid: existingPayload?.oid ?? null}],
    slug: `${image.name}-signature`,
    pins: [{image, digest: req.digest, bundle: {text: req.bundle, path, oid: blobId(req.bundle), ...(req.payload === undefined ? {} : {payload: req.payload})}}],
  }
}
