// `npm run bench`: whole-process timings of airlock against baselines measured in the same
// run (native git doing the same reads, an empty oclif CLI, `node -e ''`). Medians of N runs
// after a warm-up. Writes docs/benchmarks.md.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {generateFleet} from './generate.js'
import {machine, writeSection} from './report.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const WORK = join(ROOT, 'bench', '.work')
const NODE = process.execPath
const BIN = join(ROOT, 'bin', 'run.js')
const RUNS = Number(process.env.BENCH_RUNS ?? 11)

function time(cmd, args, cwd) {
  const start = process.hrtime.bigint()
  const r = spawnSync(cmd, args, {cwd, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30})
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return ms
}

function median(cmd, args, cwd, before = () => {}) {
  before()
  time(cmd, args, cwd)
  const xs = Array.from({length: RUNS}, () => (before(), time(cmd, args, cwd))).sort((a, b) => a - b)
  return xs[Math.floor(xs.length / 2)]
}

/** A fresh CI clone: no history verified before, no cache of any kind (.git/airlock/), so the whole history is walked. */
const coldHistory = (dir) => () => rmSync(join(dir, '.git', 'airlock'), {recursive: true, force: true})

/** Peak resident memory of a whole process (GNU time's %M, KiB → MiB): median of RUNS after a warm-up. */
function peakRss(cmd, args, cwd, before = () => {}) {
  const once = () => {
    before()
    const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], {cwd, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30})
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
    return Number(String(r.stderr).trim().split('\n').pop()) / 1024
  }
  once()
  const xs = Array.from({length: RUNS}, once).sort((a, b) => a - b)
  return xs[Math.floor(xs.length / 2)]
}

/** Commits reachable from HEAD. */
const commitCount = (dir) => Number(spawnSync('git', ['rev-list', '--count', 'HEAD'], {cwd: dir}).stdout.toString().trim())

const sh = (script) => ['sh', ['-c', script]]

// Native git doing the reads `airlock status` does: list the images, read every manifest,
// walk first-parent history with trailers and the files each commit changed.
const GIT_STATUS = sh(
  "git ls-tree HEAD manifests/images/ | awk '{print $3}' | git cat-file --batch >/dev/null && " +
    "git log --first-parent --format='%H %ct%n%(trailers:only,unfold)' --name-only -- manifests/images >/dev/null",
)
// The issue's baseline (issue 20): native git reading the same history, every commit with the
// files it changed (`git log --raw`).
const GIT_LOG_RAW = ['git', ['log', '--raw', '--format=%H %P %T%n%B']]
// Native git doing the reads a promote plan does: resolve HEAD, read the image manifest.
const gitPromote = (image) => sh(`git symbolic-ref HEAD >/dev/null && git rev-parse HEAD >/dev/null && git cat-file -p HEAD:manifests/images/${image}.yaml >/dev/null`)

