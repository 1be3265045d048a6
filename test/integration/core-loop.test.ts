import {chmod, copyFile, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {loadSigner} from '../../control-plane/crypto/keys.js'
import {sshSign} from '../../control-plane/crypto/sshsig.js'
import {Repository} from '../../control-plane/repo/repository.js'
import {airlock, foreignKey, git, fleetCopies, type Fleet} from '../helpers.js'

/** A new digest for the canary channel (the example policies let a local operator move canary in a scratch fleet). */
const NEXT = `sha256:${'a1'.repeat(32)}`
/** Signed by the fleet's image key as well, for the concurrent appliers. */
const OTHER = `sha256:${'b'.repeat(64)}`

let fleet: Fleet
const fleets = fleetCopies({sign: [NEXT, OTHER]})
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
})
afterEach(async () => {
  await fleet.cleanup()
})

async function allowedSigners(dir: string): Promise<string> {
  const trust = await readFile(join(dir, 'manifests/trust.yaml'), 'utf8')
  const pub = /publicKey: (\S+)/.exec(trust)![1]!
  const raw = Buffer.from(pub, 'base64')
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
  const blob = Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64')
  const file = join(dir, '..', 'allowed_signers')
  await writeFile(file, `airlock namespaces="git" ssh-ed25519 ${blob}\n`)
  return file
}

describe('promote → apply → status → rollback → apply → evidence verify', () => {
  it('runs end to end on a real repository, with commits git accepts and verifies', async () => {
    const {dir, env} = fleet
    const head0 = await git(dir, 'rev-parse', 'HEAD')
    const commits0 = Number(await git(dir, 'rev-list', '--count', 'HEAD'))

    const plan = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--json'], {cwd: dir})
    expect(plan.exitCode).toBe(0)
    expect(plan.json.applied).toBeNull()
    expect(plan.json.plan.details.rollbackTarget).toMatch(/^sha256:/)
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(head0)

    const canary = plan.json.plan.details.to as string
    const oldStable = plan.json.plan.details.from as string
    const applied = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'soaked', '--apply', '--json'], {cwd: dir, env})
    expect(applied.exitCode).toBe(0)
    const commit1 = applied.json.applied.commit as string
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(commit1)
    // One commit: the manifest change and its receipt together.
    const files = (await git(dir, 'show', '--name-only', '--format=', commit1)).split('\n').sort()
    expect(files).toEqual([applied.json.applied.receipt, 'manifests/images/agent-runner.yaml'].sort())
    expect(await git(dir, 'status', '--porcelain')).toBe('')
    const trailers = await git(dir, 'log', '-1', '--format=%(trailers:key=Airlock-Rollback-Target,valueonly)')
    expect(trailers.trim()).toBe(oldStable)

    const status = await airlock(['status', 'agent-runner', '--json'], {cwd: dir})
    const stable = status.json.images[0].channels.find((c: any) => c.channel === 'canary')
    expect(stable).toMatchObject({digest: canary, rollbackTarget: oldStable})
    expect(stable.lastChange).toMatchObject({commit: commit1, operation: 'promote', receipt: applied.json.applied.receipt, viaAirlock: true})

    const noop = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--json'], {cwd: dir})
    expect(noop.exitCode).toBe(0)
    expect(noop.json.plan.changes).toEqual([])

    const rb = await airlock(['rollback', 'agent-runner', '--channel', 'canary', '--reason', 'boot failures', '--apply', '--json'], {cwd: dir, env})
    expect(rb.exitCode).toBe(0)
    expect(Number(await git(dir, 'rev-list', '--count', 'HEAD'))).toBe(commits0 + 2)
    const after = await airlock(['status', 'agent-runner', '--json'], {cwd: dir})
    const stable2 = after.json.images[0].channels.find((c: any) => c.channel === 'canary')
    expect(stable2).toMatchObject({digest: oldStable, rollbackTarget: canary})
    expect(stable2.lastChange.operation).toBe('rollback')

    const verify = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(verify.json.problems).toEqual([])
    expect(verify.exitCode).toBe(0)
    // init, the two image signatures of the fixture, the promotion and the rollback.
    expect(verify.json.receipts).toHaveLength(commits0 + 2)
    // Every commit after the trust anchor (init's) is signed.
    expect(verify.json.commitsSigned).toBe(commits0 + 1)

    const list = await airlock(['evidence', 'list', '--json'], {cwd: dir})
    expect(list.json.receipts.map((r: any) => r.operation).sort()).toEqual(['image-sign', 'image-sign', 'init', 'promote', 'rollback'])
    const show = await airlock(['evidence', 'show', applied.json.applied.receipt, '--json'], {cwd: dir})
    expect(show.exitCode).toBe(0)
    expect(show.json.statement.subject).toContainEqual({name: 'registry.example.com/golden/agent-runner', digest: {sha256: canary.slice(7)}})
    expect(show.json.statement.subject).toContainEqual({name: 'git:refs/heads/main', digest: {gitCommit: head0}})
    expect(show.json.statement.predicate).toMatchObject({operation: 'promote', reason: 'soaked', details: {rollbackTarget: oldStable}, tool: {name: 'airlock'}})

    await git(dir, 'fsck', '--strict')
    const signers = await allowedSigners(dir)
    for (const c of (await git(dir, 'rev-list', 'HEAD')).split('\n')) {
      await git(dir, '-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${signers}`, 'verify-commit', c)
    }
    expect(await git(dir, '-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${signers}`, 'log', '--format=%G?')).toBe(Array(commits0 + 2).fill('G').join('\n'))
    // git's own trailer parser reads every trailer of airlock's commits.
    const trailerKeys = (await git(dir, 'log', '-1', '--format=%(trailers:only,unfold,separator=%x0a)', commit1)).split('\n').map((l) => l.split(':')[0])
    expect(trailerKeys).toEqual(['Airlock-Operation', 'Airlock-Plan-Digest', 'Airlock-Image', 'Airlock-Channel', 'Airlock-Digest', 'Airlock-Rollback-Target', 'Airlock-Receipt', 'Airlock-Requested-By'])
  })
})

/** The receipt of the promotion every copy of `promotedFleets` holds. */
let promotion: string
/** Fleets where NEXT was promoted to canary: one `promote --apply` for the file, copied per test. */
const promotedFleets = fleetCopies({
  sign: [NEXT, OTHER],
  prepare: async (f) => {
    const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'x', '--apply', '--json'], {cwd: f.dir, env: f.env})
    expect(r.exitCode).toBe(0)
    promotion = r.json.applied.receipt as string
  },
})
afterAll(() => promotedFleets.dispose())

