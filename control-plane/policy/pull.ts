/**
 * `airlock policy pull`: fetch a scope's bundle from a source (a `policy serve` server, an OCI
 * registry, a static HTTPS bucket: only transport), verify it, keep it in a local cache, and say
 * which policy is in effect and why. When the source cannot give a valid bundle (unreachable,
 * slow, 5xx, garbage, an untrusted certificate, a bundle that fails verification), the
 * offline mode decides, and nothing looser:
 *   fail_closed        → everything denied
 *   cached_with_expiry → the cached bundle until max-age after it was fetched (never past its
 *                        own expiresAt), then everything denied
 *   cached_indefinite  → the cached bundle
 *   default_policy     → the embedded default policy
 * The cache is verified again on every load, under the trust policy in effect now, so an edited
 * cache file is never used, and neither is a bundle whose key has since been removed or that
 * lives longer than the trust policy allows. Only a cache that verifies and has not expired holds
 * the version floor (anti-rollback): a forged bundle with a huge version holds it at most for
 * the bundle lifetime trust.yaml allows, and not at all once its key is removed.
 */
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {DEFAULT_LIMITS, type Limits} from '../limits.js'
import type {TrustPolicy} from '../manifests/models.js'
import {makeFolder, writeFileAtomic} from '../repo/files.js'
import {FetchFailure, httpGet} from '../net/http.js'
import {bundlePath, parseBundle, parseScope, verifyBundle, type BundlePayload} from './bundle.js'

export type OfflineMode = 'fail_closed' | 'cached_with_expiry' | 'cached_indefinite' | 'default_policy'
export const OFFLINE_MODES: OfflineMode[] = ['fail_closed', 'cached_with_expiry', 'cached_indefinite', 'default_policy']

/**
 * Where a bundle comes from: a `policy serve` server, an OCI registry or a static HTTPS bucket.
 * A source only transports bytes: it is never trusted with anything but whether the bundle it
 * last gave is still current, and pullBundle believes that only for a verified cached bundle it
 * gave, by the ETag it gave with it. Everything else is verified here, the same for every source.
 */
export interface PullSource {
  /** Names the source (no secrets): the cache remembers which source an ETag belongs to. */
  readonly id: string
  /** For messages: where the bytes came from. */
  readonly origin: string
  /**
   * The scope's bundle: `unchanged` when it is still the one `etag` names (`etag` is null when
   * this host holds no verified bundle from this source, and then `unchanged` is a failure), else
   * its bytes and the ETag to send next time. Throws FetchFailure or AirlockError.
   */
  fetch(etag: string | null): Promise<{status: 'unchanged'} | {status: 'fetched'; body: string; etag: string | null}>
}

/** `policy serve`: GET /v1/bundles/<scope> with If-None-Match. */
export function serverSource(server: string, scope: string, opts: {ca?: string; apiKey?: string; timeoutMs: number; maxBytes: number}): PullSource {
  const url = new URL(`/v1/bundles/${encodeURIComponent(scope)}`, server)
  return {
    id: url.href,
    origin: url.origin,
    async fetch(etag) {
      const r = await httpGet(url, {ca: opts.ca, apiKey: opts.apiKey, etag, timeoutMs: opts.timeoutMs, maxBytes: opts.maxBytes})
      return r.status === 304 ? {status: 'unchanged'} : {status: 'fetched', body: r.body, etag: r.etag}
    },
  }
}

export interface PullOptions {
  /** Where the bundle comes from: serverSource, ociSource or httpsSource. */
  source: PullSource
  scope: string
  trust: TrustPolicy
  now: Date
  cacheDir: string
  offlineMode: OfflineMode
  maxAgeMs: number
  /** The embedded default policy, for default_policy. */
  defaultPolicy: () => Promise<{policies: number; digest: string}>
  /** Size, depth and clock-skew limits (default DEFAULT_LIMITS). */
  limits?: Limits
}

