import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import type {AirlockError} from '../../../control-plane/errors.js'
import {AuditLog, readEntries, writeCheckpoint, type LogEntry} from '../../../control-plane/audit/log.js'
import {leafHash, rootFromLeafHashes} from '../../../control-plane/audit/merkle.js'
import {verifierKeyOf} from '../../../control-plane/audit/note.js'
import {checkFloor, checkpointLimit, planPrune, pruneLog, readRetentionConfig, verifiedLimit} from '../../../control-plane/audit/prune.js'
import {generateSigner} from '../../../control-plane/crypto/keys.js'

const NOW = new Date('2026-12-01T00:00:00Z')
const DAY = 86_400_000
let dir: string
let origin: string
const signer = generateSigner().signer

/** Events 10, 9, … 1 days old (one a day), then one of today. */
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'airlock-prune-unit-'))
  const log = await AuditLog.open(dir)
  origin = log.origin
  for (const age of [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]) await log.append({class_uid: 6003, type_uid: 600303, activity_id: 3, time: NOW.getTime() - age * DAY})
  await log.close()
})
afterEach(() => rm(dir, {recursive: true, force: true}))

async function entries(): Promise<LogEntry[]> {
  const all: LogEntry[] = []
  for await (const e of readEntries(dir)) all.push(e)
  return all
}
const rootOf = (es: LogEntry[], size: number) => rootFromLeafHashes(es.slice(0, size).map((e) => leafHash(Buffer.from(e.fingerprint, 'hex'))))
const codeOf = async (p: Promise<unknown>) => ((await p.then(() => null, (e: unknown) => e)) as AirlockError | null)?.code

describe('planPrune', () => {
  const config = {retentionFloorDays: 0, archive: false}
  it('takes the run of old events from the start, up to the retention', async () => {
    const es = await entries()
    const plan = planPrune(es, {size: 11, file: null}, {retentionDays: 5, now: NOW, archive: true}, config)
    // 10..6 days old are past a 5-day retention; 5 days old is exactly at the cutoff and stays.
    expect(plan).toMatchObject({first: 0, last: 4, bodies: 5, limitedBy: 'retention', waitingForCheckpoint: 0, archive: 'archive/0-4.jsonl', cutoff: '2026-11-26T00:00:00.000Z'})
  })
  it('stops at the checkpoint and counts the old events waiting for one', async () => {
    const plan = planPrune(await entries(), {size: 2, file: null}, {retentionDays: 5, now: NOW, archive: false}, config)
    expect(plan).toMatchObject({first: 0, last: 1, bodies: 2, limitedBy: 'checkpoint', waitingForCheckpoint: 3, archive: null})
  })
  it('prunes nothing without a checkpoint', async () => {
    expect(planPrune(await entries(), {size: 0, file: null}, {retentionDays: 1, now: NOW, archive: false}, config)).toMatchObject({bodies: 0, first: null, limitedBy: 'checkpoint', waitingForCheckpoint: 9})
  })
})

describe('the floor and config.json', () => {
  it('refuses a retention below the floor with USAGE, accepts one at it', () => {
    expect(() => checkFloor(29, {retentionFloorDays: 30, archive: false}, 'config.json')).toThrow(/floor of 30 days/)
    expect(() => checkFloor(30, {retentionFloorDays: 30, archive: false}, 'config.json')).not.toThrow()
  })
  it('reads config.json, and names the field of a malformed one (INVALID_INPUT)', async () => {
    expect(await readRetentionConfig(dir)).toEqual({retentionFloorDays: 0, archive: false})
    await writeFile(join(dir, 'config.json'), '{"retentionFloorDays": 365, "archive": true}')
    expect(await readRetentionConfig(dir)).toEqual({retentionFloorDays: 365, archive: true})
    for (const bad of ['{"retentionFloorDays": "a year"}', '{"archive": "yes"}', '[1]', '{']) {
      await writeFile(join(dir, 'config.json'), bad)
      expect(await codeOf(readRetentionConfig(dir)), bad).toBe('INVALID_INPUT')
    }
  })
  it('pruneLog refuses below the floor before it reads the log', async () => {
    await writeFile(join(dir, 'config.json'), '{"retentionFloorDays": 7}')
    expect(await codeOf(pruneLog(dir, {retentionDays: 3, now: NOW, archive: false}, {apply: true}))).toBe('USAGE')
  })
})

describe('the checkpoint limit', () => {
  it('is the last checkpoint whose root is the log’s', async () => {
    const es = await entries()
    await writeCheckpoint(dir, origin, signer, 4, rootOf(es, 4))
    await writeCheckpoint(dir, origin, signer, 7, rootOf(es, 7))
    expect((await checkpointLimit(dir, origin, es)).size).toBe(7)
  })
  it('refuses a checkpoint whose root is not the log’s (AUDIT_TAMPERED) or of another log (AUDIT_CHECKPOINT_INVALID)', async () => {
    const es = await entries()
    await writeCheckpoint(dir, origin, signer, 5, rootOf(es, 4))
    expect(await codeOf(checkpointLimit(dir, origin, es))).toBe('AUDIT_TAMPERED')
    await writeCheckpoint(dir, 'airlock.audit/other/0000000000000000', signer, 6, rootOf(es, 6))
    expect(await codeOf(checkpointLimit(dir, origin, es))).toBe('AUDIT_CHECKPOINT_INVALID')
  })
  it('with the audit keys, counts only checkpoints that verify, and refuses one signed by another key', async () => {
    const es = await entries()
    await writeCheckpoint(dir, origin, signer, 6, rootOf(es, 6))
    expect((await verifiedLimit(dir, [verifierKeyOf(origin, signer.publicKey)], NOW)).size).toBe(6)
    const other = generateSigner().signer
    expect(await codeOf(verifiedLimit(dir, [verifierKeyOf(origin, other.publicKey)], NOW))).toBe('AUDIT_CHECKPOINT_INVALID')
    await writeCheckpoint(dir, origin, other, 8, rootOf(es, 8))
    expect(await codeOf(pruneLog(dir, {retentionDays: 1, now: NOW, archive: false}, {apply: true, keys: [verifierKeyOf(origin, signer.publicKey)]}))).toBe('AUDIT_CHECKPOINT_INVALID')
    expect((await entries()).some((e) => e.pruned)).toBe(false)
  })
})
