/**
 * `run:` gates: a shell command in the work tree, in its own process group, killed as a group
 * (SIGTERM, then SIGKILL) when the gate's signal aborts at its timeout. Its output (stdout and
 * stderr together) is hashed and counted in full, but only its last `maxGateOutputBytes` are kept
 * in memory; the receipt gets the digest, the byte count and a short excerpt of the end,
 * sanitized and redacted. A nonzero exit fails the gate; with `expect:`, so does a last
 * `PASS=N FAIL=M` line that says other counts, or none at all.
 *
 * The excerpt is redacted whole before it is cut, and never starts mid-line (a secret cut in two
 * would escape its rule). The command gets the environment without airlock's own secrets or
 * anything named like a credential (AIRLOCK_* but AIRLOCK_ROOT; *TOKEN*, *SECRET*, *PASSWORD*,
 * *PRIVATE*, *CREDENTIAL*, *_KEY): a gate runs the repository's code, which proves nothing by
 * being there. A command that keeps the output open after its group is killed (it left the group)
 * is waited for only a grace period more.
 */
import {createHash} from 'node:crypto'
import {execa} from 'execa'
import type {Limits} from '../limits.js'
import {forTerminal} from '../terminal.js'
import {plainText, redact} from './redact.js'
import type {GateResult} from './types.js'

/** Characters of output's end kept in the receipt. */
export const EXCERPT_BYTES = 2048
/** Between SIGTERM and SIGKILL to the group. */
export const KILL_GRACE_MS = 2000

export interface CommandGate {
  run: string
  expect?: {pass: number; fail: number}
  timeoutMs: number
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`
  const s = Math.round(ms / 1000)
  return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m${s % 60}s`
}

/** The last `PASS=N FAIL=M` line of the output, if any. */
export function lastPassFail(text: string): {pass: number; fail: number} | null {
  const all = [...text.matchAll(/^.*\bPASS=(\d+)\s+FAIL=(\d+)\b.*$/gm)]
  const last = all.at(-1)
  return last ? {pass: Number(last[1]), fail: Number(last[2])} : null
}

/** Keeps the last `max` bytes of a stream, and the digest and length of all of it. */
class BoundedOutput {
  private readonly hash = createHash('sha256')
  private chunks: Buffer[] = []
  private kept = 0
  bytes = 0
  constructor(private readonly max: number) {}
  add(chunk: Buffer): void {
    this.hash.update(chunk)
    this.bytes += chunk.length
    this.chunks.push(chunk)
    this.kept += chunk.length
    while (this.kept - this.chunks[0]!.length >= this.max) this.kept -= this.chunks.shift()!.length
  }
  tail(): Buffer {
    const all = Buffer.concat(this.chunks)
    return all.subarray(Math.max(0, all.length - this.max))
  }
  digest(): string {
    return this.hash.digest('hex')
  }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return
  try {
    process.kill(-pid, signal)
  } catch {
    // The group is gone already.
  }
}

/** What a `run:` gate's command may see of airlock's environment. */
export function gateEnvironment(env: NodeJS.ProcessEnv, extra: Record<string, string> = {}): Record<string, string> {
  const secretName = /TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|_KEY$|^KEY$|APIKEY|API_KEY/i
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || (k.startsWith('AIRLOCK_') && k !== 'AIRLOCK_ROOT') || secretName.test(k)) continue
    out[k] = v
  }
  return {...out, ...extra}
}

/** The last `EXCERPT_BYTES` of the kept output, redacted whole first, starting at a line. */
export function excerptOf(tail: string, cutAtStart: boolean): string {
  // The kept tail may begin inside a secret (the rest was dropped): its first line goes.
  const whole = redact(plainText(cutAtStart ? tail.slice(tail.indexOf('\n') + 1) : tail))
  if (Buffer.byteLength(whole) <= EXCERPT_BYTES) return whole
  const window = Buffer.from(whole).subarray(-EXCERPT_BYTES).toString('utf8').replace(/^\uFFFD+/, '')
  const nl = window.indexOf('\n')
  return nl === -1 ? '' : window.slice(nl + 1)
}

