/**
 * Builds the embedded example fleet's signed history (scripts/make-example-fleet.js runs it): a
 * fleet repository made the way an operator's is — `airlock init`'s pipeline for the first
 * commit (the trust anchor), then image signatures, promotions and hand edits, each through the
 * one change pipeline, authorized by the fleet's own Cedar policies for principals of verified
 * tokens, signed by a fresh evidence key — whose tip holds the desired state of `source`
 * (its manifests/ and policies/), with its own trust.yaml, image signatures and receipts.
 *
 * Every key (evidence, image, the token issuer's) is made here, in memory, and never written
 * anywhere: once this returns, nothing can sign for the example fleet again.
 */
import {lstat, readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet} from 'jose'
import {Document, parseDocument} from 'yaml'
import {AirlockError} from '../errors.js'
import {generateImageKey, generateSigner, type ImageSigningKey} from '../crypto/keys.js'
import {newTrustDocument, trustEntry} from '../changes/add-key.js'
import {renderEvidenceIndex} from '../evidence/index-md.js'
import {listReceipts, readReceipt} from '../evidence/ledger.js'
import {identityFromJwt, type Identity} from '../identity/jwt.js'
import type {BundleSigner} from '../init/scaffold.js'
import {requireKind} from '../manifests/kinds.js'
import {loadTrust, parseImage} from '../manifests/load.js'
import {EVIDENCE_DIR, IMAGES_DIR, SIGNATURES_DIR, signaturePath, TRUST_FILE, type GoldenImage} from '../manifests/models.js'
import type {Limits} from '../limits.js'
import type {ChangeRequest, Requester} from '../plan/plan.js'
import type {PipelineContext, SignatureVerifier} from '../pipeline/draft.js'
import {execute} from '../pipeline/pipeline.js'
import {initRepository, Repository} from '../repo/repository.js'

/** The example fleet's organization: the one its example policies and test entities are written for. */
export const EXAMPLE_ORG = 'acme'
const ISSUER = 'https://id.example.com'
const AUDIENCE = 'airlock'
const HOUR = 3_600_000

export interface ExampleFleetOptions {
  /** The project root: its manifests/ and policies/ are the desired state the history ends at. */
  source: string
  /** An empty folder the fleet repository is made in. */
  work: string
  /** The first commit's time; each later step one hour on, a stable promotion a day on (its canary soaked). */
  start: Date
  limits: Limits
  toolVersion: string
  /** Makes a Sigstore bundle as `airlock image sign` does (platform/images/sign). */
  signBundle: BundleSigner
  /** The signature checks at a given time (platform/images/policy), as commands hand them in. */
  verifier: (now: Date) => SignatureVerifier
  /** A paragraph for the evidence index about this fleet (default: EXAMPLE_ABOUT). */
  about?: string
}

/** What the example's evidence index says about the fleet (a test regenerates the index with it). */
export const EXAMPLE_ABOUT =
  "This is airlock's embedded example fleet. Its history ships as `examples/fleet.bundle`, made by `scripts/make-example-fleet.js` with keys that were thrown away once it was signed; its first commit, the trust anchor, is pinned in airlock's code (`control-plane/example/anchor.ts`)."


export interface ExampleFleet {
  dir: string
  /** The first commit: where the example's trust starts. */
  anchor: string
  head: string
  commits: number
  evidenceKeyid: string
  imageKeyid: string
  /** The time of the last commit. */
  end: Date
}

/** Who acts in the example's history: principals of tokens a throwaway issuer signs. */
const PEOPLE = {
  ci: {sub: 'ci-acme', email: 'ci@acme.example', roles: ['ci'], mfa_verified: false, requestedBy: {actor: 'ci-acme', via: 'ci', ci: {system: 'example-ci'}}},
  releaseManager: {sub: 'rita', email: 'rita@acme.example', roles: ['release-manager'], mfa_verified: true, requestedBy: {actor: 'rita', via: 'cli'}},
  securityAdmin: {sub: 'sam', email: 'sam@acme.example', roles: ['security-admin'], mfa_verified: true, requestedBy: {actor: 'sam', via: 'cli'}},
} as const satisfies Record<string, {sub: string; email: string; roles: string[]; mfa_verified: boolean; requestedBy: Requester}>
type Person = keyof typeof PEOPLE

/** Every regular file under `dir`/`folder`, as repository paths, sorted. */
async function filesUnder(dir: string, folder: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(dir, rel), {withFileTypes: true}).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return []
      throw error
    })
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = `${rel}/${e.name}`
      if (e.isDirectory()) await walk(path)
      else if (e.isFile()) out.set(path, await readFile(join(dir, path), 'utf8'))
      else throw new AirlockError('INVALID_INPUT', `${path}: is not a regular file or folder; the example fleet holds files only`, {file: path})
    }
  }
  await walk(folder)
  return out
}

/** What a commit's tree holds under `folders`: path → text. */
async function filesAt(repo: Repository, commit: string, folders: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const tree = (await repo.readCommit(commit)).tree
  for (const folder of folders) {
    const entry = await repo.entryAt(tree, folder)
    if (!entry) continue
    for (const path of await repo.changedPaths(null, entry.oid, folder)) out.set(path, (await repo.readFile(commit, path))!.text)
  }
  return out
}

