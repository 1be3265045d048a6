// Fleet simulation (issue 20): FLEET_HOSTS simulated hosts (default 500) in this one process,
// each with its own cache folder, pulling their org's signed bundle from Debian's docker-registry
// on 127.0.0.1 with the real pull code (pullBundle over the OCI source: a HEAD per pull, the
// manifest and blob only when the digest changed), on a 30 s schedule with ±10 % jitter,
// compressed in time by FLEET_SCALE (default 2: 30 s runs as 15 s; 500 hosts verifying their cache on every pull need about one core at that rate). The real publish code pushes
// v1 first, v2 mid-run, then an attacker with push access moves the tag to an unsigned artifact
// (version 10^6) and then back to a properly signed but older v1. Measured: time until every host
// runs v2, pull latency, registry requests per host per hour at the real interval (HEADs and
// manifest GETs counted apart: Docker Hub counts a manifest GET as a pull, a HEAD not), and that no
// host ever accepted an unsigned or older bundle (checked on every pull, and the run fails if one did).
import {spawn, spawnSync} from 'node:child_process'
import {mkdirSync, rmSync, writeFileSync, existsSync} from 'node:fs'
import {createServer, request} from 'node:http'
import {createServer as netServer} from 'node:net'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import {machine, median, ROOT, writeSection} from './report.js'

const HOSTS = Number(process.env.FLEET_HOSTS ?? 500)
const SCALE = Number(process.env.FLEET_SCALE ?? 2)
const INTERVAL_S = 30
const INTERVALS = Number(process.env.FLEET_INTERVALS ?? 8)
const JITTER = 0.1
const WORK = join(ROOT, 'bench', '.work', 'fleet')
const BINARY = process.env.AIRLOCK_DOCKER_REGISTRY ?? '/usr/bin/docker-registry'
if (!existsSync(BINARY)) {
  console.error(`bench/fleet.js: ${BINARY} is not installed (apt-get install docker-registry)`)
  process.exit(2)
}

const dist = (p) => import(join(ROOT, 'dist', p))
const [{generateSigner}, {parseTrust}, {DEFAULT_LIMITS}, {signBundle, parseBundle, verifyBundle, BUNDLE_PAYLOAD_TYPE, parseScope}, {pullBundle}, oci, {RegistryClient, parseOciRef}, {canonicalJson}] = await Promise.all([
  dist('control-plane/crypto/keys.js'),
  dist('control-plane/manifests/load.js'),
  dist('control-plane/limits.js'),
  dist('control-plane/policy/bundle.js'),
  dist('control-plane/policy/pull.js'),
  dist('control-plane/policy/distribution/oci.js'),
  dist('platform/registry/client.js'),
  dist('control-plane/crypto/digest.js'),
])

rmSync(WORK, {recursive: true, force: true})
mkdirSync(WORK, {recursive: true})

const freePort = () => new Promise((resolve) => {
  const s = netServer().listen(0, '127.0.0.1', () => {
    const {port} = s.address()
    s.close(() => resolve(port))
  })
})

// docker-registry with its own storage.
const regPort = await freePort()
writeFileSync(join(WORK, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(WORK, 'data')}\nhttp:\n  addr: 127.0.0.1:${regPort}\n`)
const registry = spawn(BINARY, ['serve', join(WORK, 'config.yml')], {stdio: 'ignore'})
for (let i = 0; ; i++) {
  if (await fetch(`http://127.0.0.1:${regPort}/v2/`).then((r) => r.ok, () => false)) break
  if (i > 200) throw new Error('docker-registry did not start')
  await new Promise((r) => setTimeout(r, 50))
}

// A counting proxy in front of it: every request the hosts make, by kind.
let phases = null
let counts = null
let counting = false
const proxy = createServer((req, res) => {
  if (counting) {
    if (req.method === 'HEAD' && req.url.includes('/manifests/')) counts.head++
    else if (req.method === 'GET' && req.url.includes('/manifests/')) counts.manifestGet++
    else if (req.method === 'GET' && req.url.includes('/blobs/')) counts.blobGet++
    else counts.other++
  }
  const up = request({host: '127.0.0.1', port: regPort, path: req.url, method: req.method, headers: req.headers}, (answer) => {
    res.writeHead(answer.statusCode, answer.headers)
    answer.pipe(res)
  })
  up.on('error', () => res.destroy())
  req.pipe(up)
})
proxy.keepAliveTimeout = 60_000
await new Promise((r) => proxy.listen(0, '127.0.0.1', r))
const host = `127.0.0.1:${proxy.address().port}`

