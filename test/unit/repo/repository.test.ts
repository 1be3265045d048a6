import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {generateSigner} from '../../../control-plane/crypto/keys.js'
import {sshSign} from '../../../control-plane/crypto/sshsig.js'
import {verifyEvidence} from '../../../control-plane/evidence/verify.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {repoPath} from '../../../control-plane/repo/paths.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {git, tempDir, fleetCopies, type Fleet} from '../../helpers.js'

const who = {name: 'test', email: 'test@example.invalid'}

describe('Repository.open refuses layouts isomorphic-git mis-reads', () => {
  let t: Awaited<ReturnType<typeof tempDir>>
  beforeEach(async () => {
    t = await tempDir()
  })
  afterEach(() => t.cleanup())

  it('refuses a linked worktree', async () => {
    const main = join(t.dir, 'main')
    await git(t.dir, 'init', '-q', '-b', 'main', main)
    await git(main, 'commit', '-q', '--allow-empty', '-m', 'root')
    await git(main, 'worktree', 'add', '-q', join(t.dir, 'linked'))
    await expect(Repository.open(join(t.dir, 'linked'))).rejects.toMatchObject({code: 'UNSUPPORTED_REPOSITORY', details: {reason: 'linked-worktree'}})
  })

  it('refuses an index v4', async () => {
    await git(t.dir, 'init', '-q', '-b', 'main')
    await writeFile(join(t.dir, 'a'), 'a')
    await git(t.dir, 'add', 'a')
    await git(t.dir, 'update-index', '--index-version', '4')
    await expect(Repository.open(t.dir)).rejects.toMatchObject({code: 'UNSUPPORTED_REPOSITORY', details: {reason: 'index-v4'}})
  })

  it('refuses a SHA-256 repository', async () => {
    await git(t.dir, 'init', '-q', '--object-format=sha256')
    await expect(Repository.open(t.dir)).rejects.toMatchObject({code: 'UNSUPPORTED_REPOSITORY', details: {reason: 'object-format'}})
  })

  it('refuses a directory that is not a repository', async () => {
    await expect(Repository.open(t.dir)).rejects.toMatchObject({code: 'NOT_A_REPOSITORY'})
  })
})

describe('repository paths', () => {
  it.each(['../x', '/etc/passwd', 'a/../../x', '.git/config', 'a//b', 'a\\..\\b', ''])('refuses %j', (p) => {
    expect(() => repoPath(p)).toThrow(expect.objectContaining({code: 'PATH_OUTSIDE_REPO'}))
  })
  it('accepts a nested path', () => expect(repoPath('manifests/images/a.yaml')).toBe('manifests/images/a.yaml'))
})

