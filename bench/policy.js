// Policy engine benchmark (issue 3): decisions/s in-process through airlock's engine against
// raw cedar-wasm statefulIsAuthorized on the same requests; cached decisions; one-shot
// `airlock authorize` as a process; `policy serve` conditional GETs under wrk.
import {spawn, spawnSync} from 'node:child_process'
import {cpSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import {machine, median, ROOT, writeSection} from './report.js'

const WORK = join(ROOT, 'bench', '.work', 'policy')
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

const rawRate = rate(raw)
const engineRate = rate((r) => engine.authorize(r))
const cachedRate = rate((r) => cachedEngine.authorize(r))

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

// policy serve: conditional GETs (If-None-Match → 304) under wrk on loopback.
let serveRow = '| `policy serve` conditional GETs | not_run: wrk is not installed (`apt-get install wrk`) | |'
if (spawnSync('wrk', ['--version']).error === undefined) {
  const bundles = join(WORK, 'bundles')
  const {signBundle, buildPayload, parseScope} = await import(join(ROOT, 'dist/control-plane/policy/bundle.js'))
  const {generateSigner} = await import(join(ROOT, 'dist/control-plane/crypto/keys.js'))
  mkdirSync(join(bundles, 'orgs'), {recursive: true})
  const payload = buildPayload(tree, parseScope('org:acme'), 1, new Date(), new Date(Date.now() + 86_400_000))
  writeFileSync(join(bundles, 'orgs', 'acme.bundle.json'), JSON.stringify(signBundle(payload, [generateSigner().signer])))
  spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(WORK, 'k.pem'), '-out', join(WORK, 'c.pem')], {stdio: 'ignore'})
  const server = spawn(NODE, [BIN, 'policy', 'serve', '--bundles', bundles, '--tls-cert', join(WORK, 'c.pem'), '--tls-key', join(WORK, 'k.pem'), '--port', '0', '--json'], {stdio: ['ignore', 'pipe', 'inherit']})
  const url = await new Promise((resolve) => server.stdout.once('data', (c) => resolve(JSON.parse(c.toString()).url)))
  const target = `${url}/v1/bundles/org%3Aacme`
  const etag = spawnSync('curl', ['-sk', '-D', '-', '-o', '/dev/null', target]).stdout.toString().match(/etag: (.+)\r/i)?.[1]
  const out = spawnSync('wrk', ['-t2', '-c32', '-d5s', '--latency', '-H', `If-None-Match: ${etag}`, target]).stdout.toString()
  server.kill('SIGTERM')
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)
  const p99 = /\s99%\s+([\d.]+\w+)/.exec(out)?.[1] ?? '?'
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0'
  serveRow = `| \`policy serve\` conditional GETs (304), wrk 2 threads × 32 connections, 5 s, TLS | ${rps.toFixed(0)} requests/s, p99 ${p99}, ${non2xx} non-2xx/3xx | |`
}

const f = (n) => Math.round(n).toLocaleString('en-US')
const section = `## Policy engine (issue 3) — ${new Date().toISOString().slice(0, 10)}

Machine: ${machine()}. ${tree.policies.length} policies (the examples plus 50 generated), ${requests.length} distinct requests cycled, ${f(DECISIONS)} decisions per measurement after 500 warm-up ones; processes: medians of ${RUNS} runs after one warm-up.

| what | result | baseline / ratio |
| --- | ---: | --- |
| raw cedar-wasm \`statefulIsAuthorized\` | ${f(rawRate)} decisions/s | |
| airlock engine (fail-closed, reasons mapped to file:line) | ${f(engineRate)} decisions/s | ${(engineRate / rawRate).toFixed(2)}× raw |
| airlock engine, decisions cached per (policy set, request) | ${f(cachedRate)} decisions/s | ${(cachedRate / rawRate).toFixed(1)}× raw |
| one-shot \`airlock authorize\` (process; Liftoff-only wasm, as one-shot commands set) | ${shot.toFixed(0)} ms | \`node -e ''\` ${nodeE.toFixed(0)} ms |
${serveRow}
`
console.log(section)
writeSection('policy', section)