/** The desired state's own files: what the fleet writes itself (trust, signatures) is not taken from the source. */
const ownedByFleet = (path: string) => path === TRUST_FILE || path.startsWith(`${SIGNATURES_DIR}/`)

/** What `airlock init` scaffolds besides trust, images and signatures; everything else comes as later changes. */
const SCAFFOLDED = (path: string) => path.startsWith('policies/') || path.startsWith('manifests/sigstore/') || path.startsWith('manifests/sandboxes/') || path === 'manifests/egress.yaml' || path === 'manifests/tool-policy.yaml'

/** An image's first state: each channel at its rollback target (when it has one), so promotions bring it to the source's. */
function startingImage(text: string): string {
  const doc = parseDocument(text)
  const channels = doc.getIn(['spec', 'channels']) as {items?: Array<{key: unknown}>} | undefined
  for (const item of channels?.items ?? []) {
    const name = String((item.key as {value?: unknown})?.value ?? item.key)
    const previous = doc.getIn(['spec', 'channels', name, 'previous'])
    if (typeof previous === 'string') {
      doc.setIn(['spec', 'channels', name, 'digest'], previous)
      doc.setIn(['spec', 'channels', name, 'previous'], null)
    }
  }
  return doc.toString()
}

/** The digests an image pins (digest and rollback target of every channel). */
function pinnedDigests(image: GoldenImage): string[] {
  return [...new Set(Object.values(image.channels).flatMap((c) => [c.digest, c.previous].filter((d): d is string => typeof d === 'string')))]
}

