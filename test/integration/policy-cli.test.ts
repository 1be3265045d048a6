import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, describe, expect, it} from 'vitest'
import {airlock, BIN, git, initFleet, NODE, ROOT, tempDir} from '../helpers.js'

const t = await tempDir()
afterAll(() => t.cleanup())
const ENTITIES = join(ROOT, 'policies/tests/entities.json')
// This project's own example policies, named explicitly: decisions read nothing from a HEAD that does not verify.
const POLICIES = ['--policies', join(ROOT, 'policies')]
const req = (p: string, a: string, r: string) => ['--principal', `AgentKernel::User::"${p}"`, '--action', `AgentKernel::Action::"${a}"`, '--resource', r, ...POLICIES]

describe('airlock policy validate / test', () => {
  it('validates the example policies', async () => {
    const r = await airlock(['policy', 'validate', '--json'])
    expect(r.exitCode).toBe(0)
    expect(r.json).toMatchObject({ok: true, problems: []})
  })

  it('exits 2 naming file:line:col for a broken policy', async () => {
    const dir = join(t.dir, 'broken')
    await execa('cp', ['-r', join(ROOT, 'policies'), dir])
    await writeFile(join(dir, 'global/zz.cedar'), '\npermit(principal, action, resource)\nwhen { principal.roles.contains(1) };\n')
    const r = await airlock(['policy', 'validate', '--policies', dir])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/global\/zz\.cedar:3:\d+: /)
  })

  it('runs the example tests and writes JUnit XML', async () => {
    const junit = join(t.dir, 'junit.xml')
    const r = await airlock(['policy', 'test', '--junit', junit, '--json'])
    expect(r.exitCode).toBe(0)
    expect(r.json.failed).toBe(0)
    const xml = await readFile(junit, 'utf8')
    expect(xml).toContain(`tests="${r.json.passed}" failures="0"`)
  })

  it('exits 1 and names the failing case when an expectation does not hold', async () => {
    const dir = join(t.dir, 'tests-wrong')
    await execa('mkdir', ['-p', dir])
    await execa('cp', [ENTITIES, dir])
    await writeFile(join(dir, 'wrong.yaml'), 'entities: entities.json\ncases:\n  - name: ssh allowed?\n    principal: AgentKernel::User::"alice"\n    action: AgentKernel::Action::"SSH"\n    resource: AgentKernel::Sandbox::"alice-1"\n    expect: allow\n')
    const junit = join(t.dir, 'wrong.xml')
    const r = await airlock(['policy', 'test', dir, '--junit', junit])
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toContain('FAIL')
    expect(await readFile(junit, 'utf8')).toContain('<failure message="expected allow, got deny"')
  })
})

describe('airlock authorize', () => {
  it('exits 0 on allow with the reason and its file:line', async () => {
    const r = await airlock(['authorize', ...req('dana', 'Run', 'AgentKernel::Sandbox::"small"'), '--entities', ENTITIES, '--json'])
    expect(r.exitCode).toBe(0)
    expect(r.json).toMatchObject({decision: 'allow', reasons: [{id: 'global-developers-run-within-memory', file: 'policies/global/sandboxes.cedar', line: expect.any(Number)}]})
  })

  it('exits 1 on deny', async () => {
    const r = await airlock(['authorize', ...req('alice', 'SSH', 'AgentKernel::Sandbox::"alice-1"'), '--entities', ENTITIES])
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toMatch(/^DENY/)
  })

  it('exits 2 on an entity file that does not match the schema', async () => {
    const bad = join(t.dir, 'bad-entities.json')
    await writeFile(bad, JSON.stringify([{uid: {type: 'AgentKernel::User', id: 'dana'}, attrs: {roles: 'developer'}, parents: []}]))
    const r = await airlock(['authorize', ...req('dana', 'Run', 'AgentKernel::Sandbox::"small"'), '--entities', bad, '--json'])
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('INVALID_INPUT')
  })

  it('exits 2 on an integer the engine cannot receive exactly', async () => {
    const text = (await readFile(ENTITIES, 'utf8')).replace('"max_memory_mb": 2048', '"max_memory_mb": 9007199254740993')
    const file = join(t.dir, 'big.json')
    await writeFile(file, text)
    const r = await airlock(['authorize', ...req('dana', 'Run', 'AgentKernel::Sandbox::"small"'), '--entities', file, '--json'])
    expect(r.exitCode).toBe(2)
    expect(r.json.error.message).toContain('9007199254740993')
  })

  it('--batch answers one decision a line', async () => {
    const lines = [
      {principal: 'AgentKernel::User::"dana"', action: 'AgentKernel::Action::"Run"', resource: 'AgentKernel::Sandbox::"small"'},
      {principal: 'AgentKernel::User::"dana"', action: 'AgentKernel::Action::"Run"', resource: 'AgentKernel::Sandbox::"huge"'},
      {principal: 'nonsense'},
    ].map((l) => JSON.stringify(l))
    const r = await execa(NODE, [BIN, 'authorize', '--batch', ...POLICIES, '--entities', ENTITIES], {cwd: ROOT, input: `${lines.join('\n')}\n`, reject: false})
    const out = String(r.stdout).trim().split('\n').map((l) => JSON.parse(l))
    expect(out.map((o) => o.decision ?? o.error.code)).toEqual(['allow', 'deny', 'USAGE'])
    expect(r.exitCode).toBe(2)
  })
})

