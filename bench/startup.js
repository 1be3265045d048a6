// Start-up (issue 20): every airlock command is a fresh process. Whole-process runs of the
// built CLI against `node -e ''` in the same rounds (each round runs the baseline and every
// command once, so a change in the machine's load falls on both), medians after a warm-up
// round: wall time, CPU time (user + system) and peak RSS from /usr/bin/time. Then one
// `--cpu-prof` run of each command, summed by module: where the time goes.
// `node bench/startup.js` alone, or last in `npm run bench`. BENCH_RUNS=N (default 11).
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {generateFleet} from './generate.js'
import {machine, median, ROOT, writeSection} from './report.js'

const WORK = join(ROOT, 'bench', '.work', 'startup')
const NODE = process.execPath
const BIN = join(ROOT, 'bin', 'run.js')
const RUNS = Math.max(11, Number(process.env.BENCH_RUNS ?? 11))
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null

mkdirSync(WORK, {recursive: true})

/** The 2,000-image, 5,000-commit fleet of the core-loop benchmark (made here if that one did not run). */
async function benchFleet() {
  for (const dir of [join(ROOT, 'bench', '.work', 'fleet-2000'), join(WORK, 'fleet-2000')]) if (existsSync(join(dir, '.git'))) return dir
  console.error('generating 2,000 images × 5,000 commits …')
  const dir = join(WORK, 'fleet-2000')
  await generateFleet(dir, {images: 2000, commits: 5000})
  return dir
}

/** One run: wall ms (spawn to exit), CPU ms and peak RSS in MiB as /usr/bin/time reports them. */
function once(args, cwd, env) {
  const out = join(WORK, 'time.txt')
  const [cmd, argv] = TIME ? [TIME, ['-f', '%U %S %M', '-o', out, NODE, ...args]] : [NODE, args]
  const start = process.hrtime.bigint()
  const r = spawnSync(cmd, argv, {cwd, env: {...process.env, ...env}, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26})
  const wall = Number(process.hrtime.bigint() - start) / 1e6
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  if (!TIME) return {wall, cpu: NaN, rss: NaN}
  const [user, sys, kb] = readFileSync(out, 'utf8').trim().split('\n').at(-1).split(' ').map(Number)
  return {wall, cpu: (user + sys) * 1000, rss: kb / 1024}
}

const fleet = await benchFleet()
const scratch = join(WORK, 'scratch')
rmSync(scratch, {recursive: true, force: true})
execFileSync(NODE, [BIN, 'init', scratch, '--apply'], {stdio: 'ignore'})
const coldCache = () => ({NODE_COMPILE_CACHE: mkdtempSync(join(WORK, 'cache-'))})

const authorize = ['authorize', '--principal', 'AgentKernel::User::"dana"', '--action', 'AgentKernel::Action::"Run"', '--resource', 'AgentKernel::Sandbox::"small"', '--entities', join(ROOT, 'policies/tests/entities.json'), '--policies', join(ROOT, 'policies')]
const toolCheck = ['tool', 'check', 'read_file', '--params', '{"path":"/workspace/src/main.ts"}', '--policy', join(ROOT, 'manifests', 'tool-policy.yaml')]
const promote = ['promote', 'img-00042', '--from', 'canary', '--to', 'stable', '--json']
const rows = [
  {what: '`airlock --version`', args: ['--version'], cwd: ROOT},
  {what: '`airlock --help`', args: ['--help'], cwd: ROOT, target: 2},
  {what: '`airlock --help`, compile cache cold (an empty NODE_COMPILE_CACHE each run)', args: ['--help'], cwd: ROOT, env: coldCache},
  {what: "one-shot `airlock authorize` (the example policies, `bench/policy.js`'s request)", args: authorize, cwd: ROOT, target: 4},
  {what: 'one-shot `airlock authorize`, compile cache cold', args: authorize, cwd: ROOT, env: coldCache},
  {what: 'one-shot `airlock tool check` (the example tool policy)', args: toolCheck, cwd: ROOT},
  {what: '`airlock status` (`airlock init` scratch fleet)', args: ['status', '--json'], cwd: scratch},
  {what: '`airlock promote` plan (2,000 images, 5,000 commits, history verified before)', args: promote, cwd: fleet, target: 5, rssTarget: 80},
]

