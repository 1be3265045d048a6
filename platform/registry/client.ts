/**
 * A small OCI distribution client: manifests by digest (their hash checked against the digest
 * asked for), blobs, and the two places cosign keeps signatures of an image:
 * - OCI 1.1 referrers: the referrers API, or the `sha256-<hex>` tag index where the registry has
 *   none; each referrer with a Sigstore bundle artifact type holds the bundle as its layer;
 * - the cosign v2 `sha256-<hex>.sig` tag: a manifest whose layers are simple-signing payloads,
 *   each signature in the `dev.cosignproject.cosign/signature` annotation.
 * A registry decides what it serves, so the client reads it within the command's limits
 * (control-plane/limits.ts): a size cap on every manifest and blob, counted while it streams in; a
 * byte budget for the whole command; caps on the descriptors a manifest lists, on the signature
 * referrers and on the layers of each that are considered; a deadline on each request and one on
 * all of them together. Over a cap is REGISTRY_TOO_LARGE, past a deadline REGISTRY_TIMEOUT, each
 * naming the limit, its value and the flag that raises it. Signatures are fetched one at a time,
 * as the caller asks for the next (`signatures`), so nothing is read past the first that verifies.
 * Redirects are followed a few hops and never in a loop; a bearer token (from the environment) is
 * sent only to the registry itself.
 */
import {createHash} from 'node:crypto'
import {AirlockError, type RegistryReason} from '../../control-plane/errors.js'
import {REGISTRY_LIMIT_FLAGS, type RegistryLimit, type RegistryLimits} from '../../control-plane/limits.js'
import {parseDigestRef} from '../../control-plane/manifests/digest.js'
import {FetchFailure, httpRequest, type HttpResponse} from '../../control-plane/net/http.js'

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  sigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const

const MANIFEST_ACCEPT = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerList].join(', ')
const MAX_REDIRECTS = 5
/** A token service's answer: a token, a lifetime (within the command's byte budget too). */
const MAX_TOKEN_BYTES = 64 * 1024

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
  /** What the registry may make this client read, and how long it may take (from the command's Limits). */
  limits: RegistryLimits
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
    details: Record<string, unknown> = {},
  ) {
    super(`REGISTRY_${reason}`, `${reason}: ${message}`, {reason, ...details})
  }
}

/** A registry over one of the command's caps: which limit, its value, the flag that raises it. */
function overCap(limits: RegistryLimits, limit: RegistryLimit, what: string): RegistryError {
  const flag = REGISTRY_LIMIT_FLAGS[limit]
  return new RegistryError('TOO_LARGE', `${what}: over the ${limit} cap of ${limits[limit]} (${flag} raises it)`, {limit, value: limits[limit], flag})
}

/** A registry past one of the command's deadlines: which, its value, the flag that raises it. */
function pastDeadline(limits: RegistryLimits, limit: 'registryRequestMs' | 'registryDeadlineMs', what: string): RegistryError {
  const flag = REGISTRY_LIMIT_FLAGS[limit]
  const past = limit === 'registryDeadlineMs' ? `the command's registry work ran past its deadline, ${limit} of ${limits[limit]} ms` : `no answer within ${limits[limit]} ms, the ${limit} deadline of one request`
  return new RegistryError('TIMEOUT', `${what}: ${past} (${flag} raises it)`, {limit, value: limits[limit], flag})
}

/** The descriptors a manifest or index lists (`manifests`, `layers`); anything else there is none. */
function listed(json: Record<string, unknown>, key: 'manifests' | 'layers'): Descriptor[] {
  const v = json[key]
  return Array.isArray(v) ? (v as Descriptor[]) : []
}

const namedByDigest = (d: Descriptor) => typeof d?.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(d.digest)
const isBundle = (type: unknown) => typeof type === 'string' && type.startsWith('application/vnd.dev.sigstore.bundle')

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

/** An artifact's place in a registry: `oci://registry/repository[:tag][@sha256:<hex>]`. */
export interface OciRef {
  registry: string
  repository: string
  tag: string | null
  digest: string | null
}

