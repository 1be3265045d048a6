/**
 * The audit log across real processes and the built CLI: 8 processes appending at once, a child
 * killed with SIGKILL while it appends, and `airlock audit checkpoint|verify` in a real fleet whose
 * trust.yaml (at the verified HEAD) lists the audit key.
 */
import {cpSync, readFileSync, statSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {spawn} from 'node:child_process'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, initFleet, NODE, ROOT, tempDir, type Fleet} from '../helpers.js'

const LOG_JS = join(ROOT, 'dist', 'control-plane', 'audit', 'log.js')

/** A child that appends `count` events tagged `who`, `batch` at a time (so group commit has company). */
function appender(dir: string, who: string, count: number, batch: number, eventBytes = 0): string {
  return `
    const {AuditLog} = await import(${JSON.stringify(LOG_JS)})
    const log = await AuditLog.open(${JSON.stringify(dir)})
    const pad = 'x'.repeat(${eventBytes})
    for (let i = 0; i < ${count}; i += ${batch}) {
      const n = Math.min(${batch}, ${count} - i)
      await Promise.all(Array.from({length: n}, (_, k) => log.append({who: ${JSON.stringify(who)}, n: i + k, pad})))
      if (process.send) process.send(i + n)
    }
    await log.close()
  `
}

async function verifyIn(dir: string) {
  const {verifyLog} = (await import(LOG_JS)) as typeof import('../../control-plane/audit/log.js')
  return verifyLog(dir, {keys: [], now: new Date()})
}

let scratch: {dir: string; cleanup: () => Promise<void>}
beforeAll(async () => {
  scratch = await tempDir('airlock-audit-')
})
afterAll(async () => {
  await scratch.cleanup()
})

describe('appends across processes', () => {
  it('8 processes appending 200 events each make exactly 1600 chained entries, none interleaved', async () => {
    const dir = join(scratch.dir, 'concurrent')
    const K = 200
    await Promise.all(Array.from({length: 8}, (_, p) => execa(NODE, ['--input-type=module', '-e', appender(dir, `p${p}`, K, 7)])))
    const report = await verifyIn(dir)
    expect(report.problems).toEqual([])
    expect(report.size).toBe(8 * K)
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').split('\n').slice(0, -1)
    expect(lines).toHaveLength(8 * K)
    const seen = new Map<string, number[]>()
    for (const l of lines) {
      const e = JSON.parse(l) as {who: string; n: number}
      seen.set(e.who, [...(seen.get(e.who) ?? []), e.n])
    }
    // Each process's events are all there, in its own order.
    for (let p = 0; p < 8; p++) expect(seen.get(`p${p}`)).toEqual(Array.from({length: K}, (_, i) => i))
  })

  it('a child killed with SIGKILL while appending: what it finished stays, a torn tail is recovered by the next append', async () => {
    const dir = join(scratch.dir, 'killed')
    const child = spawn(NODE, ['--input-type=module', '-e', appender(dir, 'victim', 1_000_000, 4, 64 * 1024)], {stdio: ['ignore', 'ignore', 'inherit', 'ipc']})
    const exited = new Promise((resolve) => child.on('exit', resolve))
    let acknowledged = 0
    await new Promise<void>((resolve) => {
      child.on('message', (n) => {
        acknowledged = Number(n)
        if (acknowledged >= 40) resolve()
      })
    })
    child.kill('SIGKILL')
    expect(await exited).toBe(null)
    const before = await verifyIn(dir)
    // Every append it saw acknowledged is durable; at most a torn tail follows them.
    expect(before.size).toBeGreaterThanOrEqual(acknowledged)
    expect(before.problems.every((p) => p.code === 'TORN_TAIL')).toBe(true)
    // Now tear it for certain, as a crash mid-write would, and let another process append.
    const size = statSync(join(dir, 'events.jsonl')).size
    truncateSync(join(dir, 'events.jsonl'), size - 1000)
    const torn = await verifyIn(dir)
    expect(torn.problems[0]).toMatchObject({code: 'TORN_TAIL'})
    await execa(NODE, ['--input-type=module', '-e', appender(dir, 'after', 3, 3)])
    const after = await verifyIn(dir)
    expect(after.problems).toEqual([])
    expect(after.recoveries).toHaveLength(1)
    expect(after.recoveries[0]!.offset).toBe(torn.problems[0]!.offset)
    expect(statSync(join(dir, after.recoveries[0]!.path)).size).toBe(after.recoveries[0]!.length)
  })
})

describe('failing closed', () => {
  it('a folder its user cannot write (0500): opening, hence every append, fails with AUDIT_UNAVAILABLE naming the path and EACCES', async () => {
    const {chmodSync, chownSync} = await import('node:fs')
    const dir = join(scratch.dir, 'readonly')
    await execa(NODE, ['--input-type=module', '-e', appender(dir, 'ro', 2, 2)])
    // Root writes through any mode: as root, the child loads the log module and then drops to
    // nobody (who owns the folder) before opening it — the repository need not be readable by nobody.
    const asRoot = process.getuid?.() === 0
    if (asRoot) chmodSync(scratch.dir, 0o755)
    if (asRoot) for (const f of ['', 'origin', 'redaction.key', 'events.jsonl', 'state.json']) chownSync(join(dir, f), 65534, 65534)
    chmodSync(dir, 0o500)
    const drop = asRoot ? 'process.setgroups([]); process.setgid(65534); process.setuid(65534)' : ''
    const script = `
      const {AuditLog} = await import(${JSON.stringify(LOG_JS)})
      ${drop}
      try { await AuditLog.open(${JSON.stringify(dir)}); console.log('opened') } catch (e) { console.log(JSON.stringify({code: e.code, message: e.message})) }
    `
    const r = await execa(NODE, ['--input-type=module', '-e', script])
    chmodSync(dir, 0o700)
    const out = JSON.parse(r.stdout) as {code: string; message: string}
    expect(out.code).toBe('AUDIT_UNAVAILABLE')
    expect(out.message).toContain(join(dir, 'lock'))
    expect(out.message).toContain('EACCES')
  })
})

