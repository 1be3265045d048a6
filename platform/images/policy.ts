/**
 * The verification policy of one image, assembled from its manifest (spec.verification), the
 * image keys of trust.yaml and the pinned Sigstore trusted root, all read at one commit; and the
 * check that a pinned digest's stored bundle verifies under it.
 */
import {createPublicKey} from 'node:crypto'
import {TrustedRoot} from '@sigstore/protobuf-specs'
import {AirlockError} from '../../control-plane/errors.js'
import {checkNesting, type Limits} from '../../control-plane/limits.js'
import {keysFor} from '../../control-plane/manifests/load.js'
import {DEFAULT_TRUSTED_ROOT, signaturePath, signaturePayloadPath, type GoldenImage, type TrustKey, type TrustPolicy} from '../../control-plane/manifests/models.js'
import {publicKeyObject} from '../../control-plane/crypto/keys.js'
import type {SignatureVerification} from '../../control-plane/plan/plan.js'
import type {Repository} from '../../control-plane/repo/repository.js'
import {emptyTrustedRoot, ImageVerificationError, imageKey, verifyImageSignature, type ImagePolicy, type ImageSignatureResult} from './verify.js'

/** A file the result was computed from, with its blob id (for plan staleness checks). */
export interface PolicyInput {
  path: string
  oid: string | null
}

export function trustKeyObject(key: TrustKey) {
  return key.algorithm === 'ed25519' ? publicKeyObject(key.publicKey) : createPublicKey({key: Buffer.from(key.publicKey), format: 'der', type: 'spki'})
}

export function parseJsonInput(text: string, file: string, limits: Limits): unknown {
  if (Buffer.byteLength(text) > limits.maxFileBytes) throw new AirlockError('TOO_LARGE', `${file}: ${Buffer.byteLength(text)} bytes, the limit is ${limits.maxFileBytes}`, {file})
  checkNesting(text, file, 'json', limits.maxDepth)
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new AirlockError('INVALID_INPUT', `${file}: not JSON (${(error as Error).message}); truncated?`, {file})
  }
}

/** Parses a Sigstore trusted_root.json; anything malformed names the file. */
export function parseTrustedRoot(text: string, file: string, limits: Limits): TrustedRoot {
  const json = parseJsonInput(text, file, limits) as {mediaType?: unknown}
  if (typeof json !== 'object' || json === null || typeof json.mediaType !== 'string' || !json.mediaType.startsWith('application/vnd.dev.sigstore.trustedroot+json')) {
    throw new AirlockError('INVALID_INPUT', `${file}: not a Sigstore trusted root (mediaType application/vnd.dev.sigstore.trustedroot+json)`, {file, field: 'mediaType'})
  }
  try {
    return TrustedRoot.fromJSON(json)
  } catch (error) {
    throw new AirlockError('INVALID_INPUT', `${file}: ${(error as Error).message}`, {file})
  }
}

// Commits never change, so what was read at one is kept for the rest of the process: folder
// listings (one tree walk per folder instead of one per file) and parsed trusted roots.
const folders = new Map<string, Promise<Map<string, string>>>()
const roots = new Map<string, Promise<{oid: string | null; root: TrustedRoot}>>()

/** A file at `commit` through its folder's listing; undefined when absent. */
async function readAt(repo: Repository, commit: string, path: string): Promise<{text: string; oid: string} | undefined> {
  const slash = path.lastIndexOf('/')
  const key = `${repo.dir}\0${commit}\0${path.slice(0, slash)}`
  let listing = folders.get(key)
  if (!listing) {
    if (folders.size > 10_000) folders.clear()
    listing = repo.listDir(commit, path.slice(0, slash)).then((entries) => new Map(entries.filter((e) => e.type === 'blob').map((e) => [e.name, e.oid])))
    folders.set(key, listing)
  }
  const oid = (await listing).get(path.slice(slash + 1))
  return oid ? {oid, text: await repo.readBlob(oid)} : undefined
}

function trustedRootAt(repo: Repository, commit: string, path: string, limits: Limits) {
  const key = `${repo.dir}\0${commit}\0${path}`
  let found = roots.get(key)
  if (!found) {
    if (roots.size > 100) roots.clear()
    found = readAt(repo, commit, path).then((f) => ({oid: f?.oid ?? null, root: f ? parseTrustedRoot(f.text, path, limits) : emptyTrustedRoot()}))
    roots.set(key, found)
    found.catch(() => roots.delete(key))
  }
  return found
}

/**
 * The policy for `image` at `commit`: listed trust.yaml image keys (all of them when the
 * manifest lists neither keys nor identities), its keyless identities, and its trusted root.
 */
