/**
 * Signed policy bundles in any OCI registry (Docker Hub, GHCR, ECR, Harbor, distribution), with
 * no referrers API needed: each bundle is an OCI artifact (an image manifest whose artifactType is
 * the bundle's payload type, the empty config, one layer holding the DSSE envelope's bytes) under
 * two tags:
 *   - the scope's moving tag (`scopeTag`): global, org-acme, team-acme.infra, user-alice
 *   - an immutable one per version: `<scope tag>-V<version>` (org-acme-V7)
 * The version suffix is `-V` (upper case) because scope ids are lower case: no scope's moving tag
 * can ever equal another's version tag (with `-v`, user:bob-v3's moving tag would be user:bob's
 * v3 tag). The manifest's annotations (scope, version, expiry) are for people browsing the
 * registry; nothing reads them back as authority. Trust is in the DSSE signature, verified by the
 * puller exactly as for a bundle from `policy serve`.
 */
import {AirlockError} from '../../errors.js'
import {MEDIA, RegistryError, TAG, formatOciRef, sha256Of, type Descriptor, type OciRef, type RegistryClient} from '../../../platform/registry/client.js'
import {BUNDLE_PAYLOAD_TYPE, parseScope, type BundlePayload} from '../bundle.js'
import type {PullSource} from '../pull.js'
import type {Scope} from '../source.js'

/** The OCI empty descriptor's blob (`{}`), the config of an artifact with no config. */
export const EMPTY_CONFIG = Buffer.from('{}')

/** The moving tag of a scope: one-to-one (org and team ids never hold a '.', every part is lower case). */
export function scopeTag(scope: Scope): string {
  const tag = scope.kind === 'global' ? 'global' : scope.kind === 'org' ? `org-${scope.org}` : scope.kind === 'team' ? `team-${scope.org}.${scope.team}` : `user-${scope.user}`
  if (!TAG.test(tag)) throw new AirlockError('USAGE', `--scope: the tag for this scope, "${tag.slice(0, 40)}…", is longer than the 128 characters an OCI tag may have`, {field: '--scope'})
  return tag
}

/** The immutable tag of one version of a scope's bundle. */
export function versionTag(scope: Scope, version: number): string {
  const tag = `${scopeTag(scope)}-V${version}`
  if (!TAG.test(tag)) throw new AirlockError('USAGE', `--scope: the version tag "${tag.slice(0, 40)}…" is longer than the 128 characters an OCI tag may have`, {field: '--scope'})
  return tag
}

/** The scope a moving tag names (the inverse of scopeTag), or null. */
export function scopeOfTag(tag: string): string | null {
  if (tag === 'global') return 'global'
  const m = /^(org|team|user)-(.+)$/.exec(tag)
  if (!m) return null
  const text = m[1] === 'team' ? `team:${m[2]!.replace('.', '/')}` : `${m[1]}:${m[2]}`
  try {
    parseScope(text)
    return text
  } catch {
    return null
  }
}

export interface BundleArtifact {
  manifest: Buffer
  digest: string
  config: Descriptor
  layer: Descriptor
}

/** The artifact of one bundle file's exact bytes; the same bytes make the same manifest digest. */
export function bundleArtifact(bundle: Buffer, payload: BundlePayload): BundleArtifact {
  const config = {mediaType: MEDIA.ociEmpty, digest: sha256Of(EMPTY_CONFIG), size: EMPTY_CONFIG.length}
  const layer = {mediaType: BUNDLE_PAYLOAD_TYPE, digest: sha256Of(bundle), size: bundle.length}
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      artifactType: BUNDLE_PAYLOAD_TYPE,
      config,
      layers: [layer],
      // Informational only: a puller verifies the signed payload and never reads these.
      annotations: {'dev.airlock.policy.scope': payload.scope, 'dev.airlock.policy.version': String(payload.version), 'dev.airlock.policy.expires-at': payload.expiresAt},
    }),
  )
  return {manifest, digest: sha256Of(manifest), config, layer}
}

/**
 * The bundle bytes of the artifact at `reference` (a tag or digest), checked step by step; each
 * step names what it stops. `known`: the digest of the artifact this host already holds verified
 * (then a HEAD that still names it is enough, and nothing else is fetched).
 */