async function main() {
  // BENCH_KEEP=1 keeps the generated fleets of an earlier run (same generator) instead of making them again.
  const keep = process.env.BENCH_KEEP === '1'
  if (!keep) rmSync(WORK, {recursive: true, force: true})
  mkdirSync(WORK, {recursive: true})
  const fleet = async (dir, size) => {
    if (!keep || !existsSync(join(dir, '.git', 'HEAD'))) {
      rmSync(dir, {recursive: true, force: true})
      await generateFleet(dir, size)
    }
  }
  const loadAtStart = loadavg()[0]
  const rows = []
  const rates = []
  const memory = []
  const add = (what, ms, baseline, baseMs) => rows.push({what, ms, baseline, baseMs})

  // --help against an empty oclif CLI.
  const empty = join(WORK, 'empty-cli')
  mkdirSync(join(empty, 'bin'), {recursive: true})
  writeFileSync(join(empty, 'package.json'), JSON.stringify({name: 'empty-cli', version: '0.0.0', type: 'module', oclif: {bin: 'empty', commands: './commands'}}))
  writeFileSync(join(empty, 'bin', 'run.js'), "import {execute} from '@oclif/core'\nawait execute({dir: import.meta.url})\n")
  const nodeE = median(NODE, ['-e', ''], ROOT)
  add("`node -e ''`", nodeE, null, null)
  add('`airlock --version`', median(NODE, [BIN, '--version'], ROOT), "`node -e ''`", nodeE)
  add('`airlock --help`', median(NODE, [BIN, '--help'], ROOT), 'empty oclif CLI `--help`', median(NODE, [join(empty, 'bin', 'run.js'), '--help'], empty))

  console.error('generating 2,000 images × 5,000 commits …')
  const big = join(WORK, 'fleet-2000')
  await fleet(big, {images: 2000, commits: 5000})
  const bigLog = median(...GIT_LOG_RAW, big)
  const bigStatus = median(NODE, [BIN, 'status', '--json'], big)
  add('`airlock status` (2,000 images, 5,000 commits)', bigStatus, '`git log --raw` over the same history', bigLog)
  add('`airlock status` (2,000 images, 5,000 commits)', bigStatus, 'native git reads (tree + first-parent `--name-only`)', median(...GIT_STATUS, big))
  add('`airlock status`, cold: no cache under .git/airlock/ (2,000 images, 5,000 commits)', median(NODE, [BIN, 'status', '--json'], big, coldHistory(big)), '`git log --raw` over the same history', bigLog)
  add('`airlock status img-00042` (one image)', median(NODE, [BIN, 'status', 'img-00042', '--json'], big), null, null)
  add('`airlock promote` plan (2,000 images)', median(NODE, [BIN, 'promote', 'img-00042', '--from', 'canary', '--to', 'stable', '--json'], big), 'native git reads', median(...gitPromote('img-00042'), big))
  add(
    '`airlock promote` plan, cold: all 5,000 commits verified (no cache)',
    median(NODE, [BIN, 'promote', 'img-00042', '--from', 'canary', '--to', 'stable', '--json'], big, coldHistory(big)),
    'native git reads of every commit and its signed-folder changes',
    median(...sh("git log --all --format='%H %P %T' --raw -- manifests bundles policies docs/evidence >/dev/null"), big),
  )
  // Cold `evidence verify` (no cache) against `git log --raw`, as rates: commits a second.
  const commits = commitCount(big)
  const verifyMs = median(NODE, [BIN, 'evidence', 'verify', '--json'], big, coldHistory(big))
  rates.push({what: `\`airlock evidence verify\`, cold (${commits.toLocaleString('en')} commits, 2,000 images)`, commits, ms: verifyMs, baseMs: bigLog})
  const promoteArgs = [BIN, 'promote', 'img-00042', '--from', 'canary', '--to', 'stable', '--json']
  memory.push({what: '`airlock promote` plan (2,000 images, 5,000 commits verified before)', mib: peakRss(NODE, promoteArgs, big), target: 80})
  memory.push({what: '`airlock promote` plan, cold: all 5,000 commits verified (no cache)', mib: peakRss(NODE, promoteArgs, big, coldHistory(big)), target: null})
  memory.push({what: "`node -e ''` (the floor)", mib: peakRss(NODE, ['-e', ''], ROOT), target: null})

  console.error('generating 10,000 images …')
  const huge = join(WORK, 'fleet-10000')
  await fleet(huge, {images: 10000, commits: 200})
  add('`airlock promote` plan (10,000 images)', median(NODE, [BIN, 'promote', 'img-04242', '--from', 'canary', '--to', 'stable', '--json'], huge), 'native git reads', median(...gitPromote('img-04242'), huge))
  const hugeStatus = median(NODE, [BIN, 'status', '--json'], huge)
  add('`airlock status` (10,000 images, 200 commits)', hugeStatus, '`git log --raw` over the same history', median(...GIT_LOG_RAW, huge))
  add('`airlock status` (10,000 images, 200 commits)', hugeStatus, 'native git reads (tree + first-parent `--name-only`)', median(...GIT_STATUS, huge))

  const date = new Date().toISOString().slice(0, 10)
  const fmt = (ms) => (ms === null ? '' : `${ms.toFixed(0)} ms`)
  const table = [
    '| what | airlock (median) | baseline | baseline (median) | ratio |',
    '| --- | ---: | --- | ---: | ---: |',
    ...rows.map((r) => `| ${r.what} | ${fmt(r.ms)} | ${r.baseline ?? ''} | ${fmt(r.baseMs)} | ${r.baseMs ? `${(r.ms / r.baseMs).toFixed(2)}×` : ''} |`),
  ].join('\n')
  const rate = (n, ms) => `${Math.round((n * 1000) / ms).toLocaleString('en')} commits/s`
  const rateTable = [
    '| what | airlock | `git log --raw` over the same commits | ratio of rates (target ≥ 0.5) |',
    '| --- | ---: | ---: | ---: |',
    ...rates.map((r) => `| ${r.what} | ${rate(r.commits, r.ms)} (${r.ms.toFixed(0)} ms) | ${rate(r.commits, r.baseMs)} (${r.baseMs.toFixed(0)} ms) | ${(r.baseMs / r.ms).toFixed(2)} |`),
  ].join('\n')
  const memoryTable = ['| what | peak RSS (median) | target |', '| --- | ---: | ---: |', ...memory.map((m) => `| ${m.what} | ${m.mib.toFixed(0)} MiB | ${m.target ? `≤ ${m.target} MiB` : ''} |`)].join('\n')
  const section =
    `## Core loop (issues 2 and 20) — ${date}\n\nMachine: ${machine()}. Medians of ${RUNS} whole-process runs after one warm-up (\`npm run bench\`); ` +
    'a warm run finds the caches of .git/airlock/ its warm-up wrote; a cold one starts without them (a fresh CI clone). ' +
    `Load average (1 min) ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end: on a shared machine read the ratios, not the times.\n\n` +
    `${table}\n\nRates (issue 20: a cold \`evidence verify\` at least half the rate of \`git log --raw\`):\n\n${rateTable}\n\n` +
    `Peak resident memory (GNU time %M):\n\n${memoryTable}\n`
  console.log(section)
  writeSection('core-loop', section)
}

