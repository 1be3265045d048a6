/**
 * The embedded example fleet: the project's top-level manifests/, policies/ and docs/evidence/,
 * whose signed history ships as examples/fleet.bundle, verified from the anchor pinned in the
 * code. Run on this repository's own files, then on copies with one thing changed.
 */
import {cp, mkdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {EXAMPLE_FLEET_ANCHOR} from '../../control-plane/example/anchor.js'
import {EXAMPLE_ABOUT} from '../../control-plane/example/build.js'
import {EXAMPLE_BUNDLE, EXAMPLE_FOLDERS, firstDifference, openExampleFleet, type OpenedExampleFleet} from '../../control-plane/example/fleet.js'
import {renderEvidenceIndex} from '../../control-plane/evidence/index-md.js'
import {listReceipts, readReceipt} from '../../control-plane/evidence/ledger.js'
import {DEFAULT_LIMITS} from '../../control-plane/limits.js'
import {loadTrust} from '../../control-plane/manifests/load.js'
import {Repository} from '../../control-plane/repo/repository.js'
import {collectEdits} from '../../control-plane/changes/desired-state.js'
import {loadSigner} from '../../control-plane/crypto/keys.js'
import {localIdentity} from '../../control-plane/identity/jwt.js'
import {scaffold} from '../../control-plane/init/scaffold.js'
import {verifyBase} from '../../control-plane/pipeline/base.js'
import {execute} from '../../control-plane/pipeline/pipeline.js'
import {signImageBundle} from '../../platform/images/sign.js'
import {airlock, git, GIT_IDENTITY, ROOT, tempDir} from '../helpers.js'

const NOW = new Date()

/** A copy of what openExampleFleet reads: the bundle and the three top-level folders. */
async function projectCopy(dir: string): Promise<string> {
  const copy = join(dir, 'project')
  for (const f of [...EXAMPLE_FOLDERS, 'examples']) await cp(join(ROOT, f), join(copy, f), {recursive: true})
  return copy
}

describe('the embedded example fleet', () => {
  let opened: OpenedExampleFleet
  let t: Awaited<ReturnType<typeof tempDir>>

  beforeAll(async () => {
    opened = await openExampleFleet(ROOT, DEFAULT_LIMITS, NOW)
    t = await tempDir('airlock-example-test-')
  })
  afterAll(async () => {
    await opened?.cleanup()
    await t?.cleanup()
  })

  it('opens this repository: one root, the anchor pinned in the code; its history verifies; the top-level folders are its tip', async () => {
    expect(opened.anchor).toBe(EXAMPLE_FLEET_ANCHOR)
    expect((await git(opened.dir, 'rev-list', '--max-parents=0', 'HEAD')).trim()).toBe(EXAMPLE_FLEET_ANCHOR)
    expect(opened.commits).toBeGreaterThanOrEqual(2)
    expect(opened.files).toBeGreaterThan(10)
    // The clone pins its anchor, so commands run in it verify from it.
    expect((await git(opened.dir, 'config', 'airlock.trustAnchor')).trim()).toBe(EXAMPLE_FLEET_ANCHOR)
    expect((await execa('git', ['bundle', 'verify', '--quiet', join(ROOT, EXAMPLE_BUNDLE)], {cwd: ROOT, reject: false})).exitCode).toBe(0)
  })

  it('holds no private key in any object of its history', async () => {
    const objects = await execa('git', ['cat-file', '--batch-all-objects', '--batch'], {cwd: opened.dir, maxBuffer: 1 << 28})
    expect(String(objects.stdout)).not.toMatch(/PRIVATE KEY/)
  })

  it('`airlock evidence verify --trust-anchor <anchor>` passes in the opened clone', async () => {
    const r = await airlock(['evidence', 'verify', '--trust-anchor', opened.anchor, '--json'], {cwd: opened.dir})
    expect(r.exitCode).toBe(0)
    expect(r.json.problems ?? []).toEqual([])
  })

  it("the README's first command, run in the opened clone: the history verified from the anchor, the signature verified, the local operator denied stable", async () => {
    const r = await airlock(['promote', 'agent-runner', '--from', 'canary', '--to', 'stable', '--reason', 'canary soaked 24h', '--json'], {cwd: opened.dir})
    expect(r.exitCode).toBe(0)
    expect(r.json.applied).toBeNull()
    expect(r.json.plan.base).toMatchObject({verified: true, anchor: {commit: EXAMPLE_FLEET_ANCHOR, pinned: true}})
    expect(r.json.plan.signature).toBeDefined()
    expect(r.json.plan.authorization).toMatchObject({decision: 'deny', authenticated: false})
  })

  it('ships an evidence index that is what the generator makes from the receipts before it', async () => {
    const repo = await Repository.open(opened.dir)
    const parent = (await git(opened.dir, 'rev-parse', 'HEAD~1')).trim()
    const receipts = await Promise.all((await listReceipts(repo, parent)).map((r) => readReceipt(repo, parent, r.path, DEFAULT_LIMITS)))
    const index = renderEvidenceIndex({receipts, trust: await loadTrust(repo, parent, DEFAULT_LIMITS), commit: parent, anchor: opened.anchor, about: EXAMPLE_ABOUT})
    expect(await readFile(join(ROOT, 'docs/evidence/README.md'), 'utf8')).toBe(index)
    expect(index).toContain(`airlock evidence verify --trust-anchor ${EXAMPLE_FLEET_ANCHOR}`)
  })

  it('names the first file of a copy that differs from the verified tip by one byte (EXAMPLE_MISMATCH)', async () => {
    const copy = await projectCopy(join(t.dir, 'tampered'))
    const file = join(copy, 'manifests/images/agent-runner.yaml')
    const text = await readFile(file)
    text[text.length - 2] ^= 1
    await writeFile(file, text)
    const error = await openExampleFleet(copy, DEFAULT_LIMITS, NOW).catch((e: unknown) => e)
    expect(error).toThrowAirlockError('EXAMPLE_MISMATCH')
    expect((error as {details: Record<string, unknown>}).details).toMatchObject({file: 'manifests/images/agent-runner.yaml', reason: 'differs'})
  })

  it('names a file missing from the copy, one added to it, and a symbolic link in place of a file', async () => {
    const repo = await Repository.open(opened.dir)
    const copy = await projectCopy(join(t.dir, 'edited'))
    expect(await firstDifference(copy, repo, opened.head)).toBeNull()
    await rm(join(copy, 'policies/schema.cedarschema'))
    expect(await firstDifference(copy, repo, opened.head)).toEqual({file: 'policies/schema.cedarschema', reason: 'missing'})
    await symlink(join(ROOT, 'policies/schema.cedarschema'), join(copy, 'policies/schema.cedarschema'))
    expect(await firstDifference(copy, repo, opened.head)).toEqual({file: 'policies/schema.cedarschema', reason: 'not-a-file'})
    await mkdir(join(copy, 'docs/evidence/extra'), {recursive: true})
    await writeFile(join(copy, 'docs/evidence/extra/a.json'), '{}')
    expect(await firstDifference(copy, repo, opened.head)).toEqual({file: 'docs/evidence/extra/a.json', reason: 'extra'})
    // A folder replaced by a link to a copy of itself: named, never followed.
    await rm(join(copy, 'docs/evidence/extra'), {recursive: true})
    await rm(join(copy, 'policies/schema.cedarschema'))
    await cp(join(ROOT, 'policies/schema.cedarschema'), join(copy, 'policies/schema.cedarschema'))
    expect(await firstDifference(copy, repo, opened.head)).toBeNull()
    await cp(join(copy, 'docs/evidence'), join(t.dir, 'evidence-elsewhere'), {recursive: true})
    await rm(join(copy, 'docs/evidence'), {recursive: true})
    await symlink(join(t.dir, 'evidence-elsewhere'), join(copy, 'docs/evidence'))
    expect(await firstDifference(copy, repo, opened.head)).toEqual({file: 'docs/evidence', reason: 'not-a-file'})
  })

  it('refuses a bundle whose root is not the pinned anchor, and a missing bundle (EXAMPLE_UNANCHORED)', async () => {
    const copy = await projectCopy(join(t.dir, 'other-root'))
    // The same tree under another first commit: what a rebuild with other keys, or a forgery, is.
    const other = join(t.dir, 'other-repo')
    await git(t.dir, 'clone', '-q', opened.dir, other)
    await git(other, 'checkout', '-q', '--orphan', 'rewritten')
    await git(other, 'commit', '-q', '-m', 'same files, another root')
    await git(other, 'branch', '-q', '-f', 'main', 'rewritten')
    await git(other, 'checkout', '-q', 'main')
    await rm(join(copy, EXAMPLE_BUNDLE))
    await git(other, 'bundle', 'create', join(copy, EXAMPLE_BUNDLE), 'HEAD', 'main')
    const error = await openExampleFleet(copy, DEFAULT_LIMITS, NOW).catch((e: unknown) => e)
    expect(error).toThrowAirlockError('EXAMPLE_UNANCHORED')
    expect((error as Error).message).toContain(EXAMPLE_FLEET_ANCHOR.slice(0, 12))
    await rm(join(copy, EXAMPLE_BUNDLE))
    await expect(openExampleFleet(copy, DEFAULT_LIMITS, NOW)).rejects.toThrowAirlockError('EXAMPLE_UNANCHORED')
  })

  it('refuses a bundle with an unsigned commit on top of the anchored history (BASE_UNVERIFIED)', async () => {
    const copy = await projectCopy(join(t.dir, 'unsigned'))
    const other = join(t.dir, 'unsigned-repo')
    await git(t.dir, 'clone', '-q', opened.dir, other)
    await writeFile(join(other, 'manifests/egress.yaml'), `${await readFile(join(other, 'manifests/egress.yaml'), 'utf8')}    - evil.example.com\n`)
    await git(other, 'commit', '-q', '-am', 'allow one more host')
    await rm(join(copy, EXAMPLE_BUNDLE))
    await git(other, 'bundle', 'create', join(copy, EXAMPLE_BUNDLE), 'HEAD', 'main')
    await cp(join(other, 'manifests/egress.yaml'), join(copy, 'manifests/egress.yaml'))
    const error = await openExampleFleet(copy, DEFAULT_LIMITS, NOW).catch((e: unknown) => e)
    expect(error).toThrowAirlockError('BASE_UNVERIFIED')
    expect((error as Error).message).toContain('UNSIGNED_COMMIT')
  })
})

describe('the evidence index in a fleet of one\'s own', () => {
  it('is carried by `airlock change` (collected from the work tree, validated, signed) and the history still verifies', async () => {
    const t = await tempDir('airlock-example-index-')
    const saved = {...process.env}
    Object.assign(process.env, GIT_IDENTITY)
    try {
      const requestedBy = {actor: 'operator', via: 'cli' as const}
      const made = await scaffold(join(t.dir, 'fleet'), {apply: true, now: NOW, requestedBy, limits: DEFAULT_LIMITS, toolVersion: 'test', examplePolicies: join(ROOT, 'policies'), trustedRoot: join(ROOT, 'manifests/sigstore/trusted_root.json'), signBundle: signImageBundle})
      const repo = await Repository.open(made.dir)
      const anchor = (await repo.head()).oid!
      await writeFile(join(made.dir, 'docs/evidence/README.md'), '# Evidence\n\nregenerated\n')
      // A receipt written by hand is never collected: receipts are apply's alone.
      await writeFile(join(made.dir, 'docs/evidence/forged.json'), '{}')
      const files = await collectEdits(repo, DEFAULT_LIMITS)
      expect(files).toEqual([{path: 'docs/evidence/README.md', content: '# Evidence\n\nregenerated\n'}])
      const ctx = {now: NOW, reason: 'index', requestedBy, identity: localIdentity('Fleet Operator', 'operator@example.com'), anchor: {flag: anchor}, limits: DEFAULT_LIMITS, verifier: {pinned: () => Promise.reject(new Error('no pins')), bundle: () => Promise.reject(new Error('no pins'))}}
      const signer = await loadSigner({file: made.keyFile!})
      const outcome = await execute(repo, {request: {kind: 'change', files}}, {kind: 'apply', signer: async () => signer, toolVersion: 'test'}, ctx)
      expect(outcome.status).toBe('applied')
      const head = (await repo.head()).oid!
      expect((await git(made.dir, 'show', '--name-only', '--format=', head)).trim().split('\n').sort()).toEqual([expect.stringMatching(/^docs\/evidence\/\d{8}T\d{6}Z-change-change-[0-9a-f]{8}\.json$/), 'docs/evidence/README.md'])
      expect((await verifyBase(repo, head, {anchor, limits: DEFAULT_LIMITS, now: NOW})).verified).toBe(true)
    } finally {
      process.env = saved
      await t.cleanup()
    }
  })
})