/** The test's fleet becomes a copy of one where NEXT was promoted to canary; returns that promotion's receipt. */
async function promoted(): Promise<string> {
  await fleet.cleanup()
  fleet = await promotedFleets.copy()
  return promotion
}

describe('when evidence is tampered with', () => {

  it('names an edited receipt (signature and history)', async () => {
    const receipt = await promoted()
    const path = join(fleet.dir, receipt)
    const env = JSON.parse(await readFile(path, 'utf8'))
    const stmt = JSON.parse(Buffer.from(env.payload, 'base64').toString())
    stmt.predicate.reason = 'something else'
    env.payload = Buffer.from(JSON.stringify(stmt)).toString('base64')
    await writeFile(path, JSON.stringify(env))
    await git(fleet.dir, 'commit', '-qam', 'fix typo')
    const r = await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(1)
    const codes = r.json.problems.map((p: any) => p.code)
    expect(codes).toContain('BAD_SIGNATURE')
    expect(codes).toContain('RECEIPT_MODIFIED')
    expect(codes).toContain('UNSIGNED_COMMIT')
    expect(r.json.problems.find((p: any) => p.code === 'RECEIPT_MODIFIED').receipt).toBe(receipt)
    const human = await airlock(['evidence', 'verify'], {cwd: fleet.dir})
    expect(human.stdout).toContain(receipt)
  })

  it('names a deleted receipt', async () => {
    const receipt = await promoted()
    await git(fleet.dir, 'rm', '-q', receipt)
    await git(fleet.dir, 'commit', '-qm', 'cleanup')
    const r = await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(1)
    expect(r.json.problems).toContainEqual(expect.objectContaining({code: 'RECEIPT_DELETED', receipt}))
  })

  it('names a receipt re-signed by a key that is not trusted', async () => {
    const receipt = await promoted()
    const other = await foreignKey()
    try {
      const path = join(fleet.dir, receipt)
      const env = JSON.parse(await readFile(path, 'utf8'))
      const {signEnvelope} = await import('../../control-plane/crypto/dsse.js')
      const {loadSigner} = await import('../../control-plane/crypto/keys.js')
      const signer = await loadSigner({file: other.key})
      const resigned = signEnvelope(env.payloadType, Buffer.from(env.payload, 'base64'), [signer])
      await writeFile(path, JSON.stringify(resigned))
      await git(fleet.dir, 'commit', '-qam', 're-sign')
      const r = await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})
      expect(r.exitCode).toBe(1)
      expect(r.json.problems).toContainEqual(expect.objectContaining({code: 'UNKNOWN_KEY', receipt}))
    } finally {
      await other.cleanup()
    }
  })

  it('names a commit slipped into the history without the key', async () => {
    await promoted()
    const file = join(fleet.dir, 'manifests/images/agent-runner.yaml')
    const text = await readFile(file, 'utf8')
    await writeFile(file, text.replace(/digest: sha256:[0-9a-f]{64}/, `digest: sha256:${'e'.repeat(64)}`))
    await git(fleet.dir, 'commit', '-qam', 'quiet swap')
    const sneaky = await git(fleet.dir, 'rev-parse', 'HEAD')
    const r = await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(1)
    expect(r.json.problems).toEqual([expect.objectContaining({code: 'UNSIGNED_COMMIT', commit: sneaky})])
  })

  it('names a commit signed by a key that the parent trust policy does not hold', async () => {
    const other = await foreignKey()
    try {
      // airlock itself refuses to make such a commit (its own verifier runs before the ref moves).
      const gen = await airlock(['keys', 'generate', 'intruder', '--role', 'evidence', '--apply', '--evidence-key', other.key, '--json'], {cwd: fleet.dir})
      expect(gen.exitCode).toBe(2)
      expect(gen.json.error.code).toBe('KEY_INVALID')
      // The intruder makes it by hand: their own key added to trust.yaml, the commit SSH-signed
      // with it. Still untrusted: a commit is judged by the trust policy of its parent.
      await copyFile(other.key, join(fleet.dir, 'keys', 'intruder.key'))
      const plan = await airlock(['keys', 'generate', 'intruder', '--role', 'evidence', '--json'], {cwd: fleet.dir})
      const repo = await Repository.open(fleet.dir)
      const base = await repo.base()
      const signer = await loadSigner({file: other.key})
      const commit = await repo.createCommit({
        base: base.commit,
        changes: [{path: 'manifests/trust.yaml', content: plan.json.plan.changes[0].after}],
        message: 'trust me\n',
        author: {name: 'intruder', email: 'i@example.com'},
        time: Math.floor(Date.now() / 1000),
        sign: (payload) => sshSign(Buffer.from(payload), signer),
      })
      await git(fleet.dir, 'update-ref', 'refs/heads/main', commit, base.commit)
      const r = await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})
      expect(r.exitCode).toBe(1)
      expect(r.json.problems).toEqual([expect.objectContaining({code: 'UNTRUSTED_COMMIT_SIGNER', commit})])
    } finally {
      await other.cleanup()
    }
  })
})

