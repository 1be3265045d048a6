/**
 * Git as the audit log's witness, on a real fleet made by `airlock init` with an audit key added
 * the ordinary way (`airlock keys generate --role audit --apply`). The log is a list of entry
 * fingerprints grown step by step; its checkpoints are real C2SP signed notes made with the audit
 * key. The pipeline runs in-process where it can (the clock passed in); the CLI runs
 * `audit publish` and `evidence verify`. One fleet, its history grown in order: each `it` builds
 * on the one before, and hostile commits are made on side branches.
 */
import {randomBytes} from 'node:crypto'
import {readFile, mkdir, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {consistencyProof, leafHash, rootFromLeafHashes} from '../../control-plane/audit/merkle.js'
import {AuditLog, readEntries, writeCheckpoint} from '../../control-plane/audit/log.js'
import {formatCheckpoint, signNote} from '../../control-plane/audit/note.js'
import {checkpointPath, consistencyPath, formatConsistency, listPublished, parseConsistency, publishedCheckpoints} from '../../control-plane/audit/published.js'
import {generateSigner, loadSigner, type Signer} from '../../control-plane/crypto/keys.js'
import {parseReceipt} from '../../control-plane/evidence/ledger.js'
import {verifyEvidence} from '../../control-plane/evidence/verify.js'
import {localIdentity} from '../../control-plane/identity/jwt.js'
import {DEFAULT_LIMITS} from '../../control-plane/limits.js'
import type {PipelineContext} from '../../control-plane/pipeline/draft.js'
import {execute, type Outcome} from '../../control-plane/pipeline/pipeline.js'
import {Repository} from '../../control-plane/repo/repository.js'
import {airlock, git, GIT_IDENTITY, initFleet} from '../helpers.js'

const ORIGIN = 'airlock.audit/runner-1/0123456789abcdef'
const limits = DEFAULT_LIMITS

let fleet: Awaited<ReturnType<typeof initFleet>>
let auditKey: Signer
/** The log: one fingerprint per entry. */
const log: Uint8Array[] = []

beforeAll(async () => {
  fleet = await initFleet()
  Object.assign(process.env, GIT_IDENTITY)
}, 120_000)
afterAll(() => fleet.cleanup())

function context(now = new Date()): PipelineContext {
  const none = () => Promise.reject(new Error('no pins'))
  return {now, reason: 'witness the audit log', requestedBy: {actor: 'tester', via: 'cli'}, identity: localIdentity('Tester', 'tester@example.com'), anchor: {}, limits, verifier: {pinned: none, bundle: none}}
}

const grow = (n: number) => {
  for (let i = 0; i < n; i++) log.push(new Uint8Array(randomBytes(32)))
}
const leaves = (fps: Uint8Array[]) => fps.map(leafHash)

/** A signed checkpoint of `fps` (default: the log as it is), by `key` under `origin`. */
function checkpointOf(fps: Uint8Array[] = log, key: Signer = auditKey, origin = ORIGIN): string {
  return signNote(formatCheckpoint({origin, size: fps.length, rootHash: rootFromLeafHashes(leaves(fps)), extensions: []}), [{name: origin, signer: key}])
}

/** The consistency proof from `oldSize` to the whole of `fps`, as the request carries it. */
const proofFor = (oldSize: number, fps: Uint8Array[] = log) => consistencyProof(leaves(fps), oldSize, fps.length).map((h) => Buffer.from(h).toString('base64'))

const publish = async (checkpoint: string, proof: string[], kind: 'plan' | 'apply' = 'apply') =>
  execute(await open(), {request: {kind: 'audit-publish', checkpoint, proof}}, kind === 'apply' ? {kind: 'apply', signer: () => loadSigner({file: fleet.key}), toolVersion: 'test'} : {kind: 'plan'}, context())

/** A repository per run, as each command opens its own (its object cache lives as long as one command). */
const open = () => Repository.open(fleet.dir)

const head = async () => (await git(fleet.dir, 'rev-parse', 'HEAD')).trim()

/** The refusal of an outcome, with nothing committed. */
async function refused(run: () => Promise<Outcome>): Promise<{code: string; reason: unknown}> {
  const before = await head()
  const o = await run()
  expect(await head()).toBe(before)
  const error = o.status === 'refused' ? o.error : o.status === 'planned' ? o.refusal : null
  expect(error, `expected a refusal, got ${o.status}`).not.toBeNull()
  return {code: error!.code, reason: error!.details.reason}
}

describe('before the fleet trusts an audit key', () => {
  it('a checkpoint is refused: no audit key in trust.yaml (UNTRUSTED_KEY)', async () => {
    grow(3)
    expect(await refused(() => publish(checkpointOf(log, generateSigner().signer), []))).toEqual({code: 'AUDIT_CHECKPOINT_INVALID', reason: 'UNTRUSTED_KEY'})
  })

  it('`airlock keys generate audit --role audit --apply` trusts one', async () => {
    const r = await airlock(['keys', 'generate', 'audit', '--role', 'audit', '--reason', 'audit checkpoints', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    auditKey = await loadSigner({file: join(fleet.dir, 'keys', 'audit.key')})
  })
})

describe('publishing as the log grows', () => {
  it('the first checkpoint: the signed note, byte for byte, with its receipt, in one signed commit', async () => {
    const note = checkpointOf()
    const planned = await publish(note, [], 'plan')
    expect(planned.status).toBe('planned')
    const plan = (planned as Extract<Outcome, {status: 'planned'}>).plan
    expect(plan.authorization?.action).toBe('PublishCheckpoint')
    expect(plan.authorization?.decision).toBe('allow')
    expect(plan.changes.map((c) => c.path)).toEqual([checkpointPath(ORIGIN, 3)])
    const o = await publish(note, [])
    expect(o.status).toBe('applied')
    expect(await readFile(join(fleet.dir, checkpointPath(ORIGIN, 3)), 'utf8')).toBe(note)
    expect(await git(fleet.dir, 'log', '-1', '--format=%G?%n%s')).toMatch(/publish the audit checkpoint of airlock\.audit\/runner-1\/0123456789abcdef at size 3/)
    const receiptPath = (o as Extract<Outcome, {status: 'applied'}>).applied.receipt
    const receipt = parseReceipt(await readFile(join(fleet.dir, receiptPath), 'utf8'), receiptPath, limits)
    expect(receipt.statement.predicate).toMatchObject({operation: 'audit-publish', details: {origin: ORIGIN, size: 3, root: Buffer.from(rootFromLeafHashes(leaves(log))).toString('base64')}})
  })

  it('the same checkpoint again is nothing to do', async () => {
    const before = await head()
    expect((await publish(checkpointOf(), [])).status).toBe('noop')
    expect(await head()).toBe(before)
  })

  it('the second, with the consistency proof from the first; both read back, dated by their receipts; evidence verify passes', async () => {
    grow(5)
    const o = await publish(checkpointOf(), proofFor(3))
    expect(o.status).toBe('applied')
    const proofText = await readFile(join(fleet.dir, consistencyPath(ORIGIN, 8)), 'utf8')
    expect(parseConsistency(proofText, 'p')).toMatchObject({oldSize: 3, newSize: 8})
    const published = await publishedCheckpoints(await open(), await head(), {origin: ORIGIN})
    expect(published.map((p) => [p.size, p.consistency?.oldSize ?? null])).toEqual([[3, null], [8, 3]])
    expect(published[1]!.root).toBe(Buffer.from(rootFromLeafHashes(leaves(log))).toString('base64'))
    for (const p of published) expect(Date.parse(p.publishedAt)).not.toBeNaN()
    expect(await publishedCheckpoints(await open(), await head())).toHaveLength(2)
    const report = await verifyEvidence(await open(), {limits, now: new Date(), anchor: (await (await open()).config('airlock.trustAnchor')) ?? null})
    expect(report.problems).toEqual([])
    expect(report.ok).toBe(true)
  })
})

describe('what is refused, with nothing committed', () => {
  it('a rewritten log of the published size (another root): two histories (FORK)', async () => {
    const rewritten = [...log.slice(0, 7), new Uint8Array(randomBytes(32))]
    expect(await refused(() => publish(checkpointOf(rewritten), []))).toEqual({code: 'AUDIT_CHECKPOINT_INVALID', reason: 'FORK'})
  })

  it('a larger log that does not extend the published one, with its own honest proof (INCONSISTENT)', async () => {
    const rewritten = [...log.slice(0, 5), ...Array.from({length: 6}, () => new Uint8Array(randomBytes(32)))]
    expect(await refused(() => publish(checkpointOf(rewritten), proofFor(8, rewritten)))).toEqual({code: 'AUDIT_CHECKPOINT_INVALID', reason: 'INCONSISTENT'})
  })

  it('a rolled-back checkpoint: a smaller tree than the one published (ROLLED_BACK)', async () => {
    expect(await refused(() => publish(checkpointOf(log.slice(0, 5)), []))).toEqual({code: 'AUDIT_CHECKPOINT_INVALID', reason: 'ROLLED_BACK'})
  })

  it('a checkpoint signed by a key trust.yaml does not hold (UNTRUSTED_KEY)', async () => {
    grow(2)
    expect(await refused(() => publish(checkpointOf(log, generateSigner().signer), proofFor(8)))).toEqual({code: 'AUDIT_CHECKPOINT_INVALID', reason: 'UNTRUSTED_KEY'})
  })

  it('a forged checkpoint: the signed text changed after signing (FORGED)', async () => {
    const honest = checkpointOf()
    const lines = honest.split('\n')
    const other = Buffer.from(rootFromLeafHashes(leaves([...log.slice(0, -1), new Uint8Array(32)]))).toString('base64')
    const forged = [lines[0], lines[1], other, ...lines.slice(3)].join('\n')
    expect(await refused(() => publish(forged, proofFor(8)))).toEqual({code: 'AUDIT_CHECKPOINT_INVALID', reason: 'FORGED'})
  })

  it('another log\'s checkpoint does not land in this one\'s folder, and a wrong proof is INCONSISTENT', async () => {
    const wrong = proofFor(8)
    wrong[0] = Buffer.alloc(32, 1).toString('base64')
    expect(await refused(() => publish(checkpointOf(), wrong))).toEqual({code: 'AUDIT_CHECKPOINT_INVALID', reason: 'INCONSISTENT'})
  })

  it('a proof that is not base64 hashes is invalid input', async () => {
    expect(await refused(() => publish(checkpointOf(), ['not a hash']))).toEqual({code: 'INVALID_INPUT', reason: undefined})
  })

  it('a hand-made unsigned commit adding a checkpoint file fails history verification (UNSIGNED_COMMIT)', async () => {
    await git(fleet.dir, 'checkout', '-q', '-b', 'forged-checkpoint')
    try {
      grow(2)
      const path = join(fleet.dir, checkpointPath(ORIGIN, log.length))
      await mkdir(dirname(path), {recursive: true})
      await writeFile(path, checkpointOf())
      await writeFile(join(fleet.dir, consistencyPath(ORIGIN, log.length)), formatConsistency({oldSize: 8, newSize: log.length, proof: consistencyProof(leaves(log), 8, log.length)}))
      await git(fleet.dir, 'add', '-A')
      await git(fleet.dir, 'commit', '-q', '-m', 'a checkpoint, by hand')
      const r = await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})
      expect(r.exitCode).toBe(1)
      expect(r.json.problems.map((p: {code: string}) => p.code)).toContain('UNSIGNED_COMMIT')
      // The reader still reads it (dated by its commit: no receipt names it); verification is history's job.
      const read = await publishedCheckpoints(await open(), await head(), {origin: ORIGIN})
      expect(read.map((c) => c.size)).toEqual([3, 8, 12])
      expect(read[2]!.publishedAt).toBe(new Date(Number(await git(fleet.dir, 'log', '-1', '--format=%ct')) * 1000).toISOString())
      // And the pipeline will not build on that base.
      expect((await refused(() => publish(checkpointOf(), proofFor(8)))).code).toBe('BASE_UNVERIFIED')
    } finally {
      await git(fleet.dir, 'checkout', '-q', 'main')
    }
  })

  it('the honest checkpoint still publishes afterwards', async () => {
    expect((await publish(checkpointOf(), proofFor(8))).status).toBe('applied')
    expect((await listPublished(await open(), await head(), {origin: ORIGIN})).map((p) => p.size)).toEqual([3, 8, 12])
  })
})

describe('`airlock audit publish` from a real audit log', () => {
  let dir: string
  let origin: string
  /** The size last published (each `audit publish` run records its own outcome in the log it publishes). */
  let published = 0

  /** Appends `n` events to the log in `at` and signs a checkpoint of the whole log with the audit key. */
  async function appendAndCheckpoint(at: string, n: number): Promise<number> {
    const log = await AuditLog.open(at)
    for (let i = 0; i < n; i++) await log.append({class_uid: 6003, activity_id: 1, message: `event ${i}`})
    await log.close()
    const fps: Uint8Array[] = []
    for await (const e of readEntries(at)) fps.push(Buffer.from(e.fingerprint, 'hex'))
    await writeCheckpoint(at, log.origin, auditKey, fps.length, rootFromLeafHashes(leaves(fps)))
    return fps.length
  }

  const run = (at: string, ...extra: string[]) => airlock(['audit', 'publish', '--audit-dir', at, '--reason', 'witness', '--json', ...extra], {cwd: fleet.dir, env: fleet.env})

  beforeAll(async () => {
    dir = join(dirname(fleet.dir), 'audit')
    await appendAndCheckpoint(dir, 4)
    origin = (await readFile(join(dir, 'origin'), 'utf8')).trim()
  })

  it('plans by default and changes nothing; --apply commits the checkpoint', async () => {
    const before = await head()
    const planned = await run(dir)
    expect(planned.exitCode, planned.stdout + planned.stderr).toBe(0)
    expect(planned.json.outcome).toBe('planned')
    expect(planned.json.audit).toMatchObject({origin, checkpoint: {size: 4}, previous: null})
    expect(await head()).toBe(before)
    const applied = await run(dir, '--apply')
    expect(applied.exitCode, applied.stdout + applied.stderr).toBe(0)
    expect(applied.json.outcome).toBe('applied')
    expect(await readFile(join(fleet.dir, checkpointPath(origin, 4)), 'utf8')).toBe(await readFile(join(dir, 'checkpoints', '00000000000000000004.checkpoint'), 'utf8'))
  })

  it('after the log grows, the next checkpoint with the proof computed from the log; evidence verify passes', async () => {
    // 4 events, the first publish's plan and apply (recorded in this log), then 3 more.
    const size = await appendAndCheckpoint(dir, 3)
    expect(size).toBe(9)
    const r = await run(dir, '--apply')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json.audit.previous).toMatchObject({size: 4})
    expect(r.json.plan.changes.map((c: {path: string}) => c.path)).toEqual([checkpointPath(origin, size), consistencyPath(origin, size)])
    published = size
    const v = await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})
    expect(v.exitCode, v.stdout).toBe(0)
  })

  it('a log rewritten after publishing is refused: the same size with another root, or a longer history that does not extend it', async () => {
    const forged = join(dirname(fleet.dir), 'audit-rewritten')
    await mkdir(forged, {mode: 0o700})
    await writeFile(join(forged, 'origin'), `${origin}\n`)
    await appendAndCheckpoint(forged, published)
    const before = await head()
    const fork = await run(forged, '--apply')
    expect(fork.exitCode).toBe(1)
    expect(fork.json.error).toMatchObject({code: 'AUDIT_CHECKPOINT_INVALID', details: {reason: 'FORK'}})
    await appendAndCheckpoint(forged, 2)
    const longer = await run(forged, '--apply')
    expect(longer.exitCode).toBe(1)
    expect(longer.json.error).toMatchObject({code: 'AUDIT_CHECKPOINT_INVALID', details: {reason: 'INCONSISTENT'}})
    expect(await head()).toBe(before)
  })

  it('a log with no checkpoint yet is a usage error', async () => {
    const empty = join(dirname(fleet.dir), 'audit-empty')
    await (await AuditLog.open(empty)).close()
    const r = await run(empty)
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('USAGE')
  })
})
