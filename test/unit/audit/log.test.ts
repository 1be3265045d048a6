/**
 * The audit log's store: where it lives, the one serializer and the byte-level reader, opening
 * (origin, redaction key, modes), group-committed appends, the state cache, torn tails, failing
 * closed. Real temp folders, no mocks.
 */
import {createHash} from 'node:crypto'
import {appendFileSync, chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {AirlockError} from '../../../control-plane/errors.js'
import {auditDirFrom, AuditLog, fingerprintOf, parseLine, prunedLine, readEntries, serializeEntry, type LogEntry} from '../../../control-plane/audit/log.js'
import {isValidKeyName} from '../../../control-plane/audit/note.js'

const dirs: string[] = []
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'airlock-log-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, {recursive: true, force: true})
})

async function all(dir: string): Promise<LogEntry[]> {
  const out: LogEntry[] = []
  for await (const e of readEntries(dir)) out.push(e)
  return out
}

async function caught(p: Promise<unknown> | (() => unknown)): Promise<AirlockError> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (error) {
    expect(error).toBeInstanceOf(AirlockError)
    return error as AirlockError
  }
  throw new Error('expected an AirlockError')
}

const ORIGIN = 'airlock.audit/test/0123456789abcdef'

describe('auditDirFrom', () => {
  it('takes the flag, then AIRLOCK_AUDIT_DIR, then XDG_STATE_HOME, then ~/.local/state', () => {
    expect(auditDirFrom('/a', {AIRLOCK_AUDIT_DIR: '/b', XDG_STATE_HOME: '/c'}, '/h')).toBe('/a')
    expect(auditDirFrom(undefined, {AIRLOCK_AUDIT_DIR: '/b', XDG_STATE_HOME: '/c'}, '/h')).toBe('/b')
    expect(auditDirFrom(undefined, {XDG_STATE_HOME: '/c'}, '/h')).toBe('/c/airlock/audit')
    expect(auditDirFrom(undefined, {XDG_STATE_HOME: 'relative'}, '/h')).toBe('/h/.local/state/airlock/audit')
    expect(auditDirFrom(undefined, {}, '/h')).toBe('/h/.local/state/airlock/audit')
  })
})