export async function imagePolicy(repo: Repository, commit: string, image: GoldenImage, trust: TrustPolicy, now: Date, limits: Limits): Promise<{policy: ImagePolicy; inputs: PolicyInput[]}> {
  const spec = image.verification ?? {}
  const valid = keysFor(trust, 'image', now)
  const wanted = spec.keys ?? (spec.identities ? [] : valid.map((k) => k.id))
  const keys = valid.filter((k) => wanted.includes(k.id)).map((k) => imageKey(k.id, trustKeyObject(k)))
  const rootPath = spec.trustedRoot ?? DEFAULT_TRUSTED_ROOT
  const {oid: rootOid, root: trustedRoot} = await trustedRootAt(repo, commit, rootPath, limits)
  if (!rootOid && spec.trustedRoot) throw new AirlockError('INVALID_INPUT', `${image.file}: spec.verification.trustedRoot names ${rootPath}, which is not in the repository`, {file: image.file, field: 'spec.verification.trustedRoot'})
  return {
    policy: {keys, identities: spec.identities ?? [], trustedRoot, tlogThreshold: spec.tlogThreshold ?? 0, timestampThreshold: spec.timestampThreshold ?? 0},
    inputs: [
      {path: trust.file, oid: trust.oid},
      {path: rootPath, oid: rootOid},
    ],
  }
}

/**
 * Verifies the bundle stored for `digest` of `image` at `commit` under the image's policy;
 * a digest with no stored bundle is unsigned and refused (NO_SIGNATURE).
 */
export async function verifyPinned(
  repo: Repository,
  commit: string,
  image: GoldenImage,
  digest: string,
  trust: TrustPolicy,
  now: Date,
  limits: Limits,
): Promise<{record: SignatureVerification; inputs: PolicyInput[]}> {
  const path = signaturePath(image.name, digest)
  const stored = await readAt(repo, commit, path)
  if (!stored) throw new ImageVerificationError('NO_SIGNATURE', `${image.name}@${digest} is unsigned: no bundle at ${path} (airlock image sign or image fetch-signature puts one there)`, {image: image.name, digest, bundle: path})
  const payloadPath = signaturePayloadPath(image.name, digest)
  const payload = await readAt(repo, commit, payloadPath)
  const verified = await verifyBundleFor(repo, commit, image, digest, {text: stored.text, path, oid: stored.oid, ...(payload ? {payload: payload.text} : {})}, trust, now, limits)
  return {...verified, inputs: [...verified.inputs, {path: payloadPath, oid: payload?.oid ?? null}]}
}

/** Verifies a bundle (stored or about to be) for `digest` of `image` under the image's policy at `commit`. */
export async function verifyBundleFor(
  repo: Repository,
  commit: string,
  image: GoldenImage,
  digest: string,
  bundle: {text: string; path: string; oid: string; payload?: string},
  trust: TrustPolicy,
  now: Date,
  limits: Limits,
): Promise<{record: SignatureVerification; inputs: PolicyInput[]}> {
  const {policy, inputs} = await imagePolicy(repo, commit, image, trust, now, limits)
  const bundleJson = parseJsonInput(bundle.text, bundle.path, limits)
  let result: ImageSignatureResult
  try {
    result = verifyImageSignature(digest, bundleJson, policy, bundle.payload === undefined ? {} : {payload: Buffer.from(bundle.payload)})
  } catch (error) {
    if (error instanceof ImageVerificationError) throw new ImageVerificationError(error.reason, `${bundle.path}: ${error.problem}`, {...error.details, image: image.name, digest, bundle: bundle.path})
    throw error
  }
  const [, root] = inputs
  return {
    record: {...result, bundle: {path: bundle.path, oid: bundle.oid}, policy: {keys: policy.keys.map((k) => k.id), identities: policy.identities, trustedRoot: root!.oid ? root!.path : null}},
    inputs: [...inputs, {path: bundle.path, oid: bundle.oid}],
  }
}

export interface PinnedCheck {
  image: string
  channel: string
  digest: string
  verified: boolean
  reason?: string
  message?: string
  signer?: SignatureVerification['signer']
  tlogEntries?: SignatureVerification['tlogEntries']
}

/**
 * Every digest pinned by a channel of every image at `commit`, each verified under its image's
 * policy. A failure is reported in its row, never thrown, so one bad image hides no other.
 */
export async function verifyAllPinned(repo: Repository, commit: string, images: GoldenImage[], trust: TrustPolicy, now: Date, limits: Limits): Promise<PinnedCheck[]> {
  const rows = images.flatMap((image) => Object.entries(image.channels).map(([channel, ch]) => ({image, channel, digest: ch.digest})))
  // Blob reads overlap; the verifications themselves are synchronous CPU work in the library.
  return Promise.all(
    rows.map(async ({image, channel, digest}) => {
      const row = {image: image.name, channel, digest}
      try {
        const {record} = await verifyPinned(repo, commit, image, digest, trust, now, limits)
        return {...row, verified: true, signer: record.signer, tlogEntries: record.tlogEntries}
      } catch (error) {
        if (!(error instanceof AirlockError)) throw error
        return {...row, verified: false, reason: error instanceof ImageVerificationError ? error.reason : error.code, message: error instanceof ImageVerificationError ? error.problem : error.message}
      }
    }),
  )
}
