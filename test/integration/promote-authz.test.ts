import {existsSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {exportJWK, generateKeyPair, SignJWT} from 'jose'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {airlock, commitChange, git, fleetCopies, type Fleet} from '../helpers.js'

let fleet: Fleet
const fleets = fleetCopies()
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
})
afterEach(() => fleet.cleanup())

const STABLE = ['promote', 'agent-runner', '--from', 'canary', '--to', 'stable', '--reason', 'soaked']

describe('promote and rollback are authorized by the repository policies', () => {
  it('refuses an unauthenticated local operator on stable (1) and writes nothing; a plan shows the decision', async () => {
    const {dir, env} = fleet
    const head = await git(dir, 'rev-parse', 'HEAD')
    const applied = await airlock([...STABLE, '--apply', '--json'], {cwd: dir, env})
    expect(applied.exitCode).toBe(1)
    expect(applied.json.error).toMatchObject({code: 'DENIED', details: {authorization: {decision: 'deny', authenticated: false, action: 'Promote'}}})
    expect(applied.json.error.message).toContain('global-only-release-managers-change-stable')
    const out = join(dir, '..', 'denied-plan.json')
    const saved = await airlock([...STABLE, '--out', out, '--json'], {cwd: dir})
    expect(saved.exitCode).toBe(1)
    expect(existsSync(out)).toBe(false)
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(head)
    expect(await git(dir, 'status', '--porcelain')).toBe('')
    const plan = await airlock(STABLE, {cwd: dir})
    expect(plan.exitCode).toBe(0)
    expect(plan.stdout).toMatch(/authorization\s+DENY Promote for AgentKernel::User::"local:[^"]+" \(unauthenticated\)/)
  })

  it('lets a verified release manager with MFA promote to stable, and records the decision in the receipt', async () => {
    const {dir, env} = fleet
    const {publicKey, privateKey} = await generateKeyPair('ES256', {extractable: true})
    const jwks = join(dir, '..', 'jwks.json')
    await writeFile(jwks, JSON.stringify({keys: [{...(await exportJWK(publicKey)), kid: 'idp', alg: 'ES256'}]}))
    const org = /org: (\S+)/.exec(await readFile(join(dir, 'manifests/trust.yaml'), 'utf8'))![1]!
    const token = await new SignJWT({org_id: org, roles: ['release-manager'], amr: ['mfa'], email: 'rita@example.com'})
      .setProtectedHeader({alg: 'ES256', kid: 'idp'})
      .setIssuer('https://idp.example')
      .setAudience('airlock')
      .setSubject('rita')
      .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
      .sign(privateKey)
    const r = await airlock([...STABLE, '--apply', '--json', '--jwks', jwks, '--issuer', 'https://idp.example', '--audience', 'airlock'], {cwd: dir, env: {...env, AIRLOCK_JWT: token}})
    expect(r.exitCode).toBe(0)
    const receipt = JSON.parse(await readFile(join(dir, r.json.applied.receipt), 'utf8'))
    const predicate = JSON.parse(Buffer.from(receipt.payload, 'base64').toString()).predicate
    expect(predicate.authorization).toMatchObject({
      decision: 'allow',
      authenticated: true,
      principal: 'AgentKernel::User::"rita"',
      resource: 'AgentKernel::Channel::"agent-runner/stable"',
      reasons: [expect.stringMatching(/^global-release-managers-promote-and-roll-back \(policies\/global\/control-plane\.cedar:\d+\)$/)],
    })
    expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)
  })

  it('records an allowed local operator as unauthenticated in the receipt', async () => {
    const {dir, env} = fleet
    const r = await airlock(['rollback', 'agent-runner', '--channel', 'canary', '--reason', 'undo', '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    const receipt = JSON.parse(await readFile(join(dir, r.json.applied.receipt), 'utf8'))
    expect(JSON.parse(Buffer.from(receipt.payload, 'base64').toString()).predicate.authorization).toMatchObject({
      decision: 'allow',
      authenticated: false,
      action: 'Rollback',
      reasons: [expect.stringContaining('global-local-operators-in-scratch-fleets')],
    })
  })

  it('denies everything in a repository without policies (default deny)', async () => {
    const {dir, env} = fleet
    await git(dir, 'rm', '-rq', 'policies')
    await commitChange(dir, env, 'drop policies')
    // stable's digest is signed by the scaffold, so only the missing policies stand in the way.
    const r = await airlock(['promote', 'agent-runner', '--from', 'stable', '--to', 'canary', '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.json.error.details.authorization.note).toContain('no policies')
  })
})

describe('policy changes are evidence too', () => {
  it('names an unsigned commit that rewrites the policies', async () => {
    const {dir} = fleet
    await writeFile(join(dir, 'policies/global/open.cedar'), 'permit (principal, action, resource);\n')
    await git(dir, 'add', 'policies')
    await git(dir, 'commit', '-qm', 'open everything')
    const r = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(r.exitCode).toBe(1)
    expect(r.json.problems.map((p: any) => p.code)).toEqual(['UNSIGNED_COMMIT'])
  })
})