// Keys, trust, bundles.
const signer = generateSigner().signer
const trust = parseTrust(
  `apiVersion: airlock/v1\nkind: TrustPolicy\nspec:\n  keys:\n    - id: '${signer.keyid}'\n      algorithm: ed25519\n      publicKey: ${Buffer.from(signer.publicKey).toString('base64')}\n      roles: [policy]\n      validFrom: 2020-01-01T00:00:00Z\n  thresholds:\n    policy: 1\n`,
  'trust.yaml',
  null,
  DEFAULT_LIMITS,
)
const scope = parseScope('org:acme')
const payload = (version) => ({
  apiVersion: 'airlock/v1',
  kind: 'PolicyBundle',
  scope: 'org:acme',
  version,
  issuedAt: new Date(Date.now() - 60_000).toISOString(),
  expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
  schema: 'namespace AgentKernel { entity User; entity Sandbox; action Run appliesTo { principal: User, resource: Sandbox }; }',
  policies: [{id: `run-v${version}`, file: 'policies/orgs/acme/run.cedar', line: 1, text: 'permit(principal, action == AgentKernel::Action::"Run", resource);'}],
})
const limits = {...DEFAULT_LIMITS}
let repo = null
const client = () => new RegistryClient(host, {plainHttp: true, limits})
// The publisher and the attacker reach the registry directly: the proxy counts the hosts' requests only.
const direct = () => new RegistryClient(`127.0.0.1:${regPort}`, {plainHttp: true, limits})

/** The real publish path (planOciPublish + pushPlanned), as `policy publish --apply` runs it. */
async function publish(version) {
  const p = payload(version)
  const bytes = Buffer.from(JSON.stringify(signBundle(p, [signer])))
  const verify = (body, where) => {
    const {envelope, payload: q} = parseBundle(body.toString('utf8'), where)
    const v = verifyBundle(envelope, q, {trust, now: new Date(), scope: 'org:acme', source: where})
    return {version: q.version, digest: v.digest}
  }
  const local = verify(bytes, 'local')
  const c = direct()
  const plan = await oci.planOciPublish(c, repo, {bytes, payload: p, digest: local.digest, scope}, verify)
  await oci.pushPlanned(c, repo, plan, bytes)
  return {digest: local.digest, bytes, payload: p}
}
/** What an attacker with push access can do: put any artifact under the tag. */
async function plant(bytes, p) {
  const c = direct()
  const a = oci.bundleArtifact(bytes, p)
  await c.pushBlob(repo.repository, oci.EMPTY_CONFIG)
  await c.pushBlob(repo.repository, bytes)
  await c.pushManifest(repo.repository, 'org-acme', a.manifest, 'application/vnd.oci.image.manifest.v1+json')
}

