import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCommandGate, lastPassFail} from '../../../control-plane/gates/run-command.js'
import {runSuite, type GateEvent, type RunSuiteOptions} from '../../../control-plane/gates/runner.js'
import type {BuiltinGate, GateResult, GateSpec} from '../../../control-plane/gates/types.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import type {Repository} from '../../../control-plane/repo/repository.js'
import {tempDir} from '../../helpers.js'

/** Builtins made for these tests (the real ones need a fleet: test/integration/gates.test.ts). */
const fixed = (result: GateResult): BuiltinGate => ({name: 'fixed', description: '', run: async () => result})
const TEST_BUILTINS: Record<string, BuiltinGate> = {
  ok: fixed({status: 'pass', reason: 'fine'}),
  bad: fixed({status: 'fail', reason: 'broken', findings: [{tool: 't', ruleId: 'r', level: 'error', message: 'm', file: 'f'}]}),
  // Never settles on its own: only the runner's timeout ends it.
  forever: {name: 'forever', description: '', run: (ctx) => new Promise(() => void ctx.signal)},
}

const gate = (id: string, spec: Partial<GateSpec>): GateSpec => ({id, with: {}, timeoutMs: 60_000, needs: [], requires: [], required: true, mode: 'enforce', ...spec})

/** A clock that moves one second each time it is read: elapsed times without racing the real one. */
function steppingClock() {
  let t = Date.parse('2026-06-01T00:00:00Z')
  return () => new Date((t += 1000))
}

/** Processes of process group `pgid` that are not zombies (Linux /proc). */
async function livingIn(pgid: number): Promise<string[]> {
  const {readdir} = await import('node:fs/promises')
  const out: string[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(') ') + 2).split(' ')
    if (Number(pgrp) === pgid && state !== 'Z') out.push(`${entry} ${stat.slice(0, stat.lastIndexOf(')') + 1)}`)
  }
  return out
}

let dir: string
let cleanup: () => Promise<void>
beforeAll(async () => ({dir, cleanup} = await tempDir('airlock-gates-')))
afterAll(() => cleanup())

function options(gates: GateSpec[], extra: Partial<RunSuiteOptions> = {}): RunSuiteOptions {
  return {
    suite: 'preflight',
    gates,
    jobs: 2,
    host: false,
    builtins: TEST_BUILTINS,
    // These gates never read the repository.
    context: {repo: null as unknown as Repository, commit: 'c'.repeat(40), dir, limits: DEFAULT_LIMITS, now: new Date('2026-06-01T00:00:00Z'), lastPassing: async () => null},
    runCommand: (g, ctx) => runCommandGate({run: g.run!, expect: g.expect, timeoutMs: g.timeoutMs}, {dir: ctx.dir, signal: ctx.signal, limits: ctx.limits}),
    clock: steppingClock(),
    ...extra,
  }
}

