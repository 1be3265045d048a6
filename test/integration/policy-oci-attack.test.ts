/**
 * Attacks on policy-bundle distribution that earlier tests did not try, each against real parts:
 * Debian's docker-registry on 127.0.0.1, loopback HTTP servers, and one stand-in, a proxy in front
 * of the real registry that drops Docker-Content-Digest from HEAD answers (a registry or a CDN
 * that sends none; docker-registry itself always does).
 *   - the publisher's own limits (a newer bundle larger than it may read) must not turn a newer
 *     bundle that verifies into "does not verify, replace it": that would move the tag back;
 *   - between plan and push another publisher writes the version tag, or moves the scope tag
 *     behind a registry that names no digest on HEAD: the push must stop (CONFLICT);
 *   - --server http:// to a host that is not loopback sends the API key in clear: refused;
 *   - terminal control characters a registry puts in a manifest never reach the terminal raw.
 */
import {createServer as createHttp, request as httpRequest, type Server} from 'node:http'
import {networkInterfaces} from 'node:os'
import {readFile, readdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {generateSigner} from '../../control-plane/crypto/keys.js'
import {DEFAULT_LIMITS} from '../../control-plane/limits.js'
import {parseTrust} from '../../control-plane/manifests/load.js'
import {parseBundle, parseScope, signBundle, verifyBundle, BUNDLE_PAYLOAD_TYPE, type BundlePayload} from '../../control-plane/policy/bundle.js'
import {planOciPublish, pushPlanned, scopeTag, versionTag, EMPTY_CONFIG} from '../../control-plane/policy/distribution/oci.js'
import {RegistryClient, parseOciRef, sha256Of} from '../../platform/registry/client.js'
import {registryLimits} from '../../commands/_registry.js'
import {airlock, tempDir} from '../helpers.js'
import {pushBundleArtifact, RUN_REGISTRY_TESTS, startRegistry, type Registry} from '../registry.js'

const signer = generateSigner().signer
const NOW = Date.now()
const SCOPE = parseScope('org:acme')
let t: {dir: string; cleanup: () => Promise<void>}
let reg: Registry
let trustText = ''

function payload(version: number, rule = 'run'): BundlePayload {
  return {
    apiVersion: 'airlock/v1',
    kind: 'PolicyBundle',
    scope: 'org:acme',
    version,
    issuedAt: new Date(NOW - 60_000).toISOString(),
    expiresAt: new Date(NOW + 86_400_000).toISOString(),
    schema: 'namespace AgentKernel { entity User; entity Sandbox; action Run appliesTo { principal: User, resource: Sandbox }; }',
    policies: [{id: rule, file: 'policies/orgs/acme/run.cedar', line: 1, text: 'permit(principal, action == AgentKernel::Action::"Run", resource);'}],
  }
}
const signed = (p: BundlePayload) => Buffer.from(JSON.stringify(signBundle(p, [signer])))

/** The publisher's check, as commands/policy/publish.ts makes it. */
function verifier() {
  const trust = parseTrust(trustText, 'trust.yaml', null, DEFAULT_LIMITS)
  return (body: Buffer, where: string) => {
    const {envelope, payload: p} = parseBundle(body.toString('utf8'), where, DEFAULT_LIMITS)
    const v = verifyBundle(envelope, p, {trust, now: new Date(NOW), scope: 'org:acme', source: where, limits: DEFAULT_LIMITS})
    return {version: p.version, digest: v.digest}
  }
}
const local = (version: number) => {
  const p = payload(version)
  const bytes = signed(p)
  return {bytes, payload: p, digest: verifier()(bytes, 'local').digest, scope: SCOPE}
}
const client = (host: string, limits: Partial<ReturnType<typeof registryLimits>> = {}) => new RegistryClient(host, {plainHttp: true, limits: {...registryLimits({}, DEFAULT_LIMITS), ...limits}})

/** What the tag names now, straight from the registry. */
async function tagDigest(repo: string, tag: string): Promise<string | null> {
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {method: 'HEAD', headers: {accept: 'application/vnd.oci.image.manifest.v1+json'}})
  return r.status === 200 ? r.headers.get('docker-content-digest') : null
}

/**
 * A proxy to the registry that rewrites Docker-Content-Digest on every HEAD answer: drops it
 * (`digest` null), or names `digest` instead (a registry vouching for what the host holds).
 */
