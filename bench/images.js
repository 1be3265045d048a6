// Golden image benchmark (issue 4): per-bundle verification in-process, keyed and keyless,
// against the raw @sigstore/verify call on the same bundles; `airlock image verify --all` over
// 1,000 pinned digests as one process; and what loading the verifier costs a command that
// needs it (commands that do not need it never import it).
import {spawnSync} from 'node:child_process'
import {createPublicKey, generateKeyPairSync} from 'node:crypto'
import {mkdirSync, rmSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {bundleFromJSON} from '@sigstore/bundle'
import {TrustedRoot} from '@sigstore/protobuf-specs'
import {toSignedEntity, toTrustMaterial, Verifier} from '@sigstore/verify'
import {generateFleet} from './generate.js'
import {machine, median, ROOT, writeSection} from './report.js'

const WORK = join(ROOT, 'bench', '.work', 'images')
const NODE = process.execPath
const BIN = join(ROOT, 'bin', 'run.js')
const N = Number(process.env.BENCH_BUNDLES ?? 1000)
const RUNS = Number(process.env.BENCH_RUNS ?? 7)
const load = loadavg().map((x) => x.toFixed(2)).join(', ')
const KEYLESS = Number(process.env.BENCH_KEYLESS ?? 200)

const {verifyImageSignature, imageKey, emptyTrustedRoot} = await import(join(ROOT, 'dist/platform/images/verify.js'))
const {signImageBundle} = await import(join(ROOT, 'dist/platform/images/sign.js'))
const {generateImageKey} = await import(join(ROOT, 'dist/control-plane/crypto/keys.js'))
// The keyless bundles come from @sigstore/mock's Fulcio, Rekor and TSA, as in the tests.
const {startMockSigstore} = await import(join(ROOT, 'test/sigstore-fixtures.ts'))

rmSync(WORK, {recursive: true, force: true})
mkdirSync(WORK, {recursive: true})
const digestOf = (i) => `sha256:${i.toString(16).padStart(64, '0')}`

/** Median over RUNS of the time per operation of `fn` over every item. */
function perOp(items, fn) {
  const times = []
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now()
    for (const item of items) fn(item)
    times.push((performance.now() - t) / items.length)
  }
  return median(times)
}

// Keyed: ECDSA P-256 DSSE bundles, as `airlock image sign` (and key-based cosign) make them.
const {key} = generateImageKey('ecdsa-p256')
const keyed = []
for (let i = 0; i < N; i++) keyed.push({digest: digestOf(i), bundle: JSON.parse(await signImageBundle('registry.example.com/golden/x', digestOf(i), key))})
const publicKey = createPublicKey(key.publicKeyPem)
const keyedPolicy = {keys: [imageKey(key.keyid, publicKey)], identities: [], trustedRoot: emptyTrustedRoot(), tlogThreshold: 0, timestampThreshold: 0}
const rawKeyedVerifier = new Verifier(toTrustMaterial(emptyTrustedRoot(), () => ({publicKey, validFor: () => true})), {tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0})
perOp(keyed, (b) => verifyImageSignature(b.digest, b.bundle, keyedPolicy))
const rawKeyed = perOp(keyed, (b) => rawKeyedVerifier.verify(toSignedEntity(bundleFromJSON(b.bundle))))
const airlockKeyed = perOp(keyed, (b) => verifyImageSignature(b.digest, b.bundle, keyedPolicy))

// Keyless: Fulcio certificate, Rekor entry, RFC 3161 timestamp; exact identity. The fixture
// dates the mock CA with vitest's fake timers, which exist only inside vitest: outside it this
// part is reported not run, with the reason.
let rawKeyless = null
let airlockKeyless = null
let keylessNotRun = null
try {
  const sigstore = await startMockSigstore(new Date())
  const identity = {subject: 'https://github.com/acme/golden/.github/workflows/release.yml@refs/heads/main', issuer: 'https://token.actions.githubusercontent.com'}
  const keyless = []
  for (let i = 0; i < KEYLESS; i++) keyless.push({digest: digestOf(i), bundle: await sigstore.signKeyless(digestOf(i), identity)})
  await sigstore.close()
  const root = TrustedRoot.fromJSON(sigstore.trustedRoot)
  const keylessPolicy = {keys: [], identities: [identity], trustedRoot: root, tlogThreshold: 1, timestampThreshold: 1}
  const rawKeylessVerifier = new Verifier(toTrustMaterial(root, () => null), {tlogThreshold: 1, ctlogThreshold: 1, timestampThreshold: 1})
  perOp(keyless, (b) => verifyImageSignature(b.digest, b.bundle, keylessPolicy))
  rawKeyless = perOp(keyless, (b) => rawKeylessVerifier.verify(toSignedEntity(bundleFromJSON(b.bundle)), {subjectAlternativeName: identity.subject, extensions: {issuer: identity.issuer}}))
  airlockKeyless = perOp(keyless, (b) => verifyImageSignature(b.digest, b.bundle, keylessPolicy))
} catch (error) {
  keylessNotRun = `not run: ${error.message.split('\n')[0]} (test/sigstore-fixtures.ts dates the mock CA with vitest's fake timers)`
}

// Whole processes run in a fleet made by bench/generate.js (issue 20): 500 images × 2 channels =
// 1,000 pinned digests, 1,000 commits signed by the fleet's evidence key (every read starts from
// a HEAD verified back to the pinned anchor), packed (delta chains, as a clone has them), with a
// Sigstore bundle for every canary digest from its signing pipeline's commit; the 500 stable
// digests have none, so \`--all\` reports them NO_SIGNATURE and exits 1, as it would.
const repo = join(WORK, 'generated')
await generateFleet(repo, {images: 500, commits: 1000})

