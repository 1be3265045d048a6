// `node bench/compare.js BEFORE_DIR`: the commands whose cost depends on reading history and
// trust — a warm promote plan, `status`, and a cold `evidence verify` of 5,000 commits — timed
// for this checkout and for an older one (BEFORE_DIR, built with `npm run build`) on the same
// generated fleet, alternating runs so both see the same machine. Medians of N runs after a
// warm-up each; writes the `compare` section of docs/benchmarks.md.
import {spawnSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, rmSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {generateFleet} from './generate.js'
import {machine, median, ROOT, writeSection} from './report.js'

const before = process.argv[2] ? resolve(process.argv[2]) : null
if (!before) {
  console.error('usage: node bench/compare.js BEFORE_DIR (an older airlock checkout, built)')
  process.exit(2)
}
const RUNS = Number(process.env.BENCH_RUNS ?? 7)
const NODE = process.execPath
const WORK = join(ROOT, 'bench', '.work')
const BUILDS = {after: join(ROOT, 'bin', 'run.js'), before: join(before, 'bin', 'run.js')}

function time(bin, args, cwd) {
  const start = process.hrtime.bigint()
  const r = spawnSync(NODE, [bin, ...args], {cwd, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30})
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return ms
}

/**
 * Both builds, alternating, each run after `prepare(dir)` (e.g. dropping the verified-history
 * cache). Each build has its own copy of the fleet: their caches of verified history are kept
 * under different rules and would otherwise overwrite each other.
 */
function compare(args, fleets, prepare = () => {}) {
  const xs = {before: [], after: []}
  for (const which of ['before', 'after']) prepare(fleets[which]), time(BUILDS[which], args, fleets[which])
  for (let i = 0; i < RUNS; i++) {
    for (const which of i % 2 ? ['after', 'before'] : ['before', 'after']) {
      prepare(fleets[which])
      xs[which].push(time(BUILDS[which], args, fleets[which]))
    }
  }
  return {before: median(xs.before), after: median(xs.after)}
}


const cold = (dir) => rmSync(join(dir, '.git', 'airlock'), {recursive: true, force: true})

const fleet = join(WORK, 'fleet-2000')
const fleets = {after: fleet, before: join(WORK, 'fleet-2000-before')}
// BENCH_REUSE=1 times the fleets of the last run again (their history caches are dropped).
if (process.env.BENCH_REUSE === '1' && existsSync(fleets.after) && existsSync(fleets.before)) {
  for (const dir of Object.values(fleets)) cold(dir)
} else {
  rmSync(WORK, {recursive: true, force: true})
  mkdirSync(WORK, {recursive: true})
  console.error('generating 2,000 images × 5,000 commits …')
  await generateFleet(fleet, {images: 2000, commits: 5000})
  cpSync(fleet, fleets.before, {recursive: true})
}
const rows = [
  ['`airlock promote` plan (2,000 images, warm)', compare(['promote', 'img-00042', '--from', 'canary', '--to', 'stable', '--json'], fleets)],
  ['`airlock status` (2,000 images, 5,000 commits, warm)', compare(['status', '--json'], fleets)],
  ['`airlock evidence verify`, cold: 5,000 commits (no cache)', compare(['evidence', 'verify', '--json'], fleets, cold)],
  ['`airlock promote` plan, cold: 5,000 commits verified (no cache)', compare(['promote', 'img-00042', '--from', 'canary', '--to', 'stable', '--json'], fleets, cold)],
]
const fmt = (ms) => `${ms.toFixed(0)} ms`
const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {cwd: before}).stdout.toString().trim()
const date = new Date().toISOString().slice(0, 10)
const table = ['| what | before | now | now / before |', '| --- | ---: | ---: | ---: |', ...rows.map(([what, r]) => `| ${what} | ${fmt(r.before)} | ${fmt(r.after)} | ${(r.after / r.before).toFixed(2)}× |`)].join('\n')
const section = `## History and trust, before and now — ${date}\n\nMachine: ${machine()}. \`node bench/compare.js\` against a build of ${head}, on one generated fleet, a copy for each build (2,000 images, 5,000 signed commits, the receipts their trailers name, the anchor pinned); medians of ${RUNS} whole-process runs of each build, alternating, after one warm-up each.\n\n${table}\n`
console.log(section)
writeSection('compare', section)