/** Runs a `run:` gate to its end, or to its timeout (the signal), and judges it. */
export async function runCommandGate(gate: CommandGate, ctx: {dir: string; signal: AbortSignal; limits: Pick<Limits, 'maxGateOutputBytes'>; env?: Record<string, string>}): Promise<GateResult> {
  const out = new BoundedOutput(ctx.limits.maxGateOutputBytes)
  const child = execa(gate.run, {shell: true, cwd: ctx.dir, detached: true, stdin: 'ignore', all: true, buffer: false, reject: false, env: gateEnvironment(process.env, ctx.env), extendEnv: false, cleanup: true})
  let timedOut = false
  const timers: NodeJS.Timeout[] = []
  // A process that left the group can hold the output open: after SIGKILL and one more grace
  // period the pipes are closed on our side and the gate ends.
  let abandon: (() => void) | undefined
  const abandoned = new Promise<{exitCode?: number; signal?: string; failed?: boolean; shortMessage?: string; message?: string}>((resolve) => (abandon = () => resolve({signal: 'SIGKILL'})))
  const onAbort = () => {
    timedOut = true
    killGroup(child.pid, 'SIGTERM')
    timers.push(
      setTimeout(() => {
        killGroup(child.pid, 'SIGKILL')
        timers.push(
          setTimeout(() => {
            for (const s of [child.all, child.stdout, child.stderr]) s?.destroy()
            abandon?.()
          }, KILL_GRACE_MS),
        )
      }, KILL_GRACE_MS),
    )
  }
  if (ctx.signal.aborted) onAbort()
  else ctx.signal.addEventListener('abort', onAbort, {once: true})
  child.all?.on('data', (chunk: Buffer) => out.add(chunk))
  child.catch(() => {})
  const result = await Promise.race([child, abandoned])
  ctx.signal.removeEventListener('abort', onAbort)
  // Whatever the shell left in its group goes with it.
  killGroup(child.pid, 'SIGKILL')
  for (const t of timers) clearTimeout(t)
  const tail = out.tail().toString('utf8')
  const evidence: Record<string, unknown> = {
    command: redact(gate.run),
    exitCode: result.exitCode ?? null,
    ...(result.signal ? {signal: result.signal} : {}),
    output: {sha256: out.digest(), bytes: out.bytes, truncated: out.bytes > ctx.limits.maxGateOutputBytes, excerpt: forTerminal(excerptOf(tail, out.bytes > Buffer.byteLength(tail)), {keepNewlines: true})},
  }
  if (timedOut) return {status: 'fail', reason: `timed out after ${formatMs(gate.timeoutMs)}; its process group was killed`, evidence: {...evidence, timedOut: true}}
  if (result.failed && result.exitCode === undefined && !result.signal) return {status: 'fail', reason: `could not start: ${forTerminal(String(result.shortMessage ?? result.message))}`, evidence}
  if (result.exitCode !== 0) return {status: 'fail', reason: result.signal ? `killed by ${result.signal}` : `exited with ${result.exitCode}`, evidence}
  if (gate.expect) {
    const got = lastPassFail(tail)
    if (!got) return {status: 'fail', reason: `exited 0 but printed no PASS=N FAIL=M line (expected PASS=${gate.expect.pass} FAIL=${gate.expect.fail})`, evidence}
    evidence.counts = got
    if (got.pass !== gate.expect.pass || got.fail !== gate.expect.fail) return {status: 'fail', reason: `PASS=${got.pass} FAIL=${got.fail}, expected PASS=${gate.expect.pass} FAIL=${gate.expect.fail}`, evidence}
    return {status: 'pass', reason: `exited 0, PASS=${got.pass} FAIL=${got.fail}`, evidence}
  }
  return {status: 'pass', reason: 'exited 0', evidence}
}
