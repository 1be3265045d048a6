import {lstat, mkdtemp, readdir, readFile, rename, rm} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'
import {Document} from 'yaml'
import {AirlockError} from '../errors.js'
import {digestOfJson, sha256Hex} from '../crypto/digest.js'
import {generateImageKey, generateSigner, writePrivateKey, type ImageSigningKey, type Signer} from '../crypto/keys.js'
import type {Limits} from '../limits.js'
import {DEFAULT_TRUSTED_ROOT, EGRESS_FILE, GATES_FILE, IMAGES_DIR, SANDBOXES_DIR, signaturePath, TOOL_POLICY_FILE, TRUST_FILE} from '../manifests/models.js'
import {exampleSandbox, exampleToolPolicy} from './examples.js'
import {exampleGates} from '../gates/example.js'
import {parse as parseYaml} from 'yaml'
import type {Requester} from '../plan/plan.js'
import {ANCHOR_CONFIG} from '../pipeline/base.js'
import type {PipelineContext, SignatureVerifier} from '../pipeline/draft.js'
import {execute, type Outcome} from '../pipeline/pipeline.js'
import {initRepository, Repository} from '../repo/repository.js'
import {checkWritableFolder, makeFolder} from '../repo/files.js'
import {newTrustDocument, trustEntry} from '../changes/add-key.js'

const EXAMPLE_IMAGE = 'agent-runner'
const EXAMPLE_REPOSITORY = 'registry.example.com/golden/agent-runner'

/** Makes the Sigstore bundle (JSON text) of an image digest with a local key; see platform/images/sign. */
export type BundleSigner = (repository: string, digest: string, key: ImageSigningKey) => Promise<string>

/** init pins no digest it has not just signed itself: there is nothing to verify against yet. */
const NO_SIGNATURES: SignatureVerifier = {
  pinned: () => Promise.reject(new AirlockError('INTERNAL', 'init verifies no signatures')),
  bundle: () => Promise.reject(new AirlockError('INTERNAL', 'init verifies no signatures')),
}

/** Deterministic example digests: clearly not real images, but well-formed pins. */
export function exampleDigest(label: string): string {
  return `sha256:${sha256Hex(`airlock example image ${label}`)}`
}

function exampleImage(): string {
  const doc = new Document({
    apiVersion: 'airlock/v1',
    kind: 'GoldenImage',
    metadata: {name: EXAMPLE_IMAGE, description: 'Example golden microVM image for Tier-2 agent sandboxes'},
    spec: {
      repository: EXAMPLE_REPOSITORY,
      tier: 2,
      channels: {
        canary: {digest: exampleDigest('v2'), previous: exampleDigest('v1')},
        stable: {digest: exampleDigest('v1'), previous: null},
      },
    },
  })
  doc.commentBefore = ' One file per golden image. Channels pin a digest; `previous` is the rollback target.'
  return doc.toString()
}

/** Every file of the example policy tree shipped with airlock, as [path in the repository, text]. */
async function examplePolicies(dir: string): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  const walk = async (rel: string): Promise<void> => {
    for (const e of (await readdir(join(dir, rel), {withFileTypes: true})).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) await walk(path)
      else if (e.isFile()) out.push([`policies/${path}`, await readFile(join(dir, path), 'utf8')])
    }
  }
  await walk('')
  return out
}

/** A restrictive egress policy to start from: package indexes on 443, nothing else. */
const EXAMPLE_EGRESS = `# Where this fleet's sandboxes may connect: only what allow names, on port 443. The cloud
# metadata addresses are always denied; private ranges too unless allowPrivate is true.
apiVersion: airlock/v1
kind: EgressPolicy
metadata:
  name: sandboxes
spec:
  profile: restrictive
  allow:
    - pypi.org
    - files.pythonhosted.org
    - registry.npmjs.org
`

/** The files of a new fleet: trust.yaml with the new keys, the signed example image, policies, the root. */
function initFiles(signer: Signer, image: {key: ImageSigningKey; bundles: Array<[string, string]>; trustedRoot: string}, now: Date, policies: Array<[string, string]>): Array<{path: string; content: string}> {
  const trust = newTrustDocument([
    trustEntry('evidence', 'evidence', signer.publicKey, signer.keyid, now),
    trustEntry('image', 'image', image.key.publicKey, image.key.keyid, now, undefined, image.key.algorithm),
  ])
  // A scratch fleet's org: the example policies let local operators try changes in local-… orgs.
  trust.setIn(['spec', 'org'], `local-${signer.keyid.slice(0, 8)}`)
  trust.commentBefore = ' Trust anchors: which keys may sign what, when, and how many signatures each role needs.'
  const toolPolicy = exampleToolPolicy()
  const files: Array<[string, string]> = [
    ['.gitignore', '/keys/\n*.key\n'],
    [TRUST_FILE, trust.toString()],
    [`${IMAGES_DIR}/${EXAMPLE_IMAGE}.yaml`, exampleImage()],
    [EGRESS_FILE, EXAMPLE_EGRESS],
    [TOOL_POLICY_FILE, toolPolicy],
    [GATES_FILE, exampleGates({toolPolicyHash: digestOfJson(parseYaml(toolPolicy)), scripts: '$AIRLOCK_ROOT/platform/validate'})],
    [`${SANDBOXES_DIR}/${EXAMPLE_IMAGE}.yaml`, exampleSandbox(EXAMPLE_IMAGE)],
    ...image.bundles,
    [DEFAULT_TRUSTED_ROOT, image.trustedRoot],
    ...policies,
    ['docs/evidence/README.md', '# Evidence\n\nSigned receipts (DSSE envelopes holding in-toto statements), one per applied change.\nVerify them with `airlock evidence verify`.\n'],
  ]
  return files.map(([path, content]) => ({path, content}))
}

