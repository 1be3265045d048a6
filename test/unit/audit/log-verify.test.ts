/**
 * verifyLog and checkpointLog: each bad input of issue 19 about the log, built for real in a temp
 * folder (edited, deleted, swapped, torn, truncated, hand-appended entries; forged, foreign,
 * rolled-back, tampered and witnessed-inconsistent checkpoints), each seen caught with its problem
 * code; and the good cases (pruned stubs, auto checkpoints, recovered torn tails) passing.
 */
import {cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync, appendFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {AirlockError} from '../../../control-plane/errors.js'
import {generateSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import {leafHash, rootFromLeafHashes} from '../../../control-plane/audit/merkle.js'
import {formatCheckpoint, signNote, verifierKeyOf} from '../../../control-plane/audit/note.js'
import {AuditLog, checkpointLog, prunedLine, readEntries, serializeEntry, verifyLog, type AuditVerifyReport} from '../../../control-plane/audit/log.js'

const NOW = new Date('2026-12-01T00:00:00Z')
const dirs: string[] = []
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'airlock-verify-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, {recursive: true, force: true})
})

const signer = generateSigner().signer

async function makeLog(n: number, opts: {dir?: string; from?: number} = {}): Promise<{dir: string; origin: string}> {
  const dir = opts.dir ?? tempDir()
  const log = await AuditLog.open(dir)
  for (let i = 0; i < n; i++) await log.append({class_uid: 6003, n: (opts.from ?? 0) + i})
  await log.close()
  return {dir, origin: log.origin}
}

function keysOf(origin: string, s: Signer = signer) {
  return [verifierKeyOf(origin, s.publicKey)]
}

async function verify(dir: string, origin: string, extra: {fromCheckpoint?: string; witnessed?: Array<{path: string; text: string}>; s?: Signer} = {}): Promise<AuditVerifyReport> {
  return verifyLog(dir, {keys: keysOf(origin, extra.s), now: NOW, fromCheckpoint: extra.fromCheckpoint, witnessed: extra.witnessed})
}

function lines(dir: string): string[] {
  return readFileSync(join(dir, 'events.jsonl'), 'utf8').split('\n').slice(0, -1)
}
function writeLines(dir: string, ls: string[]): void {
  writeFileSync(join(dir, 'events.jsonl'), ls.map((l) => `${l}\n`).join(''))
}

function first(report: AuditVerifyReport) {
  expect(report.ok).toBe(false)
  return report.problems[0]!
}

