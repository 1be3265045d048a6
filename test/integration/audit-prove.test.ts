/**
 * `airlock audit prove` and `airlock audit check-proof` as users run them: a real fleet made by
 * `airlock init` with an audit key added the ordinary way, a log written by AuditLog, a checkpoint
 * signed by `airlock audit checkpoint`; the proof checked with trust.yaml's audit keys at the
 * verified HEAD and with --key from outside any repository, and every refusal with its exit code.
 */
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {AuditLog} from '../../control-plane/audit/log.js'
import {verifierKeyOf} from '../../control-plane/audit/note.js'
import {loadSigner} from '../../control-plane/crypto/keys.js'
import {airlock, initFleet, type Fleet} from '../helpers.js'

let fleet: Fleet
let audit: string
let work: string
let origin: string
let verifierKey: string
const lines: string[] = []

beforeAll(async () => {
  fleet = await initFleet()
  const k = await airlock(['keys', 'generate', 'audit', '--role', 'audit', '--reason', 'audit checkpoints', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
  if (k.exitCode !== 0) throw new Error(`keys generate: ${k.stdout}${k.stderr}`)
  work = await mkdtemp(join(tmpdir(), 'airlock-prove-cli-'))
  audit = join(work, 'audit')
  const log = await AuditLog.open(audit)
  origin = log.origin
  for (let i = 0; i < 300; i++) await log.append({class_uid: 6003, activity_id: 1, type_uid: 600301, message: `event ${i}`})
  await log.close()
  lines.push(...(await readFile(join(audit, 'events.jsonl'), 'utf8')).split('\n').slice(0, -1))
  const c = await airlock(['audit', 'checkpoint', '--audit-dir', audit, '--audit-key', join(fleet.dir, 'keys', 'audit.key'), '--json'], {cwd: fleet.dir})
  if (c.exitCode !== 0) throw new Error(`audit checkpoint: ${c.stdout}${c.stderr}`)
  verifierKey = verifierKeyOf(origin, (await loadSigner({file: join(fleet.dir, 'keys', 'audit.key')})).publicKey).text
}, 180_000)
afterAll(async () => {
  await fleet.cleanup()
  await rm(work, {recursive: true, force: true})
})

describe('audit prove', () => {
  it('writes the proof and the entry; check-proof passes with trust.yaml at the verified HEAD', async () => {
    const r = await airlock(['audit', 'prove', '257', '--audit-dir', audit, '--out', join(work, 'p.proof'), '--entry-out', join(work, 'e.line'), '--json'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json).toMatchObject({index: 257, size: 300, origin, entry: lines[257], out: join(work, 'p.proof')})
    expect(await readFile(join(work, 'p.proof'), 'utf8')).toBe(r.json.proof)
    expect(await readFile(join(work, 'e.line'), 'utf8')).toBe(`${lines[257]}\n`)
    const c = await airlock(['audit', 'check-proof', join(work, 'p.proof'), '--entry', join(work, 'e.line'), '--json'], {cwd: fleet.dir})
    expect(c.exitCode, c.stdout + c.stderr).toBe(0)
    expect(c.json).toMatchObject({ok: true, index: 257, size: 300, origin, signedBy: [verifierKey], keysFrom: 'trust.yaml at the verified HEAD'})
  })

  it('prints the proof on stdout without --out; check-proof --key passes outside any repository', async () => {
    const r = await airlock(['audit', 'prove', '0', '--audit-dir', audit])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^c2sp\.org\/tlog-proof@v1\nindex 0\n/)
    expect(r.stderr).toContain('entry 0')
    // execa strips the last newline of stdout; the proof ends with one.
    await writeFile(join(work, 'p0.proof'), `${r.stdout}\n`)
    await writeFile(join(work, 'e0.line'), lines[0]!)
    const c = await airlock(['audit', 'check-proof', join(work, 'p0.proof'), '--entry', join(work, 'e0.line'), '--key', verifierKey], {cwd: work})
    expect(c.exitCode, c.stdout + c.stderr).toBe(0)
    expect(c.stdout).toContain('OK: entry 0')
  })

  it('refuses an entry past the newest checkpoint (exit 2, USAGE) and an index that is no number (exit 2)', async () => {
    const r = await airlock(['audit', 'prove', '300', '--audit-dir', audit, '--json'])
    expect(r.exitCode).toBe(2)
    expect(r.json.error).toMatchObject({code: 'USAGE', message: expect.stringContaining('airlock audit checkpoint')})
    const s = await airlock(['audit', 'prove', '1e3', '--audit-dir', audit, '--json'])
    expect(s.exitCode).toBe(2)
    expect(s.json.error.code).toBe('USAGE')
    expect(s.stderr).not.toMatch(/\n\s+at /)
  })

  it('refuses a log edited under its checkpoint (exit 1, AUDIT_TAMPERED)', async () => {
    const copy = join(work, 'edited')
    const {execa} = await import('execa')
    await execa('cp', ['-a', audit, copy])
    const text = await readFile(join(copy, 'events.jsonl'), 'utf8')
    await writeFile(join(copy, 'events.jsonl'), text.replace('"event 12"', '"event 99"'))
    const r = await airlock(['audit', 'prove', '12', '--audit-dir', copy, '--json'])
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'AUDIT_TAMPERED', details: {line: 13, index: 12}})
  })
})

