// `policy serve` under load (issue 20): a server started as users start it (`airlock policy
// serve …`, a process of its own on 127.0.0.1) and autocannon's programmatic API, 64
// connections, keep-alive, for BENCH_SERVE_SECONDS (10) each: conditional GETs answered 304 and
// full 200 responses, over TLS and plain loopback HTTP, from a bundles folder (`--bundles`) and
// from bundles/ at the verified HEAD (the default), and with an API key (each request an
// Authentication event in the audit log, on disk before the answer).
//
// `node bench/serve.js [BEFORE_DIR]`: with BEFORE_DIR (an older checkout, built), each case runs
// against both builds, one after the other, on the same bundles; the section gets both columns.
import {spawn, spawnSync} from 'node:child_process'
import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join, resolve} from 'node:path'
import autocannon from 'autocannon'
import {machine, ROOT, writeSection} from './report.js'

const WORK = join(ROOT, 'bench', '.work', 'serve')
const NODE = process.execPath
const SECONDS = Number(process.env.BENCH_SERVE_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_SERVE_CONNECTIONS ?? 64)
const before = process.argv[2] ? resolve(process.argv[2]) : null
const BUILDS = before ? {before: join(before, 'bin', 'run.js'), now: join(ROOT, 'bin', 'run.js')} : {now: join(ROOT, 'bin', 'run.js')}
const only = process.env.BENCH_SERVE_CASES ? new Set(process.env.BENCH_SERVE_CASES.split(',')) : null

rmSync(WORK, {recursive: true, force: true})
mkdirSync(WORK, {recursive: true})
const startedAt = new Date()
const load = loadavg().map((x) => x.toFixed(2)).join(', ')

function run(args, opts = {}) {
  const r = spawnSync(NODE, [BUILDS.now, ...args], {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts})
  if (r.status !== 0) throw new Error(`airlock ${args.join(' ')}: exit ${r.status}: ${r.stderr}`)
  return r.stdout.toString()
}

// A fleet as `airlock init` makes it, with a policy key and a signed bundle for org:acme
// published by `airlock policy bundle --apply`: served from HEAD, and copied into a folder.
const fleet = join(WORK, 'fleet')
run(['init', fleet, '--apply', '--json'])
const env = {...process.env, AIRLOCK_EVIDENCE_KEY: join(fleet, 'keys', 'evidence.key')}
run(['keys', 'generate', 'pol', '--role', 'policy', '--apply', '--json'], {cwd: fleet, env})
run(['policy', 'bundle', '--scope', 'org:acme', '--key', join(fleet, 'keys', 'pol.key'), '--apply', '--json'], {cwd: fleet, env})
const bundles = join(WORK, 'bundles')
mkdirSync(join(bundles, 'orgs'), {recursive: true})
const bundleText = readFileSync(join(fleet, 'bundles', 'orgs', 'acme.bundle.json'))
writeFileSync(join(bundles, 'orgs', 'acme.bundle.json'), bundleText)
spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(WORK, 'k.pem'), '-out', join(WORK, 'c.pem')], {stdio: 'ignore'})
const API_KEY = 'bench-api-key-0123456789abcdef'

/** The server as a user starts it; resolves with its URL and a stop function. */
async function startServer(bin, {tls, from, apiKey, auditDir}) {
  const args = [bin, 'policy', 'serve', '--port', '0', '--json', ...(from === 'dir' ? ['--bundles', bundles] : []), ...(tls ? ['--tls-cert', join(WORK, 'c.pem'), '--tls-key', join(WORK, 'k.pem')] : ['--insecure-http'])]
  if (apiKey) args.push('--api-key-env', 'BENCH_API_KEY', '--audit-dir', auditDir)
  const prof = process.env.BENCH_SERVE_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_SERVE_PROF] : []
  const child = spawn(NODE, [...prof, ...args], {cwd: fleet, env: {...env, BENCH_API_KEY: API_KEY}, stdio: ['ignore', 'pipe', 'pipe']})
  let err = ''
  child.stderr.on('data', (c) => (err += c))
  const url = await new Promise((done, fail) => {
    child.stdout.once('data', (c) => done(JSON.parse(c.toString()).url))
    child.once('exit', (code) => fail(new Error(`policy serve exited ${code}: ${err}`)))
  })
  return {
    url,
    stop: () =>
      new Promise((done) => {
        child.once('exit', () => done())
        child.kill('SIGTERM')
      }),
  }
}

async function get(url, headers = {}) {
  // Node's fetch refuses the self-signed certificate; one curl call is enough to learn the ETag.
  const r = spawnSync('curl', ['-sk', '-D', '-', '-o', '/dev/null', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url])
  return {status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(r.stdout.toString())?.[1]), etag: /etag: (.+)\r/i.exec(r.stdout.toString())?.[1]}
}