// BENCH_ONLY=core-loop,startup,… runs only the named parts (default: all of them, in this order).
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null
const wanted = (name) => only === null || only.has(name)
if (wanted('core-loop')) await main()
// The policy engine's benchmark (issue 3) runs after the core loop's.
if (wanted('policy')) await import('./policy.js')
// The golden image benchmark (issue 4) last.
if (wanted('images')) await import('./images.js')
if (wanted('egress')) await import('./egress.js')
if (wanted('tools')) await import('./tools.js')
if (wanted('secrets')) await import('./secrets.js')
if (wanted('registry-limits')) await import('./registry-limits.js')
// Preflight: `airlock preflight` on the example fleet and on generated fleets (the scaffold, 500 and 2,000 sandbox specs).
if (wanted('preflight')) await import('./preflight.js')
// The audit log (issue 19): durable appends and `audit verify` against raw SHA-256; proofs from the
// tiles at 100k/1M/10M entries (BENCH_PROOF_SIZES=100000,1000000 leaves out the 10M tree); the
// compliance report over 10,000 signed receipts (BENCH_REPORT_RECEIPTS=N for fewer).
if (wanted('audit')) await import('./audit.js')
if (wanted('audit-proofs')) await import('./audit-proofs.js')
if (wanted('evidence-report')) await import('./evidence-report.js')
if (wanted('startup')) await import('./startup.js')
// policy serve under load (issue 20): autocannon, 64 connections, against a loopback server.
if (wanted('serve')) await import('./serve.js')
// 500 simulated hosts pulling signed bundles from docker-registry on 127.0.0.1 (issue 20).
if (wanted('fleet')) await import('./fleet.js')