describe('the gate runner', () => {
  it('runs a suite with a failing, a hanging, a host-only and a shadow gate; the hang is killed with its process group', async () => {
    const pidFile = join(dir, 'hang.pid')
    const run = await runSuite(
      options([
        gate('ok', {uses: 'builtin/ok'}),
        gate('fails', {run: 'echo about to fail; exit 3'}),
        gate('hangs', {run: `sh -c 'echo $$ > ${pidFile}; sleep 600' & wait`, timeoutMs: 1500}),
        gate('smoke', {run: 'exit 0', requires: ['host']}),
        gate('after-smoke', {uses: 'builtin/ok', needs: ['smoke']}),
        gate('shadow', {uses: 'builtin/bad', mode: 'shadow'}),
        gate('after-fail', {uses: 'builtin/ok', needs: ['fails']}),
      ]),
    )
    const by = Object.fromEntries(run.gates.map((g) => [g.id, g]))
    expect(by.ok).toMatchObject({status: 'pass', reason: 'fine'})
    expect(by.fails).toMatchObject({status: 'fail', reason: 'exited with 3'})
    expect((by.fails!.evidence as {output: {excerpt: string}}).output.excerpt).toBe('about to fail\n')
    expect(by.hangs).toMatchObject({status: 'fail', reason: 'timed out after 1.5s; its process group was killed'})
    expect(by.smoke).toMatchObject({status: 'not_run', reason: 'requires a lab host (--host)'})
    expect(by['after-smoke']).toMatchObject({status: 'not_run', reason: 'needs smoke, which requires a lab host'})
    expect(by.shadow).toMatchObject({status: 'fail', mode: 'shadow'})
    expect(by['after-fail']).toMatchObject({status: 'not_run', reason: 'needs fails, which failed'})
    expect(run.exitCode).toBe(1)
    expect(run.result).toBe('FAILED')
    expect(run.passedTests).toEqual(['preflight/ok'])
    expect(run.warnedTests).toEqual(['preflight/shadow'])
    expect(run.failedTests).toEqual(['preflight/fails', 'preflight/hangs', 'preflight/after-fail'])
    expect(run.findings).toHaveLength(1)
    // The hung gate's whole process group is gone, its grandchild `sleep` included (dead: at
    // most a zombie, which this container's init may never reap).
    const pid = Number((await readFile(pidFile, 'utf8')).trim())
    const group = Number((await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ')[2] ?? Number.NaN)
    if (!Number.isNaN(group)) expect(await livingIn(group)).toEqual([])
    else expect(() => process.kill(pid, 0)).toThrow(/ESRCH/)
  })

  it('passes with host gates not run and a shadow gate failing (WARNED, exit 0)', async () => {
    const run = await runSuite(options([gate('ok', {uses: 'builtin/ok'}), gate('smoke', {run: 'exit 1', requires: ['host']}), gate('shadow', {uses: 'builtin/bad', mode: 'shadow'})]))
    expect(run.exitCode).toBe(0)
    expect(run.result).toBe('WARNED')
    expect(run.warnedTests).toEqual(['preflight/shadow'])
  })

  it('runs host gates with --host', async () => {
    const run = await runSuite(options([gate('smoke', {run: 'exit 0', requires: ['host']})], {host: true}))
    expect(run.gates[0]).toMatchObject({status: 'pass'})
    expect(run.result).toBe('PASSED')
  })

  it('fails the run when a required gate is not run for another reason than a missing host', async () => {
    const notRun: BuiltinGate = {name: 'nr', description: '', run: async () => ({status: 'not_run', reason: 'the runtime cannot be read'})}
    const run = await runSuite(options([gate('align', {uses: 'builtin/nr'}), gate('opt', {uses: 'builtin/nr', required: false})], {builtins: {...TEST_BUILTINS, nr: notRun}}))
    expect(run.exitCode).toBe(1)
    expect(run.failedTests).toEqual(['preflight/align'])
  })

  it('redacts what gates say before it is recorded', async () => {
    const leaky = fixed({status: 'fail', reason: 'bad line: password=hunter2hunter2', evidence: {lines: ['AKIAIOSFODNN7EXAMPLE'], count: 1}})
    const run = await runSuite(options([gate('leaky', {uses: 'builtin/leaky'})], {builtins: {leaky}}))
    expect(run.gates[0]).toMatchObject({reason: 'bad line: password=[REDACTED]', evidence: {lines: ['[REDACTED]'], count: 1}})
  })

  it('times out a builtin that overruns', async () => {
    const run = await runSuite(options([gate('slow', {uses: 'builtin/forever', timeoutMs: 50})]))
    expect(run.gates[0]).toMatchObject({status: 'fail', reason: 'timed out after 50ms'})
  })

  it('runs at most `jobs` gates at once, in dependency order, with elapsed times from the given clock', async () => {
    const events: GateEvent[] = []
    let running = 0
    let most = 0
    const track: BuiltinGate = {
      name: 'track',
      description: '',
      async run() {
        most = Math.max(most, ++running)
        await new Promise((r) => setTimeout(r, 20))
        running--
        return {status: 'pass', reason: 'ok'}
      },
    }
    const gates = [gate('a', {uses: 'builtin/track'}), gate('b', {uses: 'builtin/track'}), gate('c', {uses: 'builtin/track'}), gate('d', {uses: 'builtin/track', needs: ['a', 'b', 'c']})]
    const run = await runSuite(options(gates, {jobs: 2, builtins: {track}, onEvent: (e) => events.push(e)}))
    expect(most).toBe(2)
    const order = events.map((e) => `${e.type}:${e.id}`)
    expect(order.indexOf('started:d')).toBeGreaterThan(Math.max(order.indexOf('ended:a'), order.indexOf('ended:b'), order.indexOf('ended:c')))
    // Each gate's clock is read once at its start and once at its end: whole seconds.
    for (const g of run.gates) expect(g.elapsedMs % 1000).toBe(0)
    expect(run.exitCode).toBe(0)
  })
})

describe('run: gates', () => {
  const limits = {maxGateOutputBytes: 64 * 1024}
  const run = (command: string, extra: {expect?: {pass: number; fail: number}} = {}) => runCommandGate({run: command, timeoutMs: 60_000, ...extra}, {dir, signal: new AbortController().signal, limits})

  it('ends at its timeout even when a process that left the group holds the output open', async () => {
    const pidFile = join(dir, 'escaped.pid')
    const signal = AbortSignal.timeout(500)
    const r = await runCommandGate({run: `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 600' & echo started`, timeoutMs: 500}, {dir, signal, limits})
    expect(r).toMatchObject({status: 'fail', reason: 'timed out after 500ms; its process group was killed'})
    // Not 600 s: the timeout, SIGKILL's grace and one more grace period (the pipes are then closed on our side).
    expect((r.evidence as {output: {excerpt: string}}).output.excerpt).toBe('started\n')
    // The escaped process is outside the gate's reach (another session); the test cleans it up.
    const pid = Number((await readFile(pidFile, 'utf8')).trim())
    if (pid > 0) process.kill(pid, 'SIGKILL')
  }, 30_000)

  it('keeps a bounded tail of megabytes of output, with the digest and count of all of it', async () => {
    // 4 MiB of output; the last line is what the excerpt shows.
    const r = await run(`head -c 4194304 /dev/zero | tr '\\0' x; echo; echo the end`)
    const out = (r.evidence as {output: {bytes: number; sha256: string; truncated: boolean; excerpt: string}}).output
    expect(r.status).toBe('pass')
    expect(out.bytes).toBe(4 * 1024 * 1024 + '\nthe end\n'.length)
    expect(out.truncated).toBe(true)
    expect(out.sha256).toMatch(/^[0-9a-f]{64}$/)
    // The excerpt starts at a line: the 4 MiB line is cut, so only what follows it is shown.
    expect(out.excerpt).toBe('the end\n')
    expect(Buffer.byteLength(out.excerpt)).toBeLessThanOrEqual(2048)
  })

  it('fails a command that exits 0 but prints PASS=5 FAIL=1, naming both', async () => {
    const r = await run('echo PASS=6 FAIL=0; echo "PASS=5 FAIL=1"', {expect: {pass: 6, fail: 0}})
    expect(r).toMatchObject({status: 'fail', reason: 'PASS=5 FAIL=1, expected PASS=6 FAIL=0'})
  })

  it('fails a command with expect: that prints no PASS=N FAIL=M line', async () => {
    expect(await run('echo all good', {expect: {pass: 6, fail: 0}})).toMatchObject({status: 'fail', reason: 'exited 0 but printed no PASS=N FAIL=M line (expected PASS=6 FAIL=0)'})
  })

  it('passes PASS=6 FAIL=0', async () => {
    expect(await run('echo checks...; echo PASS=6 FAIL=0', {expect: {pass: 6, fail: 0}})).toMatchObject({status: 'pass', reason: 'exited 0, PASS=6 FAIL=0'})
  })

  it('redacts secrets and drops terminal controls from the excerpt', async () => {
    const r = await run(`printf 'key AKIA%s\\npassword=hunter2hunter2\\n\\033[2Jdone\\n' IOSFODNN7EXAMPLE`)
    const excerpt = (r.evidence as {output: {excerpt: string}}).output.excerpt
    expect(excerpt).toBe('key [REDACTED]\npassword=[REDACTED]\ndone\n')
    expect(excerpt).not.toContain('IOSFODNN7EXAMPLE')
    expect(excerpt).not.toContain('hunter2')
  })

  it('runs in the work tree with the environment it is given (AIRLOCK_ROOT)', async () => {
    const r = await runCommandGate({run: 'echo "$AIRLOCK_ROOT $(pwd)"', timeoutMs: 60_000}, {dir, signal: new AbortController().signal, limits, env: {AIRLOCK_ROOT: '/opt/airlock'}})
    expect((r.evidence as {output: {excerpt: string}}).output.excerpt).toBe(`/opt/airlock ${dir}\n`)
  })

  it('reads the last PASS=N FAIL=M line', () => {
    expect(lastPassFail('PASS=1 FAIL=0\nx\nresult: PASS=5 FAIL=1\n')).toEqual({pass: 5, fail: 1})
    expect(lastPassFail('nothing')).toBeNull()
  })
})