export async function buildExampleFleet(opts: ExampleFleetOptions): Promise<ExampleFleet> {
  const {limits} = opts
  // The keys: made here, held in memory, never written.
  const {signer} = generateSigner()
  const image: ImageSigningKey = generateImageKey('ecdsa-p256').key
  const issuer = await generateKeyPair('EdDSA', {crv: 'Ed25519'})
  const jwks: JSONWebKeySet = {keys: [{...(await exportJWK(issuer.publicKey)), kid: 'example', alg: 'EdDSA', use: 'sig'}]}
  const identity = async (who: Person, now: Date): Promise<Identity> => {
    const p = PEOPLE[who]
    const iat = Math.floor(now.getTime() / 1000)
    const token = await new SignJWT({email: p.email, org_id: EXAMPLE_ORG, roles: [...p.roles], mfa_verified: p.mfa_verified})
      .setProtectedHeader({alg: 'EdDSA', kid: 'example'})
      .setSubject(p.sub)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 300)
      .sign(issuer.privateKey)
    return identityFromJwt(token, {jwks, issuer: ISSUER, audience: AUDIENCE, now})
  }

  // The desired end state, as the source holds it.
  const source = new Map([...(await filesUnder(opts.source, 'manifests')), ...(await filesUnder(opts.source, 'policies'))])
  const images = [...source].filter(([p]) => p.startsWith(`${IMAGES_DIR}/`)).map(([p, text]) => parseImage(text, p, '', limits))

  let now = new Date(opts.start)
  const signedDigests = new Set<string>()
  const signatureFiles = async (img: GoldenImage, digests: string[]) => {
    const out: Array<{path: string; content: string}> = []
    for (const d of digests) {
      if (signedDigests.has(`${img.name}@${d}`)) continue
      signedDigests.add(`${img.name}@${d}`)
      out.push({path: signaturePath(img.name, d), content: await opts.signBundle(img.repository, d, image)})
    }
    return out
  }

  // 1. The first commit, through init's pipeline: trust (the new keys, the org), the images at
  // their starting pins with signatures, what init scaffolds. It is the trust anchor.
  const trust = newTrustDocument([
    trustEntry('example-evidence', 'evidence', signer.publicKey, signer.keyid, now),
    trustEntry('example-image', 'image', image.publicKey, image.keyid, now, undefined, image.algorithm),
  ])
  trust.setIn(['spec', 'org'], EXAMPLE_ORG)
  trust.commentBefore =
    ' Trust anchors of the embedded example fleet, made by scripts/make-example-fleet.js. Its keys were\n' +
    ' thrown away once its history (examples/fleet.bundle) was signed: nothing can sign for it again.\n' +
    ' In your own fleet, `airlock init` or `airlock keys generate NAME --role evidence --apply` adds keys\n' +
    ' here (public halves only; private keys stay in git-ignored keys/).'
  const initFiles: Array<{path: string; content: string}> = [{path: TRUST_FILE, content: (trust as Document).toString()}]
  for (const img of images) {
    const start = startingImage(img.text)
    initFiles.push({path: img.file, content: start}, ...(await signatureFiles(img, pinnedDigests(parseImage(start, img.file, '', limits)))))
  }
  for (const [path, content] of source) if (SCAFFOLDED(path)) initFiles.push({path, content})
  await initRepository(opts.work)
  const repo = await Repository.open(opts.work)
  let commits = 0
  let anchor: string | null = null
  const run = async (request: ChangeRequest, who: Person | null, reason: string): Promise<string> => {
    const ctx: PipelineContext = {
      now,
      reason,
      requestedBy: who ? {...PEOPLE[who].requestedBy} : {actor: 'example-admin', via: 'cli'},
      identity: who ? await identity(who, now) : null,
      anchor: anchor ? {flag: anchor} : {},
      limits,
      verifier: opts.verifier(now),
    }
    const outcome = await execute(repo, {request}, {kind: 'apply', signer: async () => signer, toolVersion: opts.toolVersion}, ctx)
    if (outcome.status === 'noop') return (await repo.head()).oid!
    if (outcome.status !== 'applied') {
      const error = outcome.status === 'refused' ? outcome.error : null
      throw new AirlockError(error?.code ?? 'INTERNAL', `the example fleet's ${request.kind} (${reason}) ended ${outcome.status}${error ? `: ${error.message}` : ''}`, error?.details ?? {})
    }
    commits++
    return outcome.applied.commit
  }
  anchor = await run({kind: 'init', files: initFiles, keyid: signer.keyid, imageKeyid: image.keyid}, null, 'the embedded example fleet: trust, policies, golden images at their first pins')

  // 2. Each channel the source moved on from its rollback target is promoted there: signed
  // first (by CI) when no channel holds the digest yet, from the channel that holds it otherwise.
  for (const img of images) {
    const state = new Map(Object.entries(parseImage(startingImage(img.text), img.file, '', limits).channels).map(([c, v]) => [c, v.digest]))
    const moves = Object.entries(img.channels).filter(([c, v]) => state.get(c) !== v.digest)
    while (moves.length > 0) {
      // A channel whose target another channel holds goes first (stable from canary, before canary moves on).
      const i = Math.max(0, moves.findIndex(([c, v]) => [...state].some(([o, d]) => o !== c && d === v.digest)))
      const [channel, target] = moves.splice(i, 1)[0]!
      const from = [...state].find(([o, d]) => o !== channel && d === target.digest)?.[0]
      if (!from) {
        for (const f of await signatureFiles(img, [target.digest])) {
          now = new Date(now.getTime() + HOUR)
          await run({kind: 'store-signature', operation: 'image-sign', image: img.name, digest: target.digest, bundle: f.content, details: {keyid: image.keyid, algorithm: image.algorithm}}, 'ci', `${img.name} ${target.digest.slice(7, 19)} built and signed by the release pipeline`)
        }
      }
      const stable = channel === 'stable'
      now = new Date(now.getTime() + (stable ? 24 * HOUR : HOUR))
      await run(from ? {kind: 'promote', image: img.name, to: channel, from} : {kind: 'promote', image: img.name, to: channel, digest: target.digest}, channel === 'canary' ? 'ci' : 'releaseManager', stable ? `${channel} from ${from ?? 'a verified build'}: soaked 24h on canary` : `${channel}: new build`)
      state.set(channel, target.digest)
    }
  }

  // 3. Whatever else the source holds (new kinds of desired state, hand edits), as hand edits:
  // images and their signatures by a release manager, the rest by a security admin.
  const want = new Map([...source].filter(([p]) => !ownedByFleet(p)))
  const head = (await repo.head()).oid!
  const have = await filesAt(repo, head, ['manifests', 'policies'])
  want.set(TRUST_FILE, have.get(TRUST_FILE)!)
  for (const [p, text] of have) if (p.startsWith(`${SIGNATURES_DIR}/`)) want.set(p, text)
  for (const img of images) for (const f of await signatureFiles(img, pinnedDigests(img))) want.set(f.path, f.content)
  const edits = [...new Set([...want.keys(), ...have.keys()])].sort().filter((p) => want.get(p) !== have.get(p)).map((p) => ({path: p, content: want.get(p) ?? null}))
  const isImage = (p: string) => ['GoldenImage', 'ImageSignature', 'ImageSignaturePayload'].includes(requireKind(p, want.get(p) ?? have.get(p) ?? null).kind)
  for (const [group, who] of [[edits.filter((e) => isImage(e.path)), 'releaseManager'], [edits.filter((e) => !isImage(e.path)), 'securityAdmin']] as const) {
    if (group.length === 0) continue
    now = new Date(now.getTime() + HOUR)
    await run({kind: 'change', files: group}, who, 'desired state as the example ships it')
  }

  // 4. The evidence index, generated from the receipts at HEAD, committed like any other change.
  const before = (await repo.head()).oid!
  const receipts = await Promise.all((await listReceipts(repo, before)).map((r) => readReceipt(repo, before, r.path, limits)))
  const index = renderEvidenceIndex({receipts, trust: await loadTrust(repo, before, limits), commit: before, anchor, about: opts.about ?? EXAMPLE_ABOUT})
  now = new Date(now.getTime() + HOUR)
  const last = await run({kind: 'change', files: [{path: `${EVIDENCE_DIR}/README.md`, content: index}]}, 'securityAdmin', 'the evidence index for auditors')
  return {dir: opts.work, anchor: anchor!, head: last, commits, evidenceKeyid: signer.keyid, imageKeyid: image.keyid, end: now}
}