export interface PullReport {
  scope: string
  effective: 'fetched' | 'unchanged' | 'cached' | 'default' | 'deny-all'
  reason: string
  /** Why the server path failed, when it did (a code from the verifier or the fetch). */
  failure: {code: string; message: string} | null
  version: number | null
  digest: string | null
  fetchedAt: string | null
  expiresAt: string | null
  policies: number
}

interface CacheMeta {
  scope: string
  fetchedAt: string
  etag: string | null
  /** The source the bundle and its ETag came from (PullSource.id); absent in caches made before sources. */
  source?: string
  version: number
  digest: string
}

function cacheFiles(cacheDir: string, scope: string): {bundle: string; meta: string} {
  const name = bundlePath(parseScope(scope)).slice('bundles/'.length).replaceAll('/', '__')
  return {bundle: join(cacheDir, name), meta: join(cacheDir, `${name}.meta.json`)}
}

interface CachedBundle {
  payload: BundlePayload
  digest: string
  meta: CacheMeta
  text: string
  /** Past its expiresAt: served only by cached_indefinite, and never the version floor. */
  expired: boolean
}

/**
 * The cached bundle, verified again now under the current trust policy (signatures, key validity
 * at issue, lifetime, scope; expiry reported, not refused); null when absent, `poisoned` when it
 * no longer verifies.
 */
async function loadCache(opts: Pick<PullOptions, 'cacheDir' | 'scope' | 'trust' | 'now' | 'limits'>): Promise<CachedBundle | {poisoned: string} | null> {
  const files = cacheFiles(opts.cacheDir, opts.scope)
  const limits = opts.limits ?? DEFAULT_LIMITS
  const text = await readFile(files.bundle, 'utf8').catch(() => null)
  if (text === null) return null
  try {
    const meta = JSON.parse(await readFile(files.meta, 'utf8')) as CacheMeta
    const {envelope, payload} = parseBundle(text, files.bundle, limits)
    const v = verifyBundle(envelope, payload, {trust: opts.trust, now: opts.now, scope: opts.scope, source: files.bundle, ignoreExpiry: true, limits})
    if (meta.digest !== v.digest || Number.isNaN(Date.parse(meta.fetchedAt))) return {poisoned: 'the cache metadata does not match the cached bundle'}
    return {payload, digest: v.digest, meta, text, expired: opts.now.getTime() >= Date.parse(payload.expiresAt)}
  } catch (error) {
    return {poisoned: (error as Error).message}
  }
}

