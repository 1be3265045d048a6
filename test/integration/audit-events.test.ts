/**
 * What the commands write to the audit log validates against the vendored OCSF definitions
 * (test/fixtures/ocsf, the classes, profiles and objects each event uses): on a fleet made by
 * `airlock init`, a key added through the pipeline (6003 with security_control), a tool call
 * allowed, one denied, one approved and its approval consumed and replayed (6003), an egress
 * decision (6003), a refused token (3002) and gate results (2003). Nothing an event carries is a
 * planted secret: the approval's reason and the call's parameters stay out of the log.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {loggedEvents} from '../audit-events.js'
import {OcsfSchema} from '../unit/audit/ocsf-validate.js'
import {airlock, initFleet} from '../helpers.js'

let fleet: Awaited<ReturnType<typeof initFleet>>
let audit: string
let env: Record<string, string>
beforeAll(async () => {
  fleet = await initFleet()
  audit = await mkdtemp(join(tmpdir(), 'airlock-audit-events-'))
  env = {...fleet.env, AIRLOCK_AUDIT_DIR: audit, AIRLOCK_STATE_DIR: join(audit, '..', `${audit.split('/').at(-1)}-state`)}
})
afterAll(async () => {
  await fleet.cleanup()
  await rm(audit, {recursive: true, force: true})
})

const SECRET = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8'
const pr = JSON.stringify({repository: 'acme/fleet', title: `Bump the runner ${SECRET}`})

describe('the events the commands write', () => {
  it('validate against OCSF, one class per kind of decision, and hold no planted secret', async () => {
    const key = await airlock(['keys', 'generate', 'approver', '--role', 'approval', '--reason', `approvals ${SECRET}`, '--apply'], {cwd: fleet.dir, env})
    expect(key.exitCode, key.stderr).toBe(0)
    expect((await airlock(['tool', 'check', 'read_file', '--params', '{"path": "/workspace/notes.md"}'], {cwd: fleet.dir, env})).exitCode).toBe(0)
    expect((await airlock(['tool', 'check', 'shell_exec', '--params', '{"cmd": "id"}'], {cwd: fleet.dir, env})).exitCode).toBe(1)
    const approve = await airlock(['tool', 'approve', 'open_pull_request', '--params', pr, '--approval-key', join(fleet.dir, 'keys', 'approver.key'), '--reason', 'reviewed', '--ttl', '15m'], {cwd: fleet.dir, env})
    expect(approve.exitCode, approve.stderr).toBe(0)
    const token = approve.stdout.trim()
    expect((await airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--approval', token], {cwd: fleet.dir, env})).exitCode).toBe(0)
    const replay = await airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--approval', token], {cwd: fleet.dir, env})
    expect(replay.exitCode).toBe(1)
    expect((await airlock(['egress', 'check', '169.254.169.254:80'], {cwd: fleet.dir, env})).exitCode).toBe(1)
    const jwks = join(fleet.dir, 'no-such-jwks.json')
    const token2 = await airlock(['promote', 'agent-runner', '--from', 'canary', '--to', 'stable', '--jwt', 'a.b.c', '--jwks', jwks, '--issuer', 'https://issuer.example', '--audience', 'airlock'], {cwd: fleet.dir, env})
    expect(token2.exitCode).not.toBe(0)
    expect((await airlock(['preflight', '--json'], {cwd: fleet.dir, env})).exitCode).toBeLessThanOrEqual(1)

    const events = await loggedEvents(audit)
    const schema = new OcsfSchema()
    const problems = events.flatMap((e, i) => schema.validate(e).map((p) => `${i} ${e.message}: ${p.path} ${p.message}`))
    expect(problems).toEqual([])
    const kinds = events.map((e) => `${e.class_uid}/${e.activity_id}/${e.message}`)
    expect(events.map((e) => e.class_uid)).toEqual(expect.arrayContaining([6003, 3002, 2003]))
    expect(kinds.some((k) => /^6003\/.*tool read_file: allow/.test(k))).toBe(true)
    expect(kinds.some((k) => /^6003\/.*tool shell_exec: deny/.test(k))).toBe(true)
    expect(events.filter((e) => /^approval /.test(e.message)).map((e) => e.unmapped?.airlock?.approval?.kind)).toEqual(['issued', 'consumed', 'replayed'])
    expect(kinds.some((k) => /^6003\/.*egress to 169\.254\.169\.254:80: deny/.test(k))).toBe(true)
    expect(events.find((e) => e.class_uid === 3002)).toMatchObject({status_id: 2})
    expect(events.find((e) => e.api?.operation === 'trust-add-key' || e.unmapped?.airlock?.operation === 'trust-add-key')).toMatchObject({metadata: {profiles: expect.arrayContaining(['security_control'])}})
    // Redaction before persistence: the planted token reached neither the log nor anything beside it.
    const raw = await readFile(join(audit, 'events.jsonl'), 'utf8')
    expect(raw).not.toContain(SECRET)
    expect(raw).toContain('[REDACTED:')
  })
})