describe('serializeEntry and parseLine', () => {
  it('puts attestation_list first, fingerprint first in it, and the event keys after in their order', () => {
    const first = serializeEntry({class_uid: 6003, b: 1, a: 'x'}, {index: 0, prev: null, origin: ORIGIN})
    expect(first.line).toBe(`{"attestation_list":[{"fingerprint":{"algorithm_id":3,"value":"${first.fingerprint}"},"chain_uid":"${ORIGIN}","uid":"0"}],"class_uid":6003,"b":1,"a":"x"}`)
    const unsigned = `{"attestation_list":[{"chain_uid":"${ORIGIN}","uid":"0"}],"class_uid":6003,"b":1,"a":"x"}`
    expect(first.fingerprint).toBe(createHash('sha256').update(unsigned).digest('hex'))
    const second = serializeEntry({}, {index: 1, prev: first.fingerprint, origin: ORIGIN})
    expect(second.line).toBe(`{"attestation_list":[{"fingerprint":{"algorithm_id":3,"value":"${second.fingerprint}"},"chain_uid":"${ORIGIN}","prev_event":{"fingerprint":{"algorithm_id":3,"value":"${first.fingerprint}"},"uid":"0"},"uid":"1"}]}`)
    const e = parseLine(Buffer.from(second.line), 2, 100)
    expect(e).toMatchObject({index: 1, fingerprint: second.fingerprint, prev: first.fingerprint, pruned: false, offset: 100, lineNumber: 2, chainUid: ORIGIN})
    expect(fingerprintOf(Buffer.from(second.line)).toString('hex')).toBe(second.fingerprint)
    expect(JSON.parse(second.line)).toEqual({attestation_list: [{fingerprint: {algorithm_id: 3, value: second.fingerprint}, chain_uid: ORIGIN, prev_event: {fingerprint: {algorithm_id: 3, value: first.fingerprint}, uid: '0'}, uid: '1'}]})
  })

  it('keeps multi-byte text and escapes newlines, so one event is one line', () => {
    const {line, fingerprint} = serializeEntry({message: 'über\nzwei', emoji: '🔒'}, {index: 0, prev: null, origin: ORIGIN})
    expect(line).not.toContain('\n')
    expect(fingerprintOf(Buffer.from(line)).toString('hex')).toBe(fingerprint)
  })

  it('refuses an event carrying attestation_list, and a bad index or prev', async () => {
    expect((await caught(() => serializeEntry({attestation_list: []}, {index: 0, prev: null, origin: ORIGIN}))).code).toBe('INVALID_INPUT')
    expect((await caught(() => serializeEntry({}, {index: 1, prev: null, origin: ORIGIN}))).code).toBe('INVALID_INPUT')
    expect((await caught(() => serializeEntry({}, {index: 1, prev: 'zz', origin: ORIGIN}))).code).toBe('INVALID_INPUT')
  })

  it('reads a pruned stub', () => {
    const fp = 'a'.repeat(64)
    const prev = 'b'.repeat(64)
    const e = parseLine(Buffer.from(prunedLine({index: 7, fingerprint: fp, prev, time: 1700000000000})), 8, 0)
    expect(e).toMatchObject({index: 7, fingerprint: fp, prev, pruned: true, chainUid: null})
    expect(parseLine(Buffer.from(prunedLine({index: 0, fingerprint: fp, prev: null, time: 1})), 1, 0).prev).toBeNull()
  })

  it.each([
    ['not an entry', '{"a":1}'],
    ['a short fingerprint', `{"attestation_list":[{"fingerprint":{"algorithm_id":3,"value":"abc"},"chain_uid":"o","uid":"0"}]}`],
    ['a uid with a leading zero', `{"attestation_list":[{"fingerprint":{"algorithm_id":3,"value":"${'a'.repeat(64)}"},"chain_uid":"o","uid":"01"}]}`],
    ['entry 1 without prev_event', `{"attestation_list":[{"fingerprint":{"algorithm_id":3,"value":"${'a'.repeat(64)}"},"chain_uid":"o","uid":"1"}]}`],
    ['a prev_event.uid that is not uid − 1', `{"attestation_list":[{"fingerprint":{"algorithm_id":3,"value":"${'a'.repeat(64)}"},"chain_uid":"o","prev_event":{"fingerprint":{"algorithm_id":3,"value":"${'b'.repeat(64)}"},"uid":"3"},"uid":"1"}]}`],
    ['an unclosed object', `{"attestation_list":[{"fingerprint":{"algorithm_id":3,"value":"${'a'.repeat(64)}"},"chain_uid":"o","uid":"0"}],"x":1`],
  ])('refuses %s with AUDIT_TAMPERED naming the line', async (_what, line) => {
    const err = await caught(() => parseLine(Buffer.from(line), 5, 40))
    expect(err.code).toBe('AUDIT_TAMPERED')
    expect(err.message).toContain('line 5')
    expect(err.details).toMatchObject({problem: 'MALFORMED', line: 5, offset: 40})
  })
})