async function headProxy(digest: string | null = null): Promise<{host: string; close: () => Promise<void>}> {
  const target = new URL(reg.url)
  const server: Server = createHttp((req, res) => {
    const up = httpRequest({host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers}, (r) => {
      const headers = {...r.headers}
      if (req.method === 'HEAD') {
        if (digest) headers['docker-content-digest'] = digest
        else delete headers['docker-content-digest']
      }
      res.writeHead(r.statusCode ?? 502, headers)
      r.pipe(res)
    })
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {host: `127.0.0.1:${(server.address() as {port: number}).port}`, close: () => new Promise((resolve) => server.close(() => resolve()))}
}

beforeAll(async () => {
  t = await tempDir('airlock-oci-attack-')
  trustText = `apiVersion: airlock/v1\nkind: TrustPolicy\nspec:\n  keys:\n    - id: '${signer.keyid}'\n      algorithm: ed25519\n      publicKey: ${Buffer.from(signer.publicKey).toString('base64')}\n      roles: [policy]\n      validFrom: 2020-01-01T00:00:00Z\n  thresholds:\n    policy: 1\n`
  await writeFile(join(t.dir, 'trust.yaml'), trustText)
  if (!RUN_REGISTRY_TESTS) return
  reg = await startRegistry()
}, 300_000)
afterAll(async () => {
  await reg?.close()
  await t?.cleanup()
})

describe.runIf(RUN_REGISTRY_TESTS)('policy publish against a registry that changes or cannot be read', {timeout: 300_000}, () => {
  it('a newer bundle that verifies but is larger than the publisher may read is unreadable, not replaceable: nothing pushed, the tag stays', async () => {
    const repo = 'attack/limits'
    const newer = payload(9, 'x'.repeat(2000))
    const planted = await pushBundleArtifact(reg, repo, scopeTag(SCOPE), signed(newer), newer)
    const c = client(reg.host, {maxRegistryBlobBytes: 1000})
    const plan = await planOciPublish(c, parseOciRef(`oci://${reg.host}/${repo}`, '--to'), local(5), verifier())
    expect(plan.remote.state, JSON.stringify(plan.remote)).toBe('unreadable')
    await expect(pushPlanned(c, parseOciRef(`oci://${reg.host}/${repo}`, '--to'), plan, local(5).bytes)).rejects.toMatchObject({code: 'REGISTRY_TOO_LARGE'})
    expect(await tagDigest(repo, scopeTag(SCOPE))).toBe(planted)
    expect(await tagDigest(repo, versionTag(SCOPE, 5))).toBeNull()
  })

  it('the version tag written by someone else between plan and push: CONFLICT, the version tag is never moved', async () => {
    const repo = 'attack/version-race'
    const to = parseOciRef(`oci://${reg.host}/${repo}`, '--to')
    const mine = local(4)
    const c = client(reg.host)
    const plan = await planOciPublish(c, to, mine, verifier())
    expect(plan.tags.map((x) => x.action)).toEqual(['create', 'create'])
    // Another publisher's v4 (other content) lands under org-acme-V4 before this push.
    const theirs = payload(4, 'other')
    const planted = await pushBundleArtifact(reg, repo, versionTag(SCOPE, 4), signed(theirs), theirs)
    await expect(pushPlanned(c, to, plan, mine.bytes)).rejects.toMatchObject({code: 'CONFLICT'})
    expect(await tagDigest(repo, versionTag(SCOPE, 4))).toBe(planted)
    expect(await tagDigest(repo, scopeTag(SCOPE))).toBeNull()
  })

  it('the scope tag moved to a newer bundle between plan and push, behind a registry that names no digest on HEAD: CONFLICT, not moved back', async () => {
    const repo = 'attack/head-race'
    const v1 = payload(1)
    await pushBundleArtifact(reg, repo, scopeTag(SCOPE), signed(v1), v1)
    const proxy = await headProxy()
    try {
      const to = parseOciRef(`oci://${proxy.host}/${repo}`, '--to')
      const c = client(proxy.host)
      const plan = await planOciPublish(c, to, local(2), verifier())
      expect(plan.remote).toMatchObject({state: 'verified', version: 1})
      const v9 = payload(9)
      const planted = await pushBundleArtifact(reg, repo, scopeTag(SCOPE), signed(v9), v9)
      await expect(pushPlanned(c, to, plan, local(2).bytes)).rejects.toMatchObject({code: 'CONFLICT'})
      expect(await tagDigest(repo, scopeTag(SCOPE))).toBe(planted)
    } finally {
      await proxy.close()
    }
  })
})

describe.runIf(RUN_REGISTRY_TESTS)('policy publish: where credentials go (what held)', {timeout: 300_000}, () => {
  it('an upload Location on another host gets neither the bundle nor the token: refused', async () => {
    const seen: Array<string | undefined> = []
    const sink = createHttp((req, res) => {
      seen.push(req.headers.authorization)
      res.writeHead(201).end()
    })
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
    const elsewhere = `http://127.0.0.1:${(sink.address() as {port: number}).port}`
    const target = new URL(reg.url)
    const proxy = createHttp((req, res) => {
      const up = httpRequest({host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers}, (r) => {
        const headers = {...r.headers}
        if (req.method === 'POST' && headers.location) {
          const moved = new URL(headers.location, reg.url)
          headers.location = `${elsewhere}${moved.pathname}${moved.search}`
        }
        res.writeHead(r.statusCode ?? 502, headers)
        r.pipe(res)
      })
      req.pipe(up)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const c = new RegistryClient(`127.0.0.1:${(proxy.address() as {port: number}).port}`, {plainHttp: true, token: 'registry-secret', limits: registryLimits({}, DEFAULT_LIMITS)})
      await expect(c.pushBlob('attack/location', Buffer.from('a bundle'))).rejects.toMatchObject({code: 'REGISTRY_BAD_RESPONSE'})
      expect(seen).toEqual([])
    } finally {
      proxy.close()
      sink.close()
    }
  })
})

describe.runIf(RUN_REGISTRY_TESTS)('policy pull: what a registry writes reaches the terminal escaped', {timeout: 300_000}, () => {
  it('control characters in a manifest’s artifactType: refused (not a bundle), shown escaped, the audit line is JSON', async () => {
    const repo = 'attack/controls'
    const p = payload(1)
    const bytes = signed(p)
    await reg.pushBlob(repo, EMPTY_CONFIG)
    await reg.pushBlob(repo, bytes)
    const evil = '\u001b]0;pwned\u0007\u001b[2J\u202e'
    await reg.pushManifest(repo, scopeTag(SCOPE), {schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: evil, config: {mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Of(EMPTY_CONFIG), size: 2}, layers: [{mediaType: BUNDLE_PAYLOAD_TYPE, digest: sha256Of(bytes), size: bytes.length}]})
    const audit = join(t.dir, 'audit-controls')
    const r = await airlock(['policy', 'pull', '--from', `oci://${reg.host}/${repo}`, '--scope', 'org:acme', '--plain-http', '--trust', join(t.dir, 'trust.yaml'), '--cache-dir', join(t.dir, 'c-controls')], {env: {HOME: t.dir, AIRLOCK_AUDIT_DIR: audit}})
    expect(r.exitCode, r.stdout + r.stderr).toBe(1)
    expect(r.stdout).toMatch(/DENY-ALL.*not a policy bundle artifact/)
    expect(r.stdout + r.stderr).not.toMatch(/[\u001b\u0007\u202e]/)
    const lines = (await Promise.all((await readdir(audit)).filter((f) => f.endsWith('.jsonl')).map((f) => readFile(join(audit, f), 'utf8')))).join('')
    expect(lines).toContain('REGISTRY_BAD_RESPONSE')
    // C0 controls are escaped by JSON itself. (Bidirectional overrides are not: audit/entry.ts writes
    // JSON.stringify, not terminal.ts jsonText; reported to its owner, not asserted here.)
    expect(lines).not.toMatch(/[\u001b\u0007]/)
  })
})

describe.runIf(RUN_REGISTRY_TESTS)('policy pull: what held', {timeout: 300_000}, () => {
  const pull = (from: string, cache: string, extra: string[] = []) =>
    airlock(['policy', 'pull', '--from', from, '--scope', 'org:acme', '--trust', join(t.dir, 'trust.yaml'), '--cache-dir', cache, '--timeout', '3s', '--json', ...(from.startsWith('oci://') ? ['--plain-http'] : []), ...extra], {env: {HOME: t.dir, AIRLOCK_AUDIT_DIR: join(t.dir, 'audit-held')}})

  it('a registry naming on HEAD the digest of a bundle the host holds from another source is not believed; an edited cache claiming that source only keeps the verified cached bundle', async () => {
    const v3 = payload(3)
    const held = await pushBundleArtifact(reg, 'held/a', scopeTag(SCOPE), signed(v3), v3)
    const v1 = payload(1, 'old')
    await pushBundleArtifact(reg, 'held/b', scopeTag(SCOPE), signed(v1), v1)
    const cache = join(t.dir, 'c-held-head')
    const first = await pull(`oci://${reg.host}/held/a`, cache)
    expect(first.json, first.stdout + first.stderr).toMatchObject({effective: 'fetched', version: 3})
    const proxy = await headProxy(held)
    try {
      // Another source (repository b behind the proxy) vouching with the cached digest: the manifest
      // is asked for by that digest, which b does not hold.
      const other = await pull(`oci://${proxy.host}/held/b`, cache)
      expect(other.json.effective).toBe('deny-all')
      expect(other.json.failure.code).toBe('REGISTRY_NOT_FOUND')
      // The cache metadata edited to claim source b: "unchanged" keeps only what the cache holds, verified again.
      const meta = join(cache, 'orgs__acme.bundle.json.meta.json')
      const m = JSON.parse(await readFile(meta, 'utf8')) as {source: string}
      await writeFile(meta, JSON.stringify({...m, source: `oci://${proxy.host}/held/b:${scopeTag(SCOPE)}`}))
      const kept = await pull(`oci://${proxy.host}/held/b`, cache)
      expect(kept.json).toMatchObject({effective: 'unchanged', version: 3, digest: first.json.digest})
    } finally {
      await proxy.close()
    }
  })

  it('a bucket answering with a gzip bomb (Content-Encoding: gzip): nothing is inflated, the raw bytes are garbage within the cap', async () => {
    const {gzipSync} = await import('node:zlib')
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20))
    const server = createHttp((_req, res) => res.writeHead(200, {'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': bomb.length}).end(bomb))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const r = await pull(`http://127.0.0.1:${(server.address() as {port: number}).port}/org-acme.json`, join(t.dir, 'c-bomb'))
      expect(r.json.effective).toBe('deny-all')
      expect(r.json.failure.code).toBe('GARBAGE')
    } finally {
      server.close()
    }
  })
})

