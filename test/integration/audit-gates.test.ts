/**
 * The audit log as the record step writes it and the gates read it, on a fleet made by
 * `airlock init`: a promotion and a refused plan are events; an applied change fails closed
 * when the log cannot be written; `postsession` records each gate result and the rollback drill's
 * steps (checked back in the log); audit-integrity is not_run without a log, passes on the log
 * the commands wrote, and fails once an entry is edited.
 */
import {chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {loggedEvents} from '../audit-events.js'
import {airlock, commitChange, initFleet} from '../helpers.js'

let fleet: Awaited<ReturnType<typeof initFleet>>
let audit: string
beforeAll(async () => {
  fleet = await initFleet()
  audit = await mkdtemp(join(tmpdir(), 'airlock-audit-gates-'))
})
afterAll(async () => {
  await fleet.cleanup()
  await rm(audit, {recursive: true, force: true})
})

const events = () => loggedEvents(audit)

const SUITES = `apiVersion: airlock/v1
kind: GateSuite
suites:
  preflight:
    gates:
      - {id: history, uses: builtin/history}
  postsession:
    gates:
      - {id: audit-integrity, uses: builtin/audit-integrity}
      - {id: rollback-drill, uses: builtin/rollback-drill, with: {recovery_target: 10m}, timeout: 10m}
`

describe('the audit log written by the commands and read by the gates', () => {
  it('audit-integrity is not_run on a host with no log yet', async () => {
    await writeFile(join(fleet.dir, 'manifests', 'gates.yaml'), SUITES)
    await commitChange(fleet.dir, fleet.env, 'suites reading the audit log')
    const empty = await mkdtemp(join(tmpdir(), 'airlock-audit-none-'))
    try {
      const r = await airlock(['gate', 'run', 'preflight', '--json', '--audit-dir', join(empty, 'fresh')], {cwd: fleet.dir, env: fleet.env})
      expect(r.exitCode, r.stderr).toBe(0)
      // The gate results of that run are the log's first events.
      const lines = (await readFile(join(empty, 'fresh', 'events.jsonl'), 'utf8')).trim().split('\n')
      expect(lines.map((l) => JSON.parse(l).class_uid)).toEqual([2003])
    } finally {
      await rm(empty, {recursive: true, force: true})
    }
  })

  it('a refused promotion and an applied change are API Activity events; the applied one carries its commit', async () => {
    const env = {...fleet.env, AIRLOCK_AUDIT_DIR: audit}
    const refused = await airlock(['promote', 'agent-runner', '--digest', `sha256:${'a'.repeat(64)}`, '--to', 'canary', '--apply'], {cwd: fleet.dir, env})
    expect(refused.exitCode).toBe(1)
    await writeFile(join(fleet.dir, 'manifests', 'gates.yaml'), `${SUITES}# recorded\n`)
    const r = await airlock(['change', '--reason', 'a tweak', '--apply', '--json'], {cwd: fleet.dir, env})
    expect(r.exitCode, r.stderr).toBe(0)
    const got = await events()
    expect(got).toHaveLength(2)
    for (const e of got) expect(e).toMatchObject({class_uid: 6003, type_uid: 6003 * 100 + e.activity_id, metadata: {profiles: expect.arrayContaining(['record_integrity'])}})
    expect(got[0]).toMatchObject({status_id: 2, api: {operation: 'promote'}, unmapped: {airlock: {outcome: 'refused', mode: 'apply'}}})
    expect(got[1]).toMatchObject({status_id: 1, api: {operation: 'change'}, unmapped: {airlock: {outcome: 'applied', commit: r.json.applied.commit, reason: 'a tweak'}}})
    // The decision that allowed it, with the deciding policy (the security_control profile).
    expect(got[1]!.metadata.profiles).toContain('security_control')
    expect(got[1]!.policy?.uid ?? got[1]!.authorizations?.[0]?.policy?.uid).toBeTruthy()
  })

  it('postsession records every gate, and the drill checks its own steps in the log; audit-integrity passes', async () => {
    const env = {...fleet.env, AIRLOCK_AUDIT_DIR: audit}
    const before = (await events()).length
    const r = await airlock(['postsession', '--json'], {cwd: fleet.dir, env})
    expect(r.exitCode, r.stderr).toBe(0)
    const by = Object.fromEntries((r.json.gates as Array<{id: string; status: string; reason: string}>).map((g) => [g.id, g]))
    expect(by['audit-integrity']).toMatchObject({status: 'pass'})
    expect(by['audit-integrity']!.reason).toMatch(/^\d+ entries verify/)
    expect(by['rollback-drill']).toMatchObject({status: 'pass'})
    expect(by['rollback-drill']!.reason).toMatch(/its \d+ steps are audit-log entries \d+/)
    const after = await events()
    const drill = after.slice(before).filter((e) => e.unmapped?.airlock?.drill)
    expect(drill.map((e) => e.unmapped?.airlock?.operation)).toEqual(expect.arrayContaining(['promote', 'rollback']))
    expect(after.slice(before).filter((e) => e.class_uid === 2003).map((e) => e.compliance?.control).sort()).toEqual(['audit-integrity', 'rollback-drill'])
  })

  it('audit-integrity fails once an entry is edited, naming it', async () => {
    const file = join(audit, 'events.jsonl')
    const text = await readFile(file, 'utf8')
    await writeFile(file, text.replace('"status_id":2', '"status_id":1'))
    const empty = join(audit, '..', `${audit.split('/').at(-1)}-other`)
    const r = await airlock(['gate', 'run', 'postsession', '--json', '--audit-dir', audit], {cwd: fleet.dir, env: {...fleet.env, AIRLOCK_AUDIT_DIR: empty}})
    const gate = (r.json.gates as Array<{id: string; status: string; reason: string}>).find((g) => g.id === 'audit-integrity')!
    expect(gate).toMatchObject({status: 'fail'})
    expect(gate.reason).toMatch(/^EDITED: /)
    await rm(empty, {recursive: true, force: true})
  })

  it('an applied change fails closed when the log cannot be written, and nothing is committed', async () => {
    const blocked = await mkdtemp(join(tmpdir(), 'airlock-audit-blocked-'))
    const file = join(blocked, 'log')
    await writeFile(file, 'a file where the audit folder should be\n')
    try {
      const headBefore = (await readFile(join(fleet.dir, '.git', 'HEAD'), 'utf8')).trim()
      await writeFile(join(fleet.dir, 'manifests', 'gates.yaml'), SUITES.replace('builtin/history}', 'builtin/history, required: true}'))
      const r = await airlock(['change', '--reason', 'unrecorded', '--apply', '--json'], {cwd: fleet.dir, env: {...fleet.env, AIRLOCK_AUDIT_DIR: file}})
      expect(r.exitCode).toBe(1)
      expect(r.json.error.code).toBe('AUDIT_UNAVAILABLE')
      expect((await readFile(join(fleet.dir, '.git', 'HEAD'), 'utf8')).trim()).toBe(headBefore)
      // Without --apply the plan is still shown, with a warning that it was not recorded.
      const plan = await airlock(['change', '--reason', 'unrecorded'], {cwd: fleet.dir, env: {...fleet.env, AIRLOCK_AUDIT_DIR: file}})
      expect(plan.stderr).toContain('warning: not recorded in the audit log')
    } finally {
      await chmod(blocked, 0o700)
      await rm(blocked, {recursive: true, force: true})
    }
  })
})