describe('AuditLog', () => {
  it('creates the folder 0700 with origin and redaction.key 0600, once', async () => {
    const dir = join(tempDir(), 'a', 'audit')
    const log = await AuditLog.open(dir)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    for (const f of ['origin', 'redaction.key', 'events.jsonl']) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600)
    expect(log.origin).toMatch(/^airlock\.audit\/[a-z0-9.-]+\/[0-9a-f]{16}$/)
    expect(isValidKeyName(log.origin)).toBe(true)
    expect(log.redactionKey).toHaveLength(32)
    await log.close()
    const again = await AuditLog.open(dir)
    expect(again.origin).toBe(log.origin)
    expect(Buffer.from(again.redactionKey).equals(Buffer.from(log.redactionKey))).toBe(true)
    await again.close()
  })

  it('group-commits concurrent appends into one chained log', async () => {
    const dir = tempDir()
    const log = await AuditLog.open(dir, {redact: (e) => ({...e, secret: '[redacted]'})})
    const results = await Promise.all(Array.from({length: 50}, (_, i) => log.append({n: i, secret: 'hunter2'})))
    expect(results.map((r) => r.index)).toEqual(Array.from({length: 50}, (_, i) => i))
    await log.append({n: 50})
    await log.close()
    const entries = await all(dir)
    expect(entries).toHaveLength(51)
    entries.forEach((e, i) => {
      expect(e.index).toBe(i)
      expect(e.prev).toBe(i === 0 ? null : entries[i - 1]!.fingerprint)
      expect(fingerprintOf(e.line).toString('hex')).toBe(e.fingerprint)
    })
    expect(readFileSync(join(dir, 'events.jsonl'), 'utf8')).not.toContain('hunter2')
    const from = []
    for await (const e of readEntries(dir, {from: 48})) from.push(e.index)
    expect(from).toEqual([48, 49, 50])
  })

  it('rejects only the event the serializer refuses', async () => {
    const dir = tempDir()
    const log = await AuditLog.open(dir)
    const [ok, bad] = await Promise.allSettled([log.append({a: 1}), log.append({attestation_list: 1}), log.append({b: 2})])
    expect(ok.status).toBe('fulfilled')
    expect(bad.status === 'rejected' && (bad.reason as AirlockError).code).toBe('INVALID_INPUT')
    await log.close()
    expect((await all(dir)).map((e) => e.index)).toEqual([0, 1])
  })

  it('continues the chain after a reopen, with state.json missing, corrupt or stale', async () => {
    const dir = tempDir()
    for (const damage of [null, () => rmSync(join(dir, 'state.json')), () => writeFileSync(join(dir, 'state.json'), '{"version":1,'), () => writeFileSync(join(dir, 'state.json'), JSON.stringify({version: 1, size: 1, bytes: 10, lastOffset: 0, last: 'a'.repeat(64), range: ['a'.repeat(64)]}))]) {
      damage?.()
      const log = await AuditLog.open(dir)
      await log.append({x: 1})
      await log.close()
    }
    const entries = await all(dir)
    expect(entries).toHaveLength(4)
    entries.forEach((e, i) => expect(e.prev).toBe(i === 0 ? null : entries[i - 1]!.fingerprint))
  })

  it('moves a torn tail aside and records a log-recovery event before the next entry', async () => {
    const dir = tempDir()
    const log = await AuditLog.open(dir)
    await log.append({n: 0})
    await log.append({n: 1})
    await log.close()
    const path = join(dir, 'events.jsonl')
    const full = statSync(path).size
    truncateSync(path, full - 10)
    const offset = (await all(dir).catch(() => []), readFileSync(path).lastIndexOf(0x0a, full - 12) + 1)
    const fragment = readFileSync(path).subarray(offset)
    const err = await caught(all(dir))
    expect(err.code).toBe('AUDIT_TORN_TAIL')
    expect(err.details).toMatchObject({offset, length: fragment.length})
    const again = await AuditLog.open(dir)
    const r = await again.append({n: 2})
    await again.close()
    expect(r.index).toBe(2)
    expect(readFileSync(join(dir, 'torn', `${offset}.partial`)).equals(fragment)).toBe(true)
    const entries = await all(dir)
    expect(entries.map((e) => e.index)).toEqual([0, 1, 2])
    const recovery = JSON.parse(entries[1]!.line.toString()) as {unmapped: {airlock_log_recovery: Record<string, unknown>}}
    expect(recovery.unmapped.airlock_log_recovery).toEqual({offset, length: fragment.length, sha256: createHash('sha256').update(fragment).digest('hex'), path: `torn/${offset}.partial`})
  })

  it('fails closed with AUDIT_UNAVAILABLE when a file stands where the folder should be', async () => {
    const root = tempDir()
    writeFileSync(join(root, 'audit'), 'x')
    const err = await caught(AuditLog.open(join(root, 'audit')))
    expect(err.code).toBe('AUDIT_UNAVAILABLE')
    expect(err.message).toContain(join(root, 'audit'))
    const err2 = await caught(AuditLog.open(join(root, 'audit', 'below')))
    expect(err2.code).toBe('AUDIT_UNAVAILABLE')
  })

  it('fails closed with AUDIT_UNAVAILABLE when events.jsonl is not a regular file', async () => {
    const dir = tempDir()
    await (await AuditLog.open(dir)).close()
    rmSync(join(dir, 'events.jsonl'))
    const {mkdirSync} = await import('node:fs')
    mkdirSync(join(dir, 'events.jsonl'))
    const err = await caught(AuditLog.open(dir))
    expect(err.code).toBe('AUDIT_UNAVAILABLE')
    expect(err.message).toContain('events.jsonl')
  })

  it.skipIf(process.getuid?.() === 0)('fails closed with AUDIT_UNAVAILABLE when the folder is read-only (0500)', async () => {
    const dir = tempDir()
    await (await AuditLog.open(dir)).close()
    chmodSync(dir, 0o500)
    try {
      const err = await caught(AuditLog.open(dir))
      expect(err.code).toBe('AUDIT_UNAVAILABLE')
      expect(err.message).toMatch(/EACCES/)
    } finally {
      chmodSync(dir, 0o700)
    }
  })

  it('reads a last line without a newline as AUDIT_TORN_TAIL after yielding the complete ones', async () => {
    const dir = tempDir()
    const log = await AuditLog.open(dir)
    await log.append({n: 0})
    await log.close()
    appendFileSync(join(dir, 'events.jsonl'), '{"attestation')
    const seen: number[] = []
    const err = await caught((async () => {
      for await (const e of readEntries(dir)) seen.push(e.index)
    })())
    expect(seen).toEqual([0])
    expect(err.code).toBe('AUDIT_TORN_TAIL')
    expect(readdirSync(dir)).not.toContain('torn')
  })
})

