// Golden image benchmark (issue 4): per-bundle verification in-process, keyed and keyless,
// against the raw @sigstore/verify call on the same bundles; `airlock image verify --all` over
// 1,000 pinned digests as one process; and what loading the verifier costs a command that
// needs it (commands that do not need it never import it).
import {spawnSync} from 'node:child_process'
import {createPublicKey, generateKeyPairSync} from 'node:crypto'
import {cpSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {bundleFromJSON} from '@sigstore/bundle'
import {TrustedRoot} from '@sigstore/protobuf-specs'
import {toSignedEntity, toTrustMaterial, Verifier} from '@sigstore/verify'
import {machine, median, ROOT, writeSection} from './report.js'

const WORK = join(ROOT, 'bench', '.work', 'images')
const NODE = process.execPath
const BIN = join(ROOT, 'bin', 'run.js')
const N = Number(process.env.BENCH_BUNDLES ?? 1000)
const RUNS = Number(process.env.BENCH_RUNS ?? 7)
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

// Keyless: Fulcio certificate, Rekor entry, RFC 3161 timestamp; exact identity.
const sigstore = await startMockSigstore()
const identity = {subject: 'https://github.com/acme/golden/.github/workflows/release.yml@refs/heads/main', issuer: 'https://token.actions.githubusercontent.com'}
const keyless = []
for (let i = 0; i < KEYLESS; i++) keyless.push({digest: digestOf(i), bundle: await sigstore.signKeyless(digestOf(i), identity)})
await sigstore.close()
const root = TrustedRoot.fromJSON(sigstore.trustedRoot)
const keylessPolicy = {keys: [], identities: [identity], trustedRoot: root, tlogThreshold: 1, timestampThreshold: 1}
const rawKeylessVerifier = new Verifier(toTrustMaterial(root, () => null), {tlogThreshold: 1, ctlogThreshold: 1, timestampThreshold: 1})
perOp(keyless, (b) => verifyImageSignature(b.digest, b.bundle, keylessPolicy))
const rawKeyless = perOp(keyless, (b) => rawKeylessVerifier.verify(toSignedEntity(bundleFromJSON(b.bundle)), {subjectAlternativeName: identity.subject, extensions: {issuer: identity.issuer}}))
const airlockKeyless = perOp(keyless, (b) => verifyImageSignature(b.digest, b.bundle, keylessPolicy))

// `image verify --all`: 500 images × 2 channels = 1,000 pinned digests, each with its bundle.
const repo = join(WORK, 'fleet')
const git = (...args) => {
  const r = spawnSync('git', args, {cwd: repo, stdio: ['ignore', 'ignore', 'pipe']})
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`)
}
mkdirSync(join(repo, 'manifests', 'images'), {recursive: true})
// As a fleet made by `airlock init`: the public-good trusted root pinned in the repository.
mkdirSync(join(repo, 'manifests', 'sigstore'), {recursive: true})
cpSync(join(ROOT, 'manifests', 'sigstore', 'trusted_root.json'), join(repo, 'manifests', 'sigstore', 'trusted_root.json'))
const {trustEntry, newTrustDocument} = await import(join(ROOT, 'dist/control-plane/plan/trust-key.js'))
writeFileSync(join(repo, 'manifests', 'trust.yaml'), newTrustDocument([trustEntry('image', 'image', key.publicKey, key.keyid, new Date('2026-01-01T00:00:00Z'), undefined, key.algorithm)]).toString())
for (let i = 0; i < N / 2; i++) {
  const name = `image-${i}`
  const [canary, stable] = [keyed[2 * i], keyed[2 * i + 1]]
  writeFileSync(
    join(repo, 'manifests', 'images', `${name}.yaml`),
    `apiVersion: airlock/v1\nkind: GoldenImage\nmetadata:\n  name: ${name}\nspec:\n  repository: registry.example.com/golden/${name}\n  tier: 2\n  channels:\n    canary:\n      digest: ${canary.digest}\n    stable:\n      digest: ${stable.digest}\n`,
  )
  mkdirSync(join(repo, 'manifests', 'signatures', name), {recursive: true})
  for (const b of [canary, stable]) writeFileSync(join(repo, 'manifests', 'signatures', name, `${b.digest.replace(':', '-')}.sigstore.json`), JSON.stringify(b.bundle))
}
git('init', '-q', '-b', 'main')
git('add', '.')
git('-c', 'user.name=bench', '-c', 'user.email=bench@localhost', 'commit', '-qm', 'fleet')

function processMedian(args, opts = {}) {
  const times = []
  for (let r = 0; r <= RUNS; r++) {
    const t = performance.now()
    const p = spawnSync(NODE, args, {cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28, ...opts})
    if (p.status !== 0) throw new Error(`${args.join(' ')}: exit ${p.status} ${p.stderr}`)
    if (r > 0) times.push(performance.now() - t)
  }
  return median(times)
}
const all = processMedian([BIN, 'image', 'verify', '--all', '--json'])
const check = JSON.parse(spawnSync(NODE, [BIN, 'image', 'verify', '--all', '--json'], {cwd: repo, maxBuffer: 1 << 28}).stdout.toString())
if (check.verified !== N || check.failed !== 0) throw new Error(`verify --all: ${check.verified} verified, ${check.failed} failed`)
const nodeE = processMedian(['-e', ''])
const importVerifier = processMedian(['--input-type=module', '-e', `await import(${JSON.stringify(join(ROOT, 'dist/platform/images/verify.js'))})`])
const importOclifBase = processMedian(['--input-type=module', '-e', `await import(${JSON.stringify(join(ROOT, 'dist/commands/_base.js'))})`])
const importBoth = processMedian(['--input-type=module', '-e', `await import(${JSON.stringify(join(ROOT, 'dist/commands/_base.js'))}); await import(${JSON.stringify(join(ROOT, 'dist/platform/images/verify.js'))})`])
const status = processMedian([BIN, 'status', 'image-0', '--json'])

const ms = (n) => (n < 1 ? n.toFixed(3) : n.toFixed(1))
const section = `## Golden images (issue 4) — ${new Date().toISOString().slice(0, 10)}

Machine: ${machine()}. In-process: medians of ${RUNS} passes over ${N} keyed bundles (ECDSA P-256 DSSE, as \`airlock image sign\` makes) and ${KEYLESS} keyless ones (Fulcio certificate + Rekor entry + RFC 3161 timestamp from @sigstore/mock), after one warm-up pass; the raw call is @sigstore/verify's \`Verifier.verify(toSignedEntity(bundleFromJSON(b)))\` on the same bundles with the same trust material. Processes: medians of ${RUNS} runs after one warm-up.

| what | result | target | baseline / ratio |
| --- | ---: | --- | --- |
| keyed verification, per bundle (subject check + each policy key) | ${ms(airlockKeyed)} ms | ≤ 1 ms | raw ${ms(rawKeyed)} ms (${(airlockKeyed / rawKeyed).toFixed(2)}×) |
| keyless verification, per bundle (chain, SCT, log, timestamp, exact identity) | ${ms(airlockKeyless)} ms | ≤ 20 ms | raw with the library's identity policy ${ms(rawKeyless)} ms (${(airlockKeyless / rawKeyless).toFixed(2)}×) |
| \`airlock image verify --all\`, ${N} pinned digests (${N / 2} images × 2 channels), one process | ${all.toFixed(0)} ms | ≤ 5 s | \`node -e ''\` ${nodeE.toFixed(0)} ms |
| import of the verifier (@sigstore/verify, bundle, protobuf-specs, noble) in a fresh process | ${(importVerifier - nodeE).toFixed(0)} ms over \`node -e ''\` | paid only by image verify/sign/fetch-signature, promote, rollback, init | commands/_base alone ${(importOclifBase - nodeE).toFixed(0)} ms; both ${(importBoth - nodeE).toFixed(0)} ms (added: ${(importBoth - importOclifBase).toFixed(0)} ms) |
| \`airlock status IMAGE\` in the same repository (never loads the verifier) | ${status.toFixed(0)} ms | | |

Verifications in \`--all\` run one after another: @sigstore/verify's \`verify\` is synchronous CPU work, so only the blob reads overlap (\`Promise.all\`); at ${ms(airlockKeyed)} ms a bundle the verifications are ${((airlockKeyed * N) / all * 100).toFixed(0)} % of the run.
`
console.log(section)
writeSection('images', section)
