/**
 * What a host operator who can write the audit folder, but holds no audit key, might do once a
 * checkpoint is published to the fleet (attacks from the review of the audit log): replace the
 * whole log under a new origin, rewrite it under the same origin, or strip one recent entry's body
 * by turning it into a pruned stub. Each is caught by `airlock audit verify` and by the
 * audit-integrity gate.
 */
import {readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {mkdtemp} from 'node:fs/promises'
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'
import {serializeEntry} from '../../control-plane/audit/entry.js'
import {drawIndexes} from '../../control-plane/evidence/report/sample.js'
import {seedOf} from '../../control-plane/evidence/report/sample.js'
import {airlock, initFleet} from '../helpers.js'

let fleet: Awaited<ReturnType<typeof initFleet>>
let audit: string
let env: Record<string, string>
let saved: {events: Buffer; origin: string}

beforeAll(async () => {
  fleet = await initFleet()
  audit = join(await mkdtemp(join(tmpdir(), 'airlock-audit-attacks-')), 'audit')
  env = {...fleet.env, AIRLOCK_AUDIT_DIR: audit}
  const k = await airlock(['keys', 'generate', 'audit', '--role', 'audit', '--reason', 'audit checkpoints', '--apply'], {cwd: fleet.dir, env})
  expect(k.exitCode, k.stderr).toBe(0)
  await writeFile(join(fleet.dir, 'manifests', 'gates.yaml'), `apiVersion: airlock/v1
kind: GateSuite
suites:
  postsession:
    gates:
      - {id: audit-integrity, uses: builtin/audit-integrity}
`)
  const c0 = await airlock(['change', '--reason', 'audit-integrity alone', '--apply'], {cwd: fleet.dir, env})
  expect(c0.exitCode, c0.stderr).toBe(0)
  for (const host of ['pypi.org', 'evil.example.com', 'github.com']) await airlock(['egress', 'check', `https://${host}/`], {cwd: fleet.dir, env})
  const c = await airlock(['audit', 'checkpoint', '--audit-key', join(fleet.dir, 'keys', 'audit.key')], {cwd: fleet.dir, env})
  expect(c.exitCode, c.stderr).toBe(0)
  const p = await airlock(['audit', 'publish', '--reason', 'witness', '--apply'], {cwd: fleet.dir, env})
  expect(p.exitCode, p.stderr).toBe(0)
  saved = {events: await readFile(join(audit, 'events.jsonl')), origin: (await readFile(join(audit, 'origin'), 'utf8')).trim()}
}, 300_000)
afterAll(async () => {
  await fleet.cleanup()
  await rm(join(audit, '..'), {recursive: true, force: true})
})
beforeEach(async () => {
  await writeFile(join(audit, 'events.jsonl'), saved.events)
  await writeFile(join(audit, 'origin'), `${saved.origin}\n`)
  await rm(join(audit, 'state.json'), {force: true})
  await rm(join(audit, 'tiles'), {force: true, recursive: true})
})

const lines = async () => (await readFile(join(audit, 'events.jsonl'), 'utf8')).split('\n').slice(0, -1)

/** The log rewritten without the evil.example.com decision, chained anew under `origin`. */
async function rewrite(origin: string): Promise<void> {
  let prev: string | null = null
  const out: string[] = []
  for (const [index, line] of (await lines()).filter((l) => !l.includes('evil.example.com')).entries()) {
    const event = JSON.parse(line)
    delete event.attestation_list
    const s = serializeEntry(event, {index, prev, origin})
    out.push(s.line)
    prev = s.fingerprint
  }
  await writeFile(join(audit, 'events.jsonl'), `${out.join('\n')}\n`)
  await writeFile(join(audit, 'origin'), `${origin}\n`)
  for (const f of await readdir(join(audit, 'checkpoints'))) await rm(join(audit, 'checkpoints', f))
}

async function gate(): Promise<{status: string; reason: string}> {
  const r = await airlock(['gate', 'run', 'postsession', '--json', '--audit-dir', audit], {cwd: fleet.dir, env: {...env, AIRLOCK_AUDIT_DIR: join(audit, '..', 'other')}})
  return (r.json.gates as Array<{id: string; status: string; reason: string}>).find((g) => g.id === 'audit-integrity')!
}

describe('a host operator without the audit key, after a checkpoint was published', () => {
  it('the untouched log verifies, and the gate passes with the published checkpoint', async () => {
    const v = await airlock(['audit', 'verify', '--json'], {cwd: fleet.dir, env})
    expect(v.exitCode, v.stdout + v.stderr).toBe(0)
    expect(await gate()).toMatchObject({status: 'pass', reason: expect.stringMatching(/1 published in git/)})
  })

  it('a log replaced under a new origin is ORIGIN_REPLACED: git holds this host\'s checkpoints under the old one', async () => {
    await rewrite(saved.origin.replace(/[0-9a-f]{16}$/, 'ffffffffffffffff'))
    const v = await airlock(['audit', 'verify', '--json'], {cwd: fleet.dir, env})
    expect(v.exitCode).toBe(1)
    expect(v.json.error).toMatchObject({code: 'AUDIT_CHECKPOINT_INVALID', details: {problem: 'ORIGIN_REPLACED', replaced: [saved.origin]}})
    expect(await gate()).toMatchObject({status: 'fail', reason: expect.stringMatching(/^ORIGIN_REPLACED: /)})
  })

  it('a log rewritten under the same origin does not extend the published checkpoint', async () => {
    await rewrite(saved.origin)
    const v = await airlock(['audit', 'verify', '--json'], {cwd: fleet.dir, env})
    expect(v.exitCode).toBe(1)
    expect(v.json.error.details.problems.map((p: {code: string}) => p.code)).toContain('INCONSISTENT')
    expect(await gate()).toMatchObject({status: 'fail'})
  })

  it('a recent entry turned into a pruned stub is BODY_REMOVED (retention prunes a prefix only)', async () => {
    const all = await lines()
    const i = all.findIndex((l) => l.includes('evil.example.com'))
    expect(i).toBeGreaterThan(0)
    const a = JSON.parse(all[i]!).attestation_list[0]
    all[i] = `{"pruned":{"uid":"${i}","fingerprint":"${a.fingerprint.value}","prev":"${a.prev_event.fingerprint.value}","time":0}}`
    await writeFile(join(audit, 'events.jsonl'), `${all.join('\n')}\n`)
    const v = await airlock(['audit', 'verify', '--json'], {cwd: fleet.dir, env})
    expect(v.exitCode).toBe(1)
    expect(v.json.error.details.problems[0]).toMatchObject({code: 'BODY_REMOVED', index: i})
    expect(await gate()).toMatchObject({status: 'fail', reason: expect.stringMatching(/^BODY_REMOVED: /)})
  })
})

describe('a host operator who deletes the log after publishing', () => {
  it('audit-integrity fails (TRUNCATED), not not_run, when git holds checkpoints this host published', async () => {
    await rm(join(audit, 'events.jsonl'))
    expect(await gate()).toMatchObject({status: 'fail', reason: expect.stringMatching(/^TRUNCATED: this host published checkpoints of airlock\.audit\//)})
    await rm(audit, {recursive: true, force: true})
    expect(await gate()).toMatchObject({status: 'fail', reason: expect.stringMatching(/^TRUNCATED: .* is (gone|empty)$/)})
    // Put the folder back for whatever runs after.
    const {mkdir} = await import('node:fs/promises')
    await mkdir(join(audit, 'checkpoints'), {recursive: true, mode: 0o700})
  })
})

describe('the evidence sample, seeded by a root whoever appends shapes', () => {
  it("the auditor's nonce changes the draw, and the same nonce draws the same sample again", () => {
    const root = Buffer.alloc(32, 1)
    const plain = drawIndexes(seedOf(root, undefined), 'AU-2', 1_000_000, 5)
    const a = drawIndexes(seedOf(root, 'auditor-2026-12-03'), 'AU-2', 1_000_000, 5)
    expect(drawIndexes(seedOf(root, 'auditor-2026-12-03'), 'AU-2', 1_000_000, 5)).toEqual(a)
    expect(a).not.toEqual(plain)
    expect(drawIndexes(seedOf(root, 'another'), 'AU-2', 1_000_000, 5)).not.toEqual(a)
  })
})