/** The nearest ancestor of `dir` (itself included) that does not exist yet: what a failed init removes again. */
async function firstMissing(dir: string): Promise<string | null> {
  let missing: string | null = null
  for (let d = dir; ; d = dirname(d)) {
    if (await lstat(d).then(() => true, () => false)) return missing
    missing = d
    if (dirname(d) === d) return missing
  }
}

/**
 * `airlock init DIR`: plans the scaffold; with `apply`, makes the repository in a temporary
 * folder beside DIR — git init, a new evidence key in keys/evidence.key, the scaffold committed
 * with its signed receipt through the pipeline, the trust anchor pinned — and only then renames
 * it into place. A run that fails (no git identity, a key that does not verify) leaves DIR, and
 * everything above it, as it found them.
 */
export async function scaffold(
  dirArg: string,
  opts: {apply: boolean; now: Date; requestedBy: Requester; limits: Limits; toolVersion: string; examplePolicies: string; trustedRoot: string; signBundle: BundleSigner; record?: PipelineContext['record']},
): Promise<{dir: string; outcome: Outcome; keyFile: string | null; imageKeyFile: string | null}> {
  const dir = resolve(dirArg)
  // Nowhere nothing can be written (/proc, /sys, /dev, below a file): refused before any plan.
  await checkWritableFolder(dir, dirArg)
  // A new folder, or an empty real one: never a symbolic link, a file or anything else in its place.
  const st = await lstat(dir).catch(() => null)
  if (st && !st.isDirectory()) throw new AirlockError('TARGET_EXISTS', `${dir}: is not a folder (${st.isSymbolicLink() ? 'a symbolic link' : 'a file or special file'}); init needs a new or empty folder`, {path: dir})
  const entries = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return []
    throw new AirlockError('TARGET_EXISTS', `${dir}: cannot use this directory (${error.code})`, {path: dir})
  })
  if (entries.length > 0) throw new AirlockError('TARGET_EXISTS', `${dir}: not empty; init needs a new or empty directory`, {path: dir})
  const {signer, pem} = generateSigner()
  // An image key as cosign makes them (ECDSA P-256), and the example digests signed with it, so
  // init → sign → promote → rollback works with no cosign installed.
  const image = generateImageKey('ecdsa-p256')
  const bundles: Array<[string, string]> = []
  for (const label of ['v1', 'v2']) bundles.push([signaturePath(EXAMPLE_IMAGE, exampleDigest(label)), await opts.signBundle(EXAMPLE_REPOSITORY, exampleDigest(label), image.key)])
  const files = initFiles(signer, {key: image.key, bundles, trustedRoot: await readFile(opts.trustedRoot, 'utf8')}, opts.now, await examplePolicies(opts.examplePolicies))
  const ctx: PipelineContext = {now: opts.now, reason: 'airlock init', requestedBy: opts.requestedBy, identity: null, anchor: {}, limits: opts.limits, verifier: NO_SIGNATURES, record: opts.record}
  const request = {kind: 'init' as const, files, keyid: signer.keyid, imageKeyid: image.key.keyid}
  if (!opts.apply) return {dir, outcome: await execute(null, {request}, {kind: 'plan'}, ctx), keyFile: null, imageKeyFile: null}
  const created = await firstMissing(dirname(dir))
  await makeFolder(dirname(dir), {label: dirArg})
  const work = await mkdtemp(join(dirname(dir), `.${basename(dir)}.airlock-init-`))
  try {
    await initRepository(work)
    await writePrivateKey(join(work, 'keys', 'evidence.key'), pem)
    await writePrivateKey(join(work, 'keys', 'image.key'), image.pem)
    const repo = await Repository.open(work)
    const outcome = await execute(repo, {request}, {kind: 'apply', signer: async () => signer, toolVersion: opts.toolVersion}, ctx)
    if (outcome.status !== 'applied') throw outcome.status === 'refused' ? outcome.error : new AirlockError('INTERNAL', `init ended ${outcome.status}`)
    // The first commit is where this fleet's trust starts: pinned for every later check.
    await repo.setConfig(ANCHOR_CONFIG, outcome.applied.commit)
    // In place at last: a new folder, or over the empty one that was there.
    await rename(work, dir)
    return {dir, outcome, keyFile: join(dir, 'keys', 'evidence.key'), imageKeyFile: join(dir, 'keys', 'image.key')}
  } catch (error) {
    await rm(work, {recursive: true, force: true})
    if (created) await rm(created, {recursive: true, force: true})
    throw error
  }
}
