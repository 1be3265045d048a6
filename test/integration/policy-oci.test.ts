/**
 * `policy pull --from oci://…` and `--from https://…` against real servers: Debian's
 * docker-registry on 127.0.0.1 with token authentication (a loopback token service issuing JWTs
 * the registry verifies, test/registry.ts), and a loopback HTTPS bucket. Every bad input is built
 * for real (pushed to the registry as an attacker with push access could, or served by the
 * bucket); each ends in the offline mode's answer with its failure code named, never acceptance.
 * The one stand-in: a tampering proxy in front of the real registry, for a registry that answers a
 * digest with another manifest (docker-registry itself never does).
 */
import {createServer as createHttp, request as httpRequest} from 'node:http'
import {createServer as createHttps} from 'node:https'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {generateSigner} from '../../control-plane/crypto/keys.js'
import {sha256Hex, canonicalJson} from '../../control-plane/crypto/digest.js'
import {BUNDLE_PAYLOAD_TYPE, signBundle, type BundlePayload} from '../../control-plane/policy/bundle.js'
import {airlock, tempDir} from '../helpers.js'
import {pushBundleArtifact, pushImage, RUN_REGISTRY_TESTS, startRegistry, startTokenService, type Registry, type TokenService} from '../registry.js'

const signer = generateSigner().signer
const stranger = generateSigner().signer
const NOW = Date.now()
const REPO = 'fleet/policy'
const CREDS = {AIRLOCK_REGISTRY_USER: 'hostbot', AIRLOCK_REGISTRY_PASSWORD: 'pull-secret', AIRLOCK_REGISTRY_TOKEN: undefined}

let t: {dir: string; cleanup: () => Promise<void>}
let tokens: TokenService & {config: string}
let reg: Registry
let CERT = ''
let KEY = ''

function payload(version: number, scope = 'org:acme'): BundlePayload {
  const folder = scope === 'global' ? 'global' : `orgs/${scope.slice('org:'.length)}`
  return {
    apiVersion: 'airlock/v1',
    kind: 'PolicyBundle',
    scope,
    version,
    issuedAt: new Date(NOW - 60_000).toISOString(),
    expiresAt: new Date(NOW + 86_400_000).toISOString(),
    schema: 'namespace AgentKernel { entity User; entity Sandbox; action Run appliesTo { principal: User, resource: Sandbox }; }',
    policies: [{id: 'run', file: `policies/${folder}/run.cedar`, line: 1, text: 'permit(principal, action == AgentKernel::Action::"Run", resource);'}],
  }
}

const signed = (p: BundlePayload, by = [signer]) => Buffer.from(JSON.stringify(signBundle(p, by)))
const digestOf = (p: BundlePayload) => `sha256:${sha256Hex(Buffer.from(canonicalJson(p)))}`

/** A bundle pushed under `tag` of its own repository (one per test, so tests do not share tags). */
let repoN = 0
async function planted(bytes: Buffer, p: BundlePayload, tag = 'org-acme'): Promise<{repo: string; ref: string; manifest: string}> {
  const repo = `${REPO}-${++repoN}`
  const manifest = await pushBundleArtifact(reg, repo, tag, bytes, p)
  return {repo, ref: `oci://${reg.host}/${repo}`, manifest}
}

/** The layer digest of the manifest under `tag`, read with a token as the test's own client. */
async function layerOf(repo: string, tag: string): Promise<string> {
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {headers: {accept: 'application/vnd.oci.image.manifest.v1+json', authorization: `Bearer ${await tokens.token(`repository:${repo}:pull`)}`}})
  return ((await r.json()) as {layers: Array<{digest: string}>}).layers[0]!.digest
}

let cacheN = 0
const freshCache = () => join(t.dir, `cache-${++cacheN}`)

function pull(from: string, cache: string, mode = 'fail_closed', extra: string[] = [], env: Record<string, string | undefined> = CREDS) {
  return airlock(
    ['policy', 'pull', '--from', from, '--scope', 'org:acme', '--trust', join(t.dir, 'trust.yaml'), '--cache-dir', cache, '--offline-mode', mode, '--timeout', '3s', '--json', ...(from.startsWith('oci://') ? ['--plain-http'] : ['--ca', join(t.dir, 'ca.pem')]), ...extra],
    {env: {HOME: t.dir, AIRLOCK_AUDIT_DIR: join(t.dir, 'audit'), ...env}},
  )
}