describe('audit check-proof fails (exit 1) and says why', () => {
  const check = async (proof: string, entry: string, extra: string[] = []) => {
    await writeFile(join(work, 'x.proof'), proof)
    await writeFile(join(work, 'x.line'), entry)
    return airlock(['audit', 'check-proof', join(work, 'x.proof'), '--entry', join(work, 'x.line'), '--key', verifierKey, '--json', ...extra], {cwd: work})
  }
  let proof: string
  beforeAll(async () => {
    proof = (await airlock(['audit', 'prove', '42', '--audit-dir', audit, '--json'])).json.proof
  })

  it('for an edited entry: FINGERPRINT_MISMATCH', async () => {
    const r = await check(proof, lines[42]!.replace('"event 42"', '"event 24"'))
    expect(r.exitCode).toBe(1)
    expect(r.json).toMatchObject({ok: false, problem: 'FINGERPRINT_MISMATCH'})
  })

  it('for another entry: INDEX_MISMATCH', async () => {
    expect((await check(proof, lines[43]!)).json).toMatchObject({ok: false, problem: 'INDEX_MISMATCH'})
  })

  it('for a tampered proof hash: NOT_INCLUDED', async () => {
    const parts = proof.split('\n')
    parts[2] = Buffer.from(Buffer.from(parts[2]!, 'base64').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64')
    const r = await check(parts.join('\n'), lines[42]!)
    expect(r.exitCode).toBe(1)
    expect(r.json).toMatchObject({ok: false, problem: 'NOT_INCLUDED'})
  })

  it('for another origin asked for: ORIGIN_MISMATCH', async () => {
    expect((await check(proof, lines[42]!, ['--origin', 'airlock.audit/elsewhere/0000000000000000'])).json).toMatchObject({ok: false, problem: 'ORIGIN_MISMATCH'})
  })

  it('for a key that did not sign: UNKNOWN_KEY', async () => {
    await writeFile(join(work, 'x.proof'), proof)
    await writeFile(join(work, 'x.line'), lines[42]!)
    const other = verifierKeyOf(origin, new Uint8Array(32).fill(9)).text
    const r = await airlock(['audit', 'check-proof', join(work, 'x.proof'), '--entry', join(work, 'x.line'), '--key', other, '--json'], {cwd: work})
    expect(r.exitCode).toBe(1)
    expect(r.json).toMatchObject({ok: false, problem: 'UNKNOWN_KEY'})
  })

  it('for a proof that is not one: MALFORMED (exit 1); without --entry: exit 2', async () => {
    const r = await check('c2sp.org/tlog-proof@v1\nindex 1\n', lines[1]!)
    expect(r.exitCode).toBe(1)
    expect(r.json.error.code).toBe('MALFORMED')
    const u = await airlock(['audit', 'check-proof', join(work, 'x.proof'), '--json'], {cwd: work})
    expect(u.exitCode).toBe(2)
  })
})