describe('policy pull --server / --plain-http', () => {
  it('--plain-http to a registry that is not loopback is a usage error, not a failure the offline mode answers with the cache', async () => {
    const r = await airlock(['policy', 'pull', '--from', 'oci://registry.example/fleet/policy', '--plain-http', '--scope', 'org:acme', '--offline-mode', 'cached_indefinite', '--trust', join(t.dir, 'trust.yaml'), '--cache-dir', join(t.dir, 'c-plain'), '--json'], {env: {HOME: t.dir, AIRLOCK_AUDIT_DIR: join(t.dir, 'audit-plain')}})
    expect(r.exitCode, r.stdout + r.stderr).toBe(2)
    expect(r.json.error).toMatchObject({code: 'USAGE', details: {field: '--plain-http'}})
  })


  it('plain http:// to a host that is not loopback is refused before anything (the API key would travel in clear)', async () => {
    const external = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4')?.address ?? '192.0.2.1'
    const seen: string[] = []
    const server = createHttp((req, res) => {
      seen.push(String(req.headers['x-api-key']))
      res.writeHead(500).end()
    })
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen(0, external, () => resolve(true))
    })
    const port = listening ? (server.address() as {port: number}).port : 9
    try {
      const r = await airlock(['policy', 'pull', '--server', `http://${external}:${port}`, '--api-key-env', 'POLICY_KEY', '--scope', 'org:acme', '--trust', join(t.dir, 'trust.yaml'), '--cache-dir', join(t.dir, 'c-server'), '--timeout', '2s', '--json'], {env: {HOME: t.dir, AIRLOCK_AUDIT_DIR: join(t.dir, 'audit-server'), POLICY_KEY: 'k-secret'}})
      expect(r.exitCode, r.stdout + r.stderr).toBe(2)
      expect(r.json.error).toMatchObject({code: 'USAGE', details: {field: '--server'}})
      expect(seen).toEqual([])
    } finally {
      server.close()
    }
  })
})
