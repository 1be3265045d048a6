import {execa} from 'execa'
import {describe, expect, it} from 'vitest'
import {airlock, BIN, ROOT} from '../helpers.js'

describe('the airlock binary', () => {
  it('re-runs itself on the project-local Node 22 when started by an older Node', async () => {
    const system = await execa('node', ['--version'], {reject: false})
    const major = Number(String(system.stdout).replace('v', '').split('.')[0])
    const r = await execa('node', [BIN, '--version'], {cwd: ROOT, reject: false})
    expect(r.exitCode).toBe(0)
    // Whatever starts it, airlock reports the Node it really runs on: 22 or newer.
    expect(String(r.stdout)).toMatch(/node-v(2[2-9]|[3-9]\d)\./)
    if (major < 22) expect(String(r.stdout)).not.toContain(String(system.stdout))
  })

  it('prints exactly one JSON object on stdout with --json', async () => {
    const r = await airlock(['status', '--json'])
    expect(r.exitCode).toBe(0)
    expect(r.json.images.map((i: any) => i.name).sort()).toEqual(['agent-runner', 'browser-sandbox', 'code-interpreter'])
  })

  it('plans on the embedded default fleet and changes nothing', async () => {
    const r = await airlock(['promote', 'agent-runner', '--from', 'canary', '--to', 'stable', '--json'])
    expect(r.json.applied).toBeNull()
    expect(r.json.plan.changes).toHaveLength(1)
    // This project's own history is not signed by a fleet key, so the plan is shown for review
    // with its base marked unverified, and the run is a failed check.
    expect(r.json.plan.base.verified).toBe(false)
    expect(r.exitCode).toBe(1)
  })

  it('answers an unknown command with the JSON error shape and exit 2', async () => {
    const r = await airlock(['frobnicate', '--json'])
    expect(r.exitCode).toBe(2)
    expect(r.json).toEqual({error: {code: 'USAGE', message: expect.stringContaining('frobnicate'), details: {}}})
  })

  it('shows a stack trace only with AIRLOCK_DEBUG=1', async () => {
    const quiet = await airlock(['promote', 'nope', '--digest', 'sha256:abc', '--to', 'x'])
    expect(quiet.stderr.trim().split('\n')).toHaveLength(1)
    const loud = await airlock(['promote', 'nope', '--digest', 'sha256:abc', '--to', 'x'], {env: {AIRLOCK_DEBUG: '1'}})
    expect(loud.stderr).toMatch(/\n\s+at /)
  })
})
