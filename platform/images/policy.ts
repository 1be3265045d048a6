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
import {DEFAULT_TRUSTED_ROOT, SIGNATURES_DIR, signaturePath, signaturePayloadPath, signatureSlot, type GoldenImage, type TrustKey, type TrustPolicy} from '../../control-plane/manifests/models.js'
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
  let root: TrustedRoot
  try {
    root = TrustedRoot.fromJSON(json)
  } catch (error) {
    throw new AirlockError('INVALID_INPUT', `${file}: ${(error as Error).message}`, {file})
  }
  // Every key and authority says from when it is valid: one without a start would be trusted
  // for any time, which the trusted-root format does not allow.
  const missing = (field: string) => new AirlockError('INVALID_INPUT', `${file}: ${field}.validFor.start is missing; every key and authority of a trusted root has a validity start`, {file, field: `${field}.validFor.start`})
  for (const [name, logs] of [['tlogs', root.tlogs], ['ctlogs', root.ctlogs]] as const) {
    for (const [i, log] of logs.entries()) if (!log.publicKey?.validFor?.start) throw missing(`${name}[${i}].publicKey`)
  }
  for (const [name, cas] of [['certificateAuthorities', root.certificateAuthorities], ['timestampAuthorities', root.timestampAuthorities]] as const) {
    for (const [i, ca] of cas.entries()) if (!ca.validFor?.start) throw missing(`${name}[${i}]`)
  }
  return root
}

// Commits never change, so what was read at one is kept for the rest of the process: folder
// listings (one tree walk per folder instead of one per file) and parsed trusted roots.
const folders = new Map<string, Promise<Map<string, string>>>()
const roots = new Map<string, Promise<{oid: string | null; root: TrustedRoot}>>()
const policies = new WeakMap<TrustPolicy, Map<string, Promise<{policy: ImagePolicy; inputs: PolicyInput[]}>>>()

/** The files of `folder` at `commit` by name, read once per folder for the process. */
function listing(repo: Repository, commit: string, folder: string): Promise<Map<string, string>> {
  const key = `${repo.dir}\0${commit}\0${folder}`
  let found = folders.get(key)
  if (!found) {
    if (folders.size > 10_000) folders.clear()
    found = repo.listDir(commit, folder).then((entries) => new Map(entries.filter((e) => e.type === 'blob').map((e) => [e.name, e.oid])))
    folders.set(key, found)
  }
  return found
}