export async function pullBundle(opts: PullOptions): Promise<PullReport> {
  const files = cacheFiles(opts.cacheDir, opts.scope)
  const limits = opts.limits ?? DEFAULT_LIMITS
  const cached = await loadCache(opts)
  const good = cached && 'payload' in cached ? cached : null
  // The version floor: only a cache that verifies now and has not expired holds it.
  const floor = good && !good.expired ? good : null
  const base = {scope: opts.scope, failure: null, version: null, digest: null, fetchedAt: null, expiresAt: null, policies: 0}
  const fromCache = (c: NonNullable<typeof good>, effective: PullReport['effective'], reason: string, failure: PullReport['failure'], fetchedAt = c.meta.fetchedAt): PullReport => ({
    ...base,
    effective,
    reason,
    failure,
    version: c.payload.version,
    digest: c.digest,
    fetchedAt,
    expiresAt: c.payload.expiresAt,
    policies: c.payload.policies.length,
  })
  try {
    const source = opts.source
    // The only ETag sent is that of a bundle this host holds verified, from this same source.
    const etag = good && good.meta.source === source.id ? good.meta.etag : null
    const r = await source.fetch(etag)
    const fetchedAt = opts.now.toISOString()
    if (r.status === 'unchanged') {
      // A source that answers "not modified" to anything (a misconfigured bucket, a proxy) makes
      // nothing acceptable: it is believed only about the verified bundle whose ETag was sent.
      if (!good || etag === null) throw new FetchFailure('NOT_MODIFIED_WITHOUT_CACHE', `${source.origin} answered "not modified", but this host sent no ETag of a verified cached bundle from it`)
      if (good.expired) throw new AirlockError('EXPIRED', `the server has nothing newer than the cached bundle, which expired at ${good.payload.expiresAt}`)
      await writeFileAtomic(files.meta, `${JSON.stringify({...good.meta, fetchedAt})}\n`)
      return fromCache(good, 'unchanged', `${source.origin} confirmed the cached bundle (${etag.startsWith('sha256:') ? 'same digest' : '304'})`, null, fetchedAt)
    }
    const where = source.id
    const {envelope, payload} = parseBundle(r.body, where, limits)
    // Anti-downgrade against what this host holds (the floor); an equal version must be the same bundle.
    const v = verifyBundle(envelope, payload, {trust: opts.trust, now: opts.now, scope: opts.scope, minVersion: floor?.payload.version, source: where, limits})
    if (floor && payload.version === floor.payload.version && v.digest !== floor.digest) {
      throw new AirlockError('EQUAL_VERSION_CONFLICT', `${where}: version ${payload.version} again, with different content than the cached one`, {version: payload.version})
    }
    await makeFolder(opts.cacheDir, {mode: 0o700})
    await writeFileAtomic(files.bundle, r.body, 0o600)
    await writeFileAtomic(files.meta, `${JSON.stringify({scope: opts.scope, fetchedAt, etag: r.etag, source: source.id, version: payload.version, digest: v.digest} satisfies CacheMeta)}\n`, 0o600)
    return {...base, effective: 'fetched', reason: `verified v${payload.version} from ${source.origin}`, version: payload.version, digest: v.digest, fetchedAt, expiresAt: payload.expiresAt, policies: payload.policies.length}
  } catch (error) {
    const failure = {code: error instanceof AirlockError || error instanceof FetchFailure ? error.code : 'UNREACHABLE', message: (error as Error).message}
    if (error instanceof AirlockError && error.code === 'INVALID_INPUT') failure.code = 'GARBAGE'
    const poisoned = cached && 'poisoned' in cached ? ` (cache not used: ${cached.poisoned})` : ''
    const why = `${failure.message}; offline mode ${opts.offlineMode}`
    switch (opts.offlineMode) {
      case 'fail_closed':
        return {...base, effective: 'deny-all', reason: `${why}: everything is denied`, failure}
      case 'cached_indefinite':
        return good ? fromCache(good, 'cached', `${why}: using the cached v${good.payload.version}`, failure) : {...base, effective: 'deny-all', reason: `${why}: no valid cache${poisoned}, everything is denied`, failure}
      case 'cached_with_expiry': {
        if (!good) return {...base, effective: 'deny-all', reason: `${why}: no valid cache${poisoned}, everything is denied`, failure}
        const until = Math.min(Date.parse(good.meta.fetchedAt) + opts.maxAgeMs, Date.parse(good.payload.expiresAt))
        return opts.now.getTime() < until
          ? fromCache(good, 'cached', `${why}: using the cached v${good.payload.version} until ${new Date(until).toISOString()}`, failure)
          : {...base, effective: 'deny-all', reason: `${why}: the cached v${good.payload.version} is past ${new Date(until).toISOString()}, everything is denied`, failure}
      }
      case 'default_policy': {
        const d = await opts.defaultPolicy()
        return {...base, effective: 'default', reason: `${why}: using the embedded default policy`, failure, digest: d.digest, policies: d.policies}
      }
    }
  }
}


/**
 * A cached bundle for use now: verified again in full (signatures, key validity, lifetime, scope,
 * and expiry), so a cache edited on disk, past its expiry or signed by a key no longer trusted is
 * never evaluated. Null when there is none.
 */
export async function loadVerifiedCache(cacheDir: string, scope: string, trust: TrustPolicy, now: Date, limits: Limits = DEFAULT_LIMITS): Promise<{payload: BundlePayload; digest: string} | {problem: string} | null> {
  const cached = await loadCache({cacheDir, scope, trust, now, limits})
  if (!cached) return null
  if ('poisoned' in cached) return {problem: cached.poisoned}
  if (cached.expired) return {problem: `the cached ${scope} bundle expired at ${cached.payload.expiresAt}`}
  return {payload: cached.payload, digest: cached.digest}
}
