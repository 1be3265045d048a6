/**
 * The gate runner: a suite's gates in dependency order, independent ones in parallel (at most
 * `jobs` at a time). Each gate ends pass, fail or not_run with a reason:
 *
 * - a gate whose need did not pass is not_run ("needs X, which failed / did not run");
 * - a gate that requires a lab host is not_run without `host` ("requires a lab host"), and so is
 *   one that needs such a gate; these do not fail the run;
 * - each gate gets an AbortSignal at its timeout; a builtin still running then is a fail
 *   ("timed out after …"), a `run:` gate's process group is killed;
 * - a shadow gate is recorded, never fails the run.
 *
 * The run passes (exit 0) only if every required enforced gate that ran passed and no other
 * required enforced gate is not_run. Time comes from the caller's clock; gates never read it.
 */
import {asAirlockError} from '../errors.js'
import {redact} from './redact.js'
import {formatMs} from './run-command.js'
import type {BuiltinGate, Finding, GateContext, GateResult, GateRunRecord, GateSpec, TestResultPredicate} from './types.js'

export type GateEvent = {type: 'started'; id: string; at: Date} | {type: 'ended'; id: string; at: Date; record: GateRunRecord}

export interface RunSuiteOptions {
  suite: string
  gates: GateSpec[]
  /** Gates running at once (≥ 1). */
  jobs: number
  host: boolean
  builtins: Readonly<Record<string, BuiltinGate>>
  /** What every gate's context shares; `with`, `signal` and `host` are the runner's. */
  context: Omit<GateContext, 'with' | 'signal' | 'host'>
  /** Runs a `run:` gate (run-command.ts), killing it when `signal` aborts. */
  runCommand(gate: GateSpec, ctx: GateContext): Promise<GateResult>
  /** The clock elapsed times and start/end stamps are read from. */
  clock: () => Date
  onEvent?: (event: GateEvent) => void
}

export interface SuiteRun {
  suite: string
  startedAt: string
  finishedAt: string
  host: boolean
  gates: GateRunRecord[]
  /** Findings the gates returned (secret scan, sandbox check…), for SARIF and JUnit. */
  findings: Finding[]
  result: TestResultPredicate['result']
  passedTests: string[]
  warnedTests: string[]
  failedTests: string[]
  exitCode: 0 | 1
}

const HOST_REASON = 'requires a lab host (--host)'