export async function readBundleArtifact(client: RegistryClient, ref: OciRef, known: string | null): Promise<{status: 'unchanged'; digest: string} | {status: 'fetched'; digest: string; body: Buffer}> {
  const where = formatOciRef(ref)
  // 1. Which manifest the tag names now: a HEAD (Docker Hub does not count it as a pull). A pinned
  //    reference (@sha256:…) is its own answer. Unchanged since the verified cache: nothing more
  //    is read (the cache is verified again by the caller either way).
  let digest = ref.digest
  if (!digest) {
    const head = await client.resolve(ref.repository, ref.tag!)
    if (!head) throw new RegistryError('NOT_FOUND', `${where}: no such tag`)
    digest = head.digest
  }
  if (digest && known === digest) return {status: 'unchanged', digest}
  // 2. A substituted manifest: it is fetched by the digest named, and its bytes must hash to it
  //    (DIGEST_MISMATCH). A registry that names no digest is read by tag and the digest computed.
  const m = await client.manifest(ref.repository, digest ?? ref.tag!)
  if (!digest && known === m.digest) return {status: 'unchanged', digest: m.digest}
  // 3. Type confusion: an image, an index or any other artifact under the tag is not a bundle.
  const layers = Array.isArray(m.json.layers) ? (m.json.layers as Descriptor[]) : []
  const config = m.json.config as Descriptor | undefined
  const notBundle = (why: string) => new RegistryError('BAD_RESPONSE', `${where} (${m.digest}) is not a policy bundle artifact: ${why}`, {digest: m.digest})
  if (m.mediaType !== MEDIA.ociManifest) throw notBundle(`its media type is ${m.mediaType || 'none'}, not ${MEDIA.ociManifest}`)
  if (m.json.artifactType !== BUNDLE_PAYLOAD_TYPE) throw notBundle(`its artifactType is ${String(m.json.artifactType ?? 'none')}, not ${BUNDLE_PAYLOAD_TYPE}`)
  if (config?.mediaType !== MEDIA.ociEmpty) throw notBundle(`its config is ${String(config?.mediaType ?? 'none')}, not the empty descriptor`)
  if (layers.length !== 1 || layers[0]?.mediaType !== BUNDLE_PAYLOAD_TYPE || typeof layers[0].digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(layers[0].digest)) {
    throw notBundle(`it must hold exactly one layer of type ${BUNDLE_PAYLOAD_TYPE}`)
  }
  // 4. A blob the registry makes huge: fetched within maxRegistryBlobBytes (counted as it
  //    streams, whatever the descriptor's size says), and its bytes must hash to the layer's digest.
  const body = await client.blob(ref.repository, layers[0].digest)
  return {status: 'fetched', digest: m.digest, body}
}

/**
 * A pull source over a registry. `client` makes a client per pull (a client's byte budget and
 * deadline are one command's; a host pulling every 30 s asks again for a token each time). The
 * ETag is the manifest digest.
 */
export function ociSource(ref: OciRef, client: () => RegistryClient): PullSource {
  return {
    id: formatOciRef(ref),
    origin: formatOciRef(ref),
    async fetch(etag) {
      const r = await readBundleArtifact(client(), ref, etag)
      return r.status === 'unchanged' ? {status: 'unchanged'} : {status: 'fetched', body: r.body.toString('utf8'), etag: r.digest}
    },
  }
}

/** What the registry holds under the scope's moving tag now, as a puller would judge it. */
export type RemoteBundle =
  | {state: 'absent'}
  | {state: 'verified'; manifest: string; version: number; digest: string}
  /** There, but no puller would accept it (unsigned, another scope, expired, not a bundle artifact…). */
  | {state: 'unverified'; manifest: string | null; failure: {code: string; message: string}}
  /** Could not be read (unreachable, refused credentials): the plan cannot say. */
  | {state: 'unreadable'; failure: {code: string; message: string}}

export interface TagStep {
  tag: string
  /** create: the tag is new; move: it names another manifest now; keep: it names this one already. */
  action: 'create' | 'move' | 'keep'
  from: string | null
}

