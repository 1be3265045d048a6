/**
 * A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
 * its storage in a temporary folder, and pushes over the OCI distribution HTTP API, as cosign
 * itself pushes (Debian's skopeo cannot sign with Sigstore).
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {createHash, createPrivateKey, randomUUID} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {createServer as createHttpServer} from 'node:http'
import {createServer} from 'node:net'
import {execa} from 'execa'
import {SignJWT} from 'jose'
import {join} from 'node:path'
import {tempDir} from './helpers.js'

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json'
/** Debian's docker-registry; AIRLOCK_DOCKER_REGISTRY names another binary (or a missing one, to test the skip). */
const BINARY = process.env.AIRLOCK_DOCKER_REGISTRY ?? '/usr/bin/docker-registry'

/**
 * Whether the registry tests run: when Debian's docker-registry is installed, or always when
 * AIRLOCK_REQUIRE_REGISTRY=1 (which .ci/run sets, so CI can never skip them: without the binary
 * they fail there). On a machine without it they are skipped with one line saying why.
 */
export const REGISTRY_REQUIRED = process.env.AIRLOCK_REQUIRE_REGISTRY === '1'
export const REGISTRY_AVAILABLE = existsSync(BINARY)
export const RUN_REGISTRY_TESTS = REGISTRY_AVAILABLE || REGISTRY_REQUIRED
if (!RUN_REGISTRY_TESTS) {
  process.stderr.write(`registry tests skipped: ${BINARY} is not installed (apt-get install docker-registry to run them; AIRLOCK_REQUIRE_REGISTRY=1 makes them required)\n`)
}

export interface Registry {
  /** host:port, as it appears in image references. */
  host: string
  url: string
  pushBlob(repo: string, bytes: Buffer): Promise<{digest: string; size: number}>
  /** A manifest (an object, or its exact bytes) under a tag or its digest. */
  pushManifest(repo: string, reference: string, manifest: object | Buffer, mediaType?: string): Promise<{digest: string; size: number; bytes: Buffer}>
  close(): Promise<void>
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as {port: number}).port
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

/**
 * docker-registry's token authentication, as Docker Hub, GHCR or Harbor run it: the registry
 * answers 401 with a Bearer challenge naming this token service (a loopback HTTP server written
 * for the test), which checks a user name and password and issues ES256 JWTs with the signing
 * certificate in `x5c`, the registry trusting that certificate (`rootcertbundle`).
 */
export interface TokenService {
  realm: string
  /** A token for `scope`, as the service would issue it to `user` (for pushes in test setup). */
  token(scope: string): Promise<string>
  requests: number
  close(): Promise<void>
}