/** The offline mode's answer, with the failure named: never the bad bundle. */
function refused(r: Awaited<ReturnType<typeof pull>>, code: string, effective = 'deny-all') {
  expect(r.json, r.stdout + r.stderr).toBeDefined()
  expect(r.json.failure?.code, JSON.stringify(r.json)).toBe(code)
  expect(r.json.effective).toBe(effective)
  expect(r.exitCode).toBe(effective === 'deny-all' ? 1 : 0)
}

beforeAll(async () => {
  t = await tempDir('airlock-oci-pull-')
  const trust = `apiVersion: airlock/v1\nkind: TrustPolicy\nspec:\n  keys:\n    - id: '${signer.keyid}'\n      algorithm: ed25519\n      publicKey: ${Buffer.from(signer.publicKey).toString('base64')}\n      roles: [policy]\n      validFrom: 2020-01-01T00:00:00Z\n  thresholds:\n    policy: 1\n`
  await writeFile(join(t.dir, 'trust.yaml'), trust)
  const cert = join(t.dir, 'ca.pem')
  const key = join(t.dir, 'bucket.key')
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert])
  CERT = await readFile(cert, 'utf8')
  KEY = await readFile(key, 'utf8')
  if (!RUN_REGISTRY_TESTS) return
  tokens = await startTokenService(t.dir, {hostbot: 'pull-secret'})
  reg = await startRegistry({tokens})
}, 300_000)
afterAll(async () => {
  await reg?.close()
  await tokens?.close()
  await t?.cleanup()
})