function processMedian(args, opts = {}, exit = 0) {
  const times = []
  for (let r = 0; r <= RUNS; r++) {
    const t = performance.now()
    const p = spawnSync(NODE, args, {cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28, ...opts})
    if (p.status !== exit) throw new Error(`${args.join(' ')}: exit ${p.status} ${p.stderr}`)
    if (r > 0) times.push(performance.now() - t)
  }
  return median(times)
}
/** Median over RUNS (after one warm-up) of the wall time of `fn`. */
function processMedianOf(fn) {
  const times = []
  for (let r = 0; r <= RUNS; r++) {
    const t = performance.now()
    fn()
    if (r > 0) times.push(performance.now() - t)
  }
  return median(times)
}
const all = processMedian([BIN, 'image', 'verify', '--all', '--json'], {}, 1)
const check = JSON.parse(spawnSync(NODE, [BIN, 'image', 'verify', '--all', '--json'], {cwd: repo, maxBuffer: 1 << 28}).stdout.toString())
if (check.verified !== 500 || check.failed !== 500 || check.results.some((r) => !r.verified && r.reason !== 'NO_SIGNATURE')) throw new Error(`verify --all: ${check.verified} verified, ${check.failed} failed`)
// What the same reads cost native git: the image manifests, each signatures folder and each
// bundle, through one \`git cat-file --batch\`.
const nativeReads = processMedianOf(() => {
  const g = (args, input) => spawnSync('git', args, {cwd: repo, input, maxBuffer: 1 << 28}).stdout.toString()
  const oids = g(['ls-tree', '-r', '--format=%(objectname)', 'HEAD', 'manifests/images/', 'manifests/signatures/']).trim().split('\n')
  const trees = g(['ls-tree', '-d', '--format=%(objectname)', 'HEAD:manifests/signatures/']).trim().split('\n')
  g(['cat-file', '--batch'], `${[...oids, ...trees].join('\n')}\n`)
})
const nodeE = processMedian(['-e', ''])
const importVerifier = processMedian(['--input-type=module', '-e', `await import(${JSON.stringify(join(ROOT, 'dist/platform/images/verify.js'))})`])
const importOclifBase = processMedian(['--input-type=module', '-e', `await import(${JSON.stringify(join(ROOT, 'dist/commands/_base.js'))})`])
const importBoth = processMedian(['--input-type=module', '-e', `await import(${JSON.stringify(join(ROOT, 'dist/commands/_base.js'))}); await import(${JSON.stringify(join(ROOT, 'dist/platform/images/verify.js'))})`])
const status = processMedian([BIN, 'status', 'img-00042', '--json'])


const ms = (n) => (n < 1 ? n.toFixed(3) : n.toFixed(1))
const section = `## Golden images (issues 4, 20) — ${new Date().toISOString().slice(0, 10)}

Machine: ${machine()}. Load average when it started: ${load} (1, 5, 15 min; on 2 cores). In-process: medians of ${RUNS} passes over ${N} keyed bundles (ECDSA P-256 DSSE, as \`airlock image sign\` makes) and ${KEYLESS} keyless ones (Fulcio certificate + Rekor entry + RFC 3161 timestamp from @sigstore/mock), after one warm-up pass; the raw call is @sigstore/verify's \`Verifier.verify(toSignedEntity(bundleFromJSON(b)))\` on the same bundles with the same trust material. Processes: medians of ${RUNS} runs after one warm-up.

| what | result | target | baseline / ratio |
| --- | ---: | --- | --- |
| keyed verification, per bundle (subject check + each policy key) | ${ms(airlockKeyed)} ms | ≤ 1 ms | raw ${ms(rawKeyed)} ms (${(airlockKeyed / rawKeyed).toFixed(2)}×) |
| keyless verification, per bundle (chain, SCT, log, timestamp, exact identity) | ${keylessNotRun ?? `${ms(airlockKeyless)} ms`} | ≤ 20 ms | ${keylessNotRun ? '' : `raw with the library's identity policy ${ms(rawKeyless)} ms (${(airlockKeyless / rawKeyless).toFixed(2)}×)`} |
| \`airlock image verify --all\`, 1,000 pinned digests (500 images × 2 channels, 500 with a bundle: the others exit 1 NO_SIGNATURE), one process, in a fleet made by bench/generate.js (1,000 signed commits, packed) | ${all.toFixed(0)} ms | ≤ 1 s (issue 20; ≤ 5 s in issue 4) | \`node -e ''\` ${nodeE.toFixed(0)} ms; native \`git ls-tree\` + \`git cat-file --batch\` of the same manifests, folders and bundles ${nativeReads.toFixed(0)} ms |
| import of the verifier (@sigstore/verify, bundle, protobuf-specs, noble) in a fresh process | ${(importVerifier - nodeE).toFixed(0)} ms over \`node -e ''\` | paid only by image verify/sign/fetch-signature, promote, rollback, init | commands/_base alone ${(importOclifBase - nodeE).toFixed(0)} ms; both ${(importBoth - nodeE).toFixed(0)} ms (added: ${(importBoth - importOclifBase).toFixed(0)} ms) |
| \`airlock status IMAGE\` in the same repository (never loads the verifier) | ${status.toFixed(0)} ms | | |

Verifications in \`--all\` run one after another: @sigstore/verify's \`verify\` is synchronous CPU work, so only the blob reads overlap (\`Promise.all\`); at ${ms(airlockKeyed)} ms a bundle the 500 verifications are ${((airlockKeyed * 500) / all * 100).toFixed(0)} % of the run.
`
console.log(section)
writeSection('images', section)
