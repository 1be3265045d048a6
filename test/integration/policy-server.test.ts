import {spawn} from 'node:child_process'
import {mkdir, readFile, readdir, writeFile} from 'node:fs/promises'
import {createServer as createHttps, type Server} from 'node:https'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {generateSigner} from '../../control-plane/crypto/keys.js'
import {signBundle, type BundlePayload} from '../../control-plane/policy/bundle.js'
import {startBundleServer} from '../../control-plane/policy/server.js'
import {airlock, BIN, NODE, ROOT, tempDir} from '../helpers.js'

const t = await tempDir()
const signer = generateSigner().signer
const NOW = Date.now()
let CERT = ''
let KEY = ''
let OTHER_CERT = ''
let OTHER_KEY = ''

async function selfSigned(name: string): Promise<{cert: string; key: string}> {
  const cert = join(t.dir, `${name}.pem`)
  const key = join(t.dir, `${name}.key`)
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert])
  return {cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8')}
}

function payload(version: number, policy = 'permit(principal, action == AgentKernel::Action::"Run", resource);'): BundlePayload {
  return {
    apiVersion: 'airlock/v1',
    kind: 'PolicyBundle',
    scope: 'org:acme',
    version,
    issuedAt: new Date(NOW - 60_000).toISOString(),
    expiresAt: new Date(NOW + 86_400_000).toISOString(),
    schema: 'namespace AgentKernel { entity User; entity Sandbox; action Run appliesTo { principal: User, resource: Sandbox }; }',
    policies: [{id: 'run', file: 'policies/orgs/acme/run.cedar', line: 1, text: policy}],
  }
}

async function publish(dir: string, p: BundlePayload): Promise<void> {
  await mkdir(join(dir, 'orgs'), {recursive: true})
  await writeFile(join(dir, 'orgs', 'acme.bundle.json'), JSON.stringify(signBundle(p, [signer])))
}

beforeAll(async () => {
  ;({cert: CERT, key: KEY} = await selfSigned('server'))
  ;({cert: OTHER_CERT, key: OTHER_KEY} = await selfSigned('other'))
  await writeFile(join(t.dir, 'ca.pem'), CERT)
  const trust = `apiVersion: airlock/v1\nkind: TrustPolicy\nspec:\n  keys:\n    - id: '${signer.keyid}'\n      algorithm: ed25519\n      publicKey: ${Buffer.from(signer.publicKey).toString('base64')}\n      roles: [policy]\n      validFrom: 2020-01-01T00:00:00Z\n  thresholds:\n    policy: 1\n`
  await writeFile(join(t.dir, 'trust.yaml'), trust)
})
afterAll(() => t.cleanup())

let cacheN = 0
function pull(url: string, mode: string, cache: string, extra: string[] = []) {
  return airlock(['policy', 'pull', '--server', url, '--scope', 'org:acme', '--ca', join(t.dir, 'ca.pem'), '--trust', join(t.dir, 'trust.yaml'), '--cache-dir', cache, '--offline-mode', mode, '--timeout', '2s', '--json', ...extra])
}

/** A fresh cache holding a verified v`version`, fetched from a real server that is then stopped. */
async function primedCache(version = 2): Promise<{cache: string; url: string}> {
  const dir = join(t.dir, `bundles-${++cacheN}`)
  await publish(dir, payload(version))
  const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, tls: {cert: CERT, key: KEY}})
  const cache = join(t.dir, `cache-${cacheN}`)
  const r = await pull(s.url, 'fail_closed', cache)
  expect(r.json.effective).toBe('fetched')
  await s.close()
  return {cache, url: s.url}
}