const REPOSITORY = /^[a-z0-9]+([._-]{1,2}[a-z0-9]+)*(\/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*$/
/** The OCI distribution spec's tag grammar. */
export const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/

/**
 * `oci://registry/repository[:tag][@sha256:<hex>]` (the registry host is required; docker.io is
 * Docker Hub's registry-1.docker.io, and a one-part repository there is library/…). `field` names
 * the flag in messages.
 */
export function parseOciRef(text: string, field: string): OciRef {
  const bad = (why: string) => new AirlockError('USAGE', `${field}: "${text}" ${why}`, {field})
  if (!text.startsWith('oci://')) throw bad('is not oci://REGISTRY/REPOSITORY[:TAG]')
  let rest = text.slice('oci://'.length)
  let digest: string | null = null
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = parseDigestRef(rest.slice(at + 1), field).digest
    rest = rest.slice(0, at)
  }
  const slash = rest.indexOf('/')
  if (slash <= 0) throw bad('names no registry host and repository (oci://REGISTRY/REPOSITORY[:TAG])')
  let registry = rest.slice(0, slash)
  let name = rest.slice(slash + 1)
  let tag: string | null = null
  const colon = name.lastIndexOf(':')
  if (colon >= 0) {
    tag = name.slice(colon + 1)
    name = name.slice(0, colon)
    if (!TAG.test(tag)) throw bad(`has the tag "${tag}", which is not a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})`)
  }
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(registry)) throw bad(`names "${registry}", which is not a registry host`)
  if (registry === 'docker.io' || registry === 'index.docker.io') registry = 'registry-1.docker.io'
  if (registry === 'registry-1.docker.io' && !name.includes('/')) name = `library/${name}`
  if (!REPOSITORY.test(name)) throw bad(`names "${name}", which is not a valid repository name`)
  return {registry, repository: name, tag, digest}
}

