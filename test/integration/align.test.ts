import {execFileSync} from 'node:child_process'
import {chmod, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, initFleet} from '../helpers.js'

let fleet: Awaited<ReturnType<typeof initFleet>>
let stable: string
let canary: string
beforeAll(async () => {
  fleet = await initFleet()
  const text = await readFile(join(fleet.dir, 'manifests/images/agent-runner.yaml'), 'utf8')
  canary = /canary:\n\s+digest: (sha256:[0-9a-f]{64})/.exec(text)![1]!
  stable = /stable:\n\s+digest: (sha256:[0-9a-f]{64})/.exec(text)![1]!
})
afterAll(() => fleet.cleanup())

const align = (...args: string[]) => airlock(['align', ...args, '--json'], {cwd: fleet.dir})
const state = async (images: object) => {
  const file = join(fleet.dir, '..', `state-${Math.random().toString(36).slice(2)}.json`)
  await writeFile(file, JSON.stringify({apiVersion: 'airlock/v1', kind: 'RuntimeState', images}))
  return file
}
const script = async (body: string) => {
  const file = join(fleet.dir, '..', `rt-${Math.random().toString(36).slice(2)}.sh`)
  await writeFile(file, `#!/bin/sh\n${body}\n`)
  await chmod(file, 0o755)
  return file
}

describe('airlock align through the state file the reconciler writes', () => {
  it('reports ALIGNED when the running digest is the pin (0) and DRIFT with both digests when not (1)', async () => {
    const ok = await align('agent-runner', '--channel', 'stable', '--runtime', `file:${await state({'agent-runner': {digest: stable}})}`)
    expect(ok.exitCode).toBe(0)
    expect(ok.json).toMatchObject({aligned: 1, drift: 0, results: [{image: 'agent-runner', channel: 'stable', status: 'ALIGNED', manifest: stable, running: stable}]})
    const file = await state({'agent-runner': {digest: canary}})
    const drift = await align('agent-runner', '--channel', 'stable', '--runtime', `file:${file}`)
    expect(drift.exitCode).toBe(1)
    expect(drift.json.results[0]).toMatchObject({status: 'DRIFT', manifest: stable, running: canary})
    const text = await airlock(['align', '--channel', 'stable', '--runtime', `file:${file}`], {cwd: fleet.dir})
    expect(text.exitCode).toBe(1)
    expect(text.stdout).toContain(`DRIFT       agent-runner/stable\n  manifest  ${stable}\n  running   ${canary}`)
    const onCanary = await align('--channel', 'canary', '--runtime', `file:${file}`)
    expect(onCanary.exitCode).toBe(0)
  })

  it.each([
    ['a missing file', async () => join(fleet.dir, 'no-such-state.json'), 'cannot read the state file (ENOENT)'],
    ['a truncated file', async () => {
      const f = join(fleet.dir, '..', 'trunc.json')
      await writeFile(f, '{"kind":"RuntimeState","images":{')
      return f
    }, 'not JSON'],
    ['another kind of JSON', async () => {
      const f = join(fleet.dir, '..', 'other.json')
      await writeFile(f, '{"hello":1}')
      return f
    }, 'not a RuntimeState'],
    ['no entry for the image', async () => state({'code-interpreter': {digest: stable}}), 'no entry for image agent-runner'],
    ['a tag instead of a digest', async () => state({'agent-runner': {digest: 'latest'}}), 'is not a sha256 digest'],
  ])('cannot read %s: UNREADABLE with the reason (1)', async (_what, make, reason) => {
    const r = await align('agent-runner', '--runtime', `file:${await make()}`)
    expect(r.exitCode).toBe(1)
    expect(r.json.results[0]).toMatchObject({status: 'UNREADABLE', running: null, reason: expect.stringContaining(reason)})
  })
})

describe('airlock align through a command that prints the digest', () => {
  it('passes the image to the command and compares what it prints', async () => {
    const cmd = await script(`[ "$AIRLOCK_IMAGE" = agent-runner ] && [ "$AIRLOCK_CHANNEL" = canary ] || exit 9\necho "running: ${canary}"`)
    const ok = await align('agent-runner', '--channel', 'canary', '--runtime', `command:${cmd}`)
    expect(ok.exitCode).toBe(0)
    expect(ok.json.results[0]).toMatchObject({status: 'ALIGNED', running: canary})
    const drift = await align('agent-runner', '--channel', 'stable', '--runtime', `command:${cmd}`)
    expect(drift.exitCode).toBe(1)
    expect(drift.json.results[0]).toMatchObject({status: 'UNREADABLE', reason: expect.stringContaining('exited with 9')})
    const other = await script(`echo ${canary}`)
    const d2 = await align('agent-runner', '--channel', 'stable', '--runtime', `command:${other} --host h1`)
    expect(d2.json.results[0]).toMatchObject({status: 'DRIFT', manifest: stable, running: canary})
  })

  it('stops a command that hangs at the deadline and says so (1)', async () => {
    // The script's own child keeps its output open: unless the whole group is stopped, the
    // command would never be seen to end and this test would run into the suite's time limit.
    const cmd = await script('sleep 600')
    const r = await align('agent-runner', '--runtime', `command:${cmd}`, '--timeout', '1s')
    expect(r.exitCode).toBe(1)
    expect(r.json.results[0]).toMatchObject({status: 'UNREADABLE', reason: expect.stringContaining('did not finish within 1000 ms')})
  })

  it.each([
    ['is not installed', 'command:/no/such/runtime-tool', 'not installed'],
    ['prints no digest', 'command:echo nothing here', 'printed no sha256 digest'],
    ['prints two digests', `command:echo sha256:${'1'.repeat(64)} sha256:${'2'.repeat(64)}`, '2 different digests'],
  ])('a command that %s is UNREADABLE (1)', async (_what, runtime, reason) => {
    const r = await align('agent-runner', '--runtime', runtime)
    expect(r.exitCode).toBe(1)
    expect(r.json.results[0].reason).toContain(reason)
  })

  it('refuses an unknown runtime and an unknown channel (2)', async () => {
    const r = await align('agent-runner', '--runtime', 'docker')
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('USAGE')
    const c = await align('agent-runner', '--channel', 'production', '--runtime', 'podman')
    expect(c.exitCode).toBe(2)
    expect(c.json.error.code).toBe('UNKNOWN_CHANNEL')
  })
})

const installed = (bin: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

// podman and containerd are not installed on these machines; these run where they are
// (reported as skipped, i.e. not_run, otherwise).
describe('runtime adapters for podman and containerd', () => {
  it.skipIf(!installed('podman'))('podman: a container that does not exist is UNREADABLE, with podman’s reason', async () => {
    const r = await align('agent-runner', '--runtime', 'podman')
    expect(r.exitCode).toBe(1)
    expect(r.json.results[0]).toMatchObject({status: 'UNREADABLE', reason: expect.stringContaining('podman container inspect')})
  })
  it.skipIf(!installed('ctr'))('containerd: a container that does not exist is UNREADABLE, with ctr’s reason', async () => {
    const r = await align('agent-runner', '--runtime', 'containerd')
    expect(r.exitCode).toBe(1)
    expect(r.json.results[0]).toMatchObject({status: 'UNREADABLE', reason: expect.stringContaining('ctr')})
  })
  it.skipIf(installed('podman'))('podman absent: the adapter says it is not installed rather than guessing', async () => {
    const r = await align('agent-runner', '--runtime', 'podman')
    expect(r.exitCode).toBe(1)
    expect(r.json.results[0].reason).toContain('podman is not installed')
  })
})