/** One run of the simulation, on a repository of its own, with new hosts. */
async function simulate(n) {
  repo = parseOciRef(`oci://${host}/fleet/policy-${n}`, 'bench')
  phases = {steady: {head: 0, manifestGet: 0, blobGet: 0, other: 0}, attack: {head: 0, manifestGet: 0, blobGet: 0, other: 0}}
  counts = phases.steady
  const v1 = await publish(1)
  const legit = new Map([[v1.digest, 1]])

  // The hosts.
  const intervalMs = (INTERVAL_S * 1000) / SCALE
  const source = oci.ociSource({...repo, tag: 'org-acme'}, client)
  const hosts = Array.from({length: HOSTS}, (_, i) => ({id: i, cache: join(WORK, `run-${n}`, 'hosts', String(i)), running: null, seen: 0, pulls: 0}))
  const latencies = []
  const violations = []
  const failures = {}
  let running = true
  let denyAll = 0
  let v2At = null
  let allOnV2At = null
  const onV2 = new Set()

  async function pullOnce(h) {
    const start = performance.now()
    const r = await pullBundle({source, scope: 'org:acme', trust, now: new Date(), cacheDir: h.cache, offlineMode: 'cached_with_expiry', maxAgeMs: 86_400_000, defaultPolicy: async () => ({policies: 0, digest: ''}), limits})
    latencies.push(performance.now() - start)
    h.pulls++
    if (r.effective === 'deny-all') denyAll++
    if (r.failure) failures[r.failure.code] = (failures[r.failure.code] ?? 0) + 1
    if (r.effective === 'fetched' || r.effective === 'unchanged' || r.effective === 'cached') {
      // Never anything but a bundle the publisher signed, and never older than what the host ran.
      if (!legit.has(r.digest)) violations.push(`host ${h.id} accepted ${r.digest} (v${r.version}), not a published bundle`)
      if (r.version < h.seen) violations.push(`host ${h.id} went back from v${h.seen} to v${r.version}`)
      h.seen = Math.max(h.seen, r.version)
      h.running = r.version
    }
    if (h.running === 2 && v2At !== null && !onV2.has(h.id)) {
      onV2.add(h.id)
      if (onV2.size === HOSTS) allOnV2At = performance.now()
    }
  }

  async function hostLoop(h) {
    // Hosts start spread over one interval, then pull every interval ± 10 %.
    await new Promise((r) => setTimeout(r, Math.random() * intervalMs))
    while (running) {
      await pullOnce(h).catch((e) => {
        failures[`THROWN ${e.code ?? e.message}`] = (failures[`THROWN ${e.code ?? e.message}`] ?? 0) + 1
      })
      await new Promise((r) => setTimeout(r, intervalMs * (1 + (Math.random() * 2 - 1) * JITTER)))
    }
  }

  // Baseline, in the same run: one host alone pulling 30 times in a row (the first fetches, the rest are `unchanged`).
  const alone = []
  for (let i = 0; i < 30; i++) {
    const start = performance.now()
    await pullBundle({source, scope: 'org:acme', trust, now: new Date(), cacheDir: join(WORK, `run-${n}`, 'alone'), offlineMode: 'fail_closed', maxAgeMs: 0, defaultPolicy: async () => ({policies: 0, digest: ''}), limits})
    alone.push(performance.now() - start)
  }
  const aloneSorted = alone.slice(1).sort((a, b) => a - b)
  const aloneP50 = aloneSorted[Math.floor(aloneSorted.length / 2)]

  const load = [loadavg()[0]]
  const cpu0 = process.cpuUsage()
  const began = performance.now()
  counting = true
  const loops = hosts.map(hostLoop)
  const at = (k) => new Promise((r) => setTimeout(r, k * intervalMs - (performance.now() - began)))
  await at(2)
  const v2 = await publish(2)
  legit.set(v2.digest, 2)
  v2At = performance.now()
  load.push(loadavg()[0])
  await at(5)
  const steadyMs = performance.now() - began
  counts = phases.attack
  // The attacks: an unsigned v10^6, then a signed but older v1 re-pushed under the tag.
  const forged = payload(1_000_000)
  await plant(Buffer.from(JSON.stringify({payloadType: BUNDLE_PAYLOAD_TYPE, payload: Buffer.from(canonicalJson(forged)).toString('base64'), signatures: []})), forged)
  await at(6.5)
  await plant(v1.bytes, v1.payload)
  await at(INTERVALS)
  running = false
  await Promise.all(loops)
  counting = false
  const elapsed = performance.now() - began
  const cpu = process.cpuUsage(cpu0)
  load.push(loadavg()[0])
  const sorted = [...latencies].sort((a, b) => a - b)
  const pct = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  const perHostHour = (n, ms) => n / HOSTS / ((ms * SCALE) / 3_600_000)
  const steady = Object.fromEntries(Object.entries(phases.steady).map(([k, v]) => [k, perHostHour(v, steadyMs)]))
  const attack = Object.fromEntries(Object.entries(phases.attack).map(([k, v]) => [k, perHostHour(v, elapsed - steadyMs)]))
  const cpuMsPerPull = (cpu.user + cpu.system) / 1000 / latencies.length
  const convergeMs = allOnV2At && v2At ? allOnV2At - v2At : null
  const stillV1 = hosts.filter((h) => h.running !== 2).length
  const summary = {
    run: n,
    elapsedS: elapsed / 1000,
    steadyS: steadyMs / 1000,
    hosts: HOSTS,
    scale: SCALE,
    pulls: latencies.length,
    convergeCompressedS: convergeMs && convergeMs / 1000,
    convergeRealS: convergeMs && (convergeMs * SCALE) / 1000,
    p50: pct(0.5),
    p99: pct(0.99),
    phases,
    steady,
    attack,
    cpuMsPerPull,
    aloneP50,
    denyAll,
    failures,
    violations: violations.length,
    violationList: violations,
    stillV1,
    load,
  }
  return summary
}

const RUNS = Number(process.env.FLEET_RUNS ?? 3)
const runs = []
for (let n = 1; n <= RUNS; n++) {
  runs.push(await simulate(n))
  console.log(JSON.stringify(runs.at(-1)))
}
registry.kill('SIGTERM')
proxy.close()
const violations = runs.flatMap((r) => r.violationList)
const med = (key) => median(runs.map((r) => (typeof key === 'function' ? key(r) : r[key])))
if (violations.length) {
  console.error(violations.slice(0, 10).join('\n'))
  process.exit(1)
}
if (process.env.FLEET_WRITE === '0') process.exit(0)

