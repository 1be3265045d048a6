/**
 * A small OCI distribution client: manifests by digest (their hash checked against the digest
 * asked for), blobs, and the two places cosign keeps signatures of an image:
 * - OCI 1.1 referrers: the referrers API, or the `sha256-<hex>` tag index where the registry has
 *   none; each referrer with a Sigstore bundle artifact type holds the bundle as its layer;
 * - the cosign v2 `sha256-<hex>.sig` tag: a manifest whose layers are simple-signing payloads,
 *   each signature in the `dev.cosignproject.cosign/signature` annotation.
 * Every response has a deadline and a size cap; redirects are followed a few hops and never in a
 * loop; a bearer token (from the environment) is sent only to the registry itself.
 */
import {createHash} from 'node:crypto'
import {AirlockError, type RegistryReason} from '../../control-plane/errors.js'
import {parseDigestRef} from '../../control-plane/manifests/digest.js'
import {FetchFailure, httpRequest, type HttpResponse} from '../../control-plane/net/http.js'

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  sigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
} as const

const MANIFEST_ACCEPT = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerList].join(', ')
const MAX_REDIRECTS = 5

export interface ImageRef {
  registry: string
  repository: string
  digest: string
}

/** A user name and password (or identity token) for a registry's token flow. */
export interface RegistryCredentials {
  username: string
  password: string
  /** Where they came from, for messages (never the secret). */
  source: string
}

export interface RegistryOptions {
  /** Bearer token sent to the registry (AIRLOCK_REGISTRY_TOKEN). */
  token?: string
  /** Credentials for the token flow, asked for only when the registry challenges; null: anonymous. */
  credentials?: () => Promise<RegistryCredentials | null>
  ca?: string
  /** Plain HTTP, allowed only for a registry on the loopback interface. */
  plainHttp?: boolean
  timeoutMs: number
  maxBytes: number
}

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  artifactType?: string
  annotations?: Record<string, string>
}

export type FoundSignature =
  | {layout: 'referrer'; via: 'referrers-api' | 'referrers-tag'; manifest: string; bundleText: string}
  | {layout: 'sig-tag'; tag: string; payload: Buffer; signature: string; certificate?: string; chain?: string; rekorBundle?: string}