// Warm-up round (compile cache, page cache, the fleet's verified-history cache), then RUNS rounds.
const base = []
for (const r of rows) r.runs = []
for (let round = 0; round <= RUNS; round++) {
  const b = once(['-e', ''], ROOT, {})
  if (round > 0) base.push(b)
  for (const r of rows) {
    const m = once([BIN, ...r.args], r.cwd, typeof r.env === 'function' ? r.env() : {})
    if (round > 0) r.runs.push(m)
  }
}
for (const d of readdirSync(WORK)) if (d.startsWith('cache-')) rmSync(join(WORK, d), {recursive: true, force: true})

const med = (xs, k) => median(xs.map((x) => x[k]))
const b = {wall: med(base, 'wall'), cpu: med(base, 'cpu'), rss: med(base, 'rss')}
const ms = (x) => (Number.isNaN(x) ? 'n/a' : `${x.toFixed(0)} ms`)
const ratio = (x, y) => (Number.isNaN(x) ? 'n/a' : `${(x / y).toFixed(2)}×`)
const table = [
  '| command | wall (median) | × `node -e \'\'` wall | CPU (median) | × `node -e \'\'` CPU | peak RSS (median) | target |',
  '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
  `| \`node -e ''\` | ${ms(b.wall)} | 1.00× | ${ms(b.cpu)} | 1.00× | ${b.rss.toFixed(0)} MiB | |`,
  ...rows.map((r) => {
    const m = {wall: med(r.runs, 'wall'), cpu: med(r.runs, 'cpu'), rss: med(r.runs, 'rss')}
    const target = [r.target ? `≤ ${r.target}×` : '', r.rssTarget ? `≤ ${r.rssTarget} MiB` : ''].filter(Boolean).join(', ')
    return `| ${r.what} | ${ms(m.wall)} | ${ratio(m.wall, b.wall)} | ${ms(m.cpu)} | ${ratio(m.cpu, b.cpu)} | ${Number.isNaN(m.rss) ? 'n/a' : `${m.rss.toFixed(0)} MiB`} | ${target} |`
  }),
].join('\n')