const f = (x, d = 1) => (x === null || x === undefined ? 'n/a' : x.toFixed(d))
const list = (key, d = 1) => runs.map((r) => f(typeof key === 'function' ? key(r) : r[key], d)).join(', ')
const failed = Object.entries(runs.reduce((all, r) => {
  for (const [k, v] of Object.entries(r.failures)) all[k] = (all[k] ?? 0) + v
  return all
}, {})).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
const r0 = runs[0]
const notConverged = runs.filter((r) => r.convergeRealS === null).length
const notConvergedText = notConverged ? ` (${notConverged} runs did not converge)` : ''
writeSection(
  'fleet',
  `## Fleet: ${HOSTS} hosts pulling signed bundles from an OCI registry (issue 20)

\`node bench/fleet.js\` — ${machine()}; load average ${runs.map((r) => r.load.map((l) => l.toFixed(1)).join('→')).join(', ')} (start→publish→end of each run), on a machine shared with other work.

${HOSTS} simulated hosts in one Node process, each with its own cache folder, run the real pull code
(\`pullBundle\` over the OCI source, a new registry client per pull as \`policy pull --watch\` makes one)
against Debian's docker-registry on 127.0.0.1 (anonymous; the hosts go through a proxy that counts their requests),
every ${INTERVAL_S} s ±${JITTER * 100} %, offline mode cached_with_expiry, time compressed ${SCALE}× (a run: ${f(r0.elapsedS)} s, ${f((r0.elapsedS * SCALE) / 60)} min of fleet time).
v1 is published first and v2 after 2 intervals, with \`planOciPublish\` + \`pushPlanned\` (the code of \`policy publish --apply\`);
after 5 intervals an attacker with push access moves the tag to an unsigned v1000000, after 6.5 back to the signed, older v1.
${RUNS} runs, each on a repository of its own with new hosts; the median first, then each run.

| measure | median | runs |
| --- | --- | --- |
| pulls | ${f(med('pulls'), 0)} | ${list('pulls', 0)} |
| CPU per pull (the cache verified again on every load) | ${f(med('cpuMsPerPull'), 2)} ms | ${list('cpuMsPerPull', 2)} |
| every host running v2, in fleet time after the push (interval ${INTERVAL_S} s) | **${f(med((r) => r.convergeRealS ?? Infinity))} s** | ${list('convergeRealS')}${notConvergedText} |
| pull latency p50 (in-process: ${HOSTS} hosts share one event loop, so this includes queueing) | ${f(med('p50'))} ms | ${list('p50')} |
| pull latency p99 | ${f(med('p99'))} ms | ${list('p99')} |
| baseline in the same run: one host alone, p50 of 29 unchanged pulls | ${f(med('aloneP50'))} ms | ${list('aloneP50')} |
| per host per hour, one publication (first 5 intervals): manifest HEADs | ${f(med((r) => r.steady.head))} | ${list((r) => r.steady.head)} |
| manifest GETs per host in those 5 intervals (the first fetch and one publication; as many blob GETs) | ${f(med((r) => r.phases.steady.manifestGet / HOSTS), 2)} | ${list((r) => r.phases.steady.manifestGet / HOSTS, 2)} |
| per host per hour while the tag holds something that does not verify: HEADs / manifest GETs | ${f(med((r) => r.attack.head))} / ${f(med((r) => r.attack.manifestGet))} | ${list((r) => r.attack.manifestGet)} |
| pulls that ended in deny-all (a host with no cache yet and a failed pull) | ${f(med('denyAll'), 0)} | ${list('denyAll', 0)} |
| failures reported by pulls, all runs (each answered by the offline mode: the verified cached v2) | ${failed} | |
| hosts that accepted an unsigned or older bundle, all runs | **${violations.length}** (checked on every pull; the benchmark fails otherwise) | |

Docker Hub counts a manifest GET as a pull and does not count a HEAD; its anonymous limit is 10 pulls an hour (per IP
address: hosts behind one NAT address share it). A host GETs the manifest only when the tag names a digest other than
the one its verified cache came from: once per publication in normal operation (2 above: the first fetch and one
publication), far under that limit. The HEADs, up to ${3600 / INTERVAL_S} an hour at a
${INTERVAL_S} s interval, are uncounted there but are requests a registry serves. While the tag holds something that does
not verify, every pull GETs it again (its digest is never the cache's), ${f(med((r) => r.attack.manifestGet), 0)} an hour per host here, over
Docker Hub's anonymous limit: an attacker with push access can make hosts hit the rate limit; they then stay on their
verified cache as the offline mode says, the same outcome as the failed verification itself.
`,
)