describe('airlock audit checkpoint | verify', () => {
  let fleet: Fleet
  let auditKey: string
  beforeAll(async () => {
    fleet = await initFleet()
    const r = await airlock(['keys', 'generate', 'auditor', '--role', 'audit', '--apply', '--reason', 'audit checkpoints', '--json'], {cwd: fleet.dir, env: fleet.env})
    expect(r.exitCode, r.stderr + r.stdout).toBe(0)
    auditKey = join(fleet.dir, 'keys', 'auditor.key')
  }, 120_000)
  afterAll(async () => {
    await fleet?.cleanup()
  })

  it('checkpoints with the audit key, refuses another key, verifies with the keys of trust.yaml at HEAD', async () => {
    const dir = join(scratch.dir, 'cli')
    await execa(NODE, ['--input-type=module', '-e', appender(dir, 'cli', 5, 5)])
    const env = {...fleet.env, AIRLOCK_AUDIT_DIR: dir}
    const foreign = join(scratch.dir, 'foreign.key')
    const {generateSigner} = await import('../../control-plane/crypto/keys.js')
    writeFileSync(foreign, generateSigner().pem, {mode: 0o600})
    const refused = await airlock(['audit', 'checkpoint', '--audit-key', foreign, '--json'], {cwd: fleet.dir, env})
    expect(refused.exitCode).toBe(2)
    expect(refused.json.error.code).toBe('KEY_INVALID')

    const ck = await airlock(['audit', 'checkpoint', '--audit-key', auditKey, '--json'], {cwd: fleet.dir, env})
    expect(ck.exitCode, ck.stderr).toBe(0)
    expect(ck.json).toMatchObject({size: 5, existing: false})
    const trusted = join(scratch.dir, 'trusted.checkpoint')
    writeFileSync(trusted, ck.json.text)

    const ok = await airlock(['audit', 'verify', '--json'], {cwd: fleet.dir, env})
    expect(ok.exitCode, ok.stderr).toBe(0)
    expect(ok.json).toMatchObject({ok: true, size: 5, checkpointed: 5, uncheckpointed: 0})
    const human = await airlock(['audit', 'verify'], {cwd: fleet.dir, env})
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toContain('entries: 5')
    expect(human.stdout).toContain('1/1 verified')

    // Rolled back: an older copy of the folder, checked against the checkpoint the auditor kept.
    const old = join(scratch.dir, 'cli-old')
    cpSync(dir, old, {recursive: true})
    await execa(NODE, ['--input-type=module', '-e', appender(dir, 'cli', 3, 3)])
    const ck8 = await airlock(['audit', 'checkpoint', '--audit-key', auditKey, '--json'], {cwd: fleet.dir, env})
    writeFileSync(trusted, ck8.json.text)
    const rolled = await airlock(['audit', 'verify', '--from-checkpoint', trusted, '--json'], {cwd: fleet.dir, env: {...env, AIRLOCK_AUDIT_DIR: old}})
    expect(rolled.exitCode).toBe(1)
    expect(rolled.json.error).toMatchObject({code: 'AUDIT_CHECKPOINT_INVALID', details: {problem: 'ROLLED_BACK'}})

    // Torn (an entry after the last checkpoint): exit 1 naming the offset; after the next append it passes and lists the recovery.
    await execa(NODE, ['--input-type=module', '-e', appender(dir, 'cli', 2, 2)])
    const events = join(dir, 'events.jsonl')
    const size = statSync(events).size
    truncateSync(events, size - 7)
    const torn = await airlock(['audit', 'verify', '--json'], {cwd: fleet.dir, env})
    expect(torn.exitCode).toBe(1)
    expect(torn.json.error.code).toBe('AUDIT_TORN_TAIL')
    expect(torn.json.error.message).toContain(`byte ${torn.json.error.details.problems[0].offset}`)
    await execa(NODE, ['--input-type=module', '-e', appender(dir, 'cli', 1, 1)])
    const healed = await airlock(['audit', 'verify'], {cwd: fleet.dir, env})
    expect(healed.exitCode, healed.stderr).toBe(0)
    expect(healed.stdout).toMatch(/recovery: entry 9 records a torn tail/)

    // A key given on the command line that did not sign: every checkpoint is unknown.
    const {verifierKeyOf} = await import('../../control-plane/audit/note.js')
    const stranger = verifierKeyOf(ok.json.origin, generateSigner().signer.publicKey).text
    const unknown = await airlock(['audit', 'verify', '--key', stranger, '--json'], {cwd: fleet.dir, env})
    expect(unknown.exitCode).toBe(1)
    expect(unknown.json.error.details.problem).toBe('UNKNOWN_CHECKPOINT_KEY')
  }, 120_000)

  it('fails closed (AUDIT_UNAVAILABLE, exit 1) when a file stands where the folder should be', async () => {
    const file = join(scratch.dir, 'not-a-folder')
    writeFileSync(file, 'x')
    const r = await airlock(['audit', 'verify', '--audit-dir', file, '--key', 'x+00000000+AQ==', '--json'])
    expect(r.json?.error?.code).toBe('AUDIT_UNAVAILABLE')
    expect(r.exitCode).toBe(1)
  })
})
