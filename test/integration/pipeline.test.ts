/**
 * The change pipeline as an attacker with write access to the repository but no keys meets it:
 * real fleets made by `airlock init`, real git plumbing (commit-tree, SSH-signed commits by a key
 * the fleet does not trust, merges), real keys.
 */
import {execa} from 'execa'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {digestOfJson} from '../../control-plane/crypto/digest.js'
import type {Plan} from '../../control-plane/plan/plan.js'
import {airlock, commitChange, git, type CliResult, fleetCopies, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const UNSIGNED = `sha256:${'ee'.repeat(32)}`
const IMAGE = 'manifests/images/agent-runner.yaml'

let fleet: Fleet
const fleets = fleetCopies({sign: [NEXT]})
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
})
afterEach(async () => {
  await fleet.cleanup()
})

/** An SSH key the fleet does not trust, set up as git's signing key for commits in `dir`. */
async function attackerSigning(dir: string): Promise<string[]> {
  const key = join(dir, '..', 'attacker')
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
  return ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${key}`]
}

const codes = (r: CliResult) => ((r.json.problems ?? []) as Array<{code: string}>).map((p) => p.code)

describe('a saved plan is a proposal, never a credential', () => {
  /**
   * The canary promotion of NEXT saved with `promote --out`, written to `out`. Every test's fleet
   * is a copy of one fleet (the same commits), so the plan saved in the first test that asks is
   * the plan of each; the others get that file instead of saving it again.
   */
  let saved: string | undefined
  async function savedPlan(out: string): Promise<void> {
    if (saved === undefined) {
      const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--out', out, '--json'], {cwd: fleet.dir})
      expect(r.exitCode, r.stdout + r.stderr).toBe(0)
      saved = await readFile(out, 'utf8')
    } else await writeFile(out, saved)
  }

  it('refuses a canary plan edited to pin an unsigned digest and resealed', async () => {
    const {dir, env} = fleet
    const out = join(dir, '..', 'plan.json')
    await savedPlan(out)
    const plan = JSON.parse(await readFile(out, 'utf8'))
    plan.changes[0].after = plan.changes[0].after.replaceAll(NEXT, UNSIGNED)
    const {digest: _old, ...rest} = plan
    await writeFile(out, JSON.stringify({...rest, digest: digestOfJson(rest)}))
    const r = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('PLAN_MISMATCH')
    expect(r.json.error.details.fields).toEqual(['changes'])
    expect(await git(dir, 'rev-list', '--count', 'HEAD')).toBe('2')
  })

  it('refuses a plan resealed after editing any computed field, naming the field', async () => {
    const {dir, env} = fleet
    const out = join(dir, '..', 'plan.json')
    await savedPlan(out)
    const original = JSON.parse(await readFile(out, 'utf8'))
    const edits: Array<[string, (p: Plan) => void]> = [
      ['summary', (p) => (p.summary = 'harmless')],
      ['details', (p) => (p.details.rollbackTarget = UNSIGNED)],
      ['inputs', (p) => (p.inputs[0]!.oid = '0'.repeat(40))],
      ['subjects', (p) => (p.subjects[0]!.digest.sha256 = UNSIGNED.slice(7))],
      ['signature', (p) => (p.signature!.signer = {keyid: 'f'.repeat(64)})],
      ['receiptPath', (p) => (p.receiptPath = 'docs/evidence/elsewhere.json')],
      ['operation', (p) => (p.operation = 'rollback')],
    ]
    for (const [field, edit] of edits) {
      const plan = structuredClone(original)
      edit(plan)
      const {digest: _old, ...rest} = plan
      await writeFile(out, JSON.stringify({...rest, digest: digestOfJson(rest)}))
      const r = await airlock(['apply', out, '--json'], {cwd: dir, env})
      expect(r.json.error, field).toMatchObject({code: 'PLAN_MISMATCH', details: {fields: [field]}})
    }
    expect(await git(dir, 'rev-list', '--count', 'HEAD')).toBe('2')
  })

  it('re-verifies the request itself: an edited request pinning an unsigned digest fails its signature check', async () => {
    const {dir, env} = fleet
    const out = join(dir, '..', 'plan.json')
    await savedPlan(out)
    const text = (await readFile(out, 'utf8')).replaceAll(NEXT, UNSIGNED).replaceAll(NEXT.slice(7), UNSIGNED.slice(7))
    const plan = JSON.parse(text)
    const {digest: _old, ...rest} = plan
    await writeFile(out, JSON.stringify({...rest, digest: digestOfJson(rest)}))
    const r = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.json.error.details.reason).toBe('NO_SIGNATURE')
  })

  it('authorizes whoever applies now: a stable plan saved by anyone is refused for a local operator', async () => {
    const {dir, env} = fleet
    const out = join(dir, '..', 'plan.json')
    // Saving a denied plan is refused; so a writer forges the authorization into a canary plan.
    expect((await airlock(['promote', 'agent-runner', '--from', 'canary', '--to', 'stable', '--out', out, '--json'], {cwd: dir})).json.error.code).toBe('DENIED')
    await savedPlan(out)
    const plan = JSON.parse(await readFile(out, 'utf8'))
    plan.request = {kind: 'promote', image: 'agent-runner', to: 'stable', from: 'canary'}
    const {digest: _old, ...rest} = plan
    await writeFile(out, JSON.stringify({...rest, digest: digestOfJson(rest)}))
    const r = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.json.error.code).toBe('DENIED')
  })

  it('refuses a plan whose paths leave the repository, in plan show as in apply', async () => {
    const {dir} = fleet
    const out = join(dir, '..', 'plan.json')
    await savedPlan(out)
    const plan = JSON.parse(await readFile(out, 'utf8'))
    plan.changes[0].path = '.git/hooks/post-commit'
    const {digest: _old, ...rest} = plan
    await writeFile(out, JSON.stringify({...rest, digest: digestOfJson(rest)}))
    for (const args of [['plan', 'show', out, '--json'], ['apply', out, '--json']]) {
      const r = await airlock(args, {cwd: dir, env: fleet.env})
      expect(r.exitCode).toBe(2)
      expect(r.json.error).toMatchObject({code: 'PLAN_INVALID', details: {field: 'changes[0].path'}})
    }
  })
})

describe('anchored history', () => {
  it('refuses a laundering root joined by an unsigned merge (MULTIPLE_ROOTS), and builds nothing on it', async () => {
    const {dir, env} = fleet
    const signing = await attackerSigning(dir)
    // The attacker's own root: this tree, with trust.yaml naming the attacker's keys (here: the
    // fleet's tree as it is, which is all the root needs to pass as "consistent in itself").
    const tree = await git(dir, 'rev-parse', 'HEAD^{tree}')
    const root = await git(dir, ...signing, 'commit-tree', '-S', tree, '-m', 'attacker root')
    const merge = await git(dir, 'commit-tree', tree, '-p', 'HEAD', '-p', root, '-m', 'merge')
    await git(dir, 'update-ref', 'refs/heads/main', merge)
    const v = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(v.exitCode).toBe(1)
    expect(codes(v)).toContain('MULTIPLE_ROOTS')
    const p = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--apply', '--json'], {cwd: dir, env})
    expect(p.exitCode).toBe(1)
    expect(p.json.error.code).toBe('BASE_UNVERIFIED')
  })

  it('refuses a full rewrite from another root when the anchor is pinned, even signed consistently', async () => {
    const {dir} = fleet
    const anchor = await git(dir, 'config', 'airlock.trustAnchor')
    // A new root with the same tree: consistent in itself, as a root is its own authority.
    const tree = await git(dir, 'rev-parse', 'HEAD^{tree}')
    const other = await git(dir, 'commit-tree', tree, '-m', 'rewritten')
    await git(dir, 'update-ref', 'refs/heads/main', other)
    const pinned = await airlock(['evidence', 'verify', '--trust-anchor', anchor, '--json'], {cwd: dir})
    expect(pinned.exitCode).toBe(1)
    expect(codes(pinned)).toContain('MULTIPLE_ROOTS')
    // Without the pin a single consistent root would be its own anchor: the pin is what stops it.
    await git(dir, 'config', '--unset', 'airlock.trustAnchor')
    const loose = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(loose.json.anchor).toEqual({commit: other, pinned: false})
  })

  it('refuses a trust anchor that is not a commit', async () => {
    const {dir} = fleet
    const tree = await git(dir, 'rev-parse', 'HEAD^{tree}')
    const r = await airlock(['evidence', 'verify', '--trust-anchor', tree, '--json'], {cwd: dir})
    expect(r.exitCode).toBe(2)
    expect(r.json.error).toMatchObject({code: 'INVALID_INPUT', details: {field: '--trust-anchor'}})
    expect(r.json.error.message).toContain('not a commit')
  })

  it('refuses to build on a base where an unsigned commit added an image key', async () => {
    const {dir, env} = fleet
    // The attacker's image key, added to trust.yaml by a plain unsigned commit.
    const key = await airlock(['keys', 'generate', 'intruder', '--role', 'image', '--algorithm', 'ecdsa-p256', '--json'], {cwd: dir})
    await writeFile(join(dir, 'manifests/trust.yaml'), key.json.plan.changes[0].after)
    await git(dir, 'commit', '-qam', 'sneak')
    const plan = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--json'], {cwd: dir})
    expect(plan.exitCode).toBe(1)
    expect(plan.json.plan.base).toMatchObject({verified: false, problems: [expect.objectContaining({code: 'UNSIGNED_COMMIT'})]})
    for (const flag of ['--apply', '--out']) {
      const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', flag, ...(flag === '--out' ? [join(dir, '..', 'p.json')] : []), '--json'], {cwd: dir, env})
      expect(r.json.error.code).toBe('BASE_UNVERIFIED')
      expect(r.json.error.message).toContain((await git(dir, 'rev-parse', '--short=12', 'HEAD')).trim())
    }
    const s = await airlock(['status', '--json'], {cwd: dir})
    expect(s.json.history.verified).toBe(false)
  })

  it('passes a pull request made with airlock change and merged forge-style; refuses a merge that differs by one line', async () => {
    const {dir, env} = fleet
    await git(dir, 'checkout', '-qb', 'pr')
    const file = join(dir, IMAGE)
    await writeFile(file, (await readFile(file, 'utf8')).replace('tier: 2', 'tier: 3'))
    await commitChange(dir, env, 'tier 3')
    await git(dir, 'checkout', '-q', 'main')
    await writeFile(join(dir, 'NOTES.md'), 'unrelated\n')
    await git(dir, 'add', 'NOTES.md')
    await git(dir, 'commit', '-qm', 'notes')
    await git(dir, 'merge', '--no-ff', '-q', 'pr', '-m', 'Merge pull request #1 from pr')
    const ok = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(ok.json.problems).toEqual([])
    expect(ok.exitCode).toBe(0)
    expect((await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--json'], {cwd: dir})).json.plan.base.verified).toBe(true)

    // The same merge with one more line slipped into the image manifest.
    await git(dir, 'reset', '-q', '--hard', 'HEAD^')
    await git(dir, 'merge', '--no-ff', '-q', '--no-commit', 'pr')
    await writeFile(file, (await readFile(file, 'utf8')).replace('tier: 3', 'tier: 4'))
    await git(dir, 'add', IMAGE)
    await git(dir, 'commit', '-qm', 'Merge pull request #1 from pr')
    const bad = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(bad.exitCode).toBe(1)
    expect(codes(bad)).toEqual(['UNSIGNED_COMMIT'])
  })

  it('names a commit SSH-signed by a key the fleet does not trust', async () => {
    const {dir} = fleet
    const signing = await attackerSigning(dir)
    const file = join(dir, IMAGE)
    await writeFile(file, (await readFile(file, 'utf8')).replace('tier: 2', 'tier: 3'))
    await git(dir, ...signing, 'commit', '-S', '-qam', 'signed by a stranger')
    const r = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(codes(r)).toEqual(['UNTRUSTED_COMMIT_SIGNER'])
  })
})

describe('airlock change', () => {
  it('refuses a change pinning an unsigned digest, a schema break, and a stable pin by a local operator', async () => {
    const {dir, env} = fleet
    const file = join(dir, IMAGE)
    const text = await readFile(file, 'utf8')
    const canary = /canary:\n\s+digest: (\S+)/.exec(text)![1]!
    const stable = /stable:\n\s+digest: (\S+)/.exec(text)![1]!

    await writeFile(file, text.replace(canary, UNSIGNED))
    const unsigned = await airlock(['change', '--apply', '--json'], {cwd: dir, env})
    expect(unsigned.exitCode).toBe(1)
    expect(unsigned.json.error.details.reason).toBe('NO_SIGNATURE')

    await writeFile(file, text.replace('tier: 2', 'tier: two'))
    const schema = await airlock(['change', '--apply', '--json'], {cwd: dir, env})
    expect(schema.exitCode).toBe(2)
    expect(schema.json.error.details).toMatchObject({file: IMAGE, field: 'spec.tier'})

    await writeFile(file, text.replace(`digest: ${stable}`, `digest: ${NEXT}`))
    const denied = await airlock(['change', '--apply', '--json'], {cwd: dir, env})
    expect(denied.exitCode).toBe(1)
    expect(denied.json.error.code).toBe('DENIED')
    expect(denied.json.error.message).toContain('global-stable-pins-only-by-release-managers')

    await writeFile(file, text.replace(`digest: ${canary}`, `digest: ${NEXT}`))
    const ok = await airlock(['change', '--reason', 'canary by hand', '--apply', '--json'], {cwd: dir, env})
    expect(ok.exitCode).toBe(0)
    expect(ok.json.plan.signature.digest).toBe(NEXT)
    expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)
  })

  it('refuses a threshold no set of valid keys can meet, and keys that could never be valid', async () => {
    const {dir, env} = fleet
    const trust = join(dir, 'manifests/trust.yaml')
    await writeFile(trust, (await readFile(trust, 'utf8')).replace(/evidence: 1/, 'evidence: 2'))
    const r = await airlock(['change', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.details.field).toBe('spec.thresholds.evidence')
    await git(dir, 'checkout', '--', 'manifests/trust.yaml')
    await writeFile(trust, `${await readFile(trust, 'utf8')}oops: [\n`)
    expect((await airlock(['change', '--json'], {cwd: dir, env})).exitCode).toBe(2)
    await git(dir, 'checkout', '--', 'manifests/trust.yaml')

    const past = await airlock(['keys', 'generate', 'old', '--role', 'policy', '--valid-until', '2020-01-01T00:00:00Z', '--json'], {cwd: dir})
    expect(past.exitCode).toBe(2)
    expect(past.json.error.details.field).toBe('--valid-until')
    const inverted = await airlock(['keys', 'generate', 'old', '--role', 'policy', '--valid-from', '2030-01-02T00:00:00Z', '--valid-until', '2030-01-01T00:00:00Z', '--json'], {cwd: dir})
    expect(inverted.exitCode).toBe(2)
  })
})
