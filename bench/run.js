// `npm run bench`: whole-process timings of airlock against baselines measured in the same
// run (native git doing the same reads, an empty oclif CLI, `node -e ''`). Medians of N runs
// after a warm-up. Writes docs/benchmarks.md.
import {spawnSync} from 'node:child_process'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
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

/** A fresh CI clone: no history verified before, so the whole history is walked. */
const coldHistory = (dir) => () => rmSync(join(dir, '.git', 'airlock'), {recursive: true, force: true})

const sh = (script) => ['sh', ['-c', script]]

// Native git doing the reads `airlock status` does: list the images, read every manifest,
// walk first-parent history with trailers and the files each commit changed.
const GIT_STATUS = sh(
  "git ls-tree HEAD manifests/images/ | awk '{print $3}' | git cat-file --batch >/dev/null && " +
    "git log --first-parent --format='%H %ct%n%(trailers:only,unfold)' --name-only -- manifests/images >/dev/null",
)
// Native git doing the reads a promote plan does: resolve HEAD, read the image manifest.
const gitPromote = (image) => sh(`git symbolic-ref HEAD >/dev/null && git rev-parse HEAD >/dev/null && git cat-file -p HEAD:manifests/images/${image}.yaml >/dev/null`)

async function main() {
  rmSync(WORK, {recursive: true, force: true})
  mkdirSync(WORK, {recursive: true})
  const rows = []
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
  await generateFleet(big, {images: 2000, commits: 5000})
  add('`airlock status` (2,000 images, 5,000 commits)', median(NODE, [BIN, 'status', '--json'], big), 'native git reads', median(...GIT_STATUS, big))
  add('`airlock status img-00042` (one image)', median(NODE, [BIN, 'status', 'img-00042', '--json'], big), null, null)
  add('`airlock promote` plan (2,000 images)', median(NODE, [BIN, 'promote', 'img-00042', '--from', 'canary', '--to', 'stable', '--json'], big), 'native git reads', median(...gitPromote('img-00042'), big))
  add(
    '`airlock promote` plan, cold: all 5,000 commits verified (no cache)',
    median(NODE, [BIN, 'promote', 'img-00042', '--from', 'canary', '--to', 'stable', '--json'], big, coldHistory(big)),
    'native git reads of every commit and its signed-folder changes',
    median(...sh("git log --all --format='%H %P %T' --raw -- manifests bundles policies docs/evidence >/dev/null"), big),
  )

  console.error('generating 10,000 images …')
  const huge = join(WORK, 'fleet-10000')
  await generateFleet(huge, {images: 10000, commits: 200})
  add('`airlock promote` plan (10,000 images)', median(NODE, [BIN, 'promote', 'img-04242', '--from', 'canary', '--to', 'stable', '--json'], huge), 'native git reads', median(...gitPromote('img-04242'), huge))
  add('`airlock status` (10,000 images, 200 commits)', median(NODE, [BIN, 'status', '--json'], huge), 'native git reads', median(...GIT_STATUS, huge))

  const date = new Date().toISOString().slice(0, 10)
  const fmt = (ms) => (ms === null ? '' : `${ms.toFixed(0)} ms`)
  const table = [
    '| what | airlock (median) | baseline | baseline (median) | ratio |',
    '| --- | ---: | --- | ---: | ---: |',
    ...rows.map((r) => `| ${r.what} | ${fmt(r.ms)} | ${r.baseline ?? ''} | ${fmt(r.baseMs)} | ${r.baseMs ? `${(r.ms / r.baseMs).toFixed(2)}×` : ''} |`),
  ].join('\n')
  const section = `## Core loop (issue 2) — ${date}\n\nMachine: ${machine()}. Medians of ${RUNS} whole-process runs after one warm-up (\`npm run bench\`).\n\n${table}\n`
  console.log(section)
  writeSection('core-loop', section)
}

await main()
// The policy engine's benchmark (issue 3) runs after the core loop's.
await import('./policy.js')
// The golden image benchmark (issue 4) last.
await import('./images.js')
await import('./egress.js')
await import('./tools.js')
await import('./secrets.js')
await import('./registry-limits.js')
// Preflight: `airlock preflight` on the example fleet and on generated fleets (the scaffold, 500 and 2,000 sandbox specs).
await import('./preflight.js')
// The audit log (issue 19): durable appends and `audit verify` against raw SHA-256; proofs from the
// tiles at 100k/1M/10M entries (BENCH_PROOF_SIZES=100000,1000000 leaves out the 10M tree); the
// compliance report over 10,000 signed receipts (BENCH_REPORT_RECEIPTS=N for fewer).
await import('./audit.js')
await import('./audit-proofs.js')
await import('./evidence-report.js')
await import('./startup.js')