describe('saved plans', () => {
  it('applies a saved plan; refuses an edited one (2) and a stale one (3)', async () => {
    const {dir, env} = fleet
    const out = join(dir, '..', 'plan.json')
    const saved = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--out', out], {cwd: dir})
    expect(saved.exitCode).toBe(0)
    const shown = await airlock(['plan', 'show', out, '--json'], {cwd: dir})
    expect(shown.json).toMatchObject({saved: {operation: 'promote'}, recomputed: {operation: 'promote'}, matches: true, refusal: null})

    const edited = join(dir, '..', 'edited.json')
    const plan = JSON.parse(await readFile(out, 'utf8'))
    plan.details.to = `sha256:${'0'.repeat(64)}`
    await writeFile(edited, JSON.stringify(plan))
    const bad = await airlock(['apply', edited, '--json'], {cwd: dir, env})
    expect(bad.exitCode).toBe(2)
    expect(bad.json.error.code).toBe('PLAN_TAMPERED')

    const ok = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(ok.exitCode).toBe(0)
    const again = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(again.exitCode).toBe(3)
    expect(again.json.error.code).toBe('STALE_PLAN')
  })

  it('refuses a plan when HEAD moved after it was made (3), writing nothing', async () => {
    const {dir, env} = fleet
    const out = join(dir, '..', 'plan.json')
    await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--out', out], {cwd: dir})
    await writeFile(join(dir, 'NOTES.md'), 'unrelated\n')
    await git(dir, 'add', 'NOTES.md')
    await git(dir, 'commit', '-qm', 'notes')
    const head = await git(dir, 'rev-parse', 'HEAD')
    const r = await airlock(['apply', out], {cwd: dir, env})
    expect(r.exitCode).toBe(3)
    expect(r.stderr).toMatch(/STALE|make a new plan/i)
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(head)
  })
})

