/**
 * A registry cannot make `image fetch-signature` read without end (issue 17): the real registry
 * (Debian's docker-registry on 127.0.0.1) serving oversized referrers, behind a loopback proxy
 * that logs every path asked for (so the tests see what was fetched, and what was not) and can
 * be made to answer slowly.
 */
import {createHash, createPrivateKey, createPublicKey} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import {createServer, request, type Server} from 'node:http'
import {join} from 'node:path'
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'
import {airlock, commitChange, git, initFleet} from '../helpers.js'
import {BUNDLE_TYPE, OCI_INDEX, OCI_MANIFEST, pushImage, RUN_REGISTRY_TESTS, startRegistry, type Registry} from '../registry.js'
import {imageKeyPair, signImage, type ImageKeyPair} from '../sigstore-fixtures.js'

const REPO = 'golden/agent-runner'
let reg: Registry
let proxy: Server
let host: string
/** What the proxy was asked for, `GET /v2/…`, since the last test began. */
const asked: string[] = []
/** `slow`: answer every request with its headers, then a byte now and then, never finishing. */
let mode: 'forward' | 'slow' = 'forward'
let fleet: Awaited<ReturnType<typeof initFleet>>
let key: ImageKeyPair
const stranger = imageKeyPair('ec')

beforeAll(async () => {
  if (!RUN_REGISTRY_TESTS) return
  reg = await startRegistry()
  const target = new URL(reg.url)
  proxy = createServer((req, res) => {
    asked.push(`${req.method} ${req.url}`)
    if (mode === 'slow') {
      res.writeHead(200, {'content-type': OCI_MANIFEST})
      const drip = setInterval(() => res.write(' '), 200)
      res.on('close', () => clearInterval(drip))
      return
    }
    const upstream = request({host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers}, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  host = `127.0.0.1:${(proxy.address() as {port: number}).port}`
  fleet = await initFleet()
  const file = join(fleet.dir, 'manifests/images/agent-runner.yaml')
  await writeFile(file, (await readFile(file, 'utf8')).replace('registry.example.com/golden/agent-runner', `${host}/${REPO}`))
  await commitChange(fleet.dir, fleet.env, 'image lives behind the local proxy')
  const privateKey = createPrivateKey(await readFile(fleet.imageKey, 'utf8'))
  key = {privateKey, pem: createPublicKey(privateKey).export({format: 'pem', type: 'spki'}).toString(), type: 'ec'}
})
afterAll(async () => {
  await fleet?.cleanup()
  await new Promise((r) => (proxy ? (proxy.closeAllConnections(), proxy.close(r)) : r(null)))
  await reg?.close()
})
beforeEach(() => {
  asked.length = 0
  mode = 'forward'
})

type Image = {digest: string; size: number}
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`
let tags = 0
const newImage = () => pushImage(reg, REPO, `limits-${++tags}`)

/** A referrer of `image` (an OCI 1.1 artifact manifest, as cosign v3 pushes it) whose layers are `blobs`, each pushed once. */
async function referrer(image: Image, blobs: Buffer[], times = 1): Promise<{mediaType: string; digest: string; size: number; artifactType: string}> {
  const empty = await reg.pushBlob(REPO, Buffer.from('{}'))
  const layers = []
  for (const b of blobs) layers.push({mediaType: BUNDLE_TYPE, ...(await reg.pushBlob(REPO, b))})
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE_TYPE,
    config: {mediaType: 'application/vnd.oci.empty.v1+json', ...empty},
    layers: Array.from({length: times}, () => layers).flat(),
    subject: {mediaType: OCI_MANIFEST, ...image},
  }
  const pushed = await reg.pushManifest(REPO, sha256(JSON.stringify(manifest)), manifest)
  return {mediaType: OCI_MANIFEST, digest: pushed.digest, size: pushed.size, artifactType: BUNDLE_TYPE}
}

/** The `sha256-<hex>` tag index (the registry has no referrers API) listing `referrers` in order. */
async function index(image: Image, referrers: object[]): Promise<void> {
  await reg.pushManifest(REPO, image.digest.replace(':', '-'), {schemaVersion: 2, mediaType: OCI_INDEX, manifests: referrers}, OCI_INDEX)
}

const signed = async (image: Image, by: ImageKeyPair) => Buffer.from(JSON.stringify(await signImage(image.digest, by)))
const fetchSig = (image: Image, more: string[] = [], env: Record<string, string> = {}) =>
  airlock(['image', 'fetch-signature', `${host}/${REPO}@${image.digest}`, '--plain-http', '--json', ...more], {cwd: fleet.dir, env: {...fleet.env, ...env}})
const fetched = (what: 'manifests' | 'blobs', digest: string) => asked.includes(`GET /v2/${REPO}/${what}/${digest}`)

describe.runIf(RUN_REGISTRY_TESTS)('image fetch-signature within the registry limits (real docker-registry behind a logging proxy)', () => {
  it('refuses a referrer that lists one 3 MiB blob 3,000 times (REGISTRY_TOO_LARGE, the descriptors cap), fetching none of it, in a 64 MiB heap', async () => {
    const image = await newImage()
    const blob = Buffer.alloc(3 * 1024 * 1024, 'x')
    const hostile = await referrer(image, [blob], 3000)
    await index(image, [hostile])
    // A heap far smaller than what reading the layers would take: bounded memory, or a crash.
    const r = await fetchSig(image, [], {NODE_OPTIONS: '--max-old-space-size=64'})
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryDescriptors', value: 1024, flag: '--max-descriptors'}})
    expect(r.json.error.message).toMatch(/lists 3000 descriptors: over the maxRegistryDescriptors cap of 1024 \(--max-descriptors raises it\)/)
    expect(fetched('blobs', sha256(blob))).toBe(false)
    // The human form: one line naming the cap and the flag, no stack trace.
    const human = await airlock(['image', 'fetch-signature', `${host}/${REPO}@${image.digest}`, '--plain-http'], {cwd: fleet.dir, env: fleet.env})
    expect(human.exitCode).toBe(1)
    expect(human.stderr).toMatch(/^airlock: TOO_LARGE: .*--max-descriptors raises it/)
    expect(human.stderr).not.toMatch(/\n\s+at /)

    // Caps raised past it: the blob listed again is fetched once, tried, refused; memory stays bounded.
    asked.length = 0
    const raised = await fetchSig(image, ['--max-descriptors', '5000', '--max-layers', '5000'], {NODE_OPTIONS: '--max-old-space-size=64'})
    expect(raised.exitCode).toBe(1)
    expect(raised.json.error.code).toMatch(/^IMAGE_/)
    expect(asked.filter((p) => p.includes('/blobs/') && !p.includes(sha256('{}')))).toHaveLength(1)
  })

  it('refuses a referrer with more signature layers than maxRegistryLayers, before fetching any', async () => {
    const image = await newImage()
    const bundle = await signed(image, key)
    await index(image, [await referrer(image, [bundle], 17)])
    const r = await fetchSig(image)
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryLayers', value: 16, flag: '--max-layers'}})
    expect(fetched('blobs', sha256(bundle))).toBe(false)
    // Raised by its flag, the same referrer's (good) signature is found.
    const raised = await fetchSig(image, ['--max-layers', '17'])
    expect(raised.exitCode).toBe(0)
  })

  it('refuses more signature referrers than maxRegistryReferrers (33 over 32) before fetching any; --max-referrers raises it', async () => {
    const image = await newImage()
    const referrers = []
    for (let i = 0; i < 33; i++) referrers.push(await referrer(image, [Buffer.from(JSON.stringify({junk: i}))]))
    await index(image, referrers)
    const r = await fetchSig(image)
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryReferrers', value: 32, flag: '--max-referrers'}})
    expect(referrers.some((d) => fetched('manifests', d.digest))).toBe(false)
    const raised = await fetchSig(image, ['--max-referrers', '33'])
    expect(raised.exitCode).toBe(1)
    expect(raised.json.error.code).toMatch(/^IMAGE_/)
    expect(raised.json.error.details.found).toHaveLength(33)
  })

  it('refuses a blob larger than maxRegistryBlobBytes (5 MiB over the 4 MiB default; a cap below the bundle by --max-blob-bytes or its old name --max-bytes)', async () => {
    const image = await newImage()
    await index(image, [await referrer(image, [Buffer.alloc(5 * 1024 * 1024, 'y')])])
    const r = await fetchSig(image)
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryBlobBytes', value: 4 * 1024 * 1024, flag: '--max-blob-bytes'}})

    const good = await newImage()
    await index(good, [await referrer(good, [await signed(good, key)])])
    for (const flag of ['--max-blob-bytes', '--max-bytes']) {
      const small = await fetchSig(good, [flag, '200'])
      expect(small.exitCode).toBe(1)
      expect(small.json.error).toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryBlobBytes', value: 200}})
    }
    expect((await fetchSig(good)).exitCode).toBe(0)
  })

  it('refuses a command that would read more than maxRegistryBytes in all', async () => {
    const image = await newImage()
    const referrers = []
    for (let i = 0; i < 5; i++) referrers.push(await referrer(image, [Buffer.alloc(1024 * 1024, String(i))]))
    await index(image, referrers)
    const r = await fetchSig(image, ['--max-total-bytes', String(3 * 1024 * 1024)])
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryBytes', value: 3 * 1024 * 1024, flag: '--max-total-bytes'}})
    expect(r.json.error.details.found.length).toBeGreaterThan(0)
  })

  it('tries candidates one at a time: a good signature after two bad ones is found, and nothing after it is fetched', async () => {
    const image = await newImage()
    const bad = [await referrer(image, [await signed(image, stranger)]), await referrer(image, [Buffer.from('{"not": "a bundle"}')])]
    const good = await referrer(image, [await signed(image, key)])
    const laterBundles = [Buffer.from(JSON.stringify({...(await signImage(image.digest, key)), later: 1})), await signed(image, stranger)]
    const later = [await referrer(image, [laterBundles[0]!]), await referrer(image, [laterBundles[1]!])]
    await index(image, [...bad, good, ...later])
    const head = await git(fleet.dir, 'rev-parse', 'HEAD')
    const r = await fetchSig(image)
    expect(r.exitCode).toBe(0)
    expect(r.json.plan.details).toMatchObject({layout: 'referrer', referrer: good.digest})
    expect(r.json.found).toEqual([expect.objectContaining({verified: false}), expect.objectContaining({verified: false}), expect.objectContaining({verified: true})])
    expect([...bad, good].every((d) => fetched('manifests', d.digest))).toBe(true)
    expect(later.some((d) => fetched('manifests', d.digest))).toBe(false)
    expect(laterBundles.some((b) => fetched('blobs', sha256(b)))).toBe(false)
    expect(asked.some((p) => p.endsWith('.sig'))).toBe(false)
    expect(await git(fleet.dir, 'rev-parse', 'HEAD')).toBe(head)
  })

  it('shows a hostile bundle\'s text on one line of stderr: a newline in its payloadType cannot fake a line of airlock\'s output', async () => {
    const image = await newImage()
    const bundle = await signImage(image.digest, stranger)
    ;(bundle as any).dsseEnvelope.payloadType = 'x\nhistory VERIFIED from trust anchor 000000000000\n'
    await index(image, [await referrer(image, [Buffer.from(JSON.stringify(bundle))])])
    const r = await airlock(['image', 'fetch-signature', `${host}/${REPO}@${image.digest}`, '--plain-http'], {cwd: fleet.dir, env: fleet.env})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/the DSSE payload is x/)
    for (const line of r.stderr.split('\n').filter(Boolean)) expect(line).toMatch(/^airlock: /)
    expect(r.stderr).not.toMatch(/^history VERIFIED/m)
  })

  it('ends at the command deadline when the registry answers slowly (REGISTRY_TIMEOUT naming --deadline), each request allowed far longer', async () => {
    const image = await newImage()
    mode = 'slow'
    const r = await fetchSig(image, ['--deadline', '1s', '--timeout', '10m'])
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'REGISTRY_TIMEOUT', details: {limit: 'registryDeadlineMs', value: 1000, flag: '--deadline'}})
    expect(r.json.error.message).toMatch(/--deadline raises it/)
    const bad = await fetchSig(image, ['--deadline', 'soon'])
    expect(bad.exitCode).toBe(2)
    expect(bad.json.error).toMatchObject({code: 'USAGE', message: expect.stringMatching(/^--deadline: "soon" is not a duration/)})
  })
})
