import {execa} from 'execa'
import {mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {AuditLog, readEntries, writeCheckpoint, fingerprintOf, type LogEntry} from '../../control-plane/audit/log.js'
import {inclusionProofAt, leafHash, rootFromLeafHashes, verifyInclusion} from '../../control-plane/audit/merkle.js'
import {checkEnvelopeSignatures, type Envelope} from '../../control-plane/crypto/dsse.js'
import {generateSigner, type Signer} from '../../control-plane/crypto/keys.js'
import {verifierKeyOf} from '../../control-plane/audit/note.js'
import {airlock, NODE, ROOT, tempDir} from '../helpers.js'

const DAY = 86_400_000
let tmp: Awaited<ReturnType<typeof tempDir>>
let dir: string
let keyFile: string
let signer: Signer
let origin: string

/** 20 events 50..31 days old, then 5 from today; a checkpoint over the first 12. */
beforeEach(async () => {
  tmp = await tempDir('airlock-prune-')
  dir = join(tmp.dir, 'audit')
  const now = Date.now()
  const log = await AuditLog.open(dir)
  origin = log.origin
  const ages = [...Array.from({length: 20}, (_, i) => 50 - i), 0, 0, 0, 0, 0]
  await Promise.all(ages.map((age, i) => log.append({class_uid: 6003, activity_id: 3, type_uid: 600303, time: now - age * DAY, message: `event ${i}`})))
  await log.close()
  const generated = generateSigner()
  signer = generated.signer
  keyFile = join(tmp.dir, 'audit.key')
  await writeFile(keyFile, generated.pem, {mode: 0o600})
  await checkpoint(12)
})
afterEach(() => tmp.cleanup())

async function entries(): Promise<LogEntry[]> {
  const all: LogEntry[] = []
  for await (const e of readEntries(dir)) all.push(e)
  return all
}
/** The chain as audit verify checks it: each body hashes to its fingerprint, each link names the one before. */
function chainProblems(es: LogEntry[]): string[] {
  return es.flatMap((e, i) => [
    ...(e.index === i ? [] : [`${i}: uid ${e.index}`]),
    ...(e.prev === (i === 0 ? null : es[i - 1]!.fingerprint) ? [] : [`${i}: prev`]),
    ...(e.pruned || fingerprintOf(Buffer.from(e.line)).toString('hex') === e.fingerprint ? [] : [`${i}: fingerprint`]),
  ])
}
const leaves = (es: LogEntry[]) => es.map((e) => leafHash(Buffer.from(e.fingerprint, 'hex')))
async function checkpoint(size: number): Promise<void> {
  await writeCheckpoint(dir, origin, signer, size, rootFromLeafHashes(leaves(await entries()).slice(0, size)))
}
const verifierKey = () => verifierKeyOf(origin, signer.publicKey).text
const prune = (...args: string[]) => airlock(['audit', 'prune', '--audit-dir', dir, '--key', verifierKey(), '--json', ...args], {env: {AIRLOCK_AUDIT_KEY: keyFile}})

describe('audit prune', () => {
  it('plans by default: which bodies, which range, how many bytes, which SIEM streams are behind, and changes nothing', async () => {
    const before = await readFile(join(dir, 'events.jsonl'))
    await mkdir(join(dir, 'stream'))
    await writeFile(join(dir, 'stream', '0123456789abcdef.cursor'), '{"next":5}\n')
    await writeFile(join(dir, 'stream', 'fedcba9876543210.cursor'), '{"next":20}\n')
    const r = await prune('--retention-days', '30')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json).toMatchObject({applied: false, bodies: 12, first: 0, last: 11, checkpointSize: 12, limitedBy: 'checkpoint', waitingForCheckpoint: 8, bytesBefore: before.length})
    expect(r.json.bytesAfter).toBeLessThan(before.length)
    expect(r.json.streamsBehind).toEqual([{cursor: 'stream/0123456789abcdef.cursor', next: 5}])
    expect(await readFile(join(dir, 'events.jsonl'))).toEqual(before)
  })

  it('applies: stubs replace the bodies under the checkpoint only, the roots and an old inclusion proof still hold, and the log verifies', async () => {
    const before = await entries()
    const proof = inclusionProofAt((i) => leaves(before)[i]!, before.length, 5)
    const rootBefore = rootFromLeafHashes(leaves(before))
    // A SIEM stream has sent only entries up to 5: its sink would never get the rest.
    await mkdir(join(dir, 'stream'), {recursive: true})
    await writeFile(join(dir, 'stream', '0123456789abcdef.cursor'), '{"next":5}\n')
    const refused = await prune('--retention-days', '30', '--apply')
    expect(refused.exitCode).toBe(2)
    expect(refused.json.error).toMatchObject({code: 'USAGE', details: {streamsBehind: [{cursor: 'stream/0123456789abcdef.cursor', next: 5}]}})
    expect((await entries()).every((e) => !e.pruned)).toBe(true)
    const r = await prune('--retention-days', '30', '--apply', '--ignore-streams')
    await rm(join(dir, 'stream'), {recursive: true, force: true})
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json).toMatchObject({applied: true, bodies: 12, first: 0, last: 11})
    const after = await entries()
    expect(after.map((e) => e.pruned)).toEqual([...Array(12).fill(true), ...Array(13).fill(false)])
    // Nothing past the last checkpoint lost its body, even the entries old enough.
    expect(after.slice(12).map((e) => e.line.toString())).toEqual(before.slice(12).map((e) => e.line.toString()))
    expect(after.map((e) => e.fingerprint)).toEqual(before.map((e) => e.fingerprint))
    const rootAfter = rootFromLeafHashes(leaves(after))
    expect(Buffer.from(rootAfter)).toEqual(Buffer.from(rootBefore))
    expect(verifyInclusion(leaves(after)[5]!, 5, after.length, proof, rootAfter)).toBe(true)
    expect(chainProblems(after)).toEqual([])
    const verify = await airlock(['audit', 'verify', '--audit-dir', dir, '--key', verifierKey(), '--json'])
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0)
    expect(verify.json).toMatchObject({ok: true, size: 25, pruned: 12})
    // Again: nothing more to prune until a later checkpoint covers the rest.
    expect((await prune('--retention-days', '30', '--apply')).json).toMatchObject({bodies: 0, applied: false})
    await checkpoint(25)
    expect((await prune('--retention-days', '30', '--apply')).json).toMatchObject({bodies: 8, first: 12, last: 19, limitedBy: 'retention'})
  })

  it('seals the bodies into a signed archive segment that restores them', async () => {
    const before = await entries()
    const r = await prune('--retention-days', '30', '--apply', '--archive')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json.archived.file).toBe(join(dir, 'archive', '0-11.jsonl'))
    const segment = await readFile(join(dir, 'archive', '0-11.jsonl'))
    expect(segment.toString()).toBe(before.slice(0, 12).map((e) => `${e.line}\n`).join(''))
    const envelope = JSON.parse(await readFile(join(dir, 'archive', '0-11.jsonl.dsse.json'), 'utf8')) as Envelope
    expect(checkEnvelopeSignatures(envelope, (id) => (id === signer.keyid ? signer.publicKey : undefined))).toEqual([{keyid: signer.keyid, valid: true}])
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString())
    expect(statement).toMatchObject({origin, first: 0, last: 11, entries: 12, checkpointSize: 12})
    expect(statement.sha256).toBe((await import('node:crypto')).createHash('sha256').update(segment).digest('hex'))
    // Restoring: each archived body hashes to the fingerprint its stub kept.
    const stubs = (await entries()).slice(0, 12)
    const bodies = segment.toString().trimEnd().split('\n')
    expect(bodies.map((b) => fingerprintOf(Buffer.from(b)).toString('hex'))).toEqual(stubs.map((s) => s.fingerprint))
  })

  it('audit export after a prune: the stubs are skipped and counted, the bodies kept are exported', async () => {
    await prune('--retention-days', '30', '--apply')
    const out = join(tmp.dir, 'export.csv')
    const r = await airlock(['audit', 'export', '--audit-dir', dir, '--since', '0', '--until', '15', '--format', 'csv', '--out', out, '--json'])
    expect(r.json, r.stderr).toMatchObject({format: 'csv', events: 3, skippedPruned: 12, first: 12, last: 14, out})
    const rows = (await readFile(out, 'utf8')).split('\r\n')
    expect(rows[0]).toBe('index,time,class_uid,type_uid,activity,status,actor,operation,resource,decision,fingerprint')
    expect(rows.slice(1, -1).map((row) => row.split(',')[0])).toEqual(['12', '13', '14'])
    const json = await airlock(['audit', 'export', '--audit-dir', dir, '--since', new Date(Date.now() - DAY).toISOString(), '--format', 'ocsf'])
    expect((JSON.parse(json.stdout) as unknown[]).length).toBe(5)
  })

  it('refuses a retention shorter than the configured floor (USAGE naming the floor)', async () => {
    await writeFile(join(dir, 'config.json'), JSON.stringify({retentionFloorDays: 90}))
    const r = await prune('--retention-days', '30', '--apply')
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('USAGE')
    expect(r.json.error.message).toMatch(/floor of 90 days/)
    expect((await entries()).some((e) => e.pruned)).toBe(false)
  })

  it('refuses to prune under a checkpoint signed by a key it was not given (AUDIT_CHECKPOINT_INVALID)', async () => {
    const r = await airlock(['audit', 'prune', '--audit-dir', dir, '--key', verifierKeyOf(origin, generateSigner().signer.publicKey).text, '--retention-days', '30', '--apply', '--json'])
    expect(r.exitCode).toBe(1)
    expect(r.json.error.code).toBe('AUDIT_CHECKPOINT_INVALID')
    expect((await entries()).some((e) => e.pruned)).toBe(false)
  })

  it('refuses to prune an edited body (AUDIT_TAMPERED), pruning nothing', async () => {
    const text = await readFile(join(dir, 'events.jsonl'), 'utf8')
    await writeFile(join(dir, 'events.jsonl'), text.replace('"event 3"', '"event X"'))
    const r = await prune('--retention-days', '30', '--apply')
    expect(r.json.error.code).toBe('AUDIT_TAMPERED')
    expect(r.exitCode).toBe(1)
    expect((await entries()).some((e) => e.pruned)).toBe(false)
  })

  it('a crash before the rename (kill -9) leaves the log as it was, and the next prune succeeds', async () => {
    const before = await readFile(join(dir, 'events.jsonl'))
    const script = `
      const {pruneLog} = await import(${JSON.stringify(join(ROOT, 'dist/control-plane/audit/prune.js'))})
      const {parseVerifierKey} = await import(${JSON.stringify(join(ROOT, 'dist/control-plane/audit/note.js'))})
      const keys = [parseVerifierKey(${JSON.stringify(verifierKey())})]
      await pruneLog(${JSON.stringify(dir)}, {retentionDays: 30, now: new Date(), archive: false}, {apply: true, keys, hooks: {beforeRename: () => process.kill(process.pid, 'SIGKILL')}})
    `
    const crashed = await execa(NODE, ['--input-type=module', '-e', script], {reject: false})
    expect(crashed.signal).toBe('SIGKILL')
    expect(await readFile(join(dir, 'events.jsonl'))).toEqual(before)
    expect((await readdir(dir)).some((n) => n.endsWith('.airlock-tmp'))).toBe(true)
    const r = await prune('--retention-days', '30', '--apply')
    expect(r.json, r.stderr).toMatchObject({applied: true, bodies: 12})
  })

  // AuditLog notices, under the lock, that prune renamed a new events.jsonl in, and follows it.
  it('an AuditLog opened before a prune appends to the new file', async () => {
    const log = await AuditLog.open(dir)
    const r = await prune('--retention-days', '30', '--apply')
    expect(r.json).toMatchObject({applied: true})
    await log.append({class_uid: 6003, activity_id: 3, type_uid: 600303, time: Date.now(), message: 'after the prune'})
    await log.close()
    const after = await entries()
    expect(after).toHaveLength(26)
    expect(chainProblems(after)).toEqual([])
  })
})
