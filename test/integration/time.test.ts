/**
 * Time a signer cannot move back, end to end: a retired evidence key signing a commit dated back
 * into its validity (git plumbing, the fleet's real key), and a retired policy key signing a
 * bundle issued back before its retirement, far-future expiry and huge version included, served
 * over real loopback HTTPS. Trust files are passed with --trust FILE.
 */
import {readFile, writeFile, mkdir} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {generateSigner, signerFromPem, type Signer} from '../../control-plane/crypto/keys.js'
import {DEFAULT_LIMITS} from '../../control-plane/limits.js'
import {parseTrust} from '../../control-plane/manifests/load.js'
import {signBundle, type BundlePayload} from '../../control-plane/policy/bundle.js'
import {pullBundle, serverSource, type PullOptions} from '../../control-plane/policy/pull.js'
import {startBundleServer} from '../../control-plane/policy/server.js'
import {airlock, git, initFleet, tempDir} from '../helpers.js'
import {Plumbing, trustYaml} from '../unit/evidence/git-plumbing.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const DAY = 86_400_000

describe('a retired evidence key signing a commit dated back into its validity', () => {
  it('evidence verify refuses it (BACKDATED), and nothing is promoted on it', async () => {
    const fleet = await initFleet({sign: [NEXT]})
    try {
      const {dir} = fleet
      // A second evidence key, then a signed rotation (by it) ending the first key's validity.
      const gen = await airlock(['keys', 'generate', 'evidence2', '--role', 'evidence', '--reason', 'rotation', '--apply', '--json'], {cwd: dir, env: fleet.env})
      expect(gen.exitCode, gen.stdout + gen.stderr).toBe(0)
      const trust = await readFile(join(dir, 'manifests/trust.yaml'), 'utf8')
      const validFrom = /name: evidence\n(?:.*\n)*?\s+validFrom: (\S+)\n/.exec(trust)![1]!
      // Retired from now on: every receipt it signed so far stays valid.
      const validUntil = new Date().toISOString()
      await writeFile(join(dir, 'manifests/trust.yaml'), trust.replace(`validFrom: ${validFrom}\n`, `validFrom: ${validFrom}\n      validUntil: ${validUntil}\n`))
      const rotation = await airlock(['change', '--reason', 'retire the first evidence key', '--apply', '--json'], {cwd: dir, env: {AIRLOCK_EVIDENCE_KEY: join(dir, 'keys', 'evidence2.key')}})
      expect(rotation.exitCode, rotation.stdout + rotation.stderr).toBe(0)
      expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)

      // The retired key signs a permit-all policy, dated inside its validity: before its parent.
      const retired = signerFromPem(await readFile(fleet.key, 'utf8'), fleet.key)
      const plumbing = Plumbing.open(dir)
      const head = await git(dir, 'rev-parse', 'HEAD')
      const forged = await plumbing.commit({parents: [head], time: Math.floor(Date.parse(validUntil) / 1000) - 1, signer: retired, change: {'policies/global/zz-open.cedar': 'permit(principal, action, resource);\n'}, message: 'routine'})
      await plumbing.setBranch(forged)
      await git(dir, 'reset', '-q', '--hard')

      const verify = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
      expect(verify.exitCode).toBe(1)
      expect(verify.json.problems[0]).toMatchObject({code: 'BACKDATED', commit: forged})
      const promote = await airlock(['promote', 'agent-runner', '--to', 'canary', '--digest', NEXT, '--reason', 'on a forged base', '--apply', '--json'], {cwd: dir, env: {AIRLOCK_EVIDENCE_KEY: join(dir, 'keys', 'evidence2.key')}})
      expect(promote.exitCode, promote.stdout + promote.stderr).toBe(1)
      expect(JSON.stringify(promote.json)).toContain('BACKDATED')
      expect(await git(dir, 'rev-parse', 'HEAD')).toBe(forged)
    } finally {
      await fleet.cleanup()
    }
  })
})

