/**
 * The secrets baseline is signed desired state: `airlock change` commits it (authorized as
 * ChangeDesiredState on SecretsBaseline, signed), refuses one that holds a secret without printing
 * it, and a commit that changes it without a signature breaks the history's verification.
 */
import {randomBytes} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, commitChange, git, initFleet} from '../helpers.js'

let fleet: Awaited<ReturnType<typeof initFleet>>
const FILE = '.airlock-secrets-baseline'
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
// Made at run time: no token is written in this file.
const TOKEN = ['gh', 'p_', [...randomBytes(36)].map((b) => ALNUM[b % 62]).join('')].join('')

beforeAll(async () => {
  fleet = await initFleet()
}, 120_000)
afterAll(() => fleet.cleanup())

describe('the secrets baseline through the pipeline', () => {
  it('is committed by airlock change: authorized as SecretsBaseline, signed', async () => {
    const {dir, env} = fleet
    await writeFile(join(dir, FILE), `apiVersion: airlock/v1\nkind: SecretsBaseline\nentries:\n  - fingerprint: "${'5e'.repeat(32)}"\n    ruleId: secret/github/github-token\n    file: test/fixtures/tokens.txt\n    reason: a revoked token kept as a test fixture\n`)
    const plan = await airlock(['change', '--reason', 'accept a known fixture', '--json'], {cwd: dir, env})
    expect(plan.exitCode, plan.stdout + plan.stderr).toBe(0)
    expect(plan.json.plan.authorization).toMatchObject({decision: 'allow', resource: 'AgentKernel::DesiredState::"SecretsBaseline"'})
    await commitChange(dir, env, 'accept a known fixture')
    expect(await git(dir, 'show', '--name-only', '--format=', 'HEAD')).toContain(FILE)
    expect(await git(dir, 'cat-file', 'commit', 'HEAD')).toMatch(/^gpgsig -----BEGIN SSH SIGNATURE-----/m)
  })

  it('refuses a baseline holding a secret (exit 2), naming file and line, never the secret', async () => {
    const {dir, env} = fleet
    await writeFile(join(dir, FILE), `apiVersion: airlock/v1\nkind: SecretsBaseline\nentries:\n  - fingerprint: "${'5e'.repeat(32)}"\n    reason: "was ${TOKEN}"\n`)
    const r = await airlock(['change', '--reason', 'oops', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('SECRET_IN_BASELINE')
    expect(r.json.error.message).toMatch(/^\.airlock-secrets-baseline:5:/)
    for (const part of [TOKEN, TOKEN.slice(4, 8), TOKEN.slice(-4)]) expect(r.stdout + r.stderr).not.toContain(part)
    await git(dir, 'checkout', '--', FILE)
  })

  it('a commit changing it without a signature does not verify', async () => {
    const {dir} = fleet
    await writeFile(join(dir, FILE), `apiVersion: airlock/v1\nkind: SecretsBaseline\nentries: []\n`)
    await git(dir, 'commit', '-qam', 'quietly drop the baseline entries')
    const r = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toMatch(/UNSIGNED_COMMIT/)
    await git(dir, 'reset', '-q', '--hard', 'HEAD~1')
  })
})