describe('writes', () => {
  let fleet: Fleet
  const fleets = fleetCopies()
  afterAll(() => fleets.dispose())
  beforeEach(async () => {
    fleet = await fleets.copy()
  })
  afterEach(() => fleet.cleanup())

  it('commits several files in one commit that native git reads', async () => {
    const repo = await Repository.open(fleet.dir)
    const base = (await repo.head()).oid!
    const oid = await repo.createCommit({base, changes: [{path: 'a/b/c.txt', content: 'c\n'}, {path: 'docs/evidence/README.md', content: null}], message: 'two files\n', author: who, time: 1_800_000_000})
    await repo.updateRef('refs/heads/main', base, oid, who, 1_800_000_000, 'two files')
    expect(await git(fleet.dir, 'show', 'HEAD:a/b/c.txt')).toBe('c')
    expect(await git(fleet.dir, 'show', '--name-status', '--format=', 'HEAD')).toBe('A\ta/b/c.txt\nD\tdocs/evidence/README.md')
    await git(fleet.dir, 'fsck', '--strict')
  })

  it('never loses an update: a compare-and-swap against a moved ref is a CONFLICT', async () => {
    const repo = await Repository.open(fleet.dir)
    const base = (await repo.head()).oid!
    const a = await repo.createCommit({base, changes: [{path: 'a', content: 'a'}], message: 'a\n', author: who, time: 1})
    const b = await repo.createCommit({base, changes: [{path: 'b', content: 'b'}], message: 'b\n', author: who, time: 1})
    await repo.updateRef('refs/heads/main', base, a, who, 1, 'a')
    await expect(repo.updateRef('refs/heads/main', base, b, who, 1, 'b')).rejects.toMatchObject({code: 'CONFLICT'})
    expect(await git(fleet.dir, 'rev-parse', 'HEAD')).toBe(a)
  })

  it('respects a ref lock held by native git', async () => {
    const repo = await Repository.open(fleet.dir)
    const base = (await repo.head()).oid!
    await writeFile(join(fleet.dir, '.git/refs/heads/main.lock'), '')
    const a = await repo.createCommit({base, changes: [{path: 'a', content: 'a'}], message: 'a\n', author: who, time: 1})
    await expect(repo.updateRef('refs/heads/main', base, a, who, 1, 'a')).rejects.toMatchObject({code: 'CONFLICT'})
  })

  it('reads objects another process committed after this one looked (no stale object cache)', async () => {
    const reader = await Repository.open(fleet.dir)
    const writer = await Repository.open(fleet.dir)
    const base = (await reader.head()).oid!
    await reader.readCommit(base)
    await reader.listDir(base, 'manifests/images')
    const next = await writer.createCommit({base, changes: [{path: 'manifests/images/x.yaml', content: 'x\n'}], message: 'x\n', author: who, time: 2})
    await writer.updateRef('refs/heads/main', base, next, who, 2, 'x')
    const head = (await reader.head()).oid!
    expect(head).toBe(next)
    expect((await reader.readCommit(head)).parents).toEqual([base])
    expect((await reader.listDir(head, 'manifests/images')).map((e) => e.name)).toContain('x.yaml')
  })

  it('sees uncommitted, staged and untracked changes in the paths asked about', async () => {
    const repo = await Repository.open(fleet.dir)
    expect(await repo.uncommitted(['manifests/images/agent-runner.yaml', 'manifests/trust.yaml'])).toEqual([])
    await writeFile(join(fleet.dir, 'manifests/trust.yaml'), 'changed\n')
    await writeFile(join(fleet.dir, 'manifests/new.yaml'), 'new\n')
    expect((await repo.uncommitted(['manifests/trust.yaml', 'manifests/new.yaml', 'manifests/images/agent-runner.yaml'])).sort()).toEqual(['manifests/new.yaml', 'manifests/trust.yaml'])
  })

  it('evidence verify names a commit signed by a key only its own trust.yaml holds', async () => {
    const repo = await Repository.open(fleet.dir)
    const base = (await repo.head()).oid!
    const intruder = generateSigner().signer
    const trust = await repo.readFile(base, 'manifests/trust.yaml')
    const entry = `    - id: ${intruder.keyid}\n      algorithm: ed25519\n      publicKey: ${Buffer.from(intruder.publicKey).toString('base64')}\n      roles: [evidence]\n      validFrom: 2020-01-01T00:00:00Z\n`
    const text = trust!.text.replace('  thresholds:', `${entry}  thresholds:`)
    const oid = await repo.createCommit({base, changes: [{path: 'manifests/trust.yaml', content: text}], message: 'add key\n', author: who, time: Math.floor(Date.now() / 1000), sign: (p) => sshSign(Buffer.from(p), intruder)})
    await repo.updateRef('refs/heads/main', base, oid, who, 1, 'add key')
    const anchor = (await repo.config('airlock.trustAnchor'))!
    const report = await verifyEvidence(repo, {limits: DEFAULT_LIMITS, now: new Date(), anchor})
    expect(report.ok).toBe(false)
    expect(report.problems).toEqual([expect.objectContaining({code: 'UNTRUSTED_COMMIT_SIGNER', commit: oid})])
  })
})