export function formatOciRef(ref: OciRef): string {
  return `oci://${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
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
  /** The command's deadline for all its registry work, running from when the client is made. */
  private readonly deadline: AbortSignal
  /** Bytes read so far, every response counted against maxRegistryBytes. */
  private received = 0

  constructor(
    readonly registry: string,
    private readonly opts: RegistryOptions,
  ) {
    const host = registry.replace(/:\d+$/, '')
    if (opts.plainHttp && !LOOPBACK.has(host)) throw new AirlockError('USAGE', `--plain-http: only for a registry on the loopback interface, not ${registry}`, {field: '--plain-http'})
    this.origin = `${opts.plainHttp ? 'http' : 'https'}://${registry}`
    this.deadline = AbortSignal.timeout(opts.limits.registryDeadlineMs)
  }

  /**
   * One request within the limits: the body capped by its own limit or by what is left of the
   * command's byte budget, whichever is smaller; the request's deadline and the command's.
   * `cap` is the limit on this kind of response (null: a token service's answer).
   */
  private async send(url: URL, headers: Record<string, string>, cap: 'maxRegistryManifestBytes' | 'maxRegistryBlobBytes' | null, what: string, method: 'GET' | 'HEAD' | 'PUT' | 'POST' = 'GET', body?: Buffer): Promise<HttpResponse> {
    const {limits} = this.opts
    const own = cap ? limits[cap] : MAX_TOKEN_BYTES
    const left = Math.max(0, limits.maxRegistryBytes - this.received)
    try {
      const res = await httpRequest(url, {method, headers, ...(body ? {body} : {}), ca: this.opts.ca, timeoutMs: limits.registryRequestMs, maxBytes: Math.min(own, left), signal: this.deadline})
      this.received += res.body.length
      return res
    } catch (error) {
      if (!(error instanceof FetchFailure)) throw new RegistryError('UNREACHABLE', `${what}: ${(error as Error).message}`)
      if (error.code === 'DEADLINE') throw pastDeadline(limits, 'registryDeadlineMs', what)
      if (error.code === 'TIMEOUT') throw pastDeadline(limits, 'registryRequestMs', what)
      if (error.code === 'TOO_LARGE') {
        if (left < own) throw overCap(limits, 'maxRegistryBytes', `${what}: more bytes than this command may read from the registry`)
        if (cap) throw overCap(limits, cap, `${what}: the answer is larger than ${own} bytes`)
        throw new RegistryError('BAD_RESPONSE', `${what}: the answer is larger than ${own} bytes`)
      }
      throw new RegistryError('UNREACHABLE', error.message)
    }
  }

  /** A manifest or index listing more descriptors than the cap is refused before any is fetched. */
  private checkDescriptors(json: Record<string, unknown>, what: string): void {
    const n = listed(json, 'manifests').length + listed(json, 'layers').length
    if (n > this.opts.limits.maxRegistryDescriptors) throw overCap(this.opts.limits, 'maxRegistryDescriptors', `${what} lists ${n} descriptors`)
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
    const answer = await this.send(realm, headers, null, `the token service ${realm.origin}${realm.pathname}`)
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
  private get(path: string, accept: string, cap: 'maxRegistryManifestBytes' | 'maxRegistryBlobBytes'): Promise<HttpResponse & {url: string}> {
    return this.call('GET', path, {accept, cap, ok: [200]})
  }

  /**
   * One request to the registry: the token flow on a 401 (the push scope for a PUT or POST),
   * redirects followed for GET and HEAD only (at most five hops, never to a URL already visited),
   * any status but `ok` an error naming it. `path` may be an absolute URL on the registry's own
   * origin (an upload's Location); anywhere else is refused.
   */
  private async call(
    method: 'GET' | 'HEAD' | 'PUT' | 'POST',
    path: string,
    o: {accept: string; cap: 'maxRegistryManifestBytes' | 'maxRegistryBlobBytes'; ok: number[]; body?: Buffer; contentType?: string},
  ): Promise<HttpResponse & {url: string}> {
    let url = new URL(path, this.origin)
    const own = new URL(this.origin).origin
    if (url.origin !== own) throw new RegistryError('BAD_RESPONSE', `${this.origin} sent the client to ${url.origin}; refused`)
    const pushing = method === 'PUT' || method === 'POST'
    const scope = pushing ? scopeOf(url.pathname).replace(/:pull$/, ':pull,push') : scopeOf(url.pathname)
    const seen = new Set<string>()
    for (let hop = 0; ; hop++) {
      if (seen.has(url.href)) throw new RegistryError('REDIRECT_LOOP', `${url.href} redirects back to itself`)
      if (hop > MAX_REDIRECTS) throw new RegistryError('REDIRECT_LOOP', `more than ${MAX_REDIRECTS} redirects from ${this.origin}${path}`)
      seen.add(url.href)
      const headers: Record<string, string> = {accept: o.accept}
      if (o.contentType) headers['content-type'] = o.contentType
      const auth = this.tokens.get(scope) ?? (this.opts.token ? `Bearer ${this.opts.token}` : undefined)
      // Only the registry itself sees a token, never a redirect's target (a blob store).
      if (auth && url.origin === own) headers.authorization = auth
      const res = await this.send(url, headers, o.cap, `${method === 'GET' ? '' : `${method} `}${url.href}`, method, o.body)
      if (!pushing && [301, 302, 303, 307, 308].includes(res.status)) {
        const location = res.headers.location
        if (!location) throw new RegistryError('BAD_RESPONSE', `${url.href} answered ${res.status} without a Location`)
        const next = new URL(location, url)
        if (next.protocol !== 'https:' && !(next.protocol === 'http:' && LOOPBACK.has(next.hostname))) throw new RegistryError('BAD_RESPONSE', `${url.href} redirects to ${next.protocol} ${next.host}, refused`)
        url = next
        continue
      }
      if (o.ok.includes(res.status)) return {...res, url: url.href}
      if (res.status === 401 && url.origin === own && !this.tokens.has(scope)) {
        // The token flow (Docker Hub, GHCR, Harbor, Quay, ECR): fetch a token, ask again once.
        this.tokens.set(scope, await this.fetchToken(url, res, scope))
        seen.delete(url.href)
        hop--
        continue
      }
      if (res.status === 401 || res.status === 403) {
        throw new RegistryError('AUTH_REQUIRED', `${method === 'GET' ? '' : `${method} `}${url.href} answered ${res.status}${this.tokens.has(scope) ? ' to the token its token service gave' : this.opts.token ? ' to the token given' : ''}; give credentials (AIRLOCK_REGISTRY_USER and AIRLOCK_REGISTRY_PASSWORD, or docker login) or AIRLOCK_REGISTRY_TOKEN`)
      }
      if (res.status === 404) throw new RegistryError('NOT_FOUND', `${url.href}: not found`)
      throw new RegistryError(res.status >= 500 ? 'SERVER_ERROR' : 'HTTP_ERROR', `${method === 'GET' ? '' : `${method} `}${url.href} answered HTTP ${res.status}`)
    }
  }

  /**
   * What `reference` (a tag or a digest) names, by a HEAD: its digest (Docker-Content-Digest,
   * null when the registry sends none), media type and size; null when there is nothing there.
   * Nothing a HEAD says is trusted: a digest it names is fetched by that digest and checked.
   */
  async resolve(repository: string, reference: string): Promise<{digest: string | null; mediaType: string; size: number} | null> {
    try {
      const res = await this.call('HEAD', `/v2/${repository}/manifests/${reference}`, {accept: MANIFEST_ACCEPT, cap: 'maxRegistryManifestBytes', ok: [200]})
      const digest = String(res.headers['docker-content-digest'] ?? '')
      return {digest: /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : null, mediaType: String(res.headers['content-type'] ?? '').split(';')[0]!.trim(), size: Number(res.headers['content-length'] ?? -1)}
    } catch (error) {
      if (error instanceof RegistryError && error.reason === 'NOT_FOUND') return null
      throw error
    }
  }

  /** Whether the registry holds the blob `digest` (a HEAD). */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    try {
      await this.call('HEAD', `/v2/${repository}/blobs/${digest}`, {accept: '*/*', cap: 'maxRegistryBlobBytes', ok: [200]})
      return true
    } catch (error) {
      if (error instanceof RegistryError && error.reason === 'NOT_FOUND') return false
      throw error
    }
  }

  /** Uploads a blob in one piece (POST, then PUT with its digest), unless the registry holds it already. */
  async pushBlob(repository: string, bytes: Buffer): Promise<{digest: string; size: number; uploaded: boolean}> {
    const digest = sha256Of(bytes)
    if (await this.hasBlob(repository, digest)) return {digest, size: bytes.length, uploaded: false}
    const start = await this.call('POST', `/v2/${repository}/blobs/uploads/`, {accept: '*/*', cap: 'maxRegistryManifestBytes', ok: [202]})
    const location = start.headers.location
    if (!location) throw new RegistryError('BAD_RESPONSE', `${start.url} started an upload without a Location`)
    const put = new URL(location, start.url)
    put.searchParams.set('digest', digest)
    await this.call('PUT', put.href, {accept: '*/*', cap: 'maxRegistryManifestBytes', ok: [201], body: bytes, contentType: 'application/octet-stream'})
    return {digest, size: bytes.length, uploaded: true}
  }

  /** Puts a manifest under `reference` (a tag or its digest); returns its digest, checked against what the registry says it stored. */
  async pushManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const digest = sha256Of(bytes)
    const res = await this.call('PUT', `/v2/${repository}/manifests/${reference}`, {accept: '*/*', cap: 'maxRegistryManifestBytes', ok: [201], body: bytes, contentType: mediaType})
    const stored = res.headers['docker-content-digest']
    if (typeof stored === 'string' && stored !== digest) throw new AirlockError('DIGEST_MISMATCH', `${this.registry}/${repository}:${reference}: the registry says it stored ${stored}, the manifest sent is ${digest}`, {asked: digest, got: stored})
    return digest
  }

  /** The manifest at `reference` (a digest or a tag); by digest, its bytes must hash to it. */
  async manifest(repository: string, reference: string): Promise<{mediaType: string; digest: string; bytes: Buffer; json: Record<string, unknown>}> {
    const res = await this.get(`/v2/${repository}/manifests/${reference}`, MANIFEST_ACCEPT, 'maxRegistryManifestBytes')
    const digest = sha256Of(res.body)
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new AirlockError('DIGEST_MISMATCH', `${this.registry}/${repository}@${reference}: the registry answered with a manifest whose sha256 is ${digest}; refused`, {asked: reference, got: digest})
    }
    const json = parseJson<Record<string, unknown>>(res.body, `the manifest ${reference}`)
    this.checkDescriptors(json, `${this.registry}/${repository} manifest ${reference}`)
    const mediaType = (typeof json.mediaType === 'string' ? json.mediaType : String(res.headers['content-type'] ?? '')).split(';')[0]!.trim()
    return {mediaType, digest, bytes: res.body, json}
  }

  /** A blob by digest, its bytes checked against it. */
  async blob(repository: string, digest: string): Promise<Buffer> {
    const res = await this.get(`/v2/${repository}/blobs/${digest}`, '*/*', 'maxRegistryBlobBytes')
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
      const res = await this.get(`/v2/${repository}/referrers/${digest}`, MEDIA.ociIndex, 'maxRegistryManifestBytes')
      const index = parseJson<Record<string, unknown>>(res.body, 'the referrers index')
      this.checkDescriptors(index, `${this.registry}/${repository} referrers index of ${digest}`)
      return {via: 'referrers-api', descriptors: listed(index, 'manifests')}
    } catch (error) {
      if (!(error instanceof RegistryError && error.reason === 'NOT_FOUND')) throw error
    }
    try {
      const tagged = await this.manifest(repository, digest.replace(':', '-'))
      return {via: 'referrers-tag', descriptors: listed(tagged.json, 'manifests')}
    } catch (error) {
      if (error instanceof RegistryError && error.reason === 'NOT_FOUND') return null
      throw error
    }
  }

  /**
   * The signatures of `ref` the registry holds, in either cosign layout, one at a time: each
   * manifest and blob is fetched only when the caller asks for the next signature, so nothing is
   * read past the one it stops at. Counts are checked before anything they list is fetched: the
   * signature referrers (maxRegistryReferrers), and the signature layers of each referrer and of
   * the `.sig` manifest (maxRegistryLayers). A bundle listed again (by digest) is not fetched again.
   */
  async *signatures(ref: ImageRef): AsyncGenerator<FoundSignature> {
    const {limits} = this.opts
    const where = `${this.registry}/${ref.repository}@${ref.digest}`
    const refs = await this.referrers(ref.repository, ref.digest)
    // A referrer is named by its digest: anything else in the index (a tag, text) is no referrer.
    const referrers = (refs?.descriptors ?? []).filter((d) => namedByDigest(d) && isBundle(d.artifactType))
    if (referrers.length > limits.maxRegistryReferrers) throw overCap(limits, 'maxRegistryReferrers', `${where}: the registry lists ${referrers.length} signature referrers`)
    const tried = new Set<string>()
    for (const d of referrers) {
      const m = await this.manifest(ref.repository, d.digest)
      const subject = (m.json.subject as Descriptor | undefined)?.digest
      if (subject !== undefined && subject !== ref.digest) continue
      const layers = listed(m.json, 'layers').filter((l) => namedByDigest(l) && isBundle(l.mediaType))
      if (layers.length > limits.maxRegistryLayers) throw overCap(limits, 'maxRegistryLayers', `${where}: the referrer ${d.digest} holds ${layers.length} signature layers`)
      for (const layer of layers) {
        if (tried.has(layer.digest)) continue
        tried.add(layer.digest)
        yield {layout: 'referrer', via: refs!.via, manifest: d.digest, bundleText: (await this.blob(ref.repository, layer.digest)).toString('utf8')}
      }
    }
    const tag = `${ref.digest.replace(':', '-')}.sig`
    let sig: Awaited<ReturnType<RegistryClient['manifest']>> | null = null
    try {
      sig = await this.manifest(ref.repository, tag)
    } catch (error) {
      if (!(error instanceof RegistryError && error.reason === 'NOT_FOUND')) throw error
    }
    const layers = listed(sig?.json ?? {}, 'layers').filter((l) => l?.mediaType === MEDIA.simpleSigning && l.annotations?.['dev.cosignproject.cosign/signature'] && namedByDigest(l))
    if (layers.length > limits.maxRegistryLayers) throw overCap(limits, 'maxRegistryLayers', `${this.registry}/${ref.repository}:${tag} holds ${layers.length} signature layers`)
    for (const layer of layers) {
      const a = layer.annotations!
      yield {
        layout: 'sig-tag',
        tag,
        payload: await this.blob(ref.repository, layer.digest),
        signature: a['dev.cosignproject.cosign/signature']!,
        ...(a['dev.sigstore.cosign/certificate'] ? {certificate: a['dev.sigstore.cosign/certificate']} : {}),
        ...(a['dev.sigstore.cosign/chain'] ? {chain: a['dev.sigstore.cosign/chain']} : {}),
        ...(a['dev.sigstore.cosign/bundle'] ? {rekorBundle: a['dev.sigstore.cosign/bundle']} : {}),
      }
    }
  }
}