describe('the append lock', () => {
  it('takes over a lock left by a dead process, and waits for a live one until AUDIT_LOCKED', async () => {
    const {execa} = await import('execa')
    const {hostname} = await import('node:os')
    const dir = tempDir()
    const log = await AuditLog.open(dir)
    await log.append({n: 0})
    const gone = execa('true')
    await gone
    writeFileSync(join(dir, 'lock'), JSON.stringify({pid: gone.pid, host: hostname(), since: '2026-01-01T00:00:00Z', nonce: 'dead'}))
    expect((await log.append({n: 1})).index).toBe(1)
    expect(readdirSync(dir)).not.toContain('lock')
    await log.close()
    const held = join(dir, 'lock')
    writeFileSync(held, JSON.stringify({pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00Z', nonce: 'live'}))
    const err = await caught(AuditLog.open(dir, {lock: {waitMs: 30}}))
    expect(err.code).toBe('AUDIT_LOCKED')
    expect(err.message).toContain(`pid ${process.pid}`)
    expect(readFileSync(held, 'utf8')).toContain('live')
  })
})

describe('readEntries in small chunks', () => {
  it('reads lines that span chunks and lines longer than a chunk the same, and refuses a line over the limit', async () => {
    const dir = tempDir()
    const log = await AuditLog.open(dir)
    for (let i = 0; i < 20; i++) await log.append({n: i, pad: 'y'.repeat(i * 37)})
    await log.close()
    const whole = await all(dir)
    for (const chunkBytes of [7, 64, 333, 4096]) {
      const small: LogEntry[] = []
      for await (const e of readEntries(dir, {limits: {chunkBytes, maxLineBytes: 1 << 20}})) small.push(e)
      expect(small.map((e) => [e.index, e.offset, e.fingerprint, e.line.toString()])).toEqual(whole.map((e) => [e.index, e.offset, e.fingerprint, e.line.toString()]))
    }
    const err = await caught((async () => {
      for await (const _ of readEntries(dir, {limits: {chunkBytes: 64, maxLineBytes: 500}})) void _
    })())
    expect(err.code).toBe('AUDIT_TAMPERED')
    expect(err.message).toMatch(/line \d+ \(byte \d+\): longer than 500 bytes/)
  })
})

describe('events.jsonl replaced under an open log', () => {
  it('appends to the file the path names now (as retention leaves it), not to the old one', async () => {
    const {renameSync} = await import('node:fs')
    const dir = tempDir()
    const log = await AuditLog.open(dir)
    for (let i = 0; i < 3; i++) await log.append({n: i})
    const entries = await all(dir)
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').split('\n')
    lines[0] = prunedLine({index: 0, fingerprint: entries[0]!.fingerprint, prev: null, time: 1})
    writeFileSync(join(dir, 'events.new'), lines.join('\n'))
    renameSync(join(dir, 'events.new'), join(dir, 'events.jsonl'))
    expect((await log.append({n: 3})).index).toBe(3)
    await log.close()
    const after = await all(dir)
    expect(after.map((e) => [e.index, e.pruned])).toEqual([[0, true], [1, false], [2, false], [3, false]])
    expect(after[3]!.prev).toBe(after[2]!.fingerprint)
  })
})