describe('bad input', () => {
  it('refuses uncommitted changes in the touched file (3) and writes nothing', async () => {
    const {dir, env} = fleet
    const file = join(dir, 'manifests/images/agent-runner.yaml')
    await writeFile(file, `${await readFile(file, 'utf8')}# local edit\n`)
    const head = await git(dir, 'rev-parse', 'HEAD')
    const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(3)
    expect(r.json.error.code).toBe('UNCOMMITTED_CHANGES')
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(head)
    expect(await readFile(file, 'utf8')).toContain('# local edit')
  })

  it('refuses --apply without a key, and with a key others can read (2)', async () => {
    const {dir, key} = fleet
    const commits = await git(dir, 'rev-list', '--count', 'HEAD')
    const none = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--apply', '--json'], {cwd: dir})
    expect(none.exitCode).toBe(2)
    expect(none.json.error.code).toBe('KEY_MISSING')
    await chmod(key, 0o644)
    const open = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--apply', '--evidence-key', key, '--json'], {cwd: dir})
    expect(open.exitCode).toBe(2)
    expect(open.json.error).toMatchObject({code: 'KEY_PERMISSIONS', details: {file: key, mode: '0644'}})
    expect(await git(dir, 'rev-list', '--count', 'HEAD')).toBe(commits)
  })

  it.each([
    [['promote', 'agent-runner', '--digest', 'registry.example.com/golden/agent-runner:latest', '--to', 'canary'], 'NOT_PINNED'],
    [['promote', 'agent-runner', '--digest', `sha256:${'A'.repeat(64)}`, '--to', 'canary'], 'BAD_DIGEST'],
    [['promote', 'agent-runner', '--digest', 'sha256:abc123', '--to', 'canary'], 'BAD_DIGEST'],
    [['promote', 'agent-runner', '--digest', `other.example.com/x@sha256:${'a'.repeat(64)}`, '--to', 'canary'], 'INVALID_INPUT'],
    [['promote', 'no-such-image', '--from', 'canary', '--to', 'stable'], 'UNKNOWN_IMAGE'],
    [['promote', 'agent-runner', '--from', 'canary', '--to', 'production'], 'UNKNOWN_CHANNEL'],
    [['promote', 'agent-runner', '--to', 'stable'], 'USAGE'],
    [['rollback', 'agent-runner', '--channel', 'stable'], 'USAGE'],
    [['rollback', 'agent-runner', '--channel', 'stable', '--reason', 'x'], 'INVALID_INPUT'],
  ])('%j → exit 2 %s, no stack trace', async (args, code) => {
    const r = await airlock([...args, '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe(code)
    expect(Object.keys(r.json)).toEqual(['error'])
    const human = await airlock(args, {cwd: fleet.dir})
    expect(human.exitCode).toBe(2)
    expect(human.stderr).not.toMatch(/\n\s+at /)
  })

  it('names file, line and field for a malformed manifest', async () => {
    const {dir} = fleet
    const file = join(dir, 'manifests/images/agent-runner.yaml')
    const text = await readFile(file, 'utf8')
    await writeFile(file, text.replace(/(stable:\n\s+digest: )sha256:[0-9a-f]{64}/, '$1registry.example.com/golden/agent-runner:v2'))
    await git(dir, 'commit', '-qam', 'bad pin')
    const r = await airlock(['status', '--json'], {cwd: dir})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('NOT_PINNED')
    expect(r.json.error.details).toMatchObject({file: 'manifests/images/agent-runner.yaml', line: 16, field: 'spec.channels.stable.digest'})
    expect(r.json.error.message).toMatch(/^manifests\/images\/agent-runner.yaml:16:\d+: spec.channels.stable.digest: /)
  })

  it('refuses a repository path that is not a git repository (2)', async () => {
    const r = await airlock(['status', '--repo', join(fleet.dir, 'docs'), '--json'])
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('NOT_A_REPOSITORY')
  })

  it('refuses to init into a non-empty directory (2)', async () => {
    const r = await airlock(['init', fleet.dir, '--apply', '--json'])
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('TARGET_EXISTS')
  })
})

describe('two concurrent appliers', () => {
  it('lets exactly one win; the other gets a conflict (3) and the history stays linear', async () => {
    const {dir, env} = fleet
    const commits = Number(await git(dir, 'rev-list', '--count', 'HEAD'))
    const runs = await Promise.all([
      airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'a', '--apply', '--json'], {cwd: dir, env}),
      airlock(['rollback', 'agent-runner', '--channel', 'canary', '--reason', 'b', '--apply', '--json'], {cwd: dir, env}),
      airlock(['promote', 'agent-runner', '--digest', OTHER, '--to', 'canary', '--apply', '--json'], {cwd: dir, env}),
    ])
    const won = runs.filter((r) => r.exitCode === 0)
    const winners = won.length
    // Exactly one winner per base: a run that planned after another had applied has a new base.
    expect(winners).toBeGreaterThanOrEqual(1)
    const bases = won.map((r) => r.json.plan.baseCommit)
    expect(new Set(bases).size).toBe(winners)
    for (const r of won) expect(await git(dir, 'rev-parse', `${r.json.applied.commit}^`)).toBe(r.json.plan.baseCommit)
    for (const r of runs.filter((x) => x.exitCode !== 0)) {
      expect(r.exitCode).toBe(3)
      expect(['LOCK_HELD', 'CONFLICT', 'STALE_PLAN']).toContain(r.json.error.code)
    }
    expect(Number(await git(dir, 'rev-list', '--count', 'HEAD'))).toBe(commits + winners)
    expect(await git(dir, 'status', '--porcelain')).toBe('')
    const verify = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(verify.exitCode).toBe(0)
  })
})