describe('verifyLog on a good log', () => {
  it('recomputes the root, checks every checkpoint and counts what no checkpoint covers', async () => {
    const {dir, origin} = await makeLog(5)
    await checkpointLog(dir, signer, NOW)
    await makeLog(3, {dir, from: 5})
    const ck8 = await checkpointLog(dir, signer, NOW)
    await makeLog(2, {dir, from: 8})
    const report = await verify(dir, origin)
    expect(report.problems).toEqual([])
    expect(report).toMatchObject({ok: true, size: 10, checkpointed: 8, uncheckpointed: 2})
    expect(report.checkpoints.map((c) => [c.size, c.ok])).toEqual([[5, true], [8, true]])
    const leaves: Uint8Array[] = []
    for await (const e of readEntries(dir)) leaves.push(leafHash(Buffer.from(e.fingerprint, 'hex')))
    expect(report.root).toBe(Buffer.from(rootFromLeafHashes(leaves)).toString('hex'))
    expect(ck8.root).toBe(Buffer.from(rootFromLeafHashes(leaves.slice(0, 8))).toString('hex'))
    expect(ck8.path).toBe(join(dir, 'checkpoints', '00000000000000000008.checkpoint'))
    expect(ck8.text.startsWith(`${origin}\n8\n`)).toBe(true)
  })

  it('accepts pruned stubs: their fingerprint is the leaf and the chain still links', async () => {
    const {dir, origin} = await makeLog(6)
    await checkpointLog(dir, signer, NOW)
    const entries = []
    for await (const e of readEntries(dir)) entries.push(e)
    const ls = lines(dir)
    for (const i of [0, 1, 2]) ls[i] = prunedLine({index: i, fingerprint: entries[i]!.fingerprint, prev: entries[i]!.prev, time: 1})
    writeLines(dir, ls)
    const report = await verify(dir, origin)
    expect(report.problems).toEqual([])
    expect(report).toMatchObject({ok: true, pruned: 3, uncheckpointed: 0})
    // Retention prunes the oldest first: a stub after an entry that kept its body is a body removed.
    ls[4] = prunedLine({index: 4, fingerprint: entries[4]!.fingerprint, prev: entries[4]!.prev, time: 1})
    writeLines(dir, ls)
    expect((await verify(dir, origin)).problems).toEqual([expect.objectContaining({code: 'BODY_REMOVED', index: 4})])
  })

  it('refuses stubs beyond the last verified checkpoint (BODY_REMOVED): nothing signed those fingerprints', async () => {
    const {dir, origin} = await makeLog(6)
    const entries = []
    for await (const e of readEntries(dir)) entries.push(e)
    const ls = lines(dir)
    for (const i of [0, 1, 2, 3]) ls[i] = prunedLine({index: i, fingerprint: entries[i]!.fingerprint, prev: entries[i]!.prev, time: 1})
    writeLines(dir, ls)
    // No checkpoint at all: every stub is beyond one.
    expect((await verify(dir, origin)).problems).toEqual([expect.objectContaining({code: 'BODY_REMOVED', index: 0})])
  })

  it("counts a checkpoint only when as many known keys signed it as trust.yaml's audit threshold asks", async () => {
    const {dir, origin} = await makeLog(3)
    await checkpointLog(dir, signer, NOW)
    const second = generateSigner().signer
    const keys = [...keysOf(origin), ...keysOf(origin, second)]
    expect(await verifyLog(dir, {keys, threshold: 1, now: NOW})).toMatchObject({ok: true, checkpointed: 3})
    const two = await verifyLog(dir, {keys, threshold: 2, now: NOW})
    expect(two.problems).toEqual([expect.objectContaining({code: 'UNKNOWN_CHECKPOINT_KEY', message: expect.stringMatching(/signed by 1 known audit key\(s\); the audit threshold is 2/)})])
  })

  it('makes checkpoints every N entries and on close, each consistent with the one before', async () => {
    const dir = tempDir()
    const log = await AuditLog.open(dir, {checkpoint: {signer, every: 4}})
    for (let i = 0; i < 10; i++) await log.append({n: i})
    await log.close()
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['00000000000000000004.checkpoint', '00000000000000000008.checkpoint', '00000000000000000010.checkpoint'])
    const report = await verify(dir, log.origin)
    expect(report).toMatchObject({ok: true, checkpointed: 10, uncheckpointed: 0})
  })

  it('makes a checkpoint at the first append after the interval, on the clock given', async () => {
    const dir = tempDir()
    let t = 0
    const log = await AuditLog.open(dir, {now: () => new Date(t), checkpoint: {signer, every: 1000, intervalMs: 60_000}})
    await log.append({n: 0})
    expect(readdirSync(dir)).not.toContain('checkpoints')
    t = 60_000
    await log.append({n: 1})
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['00000000000000000002.checkpoint'])
    await log.close()
  })
})