export class RegistryError extends AirlockError {
  constructor(
    readonly reason: RegistryReason,
    message: string,
  ) {
    super(`REGISTRY_${reason}`, `${reason}: ${message}`, {reason})
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1'])

/** `registry/repository@sha256:<hex>`; a reference without a registry host is Docker Hub's. */
export function parseImageRef(ref: string): ImageRef {
  const at = ref.lastIndexOf('@')
  if (at < 0) throw new AirlockError('NOT_PINNED', `REF: "${ref}" has no digest; a tag is never a pin: use repo@sha256:<64 hex>`, {field: 'REF'})
  const {digest} = parseDigestRef(ref.slice(at + 1), 'REF')
  const name = ref.slice(0, at)
  const slash = name.indexOf('/')
  const first = slash < 0 ? '' : name.slice(0, slash)
  const hasHost = first.includes('.') || first.includes(':') || first === 'localhost'
  const registry = hasHost ? first : 'registry-1.docker.io'
  let repository = hasHost ? name.slice(slash + 1) : name
  if (!hasHost && !repository.includes('/')) repository = `library/${repository}`
  if (!/^[a-z0-9]+([._-]{1,2}[a-z0-9]+)*(\/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*$/.test(repository)) throw new AirlockError('INVALID_INPUT', `REF: "${repository}" is not a valid repository name`, {field: 'REF'})
  return {registry, repository, digest}
}

/** The pull scope of a /v2/<repository>/… path. */
function scopeOf(path: string): string {
  const m = /^\/v2\/(.+?)\/(?:manifests|blobs|referrers|tags)\//.exec(path)
  return m ? `repository:${m[1]}:pull` : 'registry:catalog:*'
}

export function sha256Of(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    throw new RegistryError('BAD_RESPONSE', `${what} is not JSON`)
  }
}

/** A `WWW-Authenticate` challenge: its scheme and its auth-params (RFC 7235). */
export function parseChallenge(header: string): {scheme: string; params: Record<string, string>} | null {
  const m = /^\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*(.*)$/.exec(header)
  if (!m) return null
  const params: Record<string, string> = Object.create(null) as Record<string, string>
  const re = /([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/y
  const rest = m[2]!
  for (let at = 0; at < rest.length; ) {
    re.lastIndex = at
    const p = re.exec(rest)
    if (!p) return null
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!
    at = re.lastIndex
  }
  return {scheme: m[1]!.toLowerCase(), params}
}

export class RegistryClient {
  private readonly origin: string
  /** Authorization from the registry's token flow (`Bearer …` or `Basic …`), by scope, for the life of the command. */
  private readonly tokens = new Map<string, string>()

  constructor(
    readonly registry: string,
    private readonly opts: RegistryOptions,
  ) {
    const host = registry.replace(/:\d+$/, '')
    if (opts.plainHttp && !LOOPBACK.has(host)) throw new AirlockError('USAGE', `--plain-http: only for a registry on the loopback interface, not ${registry}`, {field: '--plain-http'})
    this.origin = `${opts.plainHttp ? 'http' : 'https'}://${registry}`
  }

  /**
   * The Authorization for `scope`: a bearer token from the realm the registry's challenge names. Credentials, if
   * any, go only to a realm on HTTPS (or on loopback) and never anywhere else.
   */
  private async fetchToken(url: URL, res: HttpResponse, scope: string): Promise<string> {
    const header = res.headers['www-authenticate']
    const challenge = typeof header === 'string' ? parseChallenge(header) : null
    if (!challenge) throw new RegistryError('AUTH_REQUIRED', `${url.href} answered 401 without a WWW-Authenticate challenge; give AIRLOCK_REGISTRY_TOKEN`)
    const credentials = (await this.opts.credentials?.()) ?? null
    if (challenge.scheme === 'basic') {
      if (!credentials) throw new RegistryError('AUTH_REQUIRED', `${url.href} asks for a user name and password; set AIRLOCK_REGISTRY_USER and AIRLOCK_REGISTRY_PASSWORD or run docker login`)
      if (url.protocol !== 'https:' && !LOOPBACK.has(url.hostname)) throw new RegistryError('AUTH_REQUIRED', `${url.href} asks for a password over plain HTTP; refused`)
      return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) throw new RegistryError('AUTH_REQUIRED', `${url.href} answered 401 with a ${challenge.scheme} challenge airlock cannot answer`)
    let realm: URL
    try {
      realm = new URL(challenge.params.realm)
    } catch {
      throw new RegistryError('BAD_RESPONSE', `${url.href}: the token realm "${challenge.params.realm}" is not a URL`)
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && LOOPBACK.has(realm.hostname))) {
      throw new RegistryError('AUTH_REQUIRED', `${url.href} names a token service on plain HTTP (${realm.origin}); refused: credentials and tokens go over HTTPS only`)
    }
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service)
    realm.searchParams.set('scope', challenge.params.scope ?? scope)
    const headers: Record<string, string> = {accept: 'application/json'}
    if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
    let answer: HttpResponse
    try {
      answer = await httpRequest(realm, {headers, ca: this.opts.ca, timeoutMs: this.opts.timeoutMs, maxBytes: 64 * 1024})
    } catch (error) {
      const code = error instanceof FetchFailure ? error.code : 'UNREACHABLE'
      throw new RegistryError(code === 'TIMEOUT' ? 'TIMEOUT' : 'UNREACHABLE', `the token service ${realm.origin}: ${(error as Error).message}`)
    }
    if (answer.status === 401 || answer.status === 403) {
      throw new RegistryError('AUTH_REQUIRED', `the token service ${realm.origin}${realm.pathname} refused ${credentials ? `the credentials from ${credentials.source}` : 'an anonymous request'} (HTTP ${answer.status})`)
    }
    if (answer.status !== 200) throw new RegistryError(answer.status >= 500 ? 'SERVER_ERROR' : 'HTTP_ERROR', `the token service ${realm.origin}${realm.pathname} answered HTTP ${answer.status}`)
    const body = parseJson<{token?: unknown; access_token?: unknown}>(answer.body, `the token service's answer`)
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : null
    if (!token) throw new RegistryError('BAD_RESPONSE', `the token service ${realm.origin} answered without a token`)
    return `Bearer ${token}`
  }

  /** GET with redirects followed (at most five hops, never to a URL already visited). */
  private async get(path: string, accept: string): Promise<HttpResponse & {url: string}> {
    let url = new URL(path, this.origin)
    const seen = new Set<string>()
    for (let hop = 0; ; hop++) {
      if (seen.has(url.href)) throw new RegistryError('REDIRECT_LOOP', `${url.href} redirects back to itself`)
      if (hop > MAX_REDIRECTS) throw new RegistryError('REDIRECT_LOOP', `more than ${MAX_REDIRECTS} redirects from ${this.origin}${path}`)
      seen.add(url.href)
      const headers: Record<string, string> = {accept}
      const scope = scopeOf(path)
      const auth = this.tokens.get(scope) ?? (this.opts.token ? `Bearer ${this.opts.token}` : undefined)
      // Only the registry itself sees a token, never a redirect's target (a blob store).
      if (auth && url.origin === new URL(this.origin).origin) headers.authorization = auth
      let res: HttpResponse
      try {
        res = await httpRequest(url, {headers, ca: this.opts.ca, timeoutMs: this.opts.timeoutMs, maxBytes: this.opts.maxBytes})
      } catch (error) {
        const code = error instanceof FetchFailure ? error.code : 'UNREACHABLE'
        throw new RegistryError(code === 'TIMEOUT' ? 'TIMEOUT' : code === 'TOO_LARGE' ? 'TOO_LARGE' : 'UNREACHABLE', (error as Error).message)
      }
      if ([301, 302, 303, 307, 308].includes(res.status)) {
        const location = res.headers.location
        if (!location) throw new RegistryError('BAD_RESPONSE', `${url.href} answered ${res.status} without a Location`)
        const next = new URL(location, url)
        if (next.protocol !== 'https:' && !(next.protocol === 'http:' && LOOPBACK.has(next.hostname))) throw new RegistryError('BAD_RESPONSE', `${url.href} redirects to ${next.protocol} ${next.host}, refused`)
        url = next
        continue
      }
      if (res.status === 200) return {...res, url: url.href}
      if (res.status === 401 && url.origin === new URL(this.origin).origin && !this.tokens.has(scope)) {
        // The token flow (Docker Hub, GHCR, Harbor, Quay, ECR): fetch a token, ask again once.
        this.tokens.set(scope, await this.fetchToken(url, res, scope))
        seen.delete(url.href)
        hop--
        continue
      }
      if (res.status === 401 || res.status === 403) {
        throw new RegistryError('AUTH_REQUIRED', `${url.href} answered ${res.status}${this.tokens.has(scope) ? ' to the token its token service gave' : this.opts.token ? ' to the token given' : ''}; give credentials (AIRLOCK_REGISTRY_USER and AIRLOCK_REGISTRY_PASSWORD, or docker login) or AIRLOCK_REGISTRY_TOKEN`)
      }
      if (res.status === 404) throw new RegistryError('NOT_FOUND', `${url.href}: not found`)
      throw new RegistryError(res.status >= 500 ? 'SERVER_ERROR' : 'HTTP_ERROR', `${url.href} answered HTTP ${res.status}`)
    }
  }

  /** The manifest at `reference` (a digest or a tag); by digest, its bytes must hash to it. */
  async manifest(repository: string, reference: string): Promise<{mediaType: string; digest: string; bytes: Buffer; json: Record<string, unknown>}> {
    const res = await this.get(`/v2/${repository}/manifests/${reference}`, MANIFEST_ACCEPT)
    const digest = sha256Of(res.body)
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new AirlockError('DIGEST_MISMATCH', `${this.registry}/${repository}@${reference}: the registry answered with a manifest whose sha256 is ${digest}; refused`, {asked: reference, got: digest})
    }
    const json = parseJson<Record<string, unknown>>(res.body, `the manifest ${reference}`)
    const mediaType = (typeof json.mediaType === 'string' ? json.mediaType : String(res.headers['content-type'] ?? '')).split(';')[0]!.trim()
    return {mediaType, digest, bytes: res.body, json}
  }

  /** A blob by digest, its bytes checked against it. */
  async blob(repository: string, digest: string): Promise<Buffer> {
    const res = await this.get(`/v2/${repository}/blobs/${digest}`, '*/*')
    const got = sha256Of(res.body)
    if (got !== digest) throw new AirlockError('DIGEST_MISMATCH', `${this.registry}/${repository} blob ${digest}: the registry answered with bytes whose sha256 is ${got}; refused`, {asked: digest, got})
    return res.body
  }

  /**
   * Manifests that refer to `digest` (OCI 1.1): the referrers API, else the `sha256-<hex>` tag
   * index that clients keep where the registry has no referrers API.
   */
  async referrers(repository: string, digest: string): Promise<{via: 'referrers-api' | 'referrers-tag'; descriptors: Descriptor[]} | null> {
    try {
      const res = await this.get(`/v2/${repository}/referrers/${digest}`, MEDIA.ociIndex)
      const index = parseJson<{manifests?: Descriptor[]}>(res.body, 'the referrers index')
      return {via: 'referrers-api', descriptors: Array.isArray(index.manifests) ? index.manifests : []}
    } catch (error) {
      if (!(error instanceof RegistryError && error.reason === 'NOT_FOUND')) throw error
    }
    try {
      const tagged = await this.manifest(repository, digest.replace(':', '-'))
      const manifests = tagged.json.manifests
      return {via: 'referrers-tag', descriptors: Array.isArray(manifests) ? (manifests as Descriptor[]) : []}
    } catch (error) {
      if (error instanceof RegistryError && error.reason === 'NOT_FOUND') return null
      throw error
    }
  }

  /** Every signature of `ref` the registry holds, in either cosign layout. */
  async findSignatures(ref: ImageRef): Promise<FoundSignature[]> {
    const found: FoundSignature[] = []
    const refs = await this.referrers(ref.repository, ref.digest)
    const digest = (d: Descriptor) => typeof d?.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(d.digest)
    for (const d of refs?.descriptors ?? []) {
      // A referrer is named by its digest: anything else in the index (a tag, text) is no referrer.
      if (!digest(d) || !(d.artifactType ?? '').startsWith('application/vnd.dev.sigstore.bundle')) continue
      const m = await this.manifest(ref.repository, d.digest)
      const subject = (m.json.subject as Descriptor | undefined)?.digest
      if (subject !== undefined && subject !== ref.digest) continue
      for (const layer of (m.json.layers as Descriptor[] | undefined) ?? []) {
        if (!digest(layer) || typeof layer.mediaType !== 'string' || !layer.mediaType.startsWith('application/vnd.dev.sigstore.bundle')) continue
        found.push({layout: 'referrer', via: refs!.via, manifest: d.digest, bundleText: (await this.blob(ref.repository, layer.digest)).toString('utf8')})
      }
    }
    const tag = `${ref.digest.replace(':', '-')}.sig`
    let sig: Awaited<ReturnType<RegistryClient['manifest']>> | null = null
    try {
      sig = await this.manifest(ref.repository, tag)
    } catch (error) {
      if (!(error instanceof RegistryError && error.reason === 'NOT_FOUND')) throw error
    }
    for (const layer of (sig?.json.layers as Descriptor[] | undefined) ?? []) {
      const signature = layer.annotations?.['dev.cosignproject.cosign/signature']
      if (layer.mediaType !== MEDIA.simpleSigning || !signature) continue
      const a = layer.annotations!
      found.push({
        layout: 'sig-tag',
        tag,
        payload: await this.blob(ref.repository, layer.digest),
        signature,
        ...(a['dev.sigstore.cosign/certificate'] ? {certificate: a['dev.sigstore.cosign/certificate']} : {}),
        ...(a['dev.sigstore.cosign/chain'] ? {chain: a['dev.sigstore.cosign/chain']} : {}),
        ...(a['dev.sigstore.cosign/bundle'] ? {rekorBundle: a['dev.sigstore.cosign/bundle']} : {}),
      })
    }
    return found
  }
}