// Where the time goes: one profiled run per command, self time summed by module. Bundle code is
// put back to the module it came from by the `// path` line esbuild writes above each module;
// a package of node_modules, a folder of airlock's sources, Node's module loader or other
// internals, the Cedar WebAssembly, a native function by its name.
const labels = new Map()
function bundleLabel(url, line) {
  if (!labels.has(url)) {
    const marks = []
    readFileSync(new URL(url), 'utf8')
      .split('\n')
      .forEach((text, i) => {
        const m = /^\/\/ (\S+\.(?:[cm]?[jt]s|json))$/.exec(text)
        if (m) marks.push([i, m[1]])
      })
    labels.set(url, marks)
  }
  const marks = labels.get(url)
  let lo = 0
  let hi = marks.length - 1
  let found = null
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (marks[mid][0] <= line) (found = marks[mid][1]), (lo = mid + 1)
    else hi = mid - 1
  }
  if (!found) return 'bundle glue'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(found)?.[1]
  return pkg ?? found.split('/').slice(0, found.startsWith('commands/') ? 1 : 2).join('/')
}
function moduleOf({url, functionName, lineNumber}) {
  if (/\/dist\/bundle\//.test(url)) return bundleLabel(url, lineNumber)
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1]
  if (pkg) return pkg
  if (url.startsWith('wasm:')) return 'Cedar (WebAssembly)'
  if (url.startsWith('node:internal/modules')) return "Node's module loader"
  if (url.startsWith('node:')) return "Node's other internals"
  if (url) return url.replace(/^file:\/\/\/.*?\/(bin|dist)\//, '$1/')
  return functionName.startsWith('(') ? functionName : `${functionName} (native)`
}
const profiled = rows.filter((r) => !r.env)
function whereTimeGoes(r) {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-startup-prof-'))
  try {
    spawnSync(NODE, ['--cpu-prof', '--cpu-prof-dir', dir, BIN, ...r.args], {cwd: r.cwd, stdio: 'ignore'})
    const profile = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8'))
    const byId = new Map(profile.nodes.map((n) => [n.id, n]))
    const sums = new Map()
    let total = 0
    profile.samples.forEach((id, i) => {
      const us = profile.timeDeltas[i] ?? 0
      total += us
      const key = moduleOf(byId.get(id).callFrame)
      sums.set(key, (sums.get(key) ?? 0) + us)
    })
    const top = [...sums].sort((x, y) => y[1] - x[1]).slice(0, 8)
    return `- ${r.what}: ${(total / 1000).toFixed(0)} ms profiled; ${top.map(([k, us]) => `${k} ${(us / 1000).toFixed(0)}`).join(', ')}`
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}
const profiles = profiled.map(whereTimeGoes).join('\n')

const date = new Date().toISOString().slice(0, 10)
const bundleFiles = readdirSync(join(ROOT, 'dist', 'bundle')).filter((f) => f.endsWith('.js')).length
const SNAPSHOT = '2026-12-03, load average 18, medians of 11 rounds'
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const section = `## Start-up (issue 20) — ${date}

Machine: ${machine()}; load average at the end ${load}. Medians of ${RUNS} rounds after a warm-up round; each round runs \`node -e ''\` and every command once, so the ratios compare runs made under the same load (\`node bench/startup.js\`). CPU is user + system time and peak RSS the maximum resident set, both from \`/usr/bin/time\`. The CLI is the bundle \`npm run build\` writes (\`dist/bundle/\`, scripts/bundle.js); the V8 compile cache is warm except in the rows that say cold.

${table}

Where the time goes (one \`node --cpu-prof\` run each, self time in ms by module: a package, a folder of airlock's sources, Node's module loader or other internals, a native function by name; "(program)" and "(garbage collector)" are V8's own, "bundle glue" a chunk's top-level code):

${profiles}

What the bundle does (scripts/bundle.js): oclif, the commands and the core in ${bundleFiles} files loaded as each command needs them (\`--help\` reads oclif.manifest.json and loads no command); pako is Node's zlib (control-plane/repo/pako-zlib.ts); isomorphic-git is evaluated on the first git call; oclif's command list is sorted without ICU's collator; isomorphic-git does not copy the packfile it reads; ajv is bundled for tool schemas. What it cannot do, and where the rest would have to come from:

- **Cedar.** Every process that decides reads and compiles the 4.3 MB cedar-wasm module (\`Module (native)\`: V8 already compiles its functions lazily; \`--wasm-lazy-validation\` made no difference measurable under this machine's load) and preparses the schema and the policy set (\`Cedar (WebAssembly)\`), then keeps ~25 MiB resident. Node 22 has no cache of compiled WebAssembly across processes, so one-shot \`authorize\` cannot come near 4× \`node -e ''\` while it loads Cedar; a caller that decides often asks \`policy serve\` (one process, Cedar loaded once).
- **promote plan.** Beyond Cedar: the packfile and its index are read whole (isomorphic-git), the trust and image manifests parsed (yaml), the pinned signatures verified (Sigstore). Peak RSS is \`node -e ''\`'s ~42 MiB plus Cedar's ~25, the packfile (11 MiB on this fleet) and the heap.
- **V8 compile cache.** Node 22 writes a file's code cache when it compiles it, before it runs, so only top-level code is cached, not the functions compiled later: warm and cold runs differ little (the cold rows). \`--no-lazy\` (everything in the cache) was slower.
- **Start-up snapshot** (\`node --snapshot-blob … --build-snapshot\`, measured once, ${SNAPSHOT}): oclif's \`--help\` from a 7.2 MB snapshot took 2.90× \`node -e ''\` CPU against 2.60× for the bundle, and a snapshot needs its own flag, so \`airlock\` would re-run Node to use one (4.20× with the re-run); Node also warns that tty, perf_hooks and child_process are not verified in snapshots. Not kept.
`
console.log(section)
writeSection('startup', section)