async function misbehaving(handler: 'hang' | '500' | 'html', tlsPair = {cert: CERT, key: KEY}): Promise<{url: string; close: () => Promise<void>}> {
  const server: Server = createHttps(tlsPair, (_req, res) => {
    if (handler === '500') res.writeHead(500).end('boom')
    else if (handler === 'html') res.writeHead(200, {'content-type': 'text/html'}).end('<html>login</html>')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as {port: number}).port
  return {url: `https://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.closeAllConnections() ?? server.close(() => r()))}
}

describe('policy pull from a real HTTPS server', () => {
  it('fetches and verifies, then gets 304 for the same bundle', async () => {
    const dir = join(t.dir, 'b-ok')
    await publish(dir, payload(1))
    const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, tls: {cert: CERT, key: KEY}})
    try {
      const cache = join(t.dir, 'c-ok')
      const first = await pull(s.url, 'fail_closed', cache)
      expect(first.exitCode).toBe(0)
      expect(first.json).toMatchObject({effective: 'fetched', version: 1, failure: null, policies: 1})
      const second = await pull(s.url, 'fail_closed', cache)
      expect(second.json).toMatchObject({effective: 'unchanged', version: 1})
      expect((await readdir(cache)).sort()).toEqual(['orgs__acme.bundle.json', 'orgs__acme.bundle.json.meta.json'])
    } finally {
      await s.close()
    }
  })

  it('refuses a lower version than the cached one (DOWNGRADE) and an equal version with other content', async () => {
    const {cache} = await primedCache(2)
    const dir = join(t.dir, 'b-down')
    await publish(dir, payload(1))
    const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, tls: {cert: CERT, key: KEY}})
    try {
      const down = await pull(s.url, 'cached_indefinite', cache)
      expect(down.json).toMatchObject({effective: 'cached', version: 2, failure: {code: 'DOWNGRADE'}})
      await publish(dir, payload(2, 'permit(principal, action, resource);'))
      const conflict = await pull(s.url, 'fail_closed', cache)
      expect(conflict.exitCode).toBe(1)
      expect(conflict.json).toMatchObject({effective: 'deny-all', failure: {code: 'EQUAL_VERSION_CONFLICT'}})
      const cached = JSON.parse(await readFile(join(cache, 'orgs__acme.bundle.json.meta.json'), 'utf8'))
      expect(cached.version).toBe(2)
    } finally {
      await s.close()
    }
  })

  describe('when the server is stopped', () => {
    it.each([
      ['fail_closed', 'deny-all', 1],
      ['cached_with_expiry', 'cached', 0],
      ['cached_indefinite', 'cached', 0],
      ['default_policy', 'default', 0],
    ])('%s → %s', async (mode, effective, exit) => {
      const {cache, url} = await primedCache()
      const r = await pull(url, mode, cache)
      expect(r.json.effective).toBe(effective)
      expect(r.json.failure.code).toBe('ECONNREFUSED')
      expect(r.exitCode).toBe(exit)
    })

    it('cached_with_expiry denies once max-age has passed since the fetch', async () => {
      const {cache, url} = await primedCache()
      // No sleep: pull again until the 1 s window has passed (each run is itself a few hundred ms).
      const first = await pull(url, 'cached_with_expiry', cache, ['--max-age', '1s'])
      let r = first
      for (let i = 0; i < 40 && r.json.effective !== 'deny-all'; i++) r = await pull(url, 'cached_with_expiry', cache, ['--max-age', '1s'])
      expect(['cached', 'deny-all']).toContain(first.json.effective)
      expect(r.json.effective).toBe('deny-all')
      expect(r.exitCode).toBe(1)
    })

    it('never uses a cache that was edited (poisoned)', async () => {
      const {cache, url} = await primedCache()
      const file = join(cache, 'orgs__acme.bundle.json')
      const env = JSON.parse(await readFile(file, 'utf8'))
      env.payload = Buffer.from(JSON.stringify(payload(9, 'permit(principal, action, resource);'))).toString('base64')
      await writeFile(file, JSON.stringify(env))
      const r = await pull(url, 'cached_indefinite', cache)
      expect(r.json.effective).toBe('deny-all')
      expect(r.json.reason).toContain('cache not used')
    })
  })

  it.each([
    ['hang', 'TIMEOUT'],
    ['500', 'SERVER_ERROR'],
    ['html', 'GARBAGE'],
  ] as const)('a server that answers %s → %s, then exactly what each offline mode says', async (kind, code) => {
    const {cache} = await primedCache()
    const bad = await misbehaving(kind)
    try {
      const expected = {fail_closed: ['deny-all', 1], cached_with_expiry: ['cached', 0], cached_indefinite: ['cached', 0], default_policy: ['default', 0]} as const
      for (const [mode, [effective, exit]] of Object.entries(expected)) {
        const r = await pull(bad.url, mode, cache)
        expect([mode, r.json.effective, r.json.failure.code, r.exitCode]).toEqual([mode, effective, code, exit])
      }
    } finally {
      await bad.close()
    }
  })

  it('sends the API key the server requires, and is refused without it', async () => {
    const dir = join(t.dir, 'b-key')
    await publish(dir, payload(1))
    const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, tls: {cert: CERT, key: KEY}, apiKey: 's3cret-key'})
    try {
      const without = await pull(s.url, 'fail_closed', join(t.dir, 'c-key1'))
      expect(without.json.failure).toMatchObject({code: 'HTTP_ERROR', message: expect.stringContaining('401')})
      const withKey = await airlock(['policy', 'pull', '--server', s.url, '--scope', 'org:acme', '--ca', join(t.dir, 'ca.pem'), '--trust', join(t.dir, 'trust.yaml'), '--cache-dir', join(t.dir, 'c-key2'), '--api-key-env', 'BUNDLE_KEY', '--json'], {env: {BUNDLE_KEY: 's3cret-key'}})
      expect(withKey.json.effective).toBe('fetched')
    } finally {
      await s.close()
    }
  })

  it('--watch pulls again every interval and stops after --count', async () => {
    const dir = join(t.dir, 'b-watch')
    await publish(dir, payload(1))
    const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, tls: {cert: CERT, key: KEY}})
    try {
      const r = await pull(s.url, 'fail_closed', join(t.dir, 'c-watch'), ['--watch', '--interval', '1s', '--count', '2'])
      expect(r.exitCode).toBe(0)
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
      expect(lines.map((l) => l.effective)).toEqual(['fetched', 'unchanged'])
    } finally {
      await s.close()
    }
  })

  it('refuses a server whose certificate does not chain to --ca', async () => {
    const {cache} = await primedCache()
    const dir = join(t.dir, 'b-untrusted')
    await publish(dir, payload(5))
    const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, tls: {cert: OTHER_CERT, key: OTHER_KEY}})
    try {
      const r = await pull(s.url, 'cached_indefinite', cache)
      expect(r.json).toMatchObject({effective: 'cached', version: 2})
      expect(r.json.failure.code).toMatch(/CERT|SELF_SIGNED/)
    } finally {
      await s.close()
    }
  })
})

describe('policy serve as a process', () => {
  it('serves bundles over HTTPS with ETag and 304, health and readiness, and stops on SIGTERM', async () => {
    const dir = join(t.dir, 'b-serve')
    await publish(dir, payload(1))
    await writeFile(join(t.dir, 'srv.pem'), CERT)
    await writeFile(join(t.dir, 'srv.key'), KEY)
    const child = spawn(NODE, [BIN, 'policy', 'serve', '--bundles', dir, '--tls-cert', join(t.dir, 'srv.pem'), '--tls-key', join(t.dir, 'srv.key'), '--port', '0', '--json'], {stdio: ['ignore', 'pipe', 'inherit']})
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const url: string = await new Promise((resolve, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString()).url))
      void exited.then(() => reject(new Error('serve exited early')))
    })
    const {httpGet: fetchBundle} = await import('../../control-plane/net/http.js')
    const opts = {ca: CERT, timeoutMs: 2000, maxBytes: 1 << 20}
    const first = await fetchBundle(new URL('/v1/bundles/org%3Aacme', url), opts)
    expect(first.status).toBe(200)
    const etag = first.status === 200 ? first.etag : null
    expect(etag).toMatch(/^"sha256-[0-9a-f]{64}"$/)
    expect((await fetchBundle(new URL('/v1/bundles/org%3Aacme', url), {...opts, etag})).status).toBe(304)
    await expect(fetchBundle(new URL('/v1/bundles/org%3Aglobex', url), opts)).rejects.toMatchObject({code: 'HTTP_ERROR'})
    await expect(fetchBundle(new URL('/healthz', url), opts)).resolves.toMatchObject({status: 200})
    await expect(fetchBundle(new URL('/readyz', url), opts)).resolves.toMatchObject({status: 200})
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  })

  it('refuses plain HTTP off loopback (2)', async () => {
    const r = await airlock(['policy', 'serve', '--insecure-http', '--host', '0.0.0.0', '--port', '0', '--json'])
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('USAGE')
  })
})

describe('authorize --from-cache (the bundle hierarchy)', () => {
  it('evaluates global + own org + own team bundles; forbid wins; another org’s bundle never applies', async () => {
    const {cpSync} = await import('node:fs')
    const {loadPolicyTree} = await import('../../control-plane/policy/source.js')
    const {buildPayload, parseScope, bundlePath} = await import('../../control-plane/policy/bundle.js')
    const src = join(t.dir, 'h-policies')
    cpSync(join(ROOT, 'policies'), src, {recursive: true})
    await mkdir(join(src, 'orgs', 'globex'), {recursive: true})
    await writeFile(join(src, 'orgs', 'globex', 'open.cedar'), '@id("globex-any-egress")\npermit (principal, action == AgentKernel::Action::"Network", resource);\n')
    const tree = await loadPolicyTree(src, {display: (a) => a.slice(t.dir.length + 1)})
    const dir = join(t.dir, 'h-bundles')
    const scopes = ['global', 'org:acme', 'org:globex', 'team:acme/platform', 'user:alice']
    for (const scope of scopes) {
      const file = join(dir, bundlePath(parseScope(scope)).slice('bundles/'.length))
      await mkdir(join(file, '..'), {recursive: true})
      await writeFile(file, JSON.stringify(signBundle(buildPayload(tree, parseScope(scope), 1, new Date(NOW - 60_000), new Date(NOW + 3_600_000)), [signer])))
    }
    const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, tls: {cert: CERT, key: KEY}})
    const cache = join(t.dir, 'h-cache')
    try {
      for (const scope of scopes) {
        const r = await airlock(['policy', 'pull', '--server', s.url, '--scope', scope, '--ca', join(t.dir, 'ca.pem'), '--trust', join(t.dir, 'trust.yaml'), '--cache-dir', cache, '--json'])
        expect(r.json.effective).toBe('fetched')
      }
    } finally {
      await s.close()
    }
    const entities = join(ROOT, 'policies/tests/entities.json')
    const ask = (user: string, action: string, resource: string, context?: object) =>
      (async () => {
        const args = ['authorize', '--from-cache', '--cache-dir', cache, '--trust', join(t.dir, 'trust.yaml'), '--entities', entities, '--principal', `AgentKernel::User::"${user}"`, '--action', `AgentKernel::Action::"${action}"`, '--resource', `AgentKernel::Sandbox::"${resource}"`, '--json']
        if (context) {
          const file = join(t.dir, `ctx-${Math.random().toString(36).slice(2)}.json`)
          await writeFile(file, JSON.stringify(context))
          args.push('--context', file)
        }
        return airlock(args)
      })()
    const acmeLlm = await ask('dana', 'Network', 'small', {destination_host: 'api.anthropic.com', destination_port: 443})
    expect(acmeLlm.json).toMatchObject({decision: 'allow', reasons: [{id: 'acme-egress-llm-apis'}]})
    const acmeElsewhere = await ask('dana', 'Network', 'small', {destination_host: 'example.com', destination_port: 443})
    expect(acmeElsewhere.json.decision).toBe('deny')
    const globexAny = await ask('gus', 'Network', 'small', {destination_host: 'example.com', destination_port: 443})
    expect(globexAny.json).toMatchObject({decision: 'allow', reasons: [{id: 'globex-any-egress'}]})
    const globexMetadata = await ask('gus', 'Network', 'small', {destination_host: '169.254.169.254', destination_port: 80})
    expect(globexMetadata.json).toMatchObject({decision: 'deny', reasons: [{id: 'global-forbid-cloud-metadata'}]})
    const teamExec = await ask('alice', 'Exec', 'small')
    expect(teamExec.json).toMatchObject({decision: 'allow', reasons: [{id: 'acme-platform-exec-firecracker'}]})
    const otherTeam = await ask('dana', 'Exec', 'small')
    expect(otherTeam.json.decision).toBe('deny')
  })
})

describe('authorize --jwt with a JWKS URL', () => {
  it('fetches the issuer keys over HTTPS from a server that chains to --ca, and refuses one that does not', async () => {
    const {exportJWK, generateKeyPair, SignJWT} = await import('jose')
    const {publicKey, privateKey} = await generateKeyPair('RS256', {extractable: true})
    const jwks = JSON.stringify({keys: [{...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256'}]})
    const server: Server = createHttps({cert: CERT, key: KEY}, (_req, res) => res.writeHead(200, {'content-type': 'application/json'}).end(jwks))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const url = `https://127.0.0.1:${(server.address() as {port: number}).port}/.well-known/jwks.json`
    try {
      const token = await new SignJWT({org_id: 'acme', roles: ['ci']})
        .setProtectedHeader({alg: 'RS256', kid: 'k'})
        .setIssuer('https://ci.example')
        .setAudience('airlock')
        .setSubject('ci-acme')
        .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
        .sign(privateKey)
      const args = ['authorize', '--jwt', token, '--jwks', url, '--issuer', 'https://ci.example', '--audience', 'airlock', '--action', 'AgentKernel::Action::"Promote"', '--resource', 'AgentKernel::Channel::"agent-runner/canary"', '--entities', join(ROOT, 'policies/tests/entities.json'), '--policies', join(ROOT, 'policies'), '--json']
      const ok = await airlock([...args, '--ca', join(t.dir, 'ca.pem')])
      expect(ok.exitCode).toBe(0)
      expect(ok.json.decision).toBe('allow')
      const untrusted = await airlock(args)
      expect(untrusted.exitCode).toBe(1)
      expect(untrusted.json.error.code).toBe('INVALID_TOKEN')
    } finally {
      server.close()
    }
  })
})