/** A file at `commit` through its folder's listing; undefined when absent. */
async function readAt(repo: Repository, commit: string, path: string): Promise<{text: string; oid: string} | undefined> {
  const slash = path.lastIndexOf('/')
  const oid = (await listing(repo, commit, path.slice(0, slash))).get(path.slice(slash + 1))
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
export function imagePolicy(repo: Repository, commit: string, image: GoldenImage, trust: TrustPolicy, now: Date, limits: Limits): Promise<{policy: ImagePolicy; inputs: PolicyInput[]}> {
  // Worked out once per (trust policy, commit, manifest text, time) for the process: every
  // bundle of an image, and every digest its channels pin, is checked under the same policy, and
  // building it parses each trusted key again.
  let byImage = policies.get(trust)
  if (!byImage) policies.set(trust, (byImage = new Map()))
  const key = `${repo.dir}\0${commit}\0${now.getTime()}\0${image.file}\0${image.text}`
  let found = byImage.get(key)
  if (!found) {
    if (byImage.size > 10_000) byImage.clear()
    found = buildImagePolicy(repo, commit, image, trust, now, limits).then((p) => {
      // Shared by every caller from now on: nobody may change it.
      Object.freeze(p.policy.keys)
      p.inputs.forEach((i) => Object.freeze(i))
      Object.freeze(p.inputs)
      Object.freeze(p.policy)
      return Object.freeze(p)
    })
    byImage.set(key, found)
    found.catch(() => byImage.get(key) === found && byImage.delete(key))
  }
  return found
}

async function buildImagePolicy(repo: Repository, commit: string, image: GoldenImage, trust: TrustPolicy, now: Date, limits: Limits): Promise<{policy: ImagePolicy; inputs: PolicyInput[]}> {
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

/** A bundle for a digest: stored at the commit, or about to be (in the change). */
export interface CandidateBundle {
  text: string
  path: string
  oid: string
  payload?: string
}

/** Every bundle stored for `digest` of `image` at `commit` (slot 0, 1, …), with its payload. */
async function storedBundles(repo: Repository, commit: string, image: string, digest: string): Promise<{bundles: CandidateBundle[]; inputs: PolicyInput[]}> {
  const folder = `${SIGNATURES_DIR}/${image}`
  const names = [...(await listing(repo, commit, folder)).keys()].filter((n) => signatureSlot(n, digest) !== null).sort()
  const bundles: CandidateBundle[] = []
  const inputs: PolicyInput[] = []
  for (const name of names) {
    const slot = signatureSlot(name, digest)!
    const [bundle, payload] = await Promise.all([readAt(repo, commit, `${folder}/${name}`), readAt(repo, commit, signaturePayloadPath(image, digest, slot))])
    if (!bundle) continue
    bundles.push({path: `${folder}/${name}`, ...bundle, ...(payload ? {payload: payload.text} : {})})
    inputs.push({path: signaturePayloadPath(image, digest, slot), oid: payload?.oid ?? null})
  }
  return {bundles, inputs}
}

const signerKey = (s: SignatureVerification['signer']) => ('keyid' in s ? `key ${s.keyid}` : `identity ${s.issuer} ${s.subject}`)
const signerName = (s: SignatureVerification['signer']) => ('keyid' in s ? `key ${s.keyid.slice(0, 16)}…` : `${s.subject} (${s.issuer})`)

/**
 * Verifies the bundles for `digest` of `image` at `commit` (and those the change brings, in
 * `extra`) under the image's policy: the digest needs verifying signatures by as many distinct
 * trusted image keys or identities as its threshold (spec.verification.threshold, else
 * trust.yaml's thresholds.image); the same key twice counts once. A digest with no bundle is
 * unsigned (NO_SIGNATURE); with threshold 1 the one bundle's own failure is the error.
 */
export async function verifyPinned(
  repo: Repository,
  commit: string,
  image: GoldenImage,
  digest: string,
  trust: TrustPolicy,
  now: Date,
  limits: Limits,
  extra: CandidateBundle[] = [],
): Promise<{record: SignatureVerification; inputs: PolicyInput[]}> {
  const threshold = image.verification?.threshold ?? trust.thresholds.image
  const stored = await storedBundles(repo, commit, image.name, digest)
  const candidates = new Map(stored.bundles.map((b) => [b.path, b]))
  for (const b of extra) candidates.set(b.path, b)
  const path = signaturePath(image.name, digest)
  if (candidates.size === 0) throw new ImageVerificationError('NO_SIGNATURE', `${image.name}@${digest} is unsigned: no bundle at ${path} (airlock image sign or image fetch-signature puts one there)`, {image: image.name, digest, bundle: path})
  const verified: Array<{record: SignatureVerification; inputs: PolicyInput[]}> = []
  const failed: ImageVerificationError[] = []
  for (const bundle of [...candidates.values()].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    try {
      verified.push(await verifyBundleFor(repo, commit, image, digest, bundle, trust, now, limits))
    } catch (error) {
      if (!(error instanceof ImageVerificationError)) throw error
      failed.push(error)
    }
  }
  const distinct = new Map(verified.map((v) => [signerKey(v.record.signer), v]))
  if (distinct.size < threshold) {
    if (threshold === 1 && failed[0]) throw failed[0]
    const found = [...distinct.values()].map((v) => signerName(v.record.signer))
    throw new ImageVerificationError(
      'THRESHOLD_NOT_MET',
      `${image.name}@${digest} needs signatures by ${threshold} distinct trusted image keys or identities; ${found.length ? `only ${found.join(', ')} verified` : 'none verified'} (of ${candidates.size} bundle(s)${failed.length ? `; ${failed.length} did not verify: ${failed[0]!.message}` : ''})`,
      {image: image.name, digest, threshold, signers: found, bundles: [...candidates.keys()]},
    )
  }
  const first = verified[0]!
  const record: SignatureVerification = {
    ...first.record,
    threshold,
    signers: [...distinct.values()].map((v) => ({signer: v.record.signer, bundle: v.record.bundle})),
  }
  return {record, inputs: [...new Map([...verified.flatMap((v) => v.inputs), ...stored.inputs].map((i) => [i.path, i])).values()]}
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
