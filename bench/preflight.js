// Preflight benchmark: whole-process wall time of `airlock preflight --json` as a user runs it (a
// fresh `node bin/run.js` on the project-local Node 22), with each gate's own time taken from the
// JSON it prints (`elapsedMs`) and the suite's (`finishedAt` − `startedAt`). Two kinds of fleet:
//  1. the embedded example fleet (`preflight --example`): examples/fleet.bundle cloned and its
//     history verified from the pinned anchor before the suite runs. That overhead is the wall time
//     minus the suite's, and `gate list --example` (the same verification, no suite) on its own.
//     Baselines in the same run: `node -e ''` (process start) and native `git clone` of the bundle.
//  2. generated fleets: `airlock init DIR --apply`, then N sandbox specs (the scaffold's, with
//     distinct names) committed by one `airlock change --apply` (the signed path), then
//     `preflight --repo DIR`. Baselines in the same run: native `git ls-files | wc -l` and
//     `git status` in that repository. The largest fleet also with `--jobs 1` (each gate's own
//     time) and after `git repack -ad` (packed, as a clone). A failure is recorded, not hidden.
// Medians of BENCH_RUNS runs after one warm-up. Writes the preflight section of docs/benchmarks.md.
// `node bench/preflight.js` (needs `npm run build` first). BENCH_PREFLIGHT_SIZES=0,500,2000 sets
// the generated fleets (0: the scaffold alone).
import {spawnSync} from 'node:child_process'
import {mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync} from 'node:fs'
import {cpus, loadavg} from 'node:os'
import {join} from 'node:path'
import {machine, median, ROOT, writeSection} from './report.js'

const STARTED = `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`
const LOAD = loadavg().map((x) => x.toFixed(2)).join(', ')
const WORK = join(ROOT, 'bench', '.work', 'preflight')
const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node')
const BIN = join(ROOT, 'bin', 'run.js')
const BUNDLE = join(ROOT, 'examples', 'fleet.bundle')
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const SIZES = (process.env.BENCH_PREFLIGHT_SIZES ?? '0,500,2000').split(',').map(Number)
/** Files in one `airlock change` if a single change of all of them fails. */
const SPLIT = 500