export interface OciPublishPlan {
  to: string
  scope: string
  version: number
  expiresAt: string
  /** The bundle's payload digest (what `policy pull` reports), and the artifact's digests. */
  bundleDigest: string
  manifestDigest: string
  layerDigest: string
  size: number
  remote: RemoteBundle
  tags: TagStep[]
  /** Nothing to push: both tags name this artifact already. */
  noop: boolean
}

const failureOf = (error: unknown) => ({code: error instanceof AirlockError ? error.code : 'UNREACHABLE', message: (error as Error).message})

/**
 * Failures that say nothing about what the tag holds: transport, and what the publisher could not
 * read of it (over its own limits, a manifest or blob the tag names gone missing). A newer bundle
 * that verifies may be behind any of these, so the tag is not replaced (unreadable, not unverified).
 */
const TRANSPORT = new Set(['REGISTRY_UNREACHABLE', 'REGISTRY_TIMEOUT', 'REGISTRY_AUTH_REQUIRED', 'REGISTRY_SERVER_ERROR', 'REGISTRY_HTTP_ERROR', 'REGISTRY_REDIRECT_LOOP', 'REGISTRY_TOO_LARGE', 'REGISTRY_NOT_FOUND'])

/**
 * The manifest digest `tag` names now, or null when there is none. A registry that names no digest
 * on HEAD has the manifest read by tag and its digest computed: a check against a planned digest
 * is never skipped.
 */
async function tagDigest(client: RegistryClient, repository: string, tag: string): Promise<string | null> {
  const head = await client.resolve(repository, tag)
  if (!head) return null
  return head.digest ?? (await client.manifest(repository, tag)).digest
}

/**
 * Reads what the moving tag holds and verifies it with `verify` (the puller's own check, without a
 * version floor): absent, verified (its version), unverified (why), or unreadable.
 */
export async function readRemoteBundle(client: RegistryClient, ref: OciRef, verify: (body: Buffer, where: string) => {version: number; digest: string}): Promise<RemoteBundle> {
  let manifest: string | null = null
  try {
    const head = await client.resolve(ref.repository, ref.tag!)
    if (!head) return {state: 'absent'}
    manifest = head.digest
    const r = await readBundleArtifact(client, {...ref, digest: head.digest}, null)
    if (r.status !== 'fetched') throw new AirlockError('INTERNAL', 'an artifact read with no known digest is never unchanged')
    manifest = r.digest
    const v = verify(r.body, formatOciRef(ref))
    return {state: 'verified', manifest, version: v.version, digest: v.digest}
  } catch (error) {
    const failure = failureOf(error)
    if (TRANSPORT.has(failure.code) || !(error instanceof AirlockError)) return {state: 'unreadable', failure}
    return {state: 'unverified', manifest, failure}
  }
}

/**
 * The plan of publishing one verified bundle to `repo` (registry and repository, no tag): which
 * tags are created or moved. Refuses to move the scope's tag back: DOWNGRADE when the registry's
 * bundle verifies and is newer, EQUAL_VERSION_CONFLICT when it has this version with other
 * content, CONFLICT when the immutable version tag holds another artifact. A tag whose bundle does
 * not verify (unsigned, expired, another scope, not a bundle) is replaced.
 */