/** Runs one suite to its end. */
export async function runSuite(opts: RunSuiteOptions): Promise<SuiteRun> {
  const startedAt = opts.clock()
  const jobs = Math.max(1, Math.floor(opts.jobs))
  const records = new Map<string, GateRunRecord>()
  /** not_run only for want of a lab host (directly or through a need): does not fail the run. */
  const hostSkipped = new Set<string>()
  const findings: Finding[] = []
  const running = new Map<string, Promise<void>>()

  const finish = (gate: GateSpec, result: GateResult, elapsedMs: number) => {
    // Secrets never in evidence: what a gate says (it may quote a file or a command) is redacted here, once for every output.
    const record: GateRunRecord = {id: gate.id, status: result.status, reason: redact(result.reason), mode: gate.mode, required: gate.required, elapsedMs, ...(result.evidence ? {evidence: redactDeep(result.evidence) as Record<string, unknown>} : {})}
    records.set(gate.id, record)
    // A finding's message and file are text a repository chose (a script's syntax error quotes it): redacted too.
    if (result.findings) findings.push(...result.findings.map((f) => ({...f, message: redact(f.message), file: redact(f.file)})))
    opts.onEvent?.({type: 'ended', id: gate.id, at: opts.clock(), record})
  }

  /** Decides, without running it, a gate that cannot run; null when it may run now. */
  const blocked = (gate: GateSpec): GateResult | null => {
    if (gate.requires.includes('host') && !opts.host) {
      hostSkipped.add(gate.id)
      return {status: 'not_run', reason: HOST_REASON}
    }
    const failedNeed = gate.needs.find((n) => records.has(n) && records.get(n)!.status !== 'pass')
    if (failedNeed) {
      const need = records.get(failedNeed)!
      if (hostSkipped.has(failedNeed)) hostSkipped.add(gate.id)
      return {status: 'not_run', reason: `needs ${failedNeed}, which ${need.status === 'fail' ? 'failed' : hostSkipped.has(failedNeed) ? 'requires a lab host' : 'did not run'}`}
    }
    return null
  }

  const start = (gate: GateSpec) => {
    const began = opts.clock()
    opts.onEvent?.({type: 'started', id: gate.id, at: began})
    const task = runOne(gate, opts).then((result) => {
      finish(gate, result, Math.max(0, opts.clock().getTime() - began.getTime()))
      running.delete(gate.id)
    })
    running.set(gate.id, task)
  }

  for (;;) {
    // Everything decidable now: blocked gates end at once; ready ones start while slots are free.
    let progressed = true
    while (progressed) {
      progressed = false
      for (const gate of opts.gates) {
        if (records.has(gate.id) || running.has(gate.id)) continue
        const pending = gate.needs.some((n) => !records.has(n))
        const failed = gate.needs.some((n) => records.has(n) && records.get(n)!.status !== 'pass')
        if (pending && !failed && !(gate.requires.includes('host') && !opts.host)) continue
        const verdict = blocked(gate)
        if (verdict) {
          opts.onEvent?.({type: 'started', id: gate.id, at: opts.clock()})
          finish(gate, verdict, 0)
          progressed = true
        } else if (running.size < jobs) {
          start(gate)
          progressed = true
        }
      }
    }
    if (running.size === 0) break
    await Promise.race(running.values())
  }

  const ordered = opts.gates.map((g) => records.get(g.id)!)
  const counts = (r: GateRunRecord) => r.mode === 'enforce' && r.required
  const failing = ordered.filter((r) => counts(r) && (r.status === 'fail' || (r.status === 'not_run' && !hostSkipped.has(r.id))))
  const warned = ordered.filter((r) => r.status === 'fail' && !counts(r))
  const name = (r: GateRunRecord) => `${opts.suite}/${r.id}`
  const exitCode = failing.length === 0 ? 0 : 1
  return {
    suite: opts.suite,
    startedAt: startedAt.toISOString(),
    finishedAt: opts.clock().toISOString(),
    host: opts.host,
    gates: ordered,
    findings,
    result: exitCode === 1 ? 'FAILED' : warned.length > 0 ? 'WARNED' : 'PASSED',
    passedTests: ordered.filter((r) => r.status === 'pass').map(name),
    warnedTests: warned.map(name),
    failedTests: failing.map(name),
    exitCode,
  }
}

/** One gate, with its timeout: a builtin that overruns fails; a `run:` gate is killed by its runner. */
async function runOne(gate: GateSpec, opts: RunSuiteOptions): Promise<GateResult> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${formatMs(gate.timeoutMs)}`)), gate.timeoutMs)
  const ctx: GateContext = {...opts.context, gateId: gate.id, with: gate.with, signal: controller.signal, host: opts.host}
  try {
    if (gate.run !== undefined) return await opts.runCommand(gate, ctx)
    const builtin = opts.builtins[gate.uses!.slice('builtin/'.length)]
    if (!builtin) return {status: 'not_run', reason: `unknown builtin ${gate.uses}`}
    const timedOut = new Promise<GateResult>((resolve) => {
      controller.signal.addEventListener('abort', () => resolve({status: 'fail', reason: `timed out after ${formatMs(gate.timeoutMs)}`}), {once: true})
    })
    return await Promise.race([builtin.run(ctx), timedOut])
  } catch (error) {
    // A gate that throws has failed, with what it said (never a stack trace in evidence).
    const e = asAirlockError(error)
    return {status: 'fail', reason: `${e.code}: ${e.message}`}
  } finally {
    clearTimeout(timer)
  }
}

/** Every string of a JSON-like value redacted (keys kept). */
function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redact(value)
  if (depth > 32 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1))
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, depth + 1)]))
}
