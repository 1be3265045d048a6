// Crash trials: `kill -9` at random points of `promote --apply` and `rollback --apply` on a real
// fleet, each followed by `airlock repair --apply` and a promote that must succeed. After every
// trial the repository must be before or after the change (clean `git status`), pass
// `git fsck --strict` and `airlock evidence verify`.
//
//   node bench/kill-trials.js [TRIALS]      (default 50; prints the outcome counts as JSON)
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node')
const BIN = join(ROOT, 'bin', 'run.js')
/** Who git says commits (airlock's commits take git's identity), whatever this machine's ~/.gitconfig. */
const IDENTITY = {GIT_AUTHOR_NAME: 'Kill Trials', GIT_AUTHOR_EMAIL: 'trials@example.com', GIT_COMMITTER_NAME: 'Kill Trials', GIT_COMMITTER_EMAIL: 'trials@example.com'}
const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`

function run(cwd, env, args, cmd = NODE) {
  const r = spawnSync(cmd, cmd === NODE ? [BIN, ...args] : args, {cwd, env: {...process.env, ...env}, encoding: 'utf8'})
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

function must(r, what) {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}: ${r.stdout}${r.stderr}`)
  return r
}

/** A fleet made by `airlock init --apply` with digests A and B signed, canary on A. */
function makeFleet() {
  const top = mkdtempSync(join(tmpdir(), 'airlock-kill-'))
  const dir = join(top, 'fleet')
  must(run(ROOT, IDENTITY, ['init', dir, '--apply']), 'init')
  const env = {AIRLOCK_EVIDENCE_KEY: join(dir, 'keys', 'evidence.key'), AIRLOCK_ACTOR: undefined, NO_COLOR: '1', ...IDENTITY}
  for (const d of [A, B]) must(run(dir, env, ['image', 'sign', `agent-runner@${d}`, '--key', join(dir, 'keys', 'image.key'), '--reason', 'built', '--apply']), 'image sign')
  must(run(dir, env, ['promote', 'agent-runner', '--to', 'canary', '--digest', A, '--reason', 'start', '--apply']), 'promote')
  return {top, dir, env}
}

const canary = (dir, env) => JSON.parse(must(run(dir, env, ['status', '--json']), 'status').stdout).images[0].channels.find((c) => c.channel === 'canary').digest
const head = (dir) => run(dir, {}, ['rev-parse', 'HEAD'], 'git').stdout.trim()

/** The argv of trial i: promote or roll back canary to the digest it does not hold. */
function operation(i, current) {
  const other = current === A ? B : A
  return i % 2 === 0
    ? ['promote', 'agent-runner', '--to', 'canary', '--digest', other, '--reason', `trial ${i}`, '--apply']
    : ['rollback', 'agent-runner', '--channel', 'canary', '--to', other, '--reason', `trial ${i}`, '--apply']
}

/**
 * Runs one command and kills it: `after` ms after it starts, or, with `inApply`, that many ms
 * after its apply lock appears (the apply's own writes take a few tens of ms of a run).
 */
function timedRun(dir, env, args, kill) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint()
    const child = spawn(NODE, [BIN, ...args], {cwd: dir, env: {...process.env, ...env}, stdio: 'ignore'})
    let timer = null
    let done = false
    const lock = join(dir, '.git', 'airlock.lock')
    if (kill && !kill.inApply) timer = setTimeout(() => child.kill('SIGKILL'), kill.after)
    // Without a kill: how long the apply lock is held (the apply's own window).
    let held = null
    if (!kill) {
      let since = null
      const watch = () => {
        if (done) return
        const now = existsSync(lock)
        if (now && since === null) since = process.hrtime.bigint()
        if (!now && since !== null && held === null) held = Number(process.hrtime.bigint() - since) / 1e6
        setImmediate(watch)
      }
      watch()
    }
    if (kill?.inApply) {
      const poll = () => {
        if (done) return
        if (existsSync(lock)) timer = setTimeout(() => child.kill('SIGKILL'), kill.after)
        else setImmediate(poll)
      }
      poll()
    }
    child.on('exit', (code, signal) => {
      done = true
      if (timer) clearTimeout(timer)
      resolve({code, signal, ms: Number(process.hrtime.bigint() - start) / 1e6, held})
    })
  })
}

/** Runs `trials` kill trials; returns the outcome counts and the first failures (none expected). */
export async function killTrials(trials, {seed = 1} = {}) {
  const {top, dir, env} = makeFleet()
  let x = seed
  const random = () => ((x = (x * 1103515245 + 12345) % 2 ** 31), x / 2 ** 31)
  const counts = {trials, killed: 0, completed: 0, before: 0, after: 0, repairs: {}, fsckFailed: 0, verifyFailed: 0, dirty: 0, repairFailed: 0, nextFailed: 0}
  const failures = []
  try {
    // How long one apply takes here: kill points are drawn over the whole run.
    const probe = await timedRun(dir, env, operation(0, canary(dir, env)), null)
    const applyMs = Math.max(10, (probe.held ?? 80) * 1.2)
    counts.runMs = Math.round(probe.ms)
    counts.applyWindowMs = Math.round(probe.held ?? -1)
    const span = probe.ms * 1.1
    for (let i = 1; i <= trials; i++) {
      const before = head(dir)
      const current = canary(dir, env)
      // Odd trials: a kill point anywhere in the run; even trials: one inside the apply (from the
      // moment its lock appears), where the writes are.
      const kill = i % 2 === 1 ? {after: Math.floor(span * random())} : {inApply: true, after: Math.floor(applyMs * random())}
      const r = await timedRun(dir, env, operation(i, current), kill)
      if (r.signal === 'SIGKILL') counts.killed++
      else counts.completed++
      const plan = run(dir, env, ['repair', '--json'])
      for (const f of JSON.parse(plan.stdout || '{"findings":[]}').findings ?? []) counts.repairs[f.kind] = (counts.repairs[f.kind] ?? 0) + 1
      const repaired = run(dir, env, ['repair', '--apply', '--json'])
      if (repaired.status !== 0) {
        counts.repairFailed++
        failures.push({trial: i, step: 'repair', out: repaired.stdout + repaired.stderr})
      }
      if (head(dir) === before) counts.before++
      else counts.after++
      const status = run(dir, {}, ['status', '--porcelain'], 'git').stdout.trim()
      if (status !== '') {
        counts.dirty++
        failures.push({trial: i, step: 'git status', out: status})
      }
      const fsck = run(dir, {}, ['fsck', '--strict', '--no-dangling'], 'git')
      if (fsck.status !== 0) {
        counts.fsckFailed++
        failures.push({trial: i, step: 'fsck', out: fsck.stdout + fsck.stderr})
      }
      const verify = run(dir, env, ['evidence', 'verify'])
      if (verify.status !== 0) {
        counts.verifyFailed++
        failures.push({trial: i, step: 'evidence verify', out: verify.stdout + verify.stderr})
      }
      const next = run(dir, env, operation(0, canary(dir, env)))
      if (next.status !== 0) {
        counts.nextFailed++
        failures.push({trial: i, step: 'next promote', out: next.stdout + next.stderr})
      }
    }
  } finally {
    rmSync(top, {recursive: true, force: true})
  }
  return {counts, failures: failures.slice(0, 5)}
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const trials = Number(process.argv[2] ?? 50)
  const result = await killTrials(trials)
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  process.exitCode = result.failures.length === 0 ? 0 : 1
}