export async function startTokenService(dir: string, users: Record<string, string>): Promise<TokenService & {config: string}> {
  const key = join(dir, 'token.key')
  const cert = join(dir, 'token.crt')
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=airlock-test-token-service'])
  const privateKey = createPrivateKey(await readFile(key, 'utf8'))
  const der = (await readFile(cert, "utf8")).replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, "")
  const issue = (scope: string, sub: string) => {
    const [type, name, actions] = scope.split(':')
    return new SignJWT({access: [{type, name, actions: (actions ?? '').split(',')}]})
      .setProtectedHeader({alg: 'ES256', x5c: [der]})
      .setIssuer('airlock-test-issuer')
      .setAudience('registry.test')
      .setSubject(sub)
      .setIssuedAt()
      .setNotBefore('-1m')
      .setExpirationTime('5m')
      .setJti(randomUUID())
      .sign(privateKey)
  }
  const service = {requests: 0} as TokenService & {config: string}
  const server = createHttpServer((req, res) => {
    service.requests++
    const [user, password] = Buffer.from(String(req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString().split(':')
    if (!user || users[user] !== password) return void res.writeHead(401, {'content-type': 'application/json'}).end('{"errors":[{"code":"UNAUTHORIZED"}]}')
    const scope = new URL(req.url!, 'http://x').searchParams.get('scope') ?? ''
    issue(scope, user).then((token) => res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({token})))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  service.realm = `http://127.0.0.1:${(server.address() as {port: number}).port}/token`
  service.token = (scope) => issue(scope, 'setup')
  service.close = () => new Promise((r) => (server.closeAllConnections(), server.close(() => r())))
  service.config = `auth:\n  token:\n    realm: ${service.realm}\n    service: registry.test\n    issuer: airlock-test-issuer\n    rootcertbundle: ${cert}\n`
  return service
}

export async function startRegistry(opts: {tokens?: TokenService & {config: string}} = {}): Promise<Registry> {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is not installed: apt-get install docker-registry (.ci/run installs it)`)
  const t = await tempDir('airlock-registry-')
  const port = await freePort()
  const config = join(t.dir, 'config.yml')
  await writeFile(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(t.dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${opts.tokens?.config ?? ''}`)
  /** Pushes in test setup carry a push token when the registry wants one. */
  const auth = async (repo: string): Promise<Record<string, string>> => (opts.tokens ? {authorization: `Bearer ${await opts.tokens.token(`repository:${repo}:pull,push`)}`} : {})
  const child: ChildProcess = spawn(BINARY, ['serve', config], {stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    const up = await fetch(`${url}/v2/`).then((r) => r.ok || r.status === 401, () => false)
    if (up) break
    if (i > 100 || child.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    async pushBlob(repo, bytes) {
      const digest = sha256(bytes)
      const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, {method: 'POST', headers: await auth(repo)})
      if (start.status !== 202) throw new Error(`blob upload start: ${start.status}`)
      const location = new URL(start.headers.get('location')!, url)
      location.searchParams.set('digest', digest)
      const put = await fetch(location, {method: 'PUT', body: bytes, headers: {'content-type': 'application/octet-stream', ...(await auth(repo))}})
      if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${await put.text()}`)
      return {digest, size: bytes.length}
    },
    async pushManifest(repo, reference, manifest, mediaType = OCI_MANIFEST) {
      const bytes = Buffer.isBuffer(manifest) ? manifest : Buffer.from(JSON.stringify(manifest))
      const put = await fetch(`${url}/v2/${repo}/manifests/${reference}`, {method: 'PUT', body: bytes, headers: {'content-type': mediaType, ...(await auth(repo))}})
      if (put.status !== 201) throw new Error(`manifest push ${reference}: ${put.status} ${await put.text()}`)
      return {digest: sha256(bytes), size: bytes.length, bytes}
    },
    async close() {
      child.kill('SIGTERM')
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)))
      await t.cleanup()
    },
  }
}

/** A small OCI image (config + one layer) pushed under `tag`; its manifest digest is the pin. */
export async function pushImage(reg: Registry, repo: string, tag: string): Promise<{digest: string; size: number}> {
  const config = await reg.pushBlob(repo, Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: []}, tag})))
  const layer = await reg.pushBlob(repo, Buffer.from(`rootfs of ${tag}`))
  const m = await reg.pushManifest(repo, tag, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
    layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer}],
  })
  return {digest: m.digest, size: m.size}
}

/**
 * A Sigstore bundle attached as cosign v3 does on a registry without the referrers API: an OCI
 * 1.1 artifact manifest whose subject is the image, listed in the `sha256-<hex>` tag index.
 */
export async function attachBundle(reg: Registry, repo: string, image: {digest: string; size: number}, bundleText: string): Promise<string> {
  const empty = await reg.pushBlob(repo, Buffer.from('{}'))
  const layer = await reg.pushBlob(repo, Buffer.from(bundleText))
  const referrer = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE_TYPE,
    config: {mediaType: 'application/vnd.oci.empty.v1+json', ...empty},
    layers: [{mediaType: BUNDLE_TYPE, ...layer}],
    subject: {mediaType: OCI_MANIFEST, ...image},
    annotations: {'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1'},
  }
  const bytes = Buffer.from(JSON.stringify(referrer))
  const pushed = await reg.pushManifest(repo, sha256(bytes), referrer)
  await reg.pushManifest(repo, image.digest.replace(':', '-'), {schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{mediaType: OCI_MANIFEST, digest: pushed.digest, size: pushed.size, artifactType: BUNDLE_TYPE}]}, OCI_INDEX)
  return pushed.digest
}

/** A cosign v2 signature: the simple-signing payload under the `sha256-<hex>.sig` tag, signature in an annotation. */
export async function attachSigTag(reg: Registry, repo: string, image: {digest: string}, payload: Buffer, signatureB64: string, annotations: Record<string, string> = {}): Promise<void> {
  const config = await reg.pushBlob(repo, Buffer.from(JSON.stringify({architecture: '', os: '', config: {}, rootfs: {type: 'layers', diff_ids: [sha256(payload)]}})))
  const layer = await reg.pushBlob(repo, payload)
  await reg.pushManifest(repo, `${image.digest.replace(':', '-')}.sig`, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
    layers: [{mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', ...layer, annotations: {'dev.cosignproject.cosign/signature': signatureB64, ...annotations}}],
  })
}

/** The payload `cosign sign` v2 signs for an image. */
export function simpleSigningPayload(reference: string, digest: string): Buffer {
  return Buffer.from(JSON.stringify({critical: {identity: {'docker-reference': reference}, image: {'docker-manifest-digest': digest}, type: 'cosign container image signature'}, optional: null}))
}

/**
 * A policy bundle pushed as `policy publish` pushes it (control-plane/policy/distribution/oci.ts
 * bundleArtifact: empty config, one layer of the DSSE bytes) under `tag`, with no check at all:
 * for tests that plant what an attacker with push access could.
 */
export async function pushBundleArtifact(reg: Registry, repo: string, tag: string, bundle: Buffer, payload: import('../control-plane/policy/bundle.js').BundlePayload): Promise<string> {
  const {bundleArtifact, EMPTY_CONFIG} = await import('../control-plane/policy/distribution/oci.js')
  const a = bundleArtifact(bundle, payload)
  await reg.pushBlob(repo, EMPTY_CONFIG)
  await reg.pushBlob(repo, bundle)
  return (await reg.pushManifest(repo, tag, a.manifest)).digest
}