describe('airlock policy bundle / verify', () => {
  it('publishes signed bundles in signed commits, versions them, and verifies them', async () => {
    const fleet = await initFleet()
    try {
      const {dir, env} = fleet
      // airlock init scaffolded the example policies into the fleet.
      expect((await airlock(['keys', 'generate', 'pol', '--role', 'policy', '--apply'], {cwd: dir, env})).exitCode).toBe(0)
      const key = join(dir, 'keys/pol.key')

      const wrongKey = await airlock(['policy', 'bundle', '--scope', 'org:acme', '--key', fleet.key, '--json'], {cwd: dir})
      expect(wrongKey.exitCode).toBe(2)
      expect(wrongKey.json.error.code).toBe('KEY_INVALID')

      const plan = await airlock(['policy', 'bundle', '--scope', 'org:acme', '--key', key, '--json'], {cwd: dir})
      expect(plan.exitCode).toBe(0)
      expect(plan.json.plan.details).toMatchObject({version: 1, added: 'acme-egress-llm-apis, acme-llm-providers'})
      const v1 = await airlock(['policy', 'bundle', '--scope', 'org:acme', '--key', key, '--reason', 'first', '--apply', '--json'], {cwd: dir, env})
      expect(v1.exitCode).toBe(0)
      const v2 = await airlock(['policy', 'bundle', '--scope', 'org:acme', '--key', key, '--apply', '--json'], {cwd: dir, env})
      expect(v2.json.plan.details).toMatchObject({version: 2, previousVersion: 1, added: 'none', changed: 'none'})

      const bundle = join(dir, 'bundles/orgs/acme.bundle.json')
      const ok = await airlock(['policy', 'verify', bundle, '--scope', 'org:acme', '--min-version', '2', '--json'], {cwd: dir})
      expect(ok.exitCode).toBe(0)
      expect(ok.json).toMatchObject({scope: 'org:acme', version: 2, policies: 2})
      const old = await airlock(['policy', 'verify', bundle, '--min-version', '3', '--json'], {cwd: dir})
      expect(old.exitCode).toBe(1)
      expect(old.json.error.code).toBe('DOWNGRADE')
      expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)

      // A bundle swapped in by a commit without the evidence key is named by evidence verify.
      await writeFile(bundle, (await readFile(bundle, 'utf8')).replace(/"sig": "[^"]+"/, '"sig": "AAAA"'))
      await git(dir, 'commit', '-qam', 'swap bundle')
      const verify = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
      expect(verify.json.problems.map((p: any) => p.code)).toEqual(['UNSIGNED_COMMIT'])
    } finally {
      await fleet.cleanup()
    }
  })
})

describe('airlock authorize --jwt', () => {
  it('takes the principal from a verified CI token; refuses an expired one (1)', async () => {
    const {exportJWK, generateKeyPair, SignJWT} = await import('jose')
    const {publicKey, privateKey} = await generateKeyPair('ES256', {extractable: true})
    const jwks = join(t.dir, 'jwks.json')
    await writeFile(jwks, JSON.stringify({keys: [{...(await exportJWK(publicKey)), kid: 'ci', alg: 'ES256'}]}))
    const now = Math.floor(Date.now() / 1000)
    const token = (exp: number) =>
      new SignJWT({org_id: 'acme', roles: ['ci'], email: 'ci@acme.example'})
        .setProtectedHeader({alg: 'ES256', kid: 'ci'})
        .setIssuer('https://ci.example')
        .setAudience('airlock')
        .setSubject('ci-acme')
        .setExpirationTime(exp)
        .sign(privateKey)
    const base = ['authorize', ...POLICIES, '--action', 'AgentKernel::Action::"Promote"', '--entities', ENTITIES, '--jwks', jwks, '--issuer', 'https://ci.example', '--audience', 'airlock', '--json']
    const canary = await airlock([...base, '--resource', 'AgentKernel::Channel::"agent-runner/canary"', '--jwt', await token(now + 300)])
    expect(canary.exitCode).toBe(0)
    expect(canary.json.reasons.map((r: any) => r.id)).toEqual(['global-ci-promotes-canary'])
    const stable = await airlock([...base, '--resource', 'AgentKernel::Channel::"agent-runner/stable"'], {env: {AIRLOCK_JWT: await token(now + 300)}})
    expect(stable.exitCode).toBe(1)
    expect(stable.json.decision).toBe('deny')
    const expired = await airlock([...base, '--resource', 'AgentKernel::Channel::"agent-runner/canary"', '--jwt', await token(now - 10)])
    expect(expired.exitCode).toBe(1)
    expect(expired.json.error.code).toBe('INVALID_TOKEN')
  })
})