export async function planOciPublish(
  client: RegistryClient,
  repo: OciRef,
  bundle: {bytes: Buffer; payload: BundlePayload; digest: string; scope: Scope},
  verify: (body: Buffer, where: string) => {version: number; digest: string},
): Promise<OciPublishPlan & {artifact: BundleArtifact}> {
  const artifact = bundleArtifact(bundle.bytes, bundle.payload)
  const moving = {...repo, tag: scopeTag(bundle.scope), digest: null}
  const pinned = {...repo, tag: versionTag(bundle.scope, bundle.payload.version), digest: null}
  const remote = await readRemoteBundle(client, moving, verify)
  const to = formatOciRef({...repo, tag: null, digest: null})
  if (remote.state === 'verified') {
    // Rollback of the fleet's policy by whoever publishes: the registry's scope tag never goes back.
    if (remote.version > bundle.payload.version) {
      throw new AirlockError('DOWNGRADE', `${formatOciRef(moving)} holds v${remote.version}, which verifies; refusing to move it back to v${bundle.payload.version}`, {version: bundle.payload.version, remoteVersion: remote.version})
    }
    if (remote.version === bundle.payload.version && remote.digest !== bundle.digest) {
      throw new AirlockError('EQUAL_VERSION_CONFLICT', `${formatOciRef(moving)} holds another bundle with the same version ${remote.version} (${remote.digest}); refusing to replace it`, {version: remote.version, remoteDigest: remote.digest})
    }
  }
  const existing = await tagDigest(client, repo.repository, pinned.tag)
  if (existing && existing !== artifact.digest) {
    throw new AirlockError('CONFLICT', `${formatOciRef(pinned)} already names ${existing}; a version tag is never moved`, {tag: pinned.tag, remote: existing})
  }
  const movingFrom = remote.state === 'verified' || remote.state === 'unverified' ? remote.manifest : null
  const tags: TagStep[] = [
    {tag: pinned.tag, action: existing ? 'keep' : 'create', from: existing},
    {tag: moving.tag, action: remote.state === 'absent' ? 'create' : movingFrom === artifact.digest ? 'keep' : 'move', from: movingFrom},
  ]
  return {
    to,
    scope: bundle.payload.scope,
    version: bundle.payload.version,
    expiresAt: bundle.payload.expiresAt,
    bundleDigest: bundle.digest,
    manifestDigest: artifact.digest,
    layerDigest: artifact.layer.digest,
    size: bundle.bytes.length,
    remote,
    tags,
    noop: tags.every((t) => t.action === 'keep'),
    artifact,
  }
}

/**
 * Pushes a planned artifact: the blobs, the manifest under its version tag, then (last, so the
 * scope tag never names an artifact without its version tag) under the scope tag, once the scope
 * tag is checked to name still what the plan saw (another publisher in between: CONFLICT).
 */
export async function pushPlanned(client: RegistryClient, repo: OciRef, plan: OciPublishPlan & {artifact: BundleArtifact}, bundle: Buffer): Promise<{pushed: string[]}> {
  const pushed: string[] = []
  // Whether this would move the scope tag back cannot be known: nothing is pushed (fail closed).
  if (plan.remote.state === 'unreadable') throw new AirlockError(plan.remote.failure.code as 'REGISTRY_UNREACHABLE', `${plan.to}: the scope tag cannot be read, so whether this moves it back cannot be checked: ${plan.remote.failure.message}`)
  if (plan.noop) return {pushed}
  await client.pushBlob(repo.repository, EMPTY_CONFIG)
  await client.pushBlob(repo.repository, bundle)
  const [pinned, moving] = plan.tags as [TagStep, TagStep]
  // Each tag is checked again just before it is written (another publisher since the plan):
  // a version tag naming another artifact is never moved, a scope tag that moved is not overwritten.
  // (OCI has no compare-and-swap: a push landing between this check and the PUT is not seen.)
  const pinnedNow = await tagDigest(client, repo.repository, pinned.tag)
  if (pinnedNow !== null && pinnedNow !== plan.artifact.digest) {
    throw new AirlockError('CONFLICT', `${formatOciRef({...repo, tag: pinned.tag})} names ${pinnedNow} since the plan; a version tag is never moved`, {tag: pinned.tag, planned: pinned.from, now: pinnedNow})
  }
  if (pinnedNow === null) {
    await client.pushManifest(repo.repository, pinned.tag, plan.artifact.manifest, MEDIA.ociManifest)
    pushed.push(pinned.tag)
  }
  if (moving.action !== 'keep') {
    const now = await tagDigest(client, repo.repository, moving.tag)
    if (now !== moving.from) {
      throw new AirlockError('CONFLICT', `${formatOciRef({...repo, tag: moving.tag})} names ${now ?? 'nothing'} now, not ${moving.from ?? 'nothing'} as when planned; plan again`, {tag: moving.tag, planned: moving.from, now})
    }
    await client.pushManifest(repo.repository, moving.tag, plan.artifact.manifest, MEDIA.ociManifest)
    pushed.push(moving.tag)
  }
  return {pushed}
}