const CASES = [
  {id: 'tls-304', what: 'TLS, `--bundles DIR`, conditional GET answered 304', tls: true, from: 'dir', conditional: true},
  {id: 'tls-200', what: 'TLS, `--bundles DIR`, full 200 response', tls: true, from: 'dir', conditional: false},
  {id: 'http-304', what: 'plain HTTP on loopback, `--bundles DIR`, 304', tls: false, from: 'dir', conditional: true},
  {id: 'http-200', what: 'plain HTTP on loopback, `--bundles DIR`, 200', tls: false, from: 'dir', conditional: false},
  {id: 'head-304', what: 'TLS, bundles/ at the verified HEAD (the default), 304', tls: true, from: 'head', conditional: true},
  {id: 'head-200', what: 'TLS, bundles/ at the verified HEAD (the default), 200', tls: true, from: 'head', conditional: false},
  {id: 'key-304', what: 'TLS, `--bundles DIR`, API key (an Authentication event on disk per request), 304', tls: true, from: 'dir', conditional: true, apiKey: true},
].filter((c) => !only || only.has(c.id))

async function measure(bin, c, n) {
  const auditDir = join(WORK, `audit-${n}`)
  const server = await startServer(bin, {...c, auditDir})
  try {
    const target = `${server.url}/v1/bundles/org%3Aacme`
    const auth = c.apiKey ? {'x-api-key': API_KEY} : {}
    const first = await get(target, auth)
    if (first.status !== 200 || !first.etag) throw new Error(`${c.id}: GET ${target} answered ${first.status}`)
    const headers = {...auth, ...(c.conditional ? {'if-none-match': first.etag} : {})}
    const expected = c.conditional ? 304 : 200
    if ((await get(target, headers)).status !== expected) throw new Error(`${c.id}: expected ${expected}`)
    // A short warm-up (connections open, JIT warm), then the measured run.
    await autocannon({url: target, connections: CONNECTIONS, duration: 2, headers})
    const r = await autocannon({url: target, connections: CONNECTIONS, duration: SECONDS, headers})
    const codes = r.statusCodeStats ?? {}
    const bad = Object.entries(codes).filter(([code]) => !/^[23]/.test(code)).reduce((s, [, v]) => s + v.count, 0)
    const wrong = Object.entries(codes).filter(([code]) => Number(code) !== expected).reduce((s, [, v]) => s + v.count, 0)
    return {rps: r.requests.average, total: r.requests.total, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, bad, wrong, errors: r.errors + r.timeouts}
  } finally {
    await server.stop()
  }
}

const results = []
let n = 0
for (const c of CASES) {
  const row = {c}
  for (const [which, bin] of Object.entries(BUILDS)) {
    row[which] = await measure(bin, c, n++)
    console.error(`${c.id} ${which}: ${JSON.stringify(row[which])}`)
  }
  results.push(row)
}

const f = (x) => Math.round(x).toLocaleString('en-US')
const ms = (x) => `${x} ms`
const cell = (m) => `${f(m.rps)} req/s; p50 ${ms(m.p50)}, p90 ${ms(m.p90)}, p99 ${ms(m.p99)}, max ${ms(m.max)}; ${m.bad} non-2xx/3xx${m.errors ? `, ${m.errors} errors` : ''}`
const header = before
  ? `| case | before | now | p99 now / before |\n| --- | --- | --- | ---: |\n${results.map((r) => `| ${r.c.what} | ${cell(r.before)} | ${cell(r.now)} | ${(r.now.p99 / r.before.p99).toFixed(2)}× |`).join('\n')}`
  : `| case | requests/s | p50 | p90 | p99 | max | non-2xx/3xx |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n${results.map((r) => `| ${r.c.what} | ${f(r.now.rps)} | ${ms(r.now.p50)} | ${ms(r.now.p90)} | ${ms(r.now.p99)} | ${ms(r.now.max)} | ${r.now.bad}${r.now.errors ? ` (+${r.now.errors} errors)` : ''} |`).join('\n')}`
const section = `## \`policy serve\` under load (issue 20) — ${startedAt.toISOString().slice(0, 10)}

Machine: ${machine()}. \`node bench/serve.js${before ? ' BEFORE_DIR' : ''}\`, started ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC. Load average when it started: ${load} (1, 5, 15 min; on 2 cores). Each case: \`airlock policy serve … --port 0\` started as a user starts it (its own process; a fleet made by \`airlock init\`, a policy key and one signed org:acme bundle of ${f(bundleText.length)} bytes published by \`airlock policy bundle --apply\`), then autocannon 9 (programmatic API, in the benchmark's process, on the same 2 cores as the server) with ${CONNECTIONS} keep-alive connections for 2 s of warm-up and ${SECONDS} s measured, GET /v1/bundles/org%3Aacme; latencies are autocannon's (whole milliseconds). Target: p99 under 5 ms at 64 connections.${before ? ` Before: a build of ${before.split('/').pop()}; each case runs the two builds one after the other.` : ''}

${header}
`
console.log(section)
writeSection('serve', section)
