/**
 * `run:` gates: a shell command in the work tree, in its own process group, killed as a group
 * (SIGTERM, then SIGKILL) when the gate's signal aborts at its timeout. Its output (stdout and
 * stderr together) is hashed and counted in full, but only its last `maxGateOutputBytes` are kept
 * in memory; the receipt gets the digest, the byte count and a short excerpt of the end,
 * sanitized and redacted. A nonzero exit fails the gate; with `expect:`, so does a last
 * `PASS=N FAIL=M` line that says other counts, or none at all.
 */
import {createHash} from 'node:crypto'
import {execa} from 'execa'
import type {Limits} from '../limits.js'
import {forTerminal} from '../terminal.js'
import {redact} from './redact.js'
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

/** Runs a `run:` gate to its end, or to its timeout (the signal), and judges it. */
export async function runCommandGate(gate: CommandGate, ctx: {dir: string; signal: AbortSignal; limits: Pick<Limits, 'maxGateOutputBytes'>; env?: Record<string, string>}): Promise<GateResult> {
  const out = new BoundedOutput(ctx.limits.maxGateOutputBytes)
  const child = execa(gate.run, {shell: true, cwd: ctx.dir, detached: true, stdin: 'ignore', all: true, buffer: false, reject: false, env: ctx.env, cleanup: true})
  let timedOut = false
  let killTimer: NodeJS.Timeout | undefined
  const onAbort = () => {
    timedOut = true
    killGroup(child.pid, 'SIGTERM')
    killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS)
  }
  if (ctx.signal.aborted) onAbort()
  else ctx.signal.addEventListener('abort', onAbort, {once: true})
  child.all?.on('data', (chunk: Buffer) => out.add(chunk))
  const result = await child
  ctx.signal.removeEventListener('abort', onAbort)
  // Whatever the shell left in its group goes with it.
  killGroup(child.pid, 'SIGKILL')
  clearTimeout(killTimer)
  const tail = out.tail().toString('utf8')
  const excerptBytes = Buffer.from(tail).subarray(-EXCERPT_BYTES).toString('utf8').replace(/^\uFFFD+/, '')
  const evidence: Record<string, unknown> = {
    command: redact(gate.run),
    exitCode: result.exitCode ?? null,
    ...(result.signal ? {signal: result.signal} : {}),
    output: {sha256: out.digest(), bytes: out.bytes, truncated: out.bytes > ctx.limits.maxGateOutputBytes, excerpt: forTerminal(redact(excerptBytes), {keepNewlines: true})},
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