describe('verifyLog catches', () => {
  it('an edited entry (EDITED, naming index and line)', async () => {
    const {dir, origin} = await makeLog(5)
    const ls = lines(dir)
    ls[3] = ls[3]!.replace('"n":3', '"n":7')
    writeLines(dir, ls)
    expect(first(await verify(dir, origin))).toMatchObject({code: 'EDITED', index: 3, line: 4})
  })

  it('a deleted entry (CHAIN_BROKEN at the entry after it)', async () => {
    const {dir, origin} = await makeLog(5)
    const ls = lines(dir)
    ls.splice(2, 1)
    writeLines(dir, ls)
    expect(first(await verify(dir, origin))).toMatchObject({code: 'CHAIN_BROKEN', index: 2, line: 3})
  })

  it('two swapped entries (CHAIN_BROKEN)', async () => {
    const {dir, origin} = await makeLog(5)
    const ls = lines(dir)
    ;[ls[1], ls[2]] = [ls[2]!, ls[1]!]
    writeLines(dir, ls)
    expect(first(await verify(dir, origin))).toMatchObject({code: 'CHAIN_BROKEN', index: 1})
  })

  it('an entry whose uid is not its position though the chain links (INDEX_GAP)', async () => {
    const {dir, origin} = await makeLog(3)
    const last = lines(dir)[2]!
    const prev = /"value":"([0-9a-f]{64})"/.exec(last)![1]!
    appendFileSync(join(dir, 'events.jsonl'), `${serializeEntry({n: 9}, {index: 4, prev, origin}).line}\n`)
    expect(first(await verify(dir, origin))).toMatchObject({code: 'INDEX_GAP', index: 3})
  })

  it('a line that is not an entry (MALFORMED, naming the line)', async () => {
    const {dir, origin} = await makeLog(3)
    const ls = lines(dir)
    ls.splice(1, 0, '{"hello":"world"}')
    writeLines(dir, ls)
    const p = first(await verify(dir, origin))
    expect(p).toMatchObject({code: 'MALFORMED', index: 1, line: 2})
    expect(p.message).toContain('line 2')
  })

  it('a torn tail (TORN_TAIL with its offset); after the next append it passes and lists the recovery', async () => {
    const {dir, origin} = await makeLog(4)
    const path = join(dir, 'events.jsonl')
    const ls = lines(dir)
    const offset = Buffer.byteLength(ls.slice(0, 3).join('\n')) + 1
    truncateSync(path, offset + 20)
    const p = first(await verify(dir, origin))
    expect(p).toMatchObject({code: 'TORN_TAIL', offset, line: 4})
    await makeLog(1, {dir, from: 100})
    const report = await verify(dir, origin)
    expect(report.problems).toEqual([])
    expect(report.recoveries).toEqual([expect.objectContaining({index: 3, offset, length: 20, path: `torn/${offset}.partial`})])
  })

  it('a log truncated below a checkpoint (TRUNCATED)', async () => {
    const {dir, origin} = await makeLog(8)
    const ck = await checkpointLog(dir, signer, NOW)
    writeLines(dir, lines(dir).slice(0, 5))
    const report = await verify(dir, origin)
    expect(first(report)).toMatchObject({code: 'TRUNCATED', path: join('checkpoints', '00000000000000000008.checkpoint')})
    expect(ck.size).toBe(8)
  })

  it('an entry appended by hand after the last checkpoint: a bad one is caught, a well-formed one is reported as uncheckpointed', async () => {
    const {dir, origin} = await makeLog(4)
    await checkpointLog(dir, signer, NOW)
    const good = join(tempDir(), 'copy')
    cpSync(dir, good, {recursive: true})
    const last = lines(dir)[3]!
    const prev = /"value":"([0-9a-f]{64})"/.exec(last)![1]!
    const forged = serializeEntry({n: 'forged'}, {index: 4, prev, origin}).line
    appendFileSync(join(dir, 'events.jsonl'), `${forged.replace('forged', 'FORGED')}\n`)
    expect(first(await verify(dir, origin))).toMatchObject({code: 'EDITED', index: 4})
    appendFileSync(join(good, 'events.jsonl'), `${forged}\n`)
    expect(await verify(good, origin)).toMatchObject({ok: true, size: 5, checkpointed: 4, uncheckpointed: 1})
  })

  it('a checkpoint signed by an unknown key (UNKNOWN_CHECKPOINT_KEY)', async () => {
    const {dir, origin} = await makeLog(4)
    await checkpointLog(dir, generateSigner().signer, NOW)
    expect(first(await verify(dir, origin))).toMatchObject({code: 'UNKNOWN_CHECKPOINT_KEY', path: join('checkpoints', '00000000000000000004.checkpoint')})
  })

  it('a checkpoint whose root was changed after signing (BAD_CHECKPOINT_SIGNATURE)', async () => {
    const {dir, origin} = await makeLog(4)
    const ck = await checkpointLog(dir, signer, NOW)
    const lines3 = ck.text.split('\n')
    lines3[2] = Buffer.alloc(32, 7).toString('base64')
    writeFileSync(ck.path, lines3.join('\n'))
    expect(first(await verify(dir, origin))).toMatchObject({code: 'BAD_CHECKPOINT_SIGNATURE'})
  })

  it('a checkpoint signed by the audit key over another root (INCONSISTENT)', async () => {
    const {dir, origin} = await makeLog(4)
    await checkpointLog(dir, signer, NOW)
    await makeLog(2, {dir, from: 4})
    const text = signNote(formatCheckpoint({origin, size: 6, rootHash: Buffer.alloc(32, 9), extensions: []}), [{name: origin, signer}])
    writeFileSync(join(dir, 'checkpoints', '00000000000000000006.checkpoint'), text)
    expect(first(await verify(dir, origin))).toMatchObject({code: 'INCONSISTENT', path: join('checkpoints', '00000000000000000006.checkpoint')})
  })

  it("another log's checkpoint (OTHER_ORIGIN)", async () => {
    const {dir, origin} = await makeLog(4)
    const other = await makeLog(4)
    const ck = await checkpointLog(other.dir, signer, NOW)
    await checkpointLog(dir, signer, NOW)
    writeFileSync(join(dir, 'checkpoints', '00000000000000000004.checkpoint'), ck.text)
    expect(first(await verify(dir, origin))).toMatchObject({code: 'OTHER_ORIGIN'})
  })

  it('a log rolled back below a trusted checkpoint (ROLLED_BACK)', async () => {
    const {dir, origin} = await makeLog(5)
    await checkpointLog(dir, signer, NOW)
    const old = join(tempDir(), 'old')
    cpSync(dir, old, {recursive: true})
    await makeLog(5, {dir, from: 5})
    const trusted = await checkpointLog(dir, signer, NOW)
    expect((await verify(dir, origin, {fromCheckpoint: trusted.text})).ok).toBe(true)
    const report = await verify(old, origin, {fromCheckpoint: trusted.text})
    expect(first(report)).toMatchObject({code: 'ROLLED_BACK', path: '--from-checkpoint'})
  })

  it('a published checkpoint inconsistent with the local log (INCONSISTENT)', async () => {
    const {dir, origin} = await makeLog(5)
    const fork = join(tempDir(), 'fork')
    cpSync(dir, fork, {recursive: true})
    await makeLog(5, {dir, from: 5})
    await makeLog(5, {dir: fork, from: 50})
    const published = await checkpointLog(dir, signer, NOW)
    const witnessed = [{path: 'docs/evidence/audit/x/00000000000000000010.checkpoint', text: published.text}]
    expect((await verify(dir, origin, {witnessed})).ok).toBe(true)
    expect(first(await verify(fork, origin, {witnessed}))).toMatchObject({code: 'INCONSISTENT', path: witnessed[0]!.path})
  })
})

describe('checkpointLog', () => {
  it('refuses an empty log (USAGE) and a log that does not verify (AUDIT_TAMPERED)', async () => {
    const empty = await makeLog(0)
    await expect(checkpointLog(empty.dir, signer, NOW)).rejects.toMatchObject({code: 'USAGE'})
    const {dir} = await makeLog(3)
    const ls = lines(dir)
    ls[1] = ls[1]!.replace('"n":1', '"n":2')
    writeLines(dir, ls)
    const err = await checkpointLog(dir, signer, NOW).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AirlockError)
    expect(err).toMatchObject({code: 'AUDIT_TAMPERED', details: {problem: 'EDITED', index: 1}})
  })
})
