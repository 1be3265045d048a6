/**
 * Crashes leave a way back. Each state an apply killed at some point can leave is built here
 * the way the crash leaves it (a real fleet, real git, real files), then named by
 * `airlock repair`, fixed by `airlock repair --apply`, and followed by a promote that succeeds.
 * A few real `kill -9` trials run too; `node bench/kill-trials.js` runs fifty.
 */
import {execa} from 'execa'
import {mkdir, readdir, readFile, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {killTrials} from '../../bench/kill-trials.js'
import {airlock, git, gonePid, type CliResult, fleetCopies, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const OTHER = `sha256:${'b2'.repeat(32)}`
const PROMOTE = ['promote', 'agent-runner', '--to', 'canary', '--digest', NEXT, '--apply', '--json']

let fleet: Fleet
const fleets = fleetCopies({sign: [NEXT, OTHER]})
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
})
afterEach(async () => {
  await fleet.cleanup()
})


const kinds = (r: CliResult) => (r.json.findings as Array<{kind: string}>).map((f) => f.kind)
const old = async (path: string) => utimes(path, new Date(Date.now() - 5 * 60_000), new Date(Date.now() - 5 * 60_000))

/** The repository is whole: git fsck --strict, evidence verify, a clean work tree. */
async function whole(dir: string): Promise<void> {
  expect((await execa('git', ['fsck', '--strict', '--no-dangling'], {cwd: dir, reject: false})).exitCode).toBe(0)
  expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)
  expect(await git(dir, 'status', '--porcelain')).toBe('')
}