/** One process: wall time, exit, and what it printed. Never throws: a failure is a result. */
function run(cmd, args, {cwd = ROOT, env = process.env} = {}) {
  const start = process.hrtime.bigint()
  const r = spawnSync(cmd, args, {cwd, env, encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe']})
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  return {ms, status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error}
}

/** What a failed process said, on one line: exit, then its JSON error, or Node's error and first frames from stderr (all of it to our stderr). */
function failure(r) {
  const exit = r.error ? String(r.error.message) : r.signal ? `signal ${r.signal}` : `exit ${r.status}`
  let said = ''
  try {
    const j = JSON.parse(r.stdout)
    said = j.error ? `${j.error.code ?? ''} ${j.error.message ?? JSON.stringify(j.error)}` : `result ${j.result ?? j.outcome ?? '?'}`
  } catch {
    const lines = r.stderr.split('\n')
    const at = lines.findIndex((l) => /^(Uncaught\b|[A-Za-z]*Error\b|\[[A-Za-z]*Error)/.test(l))
    said =
      at >= 0
        ? [`${lines[at]}`, ...lines.slice(at + 1).filter((l) => /^\s+at /.test(l)).slice(0, 4).map((l) => l.trim()), ...lines.filter((l) => /^\s+code: /.test(l)).map((l) => l.trim()), `(thrown at ${lines[0]})`].join(' / ')
        : `${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-3).join(' / ')
  }
  console.error(`--- failed (${exit}); its stderr:\n${r.stderr}\n---`)
  return `${exit}: ${said.replace(/\s+/g, ' ').trim().slice(0, 1200)}`
}

/** One warm-up, then RUNS timed runs of `cmd args` (each after `before`); throws if one fails. */
function runs(cmd, args, opts = {}, before = () => {}) {
  const out = []
  for (let i = 0; i <= RUNS; i++) {
    before()
    const r = run(cmd, args, opts)
    if (r.status !== 0) throw new Error(`${[cmd, ...args].join(' ')}: ${failure(r)}`)
    if (i > 0) out.push(r)
  }
  return out
}

const sh = (script, cwd) => runs('sh', ['-c', script], {cwd})

/**
 * `airlock preflight … --json`: the wall time, the suite's own time and each gate's elapsedMs,
 * medians over the runs. A run that exits non-zero is kept (exit 1 is a failed gate) but noted.
 */
function preflight(args, opts) {
  const rs = []
  for (let i = 0; i <= RUNS; i++) {
    const r = run(NODE, [BIN, 'preflight', ...args, '--json'], opts)
    let j = null
    try {
      j = JSON.parse(r.stdout)
    } catch {
      // Not JSON: recorded as the failure below.
    }
    if (!j?.gates) return {failed: `${i === 0 ? 'the warm-up run' : `run ${i} of ${RUNS}`} (after ${rs.length} that passed): ${failure(r)}`}
    if (i > 0) rs.push({ms: r.ms, status: r.status, j})
  }
  const suite = rs.map((r) => Date.parse(r.j.finishedAt) - Date.parse(r.j.startedAt))
  const gates = rs[0].j.gates.map((g) => ({
    id: g.id,
    status: [...new Set(rs.map((r) => r.j.gates.find((x) => x.id === g.id)?.status))].join('/'),
    ms: median(rs.map((r) => r.j.gates.find((x) => x.id === g.id)?.elapsedMs ?? 0)),
    reason: g.reason,
  }))
  return {
    wall: median(rs.map((r) => r.ms)),
    suite: median(suite),
    outside: median(rs.map((r, i) => r.ms - suite[i])),
    result: [...new Set(rs.map((r) => `${r.j.result} (exit ${r.status})`))].join(', '),
    gates,
  }
}

/** The scaffold's sandbox spec under another name. */
const sandboxCopy = (text, name) => text.replace(/^(metadata:\n  name: )agent-runner$/m, `$1${name}`)

/** A fleet: `init --apply`, then `size` sandbox specs through `change --apply` (one change; split if that fails). */
function makeFleet(size) {
  const dir = join(WORK, `fleet-${size}`)
  const env = {...process.env, AIRLOCK_EVIDENCE_KEY: join(dir, 'keys', 'evidence.key')}
  const fleet = {size, dir, env, changes: [], problems: [], ready: false}
  const init = run(NODE, [BIN, 'init', dir, '--apply', '--json'])
  fleet.initMs = init.ms
  if (init.status !== 0) {
    fleet.problems.push(`\`airlock init --apply\` ${failure(init)}`)
    return fleet
  }
  if (size === 0) return {...fleet, ready: true}
  const spec = readFileSync(join(dir, 'manifests', 'sandboxes', 'agent-runner.yaml'), 'utf8')
  const names = Array.from({length: size}, (_, i) => `bench-${String(i + 1).padStart(5, '0')}`)
  const write = (ns) => ns.forEach((n) => writeFileSync(join(dir, 'manifests', 'sandboxes', `${n}.yaml`), sandboxCopy(spec, n)))
  const change = (ns, reason) => {
    const r = run(NODE, [BIN, 'change', '--repo', dir, '--reason', reason, '--apply', '--json'], {cwd: dir, env})
    fleet.changes.push({files: ns.length, ms: r.ms, ok: r.status === 0, error: r.status === 0 ? null : failure(r)})
    return r.status === 0
  }
  write(names)
  if (change(names, `bench: ${size} sandbox specs`)) return {...fleet, ready: true}
  fleet.problems.push(`one \`airlock change --apply\` of ${size} files ${fleet.changes.at(-1).error}; split into changes of ${SPLIT}`)
  // Split: take the uncommitted copies away, then write and commit them SPLIT at a time.
  names.forEach((n) => unlinkSync(join(dir, 'manifests', 'sandboxes', `${n}.yaml`)))
  for (let i = 0; i < names.length; i += SPLIT) {
    const chunk = names.slice(i, i + SPLIT)
    write(chunk)
    if (!change(chunk, `bench: sandbox specs ${i + 1}–${i + chunk.length}`)) {
      fleet.problems.push(`the split change of files ${i + 1}–${i + chunk.length} ${fleet.changes.at(-1).error}`)
      return fleet
    }
  }
  return {...fleet, ready: true}
}

const fmt = (ms) => (ms === null || ms === undefined ? '' : `${ms.toFixed(0)} ms`)
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : '')
const n = (x) => x.toLocaleString('en-US')

async function main() {
  rmSync(WORK, {recursive: true, force: true})
  mkdirSync(WORK, {recursive: true})
  const rows = []
  const add = (what, ms, baseline = null, baseMs = null) => rows.push(`| ${what} | ${fmt(ms)} | ${baseline ?? ''} | ${fmt(baseMs)} | ${ratio(ms, baseMs)} |`)
  const columns = []
  const notes = []

  // 1. The example fleet.
  console.error('preflight --example …')
  const nodeE = median(runs(NODE, ['-e', '']).map((r) => r.ms))
  const clone = join(WORK, 'clone')
  const gitClone = median(runs('git', ['clone', '--quiet', BUNDLE, clone], {}, () => rmSync(clone, {recursive: true, force: true})).map((r) => r.ms))
  rmSync(clone, {recursive: true, force: true})
  const list = median(runs(NODE, [BIN, 'gate', 'list', '--example', '--json']).map((r) => r.ms))
  const ex = preflight(['--example'], {})
  add("`node -e ''`", nodeE)
  add('`git clone --quiet examples/fleet.bundle` (native git)', gitClone)
  if (ex.failed) {
    notes.push(`\`airlock preflight --example --json\` failed: ${ex.failed}`)
  } else {
    add('`airlock preflight --example --json`, wall', ex.wall, "`node -e ''`", nodeE)
    add('… the suite (its `startedAt` → `finishedAt`)', ex.suite)
    add('… outside the suite: process, clone and verification of the example fleet, verified HEAD, gates file', ex.outside, '`git clone` of the bundle', gitClone)
    columns.push({title: 'example fleet', run: ex})
  }
  add('`airlock gate list --example --json` (the example fleet verified, no suite)', list, '`git clone` of the bundle', gitClone)

  // 2. Generated fleets.
  const setup = []
  for (const size of SIZES) {
    console.error(`fleet with ${size} added sandbox specs …`)
    const fleet = makeFleet(size)
    const what = size === 0 ? 'the `init` scaffold' : `${n(size)} sandbox specs added`
    setup.push(`| ${what} | ${fmt(fleet.initMs)} | ${fleet.changes.map((c) => `${n(c.files)} files: ${c.ok ? fmt(c.ms) : `**failed** after ${fmt(c.ms)}`}`).join('; ') || '—'} |`)
    notes.push(...fleet.problems.map((p) => `${what}: ${p}`))
    if (!fleet.ready) continue
    const files = Number(run('sh', ['-c', 'git ls-files | wc -l'], {cwd: fleet.dir}).stdout.trim())
    const sandboxes = Number(run('sh', ['-c', 'git ls-files manifests/sandboxes | wc -l'], {cwd: fleet.dir}).stdout.trim())
    const lsFiles = median(sh('git ls-files | wc -l >/dev/null', fleet.dir).map((r) => r.ms))
    const status = median(sh('git status >/dev/null', fleet.dir).map((r) => r.ms))
    const pf = preflight(['--repo', fleet.dir], {cwd: fleet.dir, env: fleet.env})
    const label = `${n(sandboxes)} sandbox spec${sandboxes === 1 ? '' : 's'}, ${n(files)} files`
    if (pf.failed) {
      notes.push(`\`airlock preflight --repo\` on ${label}: ${pf.failed}`)
    } else {
      add(`\`git ls-files \\| wc -l\` (native git, ${label})`, lsFiles)
      add(`\`airlock preflight --repo DIR --json\` (${label}), wall`, pf.wall, '`git status` (native git)', status)
      add('… the suite', pf.suite)
      add('… outside the suite: process, verified HEAD, gates file', pf.outside, "`node -e ''`", nodeE)
      columns.push({title: label, run: pf})
    }
    // The largest fleet twice more: its gates one at a time (the builtin gates share one event
    // loop, so with --jobs 2 a gate's elapsedMs includes waiting on the other gate's CPU work),
    // and its objects packed (`git repack -ad`, as a clone has them; `change` leaves them loose).
    if (size === SIZES.at(-1) && !pf.failed) {
      const opts = {cwd: fleet.dir, env: fleet.env}
      const one = preflight(['--repo', fleet.dir, '--jobs', '1'], opts)
      if (one.failed) notes.push(`\`airlock preflight --repo --jobs 1\` on ${label}: ${one.failed}`)
      else {
        add(`\`airlock preflight --repo DIR --jobs 1 --json\` (${label}: gates one at a time), wall`, one.wall)
        add('… the suite', one.suite)
        columns.push({title: `${label}, \`--jobs 1\``, run: one})
      }
      const repack = run('git', ['repack', '-adq'], opts)
      if (repack.status !== 0) notes.push(`\`git repack -ad\` on ${label}: ${failure(repack)}`)
      const loose = run('sh', ['-c', "git count-objects -v | awk '/^count:/ {print $2}'"], opts).stdout.trim()
      const packed = preflight(['--repo', fleet.dir], opts)
      if (packed.failed) notes.push(`\`airlock preflight --repo\` on ${label}, packed: ${packed.failed}`)
      else {
        add(`\`airlock preflight --repo DIR --json\` (${label}, after \`git repack -ad\`: ${loose} loose objects), wall`, packed.wall, '`git status` (native git)', median(sh('git status >/dev/null', fleet.dir).map((r) => r.ms)))
        add('… the suite', packed.suite)
        columns.push({title: `${label}, packed`, run: packed})
      }
    }
    rmSync(fleet.dir, {recursive: true, force: true})
  }

  const ids = [...new Set(columns.flatMap((c) => c.run.gates.map((g) => g.id)))]
  const cell = (c, id) => {
    const g = c.run.gates.find((x) => x.id === id)
    return !g ? '' : g.status === 'pass' ? fmt(g.ms) : `${g.status}${g.ms ? ` ${fmt(g.ms)}` : ''}`
  }
  const gateTable = [
    `| gate | ${columns.map((c) => c.title).join(' | ')} |`,
    `| --- |${columns.map(() => ' ---: |').join('')}`,
    ...ids.map((id) => `| ${id} | ${columns.map((c) => cell(c, id)).join(' | ')} |`),
    `| the suite | ${columns.map((c) => fmt(c.run.suite)).join(' | ')} |`,
    `| result | ${columns.map((c) => c.run.result).join(' | ')} |`,
  ].join('\n')
  const biggest = columns.find((c) => c.title.startsWith(`${n(SIZES.at(-1) + 1)} `)) ?? columns.at(-1)
  const reasons = biggest ? biggest.run.gates.filter((g) => g.status === 'pass').map((g) => `- **${g.id}** (${biggest.title}): ${g.reason}`) : []

  const date = new Date().toISOString().slice(0, 10)
  const section = `## Preflight — ${date}

Machine: ${machine()}. \`node bench/preflight.js\` (part of \`npm run bench\`), started ${STARTED}. Load average when it started: ${LOAD} (1, 5, 15 min; on ${cpus().length} cores). Whole processes, as a user runs them: medians of ${RUNS} runs after one warm-up (so in a generated fleet the history gate finds the verified tip cached, as on a developer's machine; the example fleet is a fresh temporary clone each run, walked every time). Each gate's time is its own \`elapsedMs\` from the JSON. Gates run two at a time (\`--jobs\` 2) and the builtin ones share the command's one event loop, so a gate's \`elapsedMs\` includes waiting on the other's CPU work; the largest fleet is also run with \`--jobs 1\`, which gives each gate's own time, and once more with its objects packed, as a clone (and CI) has them: \`airlock change\` writes loose objects. The generated fleets are \`airlock init DIR --apply\`, then copies of the scaffold's sandbox spec with distinct names, committed by one \`airlock change --apply\` (validated, authorized, signed), with \`AIRLOCK_EVIDENCE_KEY=DIR/keys/evidence.key\`; each baseline is native git in the same repository in the same run.

| what | airlock (median) | baseline | baseline (median) | ratio |
| --- | ---: | --- | ---: | ---: |
${rows.join('\n')}

Per gate (median \`elapsedMs\`; gates needing a lab host are \`not_run\` without \`--host\`):

${gateTable}

Making the generated fleets (one run each):

| fleet | \`airlock init --apply\` | \`airlock change --apply\` |
| --- | ---: | --- |
${setup.join('\n')}
${reasons.length ? `\nWhat the gates reported on the largest fleet:\n\n${reasons.join('\n')}\n` : ''}${notes.length ? `\nFailures:\n\n${notes.map((x) => `- ${x}`).join('\n')}\n` : ''}`
  console.log(section)
  writeSection('preflight', section)
}

try {
  await main()
} finally {
  rmSync(WORK, {recursive: true, force: true})
}
