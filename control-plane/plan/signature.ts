import {createHash} from 'node:crypto'
import {receiptPathFor} from '../evidence/receipt.js'
import {signaturePath, signaturePayloadPath, type GoldenImage} from '../manifests/models.js'
import type {Repository} from '../repo/repository.js'
import {sealPlan, type Plan, type PlannedChange, type Requester, type SignatureVerification} from './plan.js'

/** The git blob id `text` will have once committed. */
export function blobId(text: string): string {
  const body = Buffer.from(text)
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex')
}

/**
 * Plans storing a Sigstore bundle for `digest` of `image` (as read at `base`) beside the
 * manifests, after `verify` has checked it under the image's policy at the base commit (a bundle
 * that would not verify is never stored). Storing the same bundle again is a no-op plan.
 */
export async function planStoreSignature(
  repo: Repository,
  base: {branch: string; commit: string},
  image: GoldenImage,
  req: {
    digest: string
    bundleText: string
    /** The simple-signing payload a cosign v2 signature signs, kept beside its bundle. */
    payloadText?: string
    operation: 'image-sign' | 'image-fetch-signature'
    details: Record<string, unknown>
    verify: (image: GoldenImage, digest: string, bundle: {text: string; path: string; oid: string; payload?: string}, base: string) => Promise<{record: SignatureVerification; inputs: Array<{path: string; oid: string | null}>}>
    reason: string
    requestedBy: Requester
    now: Date
  },
): Promise<Plan> {
  const path = signaturePath(image.name, req.digest)
  const payloadPath = signaturePayloadPath(image.name, req.digest)
  const [existing, existingPayload] = await Promise.all([repo.readFile(base.commit, path), repo.readFile(base.commit, payloadPath)])
  const verified = await req.verify(image, req.digest, {text: req.bundleText, path, oid: blobId(req.bundleText), ...(req.payloadText === undefined ? {} : {payload: req.payloadText})}, base.commit)
  const changes: PlannedChange[] = []
  if (existing?.text !== req.bundleText) changes.push({path, action: existing ? 'modify' : 'create', before: existing?.text ?? null, after: req.bundleText})
  // A payload left from an earlier cosign v2 signature would no longer belong to the bundle.
  const payloadAfter = req.payloadText ?? null
  if ((existingPayload?.text ?? null) !== payloadAfter) {
    changes.push({path: payloadPath, action: existingPayload ? (payloadAfter === null ? 'delete' : 'modify') : 'create', before: existingPayload?.text ?? null, after: payloadAfter})
  }
  const short = `${req.digest.slice(0, 19)}…`
  const unsigned = {
    apiVersion: 'airlock/v1' as const,
    kind: 'Plan' as const,
    operation: req.operation,
    summary: changes.length ? `store the signature of ${image.name}@${short}` : `${path} already holds this signature`,
    reason: req.reason,
    requestedBy: req.requestedBy,
    createdAt: req.now.toISOString(),
    branch: base.branch,
    baseCommit: base.commit,
    inputs: [{path: image.file, oid: image.oid}, ...verified.inputs.filter((i) => i.path !== path), {path, oid: existing?.oid ?? null}, {path: payloadPath, oid: existingPayload?.oid ?? null}],
    details: {image: image.name, repository: image.repository, digest: req.digest, ...req.details},
    subjects: [{name: image.repository, digest: {sha256: req.digest.slice('sha256:'.length)}}],
    changes,
    signature: verified.record,
  }
  return sealPlan({...unsigned, receiptPath: changes.length ? receiptPathFor(unsigned, `${image.name}-signature`) : null})
}