describe('a retired policy key signing a bundle issued back before its retirement', () => {
  const t = {dir: '', cleanup: async () => {}}
  const retired = generateSigner().signer
  const current = generateSigner().signer
  const NOW = Date.now()
  let CERT = ''
  let KEY = ''
  const policyKey = (signer: Signer, validUntil?: string) => ({signer, roles: ['policy'], validFrom: '2020-01-01T00:00:00Z', ...(validUntil ? {validUntil} : {})})
  const RETIRED_AT = new Date(NOW - DAY).toISOString()

  function payload(version: number, issuedAt: number, lifetimeMs: number): BundlePayload {
    return {
      apiVersion: 'airlock/v1',
      kind: 'PolicyBundle',
      scope: 'org:acme',
      version,
      issuedAt: new Date(issuedAt).toISOString(),
      expiresAt: new Date(issuedAt + lifetimeMs).toISOString(),
      schema: 'namespace AgentKernel { entity User; entity Sandbox; action Run appliesTo { principal: User, resource: Sandbox }; }',
      policies: [{id: 'run', file: 'policies/orgs/acme/run.cedar', line: 1, text: 'permit(principal, action == AgentKernel::Action::"Run", resource);'}],
    }
  }
  /** Forged: v10^6, issued two days ago (the retired key was valid then). */
  const forgery = (lifetimeMs: number) => signBundle(payload(1_000_000, NOW - 2 * DAY, lifetimeMs), [retired])
  const real = signBundle(payload(2, NOW - 60_000, DAY), [current])

  async function file(name: string, text: string): Promise<string> {
    const path = join(t.dir, name)
    await writeFile(path, text)
    return path
  }
  async function serve(name: string, bundle: object) {
    const dir = join(t.dir, name)
    await mkdir(join(dir, 'orgs'), {recursive: true})
    const put = (b: object) => writeFile(join(dir, 'orgs', 'acme.bundle.json'), JSON.stringify(b))
    await put(bundle)
    const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, tls: {cert: CERT, key: KEY}})
    return {url: s.url, put, close: () => s.close()}
  }
  const pull = (url: string, trust: string, cache: string, mode = 'fail_closed') =>
    airlock(['policy', 'pull', '--server', url, '--scope', 'org:acme', '--ca', join(t.dir, 'ca.pem'), '--trust', trust, '--cache-dir', cache, '--offline-mode', mode, '--timeout', '2s', '--json'])

  beforeAll(async () => {
    Object.assign(t, await tempDir())
    await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(t.dir, 'key.pem'), '-out', join(t.dir, 'ca.pem')])
    CERT = await readFile(join(t.dir, 'ca.pem'), 'utf8')
    KEY = await readFile(join(t.dir, 'key.pem'), 'utf8')
  })
  afterAll(() => t.cleanup())

  it('policy verify refuses a 70-year forgery with version 10^6 (LIFETIME_EXCEEDED)', async () => {
    const trust = await file('trust-verify.yaml', trustYaml([policyKey(retired, RETIRED_AT), policyKey(current)], {policy: 1}))
    const bundle = await file('forged.json', JSON.stringify(forgery(70 * 365 * DAY)))
    const r = await airlock(['policy', 'verify', bundle, '--trust', trust, '--json'])
    expect(r.exitCode, r.stdout).toBe(1)
    expect(r.json.error.code).toBe('LIFETIME_EXCEEDED')
  })

  it('a cached forgery holds no version floor once the trust policy no longer vouches for it', async () => {
    const both = await file('trust-both.yaml', trustYaml([policyKey(retired, RETIRED_AT), policyKey(current)], {policy: 1}))
    const shorter = await file('trust-7d.yaml', `${trustYaml([policyKey(retired, RETIRED_AT), policyKey(current)], {policy: 1})}  bundles:\n    maxLifetime: 7d\n`)
    const removed = await file('trust-removed.yaml', trustYaml([policyKey(current)], {policy: 1}))
    const server = await serve('served', forgery(29 * DAY))
    try {
      // Within the default 30-day lifetime, issued while its key was valid: fetched and cached.
      const lifetime = join(t.dir, 'cache-lifetime')
      expect((await pull(server.url, both, lifetime)).json).toMatchObject({effective: 'fetched', version: 1_000_000})
      const removal = join(t.dir, 'cache-removal')
      expect((await pull(server.url, both, removal)).json).toMatchObject({effective: 'fetched', version: 1_000_000})
      await server.put(real)
      // While the trust policy vouches for it, it holds the floor: the real v2 is a downgrade.
      const down = await pull(server.url, both, lifetime)
      expect(down.json).toMatchObject({effective: 'deny-all', failure: {code: 'DOWNGRADE'}})
      // The operator shortens the bundle lifetime: the forgery no longer verifies, and holds nothing.
      const after = await pull(server.url, shorter, lifetime)
      expect(after.json, JSON.stringify(after.json)).toMatchObject({effective: 'fetched', version: 2, failure: null})
      // The operator removes the key: the cached forgery neither serves nor blocks the real bundle.
      await server.close()
      const offline = await pull(server.url, removed, removal, 'cached_indefinite')
      expect(offline.json).toMatchObject({effective: 'deny-all'})
      expect(offline.json.reason).toMatch(/no valid cache \(cache not used: .*UNKNOWN_KEY|not a policy key/)
    } finally {
      await server.close().catch(() => {})
    }
    const again = await serve('served-again', real)
    try {
      const cache = join(t.dir, 'cache-removal')
      expect((await pull(again.url, removed, cache)).json).toMatchObject({effective: 'fetched', version: 2, failure: null})
    } finally {
      await again.close()
    }
  })

  it('an expired cached bundle holds no version floor (the verifier’s time passed in)', async () => {
    const trusted = parseTrust(trustYaml([policyKey(retired), policyKey(current)], {policy: 1}), 'trust.yaml', null, DEFAULT_LIMITS)
    const issued = Date.parse('2026-01-10T00:00:00Z')
    const server = await serve('served-expiry', signBundle(payload(1_000_000, issued, DAY), [retired]))
    const opts = (now: number, mode: PullOptions['offlineMode'] = 'fail_closed'): PullOptions => ({
      source: serverSource(server.url, 'org:acme', {ca: CERT, timeoutMs: 2000, maxBytes: DEFAULT_LIMITS.maxReceiptBytes}),
      scope: 'org:acme',
      trust: trusted,
      now: new Date(now),
      cacheDir: join(t.dir, 'cache-expiry'),
      offlineMode: mode,
      maxAgeMs: DAY,
      defaultPolicy: async () => ({policies: 0, digest: ''}),
      limits: DEFAULT_LIMITS,
    })
    try {
      expect(await pullBundle(opts(issued + 3_600_000))).toMatchObject({effective: 'fetched', version: 1_000_000})
      await server.put(signBundle(payload(2, issued + 2 * 3_600_000, DAY), [current]))
      // Before it expires it is the floor: the real v2 is a downgrade.
      expect(await pullBundle(opts(issued + 3 * 3_600_000))).toMatchObject({effective: 'deny-all', failure: {code: 'DOWNGRADE'}})
    } finally {
      await server.close()
    }
    // Expired, cached_indefinite may still serve it (the operator's explicit choice)…
    const later = issued + DAY + 3_600_000
    expect(await pullBundle(opts(later, 'cached_indefinite'))).toMatchObject({effective: 'cached', version: 1_000_000})
    // …but it blocks nothing.
    const again = await serve('served-expiry-again', signBundle(payload(2, issued + 2 * 3_600_000, DAY), [current]))
    try {
      expect(await pullBundle({...opts(later), source: serverSource(again.url, 'org:acme', {ca: CERT, timeoutMs: 2000, maxBytes: DEFAULT_LIMITS.maxReceiptBytes})})).toMatchObject({effective: 'fetched', version: 2, failure: null})
    } finally {
      await again.close()
    }
  })
})
