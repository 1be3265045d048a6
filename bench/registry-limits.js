// Registry limits benchmark (issue 17): peak memory (max RSS, /usr/bin/time) of one
// `airlock image fetch-signature` process against a real registry (Debian's docker-registry on
// 127.0.0.1) serving referrers at each cap and just over it, with `node -e ''` measured the same
// way in the same run. Medians of BENCH_RUNS runs. Writes the registry-limits section of
// docs/benchmarks.md. `node bench/registry-limits.js` (needs `npm run build` first).
import {spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'
import {machine, median, ROOT, writeSection} from './report.js'

const WORK = join(ROOT, 'bench', '.work', 'registry-limits')
const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node')
const BIN = join(ROOT, 'bin', 'run.js')
const REGISTRY = process.env.AIRLOCK_DOCKER_REGISTRY ?? '/usr/bin/docker-registry'
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const REPO = 'golden/agent-runner'
const MiB = 1024 * 1024
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json'

const {DEFAULT_LIMITS: L} = await import(join(ROOT, 'dist/control-plane/limits.js'))
const {signImageBundle} = await import(join(ROOT, 'dist/platform/images/sign.js'))
const {generateImageKey} = await import(join(ROOT, 'dist/control-plane/crypto/keys.js'))

const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, {encoding: 'utf8', maxBuffer: 1 << 28, ...opts})
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status} ${r.stderr}`)
  return r.stdout
}

if (existsSync(REGISTRY)) await main()
else console.error(`registry-limits bench skipped: ${REGISTRY} is not installed`)

async function main() {
  rmSync(WORK, {recursive: true, force: true})
  mkdirSync(WORK, {recursive: true})
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port
      s.close(() => resolve(p))
    })
  })
  writeFileSync(join(WORK, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(WORK, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n`)
  const registry = spawn(REGISTRY, ['serve', join(WORK, 'config.yml')], {stdio: 'ignore'})
  const url = `http://127.0.0.1:${port}`
  const host = `127.0.0.1:${port}`
  for (let i = 0; !(await fetch(`${url}/v2/`).then((r) => r.ok, () => false)); i++) {
    if (i > 100) throw new Error('docker-registry did not start')
    await new Promise((r) => setTimeout(r, 50))
  }

  async function pushBlob(bytes) {
    const start = await fetch(`${url}/v2/${REPO}/blobs/uploads/`, {method: 'POST'})
    const location = new URL(start.headers.get('location'), url)
    location.searchParams.set('digest', sha256(bytes))
    const put = await fetch(location, {method: 'PUT', body: bytes, headers: {'content-type': 'application/octet-stream'}})
    if (put.status !== 201) throw new Error(`blob upload: ${put.status}`)
    return {digest: sha256(bytes), size: bytes.length}
  }
  async function pushManifest(reference, manifest, mediaType = OCI_MANIFEST) {
    const bytes = Buffer.from(JSON.stringify(manifest))
    const put = await fetch(`${url}/v2/${REPO}/manifests/${reference ?? sha256(bytes)}`, {method: 'PUT', body: bytes, headers: {'content-type': mediaType}})
    if (put.status !== 201) throw new Error(`manifest push: ${put.status} ${await put.text()}`)
    return {digest: sha256(bytes), size: bytes.length}
  }
  let images = 0
  async function image() {
    const config = await pushBlob(Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: []}, n: ++images})))
    return pushManifest(`bench-${images}`, {schemaVersion: 2, mediaType: OCI_MANIFEST, config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config}, layers: []})
  }
  /** An image whose `sha256-<hex>` tag index lists one referrer per entry of `referrers` (each: its layer blobs, listed `times` times). */
  async function withReferrers(referrers, times = 1) {
    const img = await image()
    const empty = await pushBlob(Buffer.from('{}'))
    const listed = []
    for (const blobs of referrers) {
      const layers = []
      for (const b of typeof blobs === 'function' ? [await blobs(img)] : blobs) layers.push({mediaType: BUNDLE, ...(await pushBlob(b))})
      const m = await pushManifest(null, {schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: BUNDLE, config: {mediaType: 'application/vnd.oci.empty.v1+json', ...empty}, layers: Array.from({length: times}, () => layers).flat(), subject: {mediaType: OCI_MANIFEST, ...img}})
      listed.push({mediaType: OCI_MANIFEST, ...m, artifactType: BUNDLE})
    }
    await pushManifest(img.digest.replace(':', '-'), {schemaVersion: 2, mediaType: OCI_INDEX, manifests: listed}, OCI_INDEX)
    return img
  }

  // A fleet whose image lives in this registry.
  const fleet = join(WORK, 'fleet')
  run(NODE, [BIN, 'init', fleet, '--apply'])
  const env = {...process.env, AIRLOCK_EVIDENCE_KEY: join(fleet, 'keys', 'evidence.key'), NO_COLOR: '1'}
  const manifestFile = join(fleet, 'manifests/images/agent-runner.yaml')
  writeFileSync(manifestFile, readFileSync(manifestFile, 'utf8').replace('registry.example.com/golden/agent-runner', `${host}/${REPO}`))
  run(NODE, [BIN, 'change', '--reason', 'image in the bench registry', '--apply'], {cwd: fleet, env})

  // Signatures by a key the fleet does not trust: each is fetched and verified, none verifies.
  const stranger = generateImageKey('ecdsa-p256').key
  const strangerSigned = async (img) => Buffer.from(await signImageBundle(`${host}/${REPO}`, img.digest, stranger))
  const junk = (bytes, seed) => Buffer.alloc(bytes, String(seed))

  /** Max RSS in MiB of one process (median of RUNS), and how it ended. */
  function peak(args, cwd = fleet) {
    const rss = []
    let ended = ''
    for (let i = 0; i < RUNS; i++) {
      const r = spawnSync('/usr/bin/time', ['-f', '%M', NODE, ...args], {cwd, env, encoding: 'utf8', maxBuffer: 1 << 28})
      const lines = r.stderr.trim().split('\n')
      rss.push(Number(lines.at(-1)) / 1024)
      const out = r.stdout.trim() ? JSON.parse(r.stdout) : {}
      ended = `exit ${r.status}${out.error ? ` ${out.error.code}${out.error.details?.limit ? ` (${out.error.details.limit})` : ''}` : ''}`
    }
    return {mib: median(rss), ended}
  }
  const fetchSig = (img, ...flags) => [BIN, 'image', 'fetch-signature', `${host}/${REPO}@${img.digest}`, '--plain-http', '--json', ...flags]

  const rows = []
  const baseline = peak(['-e', ''])
  rows.push({what: "`node -e ''`", ...baseline})
  const idle = await image()
  rows.push({what: 'no signature in the registry', ...peak(fetchSig(idle))})

  const cases = [
    // [cap, what, at the cap, just over it]
    [
      'maxRegistryReferrers',
      (n) => `${n} referrers, each a bundle by an untrusted key`,
      async (n) => withReferrers(Array.from({length: n}, () => strangerSigned)),
      [L.maxRegistryReferrers, L.maxRegistryReferrers + 1],
      [],
    ],
    [
      'maxRegistryDescriptors',
      (n) => `one referrer listing one 3 MiB blob ${n} times`,
      async (n) => withReferrers([[junk(3 * MiB, 'd')]], n),
      [L.maxRegistryDescriptors, L.maxRegistryDescriptors + 1],
      ['--max-layers', String(L.maxRegistryDescriptors)],
    ],
    [
      'maxRegistryLayers',
      (n) => `one referrer with ${n} distinct 1 MiB layers`,
      async (n) => withReferrers([Array.from({length: n}, (_, i) => junk(MiB, `l${i}`))]),
      [L.maxRegistryLayers, L.maxRegistryLayers + 1],
      [],
    ],
    [
      'maxRegistryBlobBytes',
      (n) => `one referrer whose bundle is ${n === L.maxRegistryBlobBytes ? '4 MiB' : '4 MiB + 1 byte'}`,
      async (n) => withReferrers([[junk(n, 'b')]]),
      [L.maxRegistryBlobBytes, L.maxRegistryBlobBytes + 1],
      [],
    ],
    [
      'maxRegistryBytes',
      (n) => `8 referrers of ${n === 0 ? '4 MiB − 16 KiB' : '4 MiB'} each (32 MiB ${n === 0 ? 'in all with the manifests' : '+ the manifests'})`,
      async (n) => withReferrers(Array.from({length: 8}, (_, i) => [junk(n === 0 ? 4 * MiB - 16 * 1024 : 4 * MiB, `t${i}`)])),
      [0, 1],
      [],
    ],
  ]
  for (const [cap, what, make, [at, over], flags] of cases) {
    for (const n of [at, over]) {
      const img = await make(n)
      rows.push({what: `${what(n)}${flags.length ? ` (${flags.join(' ')})` : ''}`, cap, side: n === at ? 'at' : 'over', ...peak(fetchSig(img, ...flags))})
    }
  }
  // The issue's referrer, at the default caps.
  const hostile = await withReferrers([[junk(3 * MiB, 'h')]], 3000)
  rows.push({what: 'the issue: one referrer listing one 3 MiB blob 3,000 times (default caps)', ...peak(fetchSig(hostile))})

  registry.kill('SIGTERM')
  rmSync(WORK, {recursive: true, force: true})

  const day = new Date().toISOString().slice(0, 10)
  const section = `## Registries within limits (issue 17) — ${day}

Machine: ${machine()}. Peak memory is the max RSS of the whole \`airlock image fetch-signature --json\` process (\`/usr/bin/time -f %M\`), median of ${RUNS} runs, against Debian's docker-registry on 127.0.0.1 serving the image's referrers through the \`sha256-<hex>\` tag index; \`node -e ''\` measured the same way in the same run. Default caps: ${L.maxRegistryReferrers} referrers, ${L.maxRegistryDescriptors} descriptors a manifest, ${L.maxRegistryLayers} layers a referrer, ${L.maxRegistryBlobBytes / MiB} MiB a blob, ${L.maxRegistryBytes / MiB} MiB a command. \`node bench/registry-limits.js\`.

| registry serves | cap | side | peak RSS | over \`node -e ''\` | ended |
| --- | --- | --- | ---: | ---: | --- |
${rows.map((r) => `| ${r.what} | ${r.cap ? `\`${r.cap}\`` : ''} | ${r.side ?? ''} | ${r.mib.toFixed(0)} MiB | ${r.what.startsWith('`node') ? '' : `${(r.mib - baseline.mib).toFixed(0)} MiB`} | ${r.ended} |`).join('\n')}

Each row's process reads one candidate at a time and holds at most one blob; over a cap it stops there: a count is refused before anything it lists is fetched, a body is cut at its cap. Before these limits, the issue's referrer had every listed layer downloaded before any was verified (3,000 × 3 MiB); run with a 64 MiB heap, as in test/integration/registry-limits.test.ts, that process ended on a signal (heap exhausted) where it now exits 1 with \`REGISTRY_TOO_LARGE\`.
`
  console.log(section)
  writeSection('registry-limits', section)
}