describe('airlock repair', () => {
  it('says there is nothing to repair in a healthy repository', async () => {
    const r = await airlock(['repair', '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(0)
    expect(r.json.findings).toEqual([])
  })

  it('clears the lock of an apply whose process is gone; the lock message says so and names repair', async () => {
    const {dir, env} = fleet
    const dead = await gonePid()
    await writeFile(join(dir, '.git', 'airlock.lock'), JSON.stringify({pid: dead, host: (await import('node:os')).hostname(), since: '2026-01-01T00:00:00Z'}))
    const blocked = await airlock(PROMOTE, {cwd: dir, env})
    expect(blocked.exitCode).toBe(3)
    expect(blocked.json.error.message).toMatch(/no longer running.*airlock repair/)
    const plan = await airlock(['repair', '--json'], {cwd: dir})
    expect(kinds(plan)).toEqual(['apply-lock'])
    expect(await readFile(join(dir, '.git', 'airlock.lock'), 'utf8')).toContain(String(dead))
    const fixed = await airlock(['repair', '--apply', '--json'], {cwd: dir})
    expect(fixed.exitCode).toBe(0)
    expect(fixed.json.fixed).toHaveLength(1)
    expect((await airlock(PROMOTE, {cwd: dir, env})).exitCode).toBe(0)
    await whole(dir)
  })

  it('tells an empty lock being written from a torn one left a minute ago', async () => {
    const {dir, env} = fleet
    const lock = join(dir, '.git', 'airlock.lock')
    await writeFile(lock, '')
    const fresh = await airlock(PROMOTE, {cwd: dir, env})
    expect(fresh.exitCode).toBe(3)
    expect(fresh.json.error.message).toMatch(/another apply is starting/)
    expect(kinds(await airlock(['repair', '--json'], {cwd: dir}))).toEqual(['apply-lock'])
    // It may be an apply that is just starting: not for repair to take (exit 3).
    expect((await airlock(['repair', '--apply', '--json'], {cwd: dir})).exitCode).toBe(3)
    await writeFile(lock, '{"pid": 12')
    await old(lock)
    const torn = await airlock(PROMOTE, {cwd: dir, env})
    expect(torn.json.error.message).toMatch(/empty or torn.*airlock repair --apply/)
    expect((await airlock(['repair', '--apply', '--json'], {cwd: dir})).exitCode).toBe(0)
    expect((await airlock(PROMOTE, {cwd: dir, env})).exitCode).toBe(0)
    await whole(dir)
  })

  it('never touches the lock of a running apply', async () => {
    const {dir} = fleet
    await writeFile(join(dir, '.git', 'airlock.lock'), JSON.stringify({pid: process.pid, host: (await import('node:os')).hostname(), since: new Date().toISOString()}))
    const r = await airlock(['repair', '--apply', '--json'], {cwd: dir})
    expect(r.exitCode).toBe(3)
    expect(r.json.error.code).toBe('LOCK_HELD')
    expect(await readFile(join(dir, '.git', 'airlock.lock'), 'utf8')).toContain(String(process.pid))
  })

  it("removes a ref lock airlock left (the branch did not move); names one that is not airlock's", async () => {
    const {dir, env} = fleet
    const head = await git(dir, 'rev-parse', 'HEAD')
    const refLock = join(dir, '.git', 'refs', 'heads', 'main.lock')
    // What a kill between taking git's ref lock and renaming it leaves: the lock naming airlock's commit.
    await writeFile(refLock, `${head}\n`)
    const blocked = await airlock(PROMOTE, {cwd: dir, env})
    expect(blocked.exitCode).toBe(3)
    expect(blocked.json.error.message).toMatch(/airlock repair/)
    expect(kinds(await airlock(['repair', '--json'], {cwd: dir}))).toEqual(['ref-lock'])
    expect((await airlock(['repair', '--apply', '--json'], {cwd: dir})).exitCode).toBe(0)
    await writeFile(refLock, 'something else\n')
    await old(refLock)
    const foreign = await airlock(['repair', '--apply', '--json'], {cwd: dir})
    expect(foreign.exitCode).toBe(1)
    expect(foreign.json.findings[0].problem).toMatch(/not airlock's/)
    expect(await readFile(refLock, 'utf8')).toBe('something else\n')
    await execa('rm', [refLock])
    expect((await airlock(PROMOTE, {cwd: dir, env})).exitCode).toBe(0)
    await whole(dir)
  })

  it('finishes the checkout of a branch that moved while the work tree and index did not', async () => {
    const {dir, env} = fleet
    expect((await airlock(PROMOTE, {cwd: dir, env})).exitCode).toBe(0)
    // What a kill after the ref moved and before the work tree was written leaves behind.
    const changed = (await git(dir, 'diff', '--name-only', 'HEAD^', 'HEAD')).split('\n')
    const added = (await git(dir, 'diff', '--name-only', '--diff-filter=A', 'HEAD^', 'HEAD')).split('\n').filter(Boolean)
    for (const path of changed.filter((p) => !added.includes(p))) await git(dir, 'checkout', 'HEAD^', '--', path)
    for (const path of added) await git(dir, 'rm', '-q', '--cached', path).then(() => execa('rm', [join(dir, path)]))
    expect(await git(dir, 'status', '--porcelain')).not.toBe('')
    // A retry of the same promote has nothing to change and says why the work tree is behind;
    // the next one is in the way of the stale files.
    const retry = await airlock(PROMOTE, {cwd: dir, env})
    expect(retry.exitCode).toBe(3)
    expect(retry.json.error.message).toMatch(/nothing to apply, but .*airlock repair --apply/)
    const again = await airlock(['promote', 'agent-runner', '--to', 'canary', '--digest', OTHER, '--apply', '--json'], {cwd: dir, env})
    expect(again.exitCode).toBe(3)
    expect(again.json.error.message).toMatch(/airlock repair/)
    const plan = await airlock(['repair', '--json'], {cwd: dir})
    expect(kinds(plan)).toEqual(['unfinished-checkout'])
    expect((await airlock(['repair', '--apply', '--json'], {cwd: dir})).exitCode).toBe(0)
    await whole(dir)
    expect((await airlock(['promote', 'agent-runner', '--to', 'canary', '--digest', OTHER, '--apply', '--json'], {cwd: dir, env})).exitCode).toBe(0)
  })

  it('leaves an unfinished checkout alone when someone has edited the files since', async () => {
    const {dir, env} = fleet
    expect((await airlock(PROMOTE, {cwd: dir, env})).exitCode).toBe(0)
    await git(dir, 'checkout', 'HEAD^', '--', 'manifests/images/agent-runner.yaml')
    await writeFile(join(dir, 'manifests/images/agent-runner.yaml'), '# an edit in progress\n')
    const r = await airlock(['repair', '--apply', '--json'], {cwd: dir})
    expect(r.exitCode).toBe(1)
    expect(r.json.findings[0]).toMatchObject({kind: 'unfinished-checkout', fix: null})
    expect(await readFile(join(dir, 'manifests/images/agent-runner.yaml'), 'utf8')).toBe('# an edit in progress\n')
  })

  it('removes temporary files of writers that are gone and empty loose objects', async () => {
    const {dir, env} = fleet
    const dead = await gonePid()
    const temps = [join(dir, 'manifests/images/agent-runner.yaml') + `.${dead}-0123456789ab.airlock-tmp`, join(dir, '.git/objects/ab') + `/cdef.${dead}-0123456789ab.airlock-tmp`]
    await mkdir(join(dir, '.git/objects/ab'), {recursive: true})
    for (const t of temps) await writeFile(t, 'half')
    const empty = join(dir, '.git/objects/ab', 'c'.repeat(38))
    await writeFile(empty, '')
    const plan = await airlock(['repair', '--json'], {cwd: dir})
    expect(kinds(plan).sort()).toEqual(['empty-object', 'temp-file', 'temp-file'])
    expect((await airlock(['repair', '--apply', '--json'], {cwd: dir})).exitCode).toBe(0)
    expect((await airlock(['repair', '--json'], {cwd: dir})).json.findings).toEqual([])
    expect((await airlock(PROMOTE, {cwd: dir, env})).exitCode).toBe(0)
    await whole(dir)
  })
})

describe('a key generate --apply interrupted between its commit and its key file', () => {
  it('puts a pending key in place when HEAD trusts it, and removes one whose trust change never landed', async () => {
    const {dir, env} = fleet
    const dead = await gonePid()
    expect((await airlock(['keys', 'generate', 'pol', '--role', 'policy', '--apply', '--json'], {cwd: dir, env})).exitCode).toBe(0)
    // What a kill after the commit and before the rename leaves: the key under its temporary name.
    const pending = join(dir, 'keys', `pol.key.${dead}-0123456789ab.airlock-tmp`)
    await execa('mv', [join(dir, 'keys', 'pol.key'), pending])
    const orphan = join(dir, 'keys', `stray.key.${dead}-0123456789ab.airlock-tmp`)
    await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', orphan])
    await execa('chmod', ['600', orphan])
    const plan = await airlock(['repair', '--json'], {cwd: dir})
    expect(plan.json.findings.map((f: {kind: string; fix: string}) => [f.kind, f.fix]).sort()).toEqual([
      ['pending-key', 'put it in place as keys/pol.key'],
      ['pending-key', 'remove it'],
    ])
    expect((await airlock(['repair', '--apply', '--json'], {cwd: dir})).exitCode).toBe(0)
    expect((await readdir(join(dir, 'keys'))).sort()).toEqual(['evidence.key', 'image.key', 'pol.key'])
    const again = await airlock(['keys', 'generate', 'pol', '--role', 'policy', '--json'], {cwd: dir})
    expect(again.json.key.created).toBe(false)
    expect(again.json.plan.changes).toEqual([])
  })
})

describe('kill -9 during promote and rollback --apply', () => {
  it('leaves a repository that repair brings back and that stays whole (a few trials; bench/kill-trials.js runs 50)', async () => {
    const {counts, failures} = await killTrials(6, {seed: 7})
    expect(failures).toEqual([])
    expect(counts.trials).toBe(6)
    expect(counts.before + counts.after).toBe(6)
  }, 180_000)
})
