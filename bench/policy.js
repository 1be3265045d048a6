// Policy engine benchmark (issue 3): decisions/s in-process through airlock's engine against
// raw cedar-wasm statefulIsAuthorized on the same requests; cached decisions (against issue 3's
// cache, keyed by the whole request serialized, in the same run); one-shot `airlock authorize`
// as a process. `policy serve` under load is bench/serve.js.
import {spawnSync} from 'node:child_process'
import {cpSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import {machine, median, ROOT, writeSection} from './report.js'

const WORK = join(ROOT, 'bench', '.work', 'policy')
const load = loadavg().map((x) => x.toFixed(2)).join(', ')
const NODE = process.execPath
const BIN = join(ROOT, 'bin', 'run.js')
const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 20000)
const RUNS = Number(process.env.BENCH_RUNS ?? 11)

const {loadPolicyTree} = await import(join(ROOT, 'dist/control-plane/policy/source.js'))
const {PolicyEngine} = await import(join(ROOT, 'dist/control-plane/policy/engine.js'))

rmSync(WORK, {recursive: true, force: true})
mkdirSync(WORK, {recursive: true})
const policies = join(WORK, 'policies')
cpSync(join(ROOT, 'policies'), policies, {recursive: true})
// The example policies plus 50 generated ones, each with a condition Cedar must evaluate.
writeFileSync(
  join(policies, 'global', 'generated.cedar'),
  Array.from({length: 50}, (_, i) => `@id("gen-${i}")\npermit (principal, action == AgentKernel::Action::"Run", resource)\nwhen { principal.email == "user${i}@acme.example" && resource.max_memory_mb <= ${(i + 1) * 256} };\n`).join('\n'),
)
const tree = await loadPolicyTree(policies, {display: (a) => a})
const entities = JSON.parse(readFileSync(join(ROOT, 'policies/tests/entities.json'), 'utf8'))
const uid = (type, id) => ({type: `AgentKernel::${type}`, id})
const requests = [
  [uid('User', 'dana'), 'Run', uid('Sandbox', 'small'), {}],
  [uid('User', 'dana'), 'Run', uid('Sandbox', 'huge'), {}],
  [uid('User', 'nomfa'), 'Create', uid('Sandbox', 'small'), {}],
  [uid('User', 'dana'), 'Network', uid('Sandbox', 'small'), {destination_host: 'api.anthropic.com', destination_port: 443}],
  [uid('User', 'dana'), 'Network', uid('Sandbox', 'small'), {destination_host: '169.254.169.254', destination_port: 80}],
  [uid('User', 'alice'), 'Exec', uid('Sandbox', 'small'), {}],
  [uid('User', 'alice'), 'SSH', uid('Sandbox', 'alice-1'), {}],
  [uid('User', 'ci-acme'), 'Promote', uid('Channel', 'agent-runner/canary'), {}],
].map(([principal, action, resource, context]) => ({principal, action: uid('Action', action), resource, context, entities}))

function rate(fn) {
  for (let i = 0; i < 500; i++) fn(requests[i % requests.length])
  const start = performance.now()
  for (let i = 0; i < DECISIONS; i++) fn(requests[i % requests.length])
  return DECISIONS / ((performance.now() - start) / 1000)
}

const engine = PolicyEngine.create(tree)
const cachedEngine = PolicyEngine.create(tree, 'any', {cacheSize: 10_000})
const record = Object.fromEntries(tree.policies.map((p) => [p.id, p.text]))
cedar.preparsePolicySet('bench-raw', {staticPolicies: record})
cedar.preparseSchema('bench-raw-schema', tree.schema.text)
const raw = (r) => cedar.statefulIsAuthorized({...r, preparsedPolicySetId: 'bench-raw', preparsedSchemaName: 'bench-raw-schema', validateRequest: true})

// Issue 3's cache, as it was: the whole request serialized on every call, a Map as the LRU.
const stringKeyed = new Map()
const stringKeyedCache = (r) => {
  const key = JSON.stringify(r)
  const hit = stringKeyed.get(key)
  if (hit) {
    stringKeyed.delete(key)
    stringKeyed.set(key, hit)
    return hit
  }
  const d = engine.authorize(r)
  stringKeyed.set(key, d)
  if (stringKeyed.size > 10_000) stringKeyed.delete(stringKeyed.keys().next().value)
  return d
}

const rawRate = rate(raw)
const engineRate = rate((r) => engine.authorize(r))
// Cached rates: the median of 5 passes each, alternating, after the warm-up.
const cachedRuns = {old: [], now: []}
for (let i = 0; i < 5; i++) {
  cachedRuns.old.push(rate(stringKeyedCache))
  cachedRuns.now.push(rate((r) => cachedEngine.authorize(r)))
}
const oldCachedRate = median(cachedRuns.old)
const cachedRate = median(cachedRuns.now)

// One-shot `airlock authorize` as a whole process, and what changes it.
const oneShot = ['authorize', '--principal', 'AgentKernel::User::"dana"', '--action', 'AgentKernel::Action::"Run"', '--resource', 'AgentKernel::Sandbox::"small"', '--entities', join(ROOT, 'policies/tests/entities.json'), '--policies', join(ROOT, 'policies')]
function processMedian(args, env = {}) {
  const times = []
  for (let i = 0; i <= RUNS; i++) {
    const start = process.hrtime.bigint()
    const r = spawnSync(NODE, args, {cwd: ROOT, env: {...process.env, ...env}, stdio: 'ignore'})
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`)
    if (i > 0) times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  return median(times)
}
const nodeE = processMedian(['-e', ''])
const shot = processMedian([BIN, ...oneShot])

const f = (n) => Math.round(n).toLocaleString('en-US')
const section = `## Policy engine (issues 3, 20) — ${new Date().toISOString().slice(0, 10)}

Machine: ${machine()}. Load average when it started: ${load} (1, 5, 15 min; on 2 cores). ${tree.policies.length} policies (the examples plus 50 generated), ${requests.length} distinct requests cycled, ${f(DECISIONS)} decisions per measurement after 500 warm-up ones; processes: medians of ${RUNS} runs after one warm-up.

| what | result | baseline / ratio |
| --- | ---: | --- |
| raw cedar-wasm \`statefulIsAuthorized\` | ${f(rawRate)} decisions/s | |
| airlock engine (fail-closed, reasons mapped to file:line) | ${f(engineRate)} decisions/s | ${(engineRate / rawRate).toFixed(2)}× raw |
| issue 3's cache: the whole request serialized (\`JSON.stringify\`) as the key on every call, median of 5 passes | ${f(oldCachedRate)} decisions/s | ${(oldCachedRate / rawRate).toFixed(1)}× raw |
| airlock engine, decisions cached per (policy set, request): keyed by the question, the request compared value by value with a private copy (entities, context), median of 5 passes | ${f(cachedRate)} decisions/s | ${(cachedRate / rawRate).toFixed(1)}× raw, ${(cachedRate / oldCachedRate).toFixed(2)}× issue 3's cache |
| one-shot \`airlock authorize\` (process; Liftoff-only wasm, as one-shot commands set) | ${shot.toFixed(0)} ms | \`node -e ''\` ${nodeE.toFixed(0)} ms |
`
console.log(section)
writeSection('policy', section)