describe.runIf(RUN_REGISTRY_TESTS)('policy pull --from oci:// (docker-registry with token auth)', {timeout: 300_000}, () => {
  it('fetches and verifies through the token flow; the same digest next time is `unchanged` with no blob read; a new version is fetched', async () => {
    const p = payload(2)
    const {repo, ref} = await planted(signed(p), p)
    const cache = freshCache()
    const before = tokens.requests
    const first = await pull(ref, cache)
    expect(first.exitCode, first.stdout + first.stderr).toBe(0)
    expect(first.json).toMatchObject({effective: 'fetched', version: 2, digest: digestOf(p), failure: null})
    expect(tokens.requests).toBeGreaterThan(before)
    // The blob deleted from the registry: a tag still naming the same digest needs no blob.
    const layer = await layerOf(repo, 'org-acme')
    const del = await fetch(`${reg.url}/v2/${repo}/blobs/${layer}`, {method: 'DELETE', headers: {authorization: `Bearer ${await tokens.token(`repository:${repo}:*`)}`}})
    expect(del.status).toBe(202)
    const second = await pull(ref, cache)
    expect(second.json).toMatchObject({effective: 'unchanged', version: 2, failure: null})
    expect(second.json.reason).toMatch(/same digest/)
    const p3 = payload(3)
    const m3 = await pushBundleArtifact(reg, repo, 'org-acme', signed(p3), p3)
    expect((await pull(ref, cache)).json).toMatchObject({effective: 'fetched', version: 3})
    // A tag named, or a pinned digest, are pulled the same way.
    expect((await pull(`${ref}:org-acme`, freshCache())).json).toMatchObject({effective: 'fetched', version: 3})
    expect((await pull(`${ref}@${m3}`, freshCache())).json).toMatchObject({effective: 'fetched', version: 3})
  })

  it('without credentials the token service refuses: REGISTRY_AUTH_REQUIRED, the offline mode answers', async () => {
    const p = payload(2)
    const {ref} = await planted(signed(p), p)
    refused(await pull(ref, freshCache(), 'fail_closed', [], {AIRLOCK_REGISTRY_USER: undefined, AIRLOCK_REGISTRY_PASSWORD: undefined}), 'REGISTRY_AUTH_REQUIRED')
  })

  it('a bundle for another scope under the tag: SCOPE_MISMATCH', async () => {
    const g = payload(5, 'global')
    const {ref} = await planted(signed(g), g)
    refused(await pull(ref, freshCache()), 'SCOPE_MISMATCH')
  })

  it('an older version than the cached one (the tag moved back to a signed v1): DOWNGRADE, the cached v2 holds', async () => {
    const p2 = payload(2)
    const {repo, ref} = await planted(signed(p2), p2)
    const cache = freshCache()
    expect((await pull(ref, cache)).json).toMatchObject({effective: 'fetched', version: 2})
    const p1 = payload(1)
    await pushBundleArtifact(reg, repo, 'org-acme', signed(p1), p1)
    refused(await pull(ref, cache, 'cached_indefinite'), 'DOWNGRADE', 'cached')
    expect((await pull(ref, cache, 'cached_indefinite')).json.version).toBe(2)
    refused(await pull(ref, cache, 'fail_closed'), 'DOWNGRADE')
  })

  it('signed by a key the trust policy does not know: UNKNOWN_KEY', async () => {
    const p = payload(9)
    const {ref} = await planted(signed(p, [stranger]), p)
    refused(await pull(ref, freshCache()), 'UNKNOWN_KEY')
  })

  it('the tag moved to an unsigned bundle, or to something that is no bundle artifact (an image): refused, the cache holds', async () => {
    const p2 = payload(2)
    const {repo, ref} = await planted(signed(p2), p2)
    const cache = freshCache()
    expect((await pull(ref, cache)).json).toMatchObject({effective: 'fetched', version: 2})
    // The envelope with its signatures stripped, at a higher version.
    const p7 = payload(7)
    const unsigned = Buffer.from(JSON.stringify({payloadType: BUNDLE_PAYLOAD_TYPE, payload: Buffer.from(canonicalJson(p7)).toString('base64'), signatures: []}))
    await pushBundleArtifact(reg, repo, 'org-acme', unsigned, p7)
    const stripped = await pull(ref, cache, 'cached_with_expiry')
    expect(stripped.json.effective).toBe('cached')
    expect(stripped.json.version).toBe(2)
    expect(['THRESHOLD_NOT_MET', 'BAD_SIGNATURE']).toContain(stripped.json.failure?.code)
    await pushImage(reg, repo, 'org-acme')
    const image = await pull(ref, cache, 'cached_with_expiry')
    refused(image, 'REGISTRY_BAD_RESPONSE', 'cached')
    expect(image.json.failure.message).toMatch(/not a policy bundle artifact: its artifactType is none/)
  })

  it('a manifest whose digest is not the one asked for (a tampering proxy in front of the registry): DIGEST_MISMATCH', async () => {
    const p = payload(2)
    const {repo, manifest} = await planted(signed(p), p)
    const other = payload(4)
    const wanted = await pushBundleArtifact(reg, repo, 'org-acme-V4', signed(other), other)
    // The proxy answers the request for `wanted` with the manifest the tag names.
    const proxy = createHttp((req, res) => {
      const path = req.url!.replace(`/manifests/${wanted}`, '/manifests/org-acme')
      const up = httpRequest(`${reg.url}${path}`, {method: req.method, headers: req.headers}, (answer) => {
        const headers = {...answer.headers}
        if (path !== req.url) headers['docker-content-digest'] = wanted
        res.writeHead(answer.statusCode!, headers)
        answer.pipe(res)
      })
      req.pipe(up)
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
    const host = `127.0.0.1:${(proxy.address() as {port: number}).port}`
    try {
      expect(manifest).not.toBe(wanted)
      const r = await pull(`oci://${host}/${repo}@${wanted}`, freshCache())
      refused(r, 'DIGEST_MISMATCH')
      expect(r.json.failure.message).toContain(manifest)
    } finally {
      proxy.closeAllConnections()
      await new Promise((r) => proxy.close(r))
    }
  })

  it('a bundle blob over the limit: REGISTRY_TOO_LARGE naming the flag, nothing read past it', async () => {
    const p = payload(2)
    const bytes = signed(p)
    const {ref} = await planted(bytes, p)
    const r = await pull(ref, freshCache(), 'fail_closed', ['--max-blob-bytes', String(bytes.length - 1)])
    refused(r, 'REGISTRY_TOO_LARGE')
    expect(r.json.failure.message).toMatch(/maxRegistryBlobBytes .*--max-blob-bytes/)
  })

  it('the registry down: each offline mode answers as it says (REGISTRY_UNREACHABLE)', async () => {
    const p = payload(2)
    const {ref} = await planted(signed(p), p)
    const cache = freshCache()
    expect((await pull(ref, cache)).json).toMatchObject({effective: 'fetched', version: 2})
    // The same repository on a port nothing listens on.
    const down = ref.replace(reg.host, '127.0.0.1:9')
    const modes = {fail_closed: 'deny-all', cached_with_expiry: 'cached', cached_indefinite: 'cached', default_policy: 'default'} as const
    for (const [mode, effective] of Object.entries(modes)) {
      const r = await pull(down, cache, mode)
      refused(r, 'REGISTRY_UNREACHABLE', effective)
    }
  })
})

describe('policy pull --from https:// (a static bucket)', {timeout: 300_000}, () => {
  async function bucket(answer: (req: import('node:http').IncomingMessage) => {status: number; body?: Buffer; etag?: string}) {
    const server = createHttps({cert: CERT, key: KEY}, (req, res) => {
      const a = answer(req)
      res.writeHead(a.status, {...(a.etag ? {etag: a.etag} : {}), 'content-type': 'application/json'})
      res.end(a.body)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    return {url: `https://127.0.0.1:${(server.address() as {port: number}).port}/bundles/org-acme.json`, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r())))}
  }

  it('GET with If-None-Match: fetched, then a real 304 for the ETag it sent is `unchanged`', async () => {
    const p = payload(2)
    const body = signed(p)
    const etag = '"bucket-etag-1"'
    const seen: Array<string | undefined> = []
    const b = await bucket((req) => {
      seen.push(req.headers['if-none-match'] as string | undefined)
      return req.headers['if-none-match'] === etag ? {status: 304, etag} : {status: 200, body, etag}
    })
    try {
      const cache = freshCache()
      expect((await pull(b.url, cache)).json).toMatchObject({effective: 'fetched', version: 2})
      expect((await pull(b.url, cache)).json).toMatchObject({effective: 'unchanged', version: 2, failure: null})
      expect(seen).toEqual([undefined, etag])
    } finally {
      await b.close()
    }
  })

  it('a bucket that answers 304 to everything: with no cache a failure (NOT_MODIFIED_WITHOUT_CACHE), never acceptance; a cache from another source is not vouched for by it', async () => {
    const b = await bucket(() => ({status: 304, etag: '"anything"'}))
    try {
      for (const mode of ['fail_closed', 'cached_with_expiry', 'cached_indefinite']) refused(await pull(b.url, freshCache(), mode), 'NOT_MODIFIED_WITHOUT_CACHE')
      const d = await pull(b.url, freshCache(), 'default_policy')
      refused(d, 'NOT_MODIFIED_WITHOUT_CACHE', 'default')
      // A verified cache fetched from another bucket: its ETag is not sent here, so this 304 confirms nothing.
      const p = payload(2)
      const good = await bucket(() => ({status: 200, body: signed(p), etag: '"anything"'}))
      const cache = freshCache()
      try {
        expect((await pull(good.url, cache)).json).toMatchObject({effective: 'fetched', version: 2})
      } finally {
        await good.close()
      }
      refused(await pull(b.url, cache, 'fail_closed'), 'NOT_MODIFIED_WITHOUT_CACHE')
      refused(await pull(b.url, cache, 'cached_indefinite'), 'NOT_MODIFIED_WITHOUT_CACHE', 'cached')
    } finally {
      await b.close()
    }
  })

  it('a bucket serving an older or foreign-signed bundle: DOWNGRADE / UNKNOWN_KEY', async () => {
    let body = signed(payload(3))
    const b = await bucket(() => ({status: 200, body}))
    try {
      const cache = freshCache()
      expect((await pull(b.url, cache)).json).toMatchObject({effective: 'fetched', version: 3})
      body = signed(payload(2))
      refused(await pull(b.url, cache, 'cached_indefinite'), 'DOWNGRADE', 'cached')
      body = signed(payload(8), [stranger])
      refused(await pull(b.url, cache, 'fail_closed'), 'UNKNOWN_KEY')
    } finally {
      await b.close()
    }
  })

  it('refuses plain http to anything but loopback, and credentials in the URL', async () => {
    const r = await pull('http://bucket.example.com/org-acme.json', freshCache())
    expect(r.exitCode).toBe(2)
    expect(r.json.error).toMatchObject({code: 'USAGE', details: {field: '--from'}})
    const c = await pull('https://user:pw@bucket.example.com/org-acme.json', freshCache())
    expect(c.exitCode).toBe(2)
  })
})