describe('status', () => {
  it('attributes a change made outside airlock to its commit, with no receipt', async () => {
    const {dir} = fleet
    const file = join(dir, 'manifests/images/agent-runner.yaml')
    await writeFile(file, (await readFile(file, 'utf8')).replace(/(stable:\n\s+digest: )sha256:[0-9a-f]{64}/, `$1sha256:${'c'.repeat(64)}`))
    await git(dir, 'commit', '-qam', 'hand edit')
    const head = await git(dir, 'rev-parse', 'HEAD')
    const r = await airlock(['status', '--json'], {cwd: dir})
    expect(r.exitCode).toBe(0)
    const stable = r.json.images[0].channels.find((c: any) => c.channel === 'stable')
    expect(stable).toMatchObject({digest: `sha256:${'c'.repeat(64)}`, lastChange: {commit: head, viaAirlock: false, receipt: null}})
  })
})

describe('shallow clones', () => {
  it('reads status, and evidence verify reports the missing history instead of passing it', async () => {
    await promoted()
    const {dir} = fleet
    const clone = join(dir, '..', 'shallow')
    await git(join(dir, '..'), 'clone', '-q', '--depth', '1', `file://${dir}`, clone)
    const status = await airlock(['status', '--json'], {cwd: clone})
    expect(status.exitCode).toBe(0)
    // A fresh clone pins no anchor (ANCHOR_NOT_PINNED), and its history stops short of the root.
    const verify = await airlock(['evidence', 'verify', '--json'], {cwd: clone})
    expect(verify.exitCode).toBe(1)
    expect(verify.json.problems.map((p: any) => p.code)).toEqual(['ANCHOR_NOT_PINNED', 'HISTORY_INCOMPLETE'])
    const head = await git(clone, 'rev-parse', 'HEAD')
    const since = await airlock(['evidence', 'verify', '--since', head, '--json'], {cwd: clone})
    expect(since.exitCode).toBe(0)
  })
})

describe('keys generate', () => {
  it('writes nothing without --apply; with --apply writes a 0600 key and commits its trust change', async () => {
    const {dir, env} = fleet
    const {stat} = await import('node:fs/promises')
    const plan = await airlock(['keys', 'generate', 'ci-policy', '--role', 'policy', '--json'], {cwd: dir})
    expect(plan.exitCode).toBe(0)
    expect(plan.json.applied).toBeNull()
    expect(plan.json.key.created).toBe(false)
    await expect(stat(join(dir, 'keys/ci-policy.key'))).rejects.toMatchObject({code: 'ENOENT'})
    expect(await git(dir, 'status', '--porcelain', '--ignored')).not.toMatch(/ci-policy/)
    const saved = await airlock(['keys', 'generate', 'ci-policy', '--role', 'policy', '--out', join(dir, '..', 'k.json'), '--json'], {cwd: dir})
    expect(saved.exitCode).toBe(2)
    expect(saved.json.error.message).toMatch(/cannot carry a new private key/)
    const applied = await airlock(['keys', 'generate', 'ci-policy', '--role', 'policy', '--apply', '--json'], {cwd: dir, env})
    expect(applied.exitCode).toBe(0)
    expect(applied.json.key.created).toBe(true)
    expect((await stat(join(dir, 'keys/ci-policy.key'))).mode & 0o777).toBe(0o600)
    const trust = await readFile(join(dir, 'manifests/trust.yaml'), 'utf8')
    expect(trust).toContain(applied.json.key.id)
    const again = await airlock(['keys', 'generate', 'ci-policy', '--role', 'policy', '--json'], {cwd: dir})
    expect(again.json.key).toMatchObject({id: applied.json.key.id, created: false})
    expect(await git(dir, 'status', '--porcelain')).toBe('')
    expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)
  })
})
