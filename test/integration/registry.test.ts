import {createPrivateKey, sign} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, commitChange, git, initFleet} from '../helpers.js'
import {attachBundle, attachSigTag, pushImage, RUN_REGISTRY_TESTS, simpleSigningPayload, startRegistry, type Registry} from '../registry.js'
import {cosignV2Annotations, imageKeyPair, signImage, startMockSigstore, type ImageKeyPair} from '../sigstore-fixtures.js'

let reg: Registry
let fleet: Awaited<ReturnType<typeof initFleet>>
let key: ImageKeyPair
let repository: string
beforeAll(async () => {
  if (!RUN_REGISTRY_TESTS) return
  reg = await startRegistry()
  fleet = await initFleet()
  repository = `${reg.host}/golden/agent-runner`
  // The fleet's image lives in the local registry.
  const file = join(fleet.dir, 'manifests/images/agent-runner.yaml')
  await writeFile(file, (await readFile(file, 'utf8')).replace('registry.example.com/golden/agent-runner', repository))
  await commitChange(fleet.dir, fleet.env, 'image lives in the local registry')
  const privateKey = createPrivateKey(await readFile(fleet.imageKey, 'utf8'))
  key = {privateKey, pem: '', type: 'ec'}
  key.pem = (await import('node:crypto')).createPublicKey(privateKey).export({format: 'pem', type: 'spki'}).toString()
})
afterAll(async () => {
  await fleet?.cleanup()
  await reg?.close()
})

const fetchSig = (ref: string, ...more: string[]) => airlock(['image', 'fetch-signature', ref, '--plain-http', '--json', ...more], {cwd: fleet.dir, env: fleet.env})
const sigPath = (digest: string, ext = 'sigstore.json') => `manifests/signatures/agent-runner/${digest.replace(':', '-')}.${ext}`

describe.runIf(RUN_REGISTRY_TESTS)('image fetch-signature against a real registry (Debian docker-registry on 127.0.0.1)', () => {
  it('finds a cosign v3 bundle through the sha256-<hex> tag index (no referrers API here), stores it, and the digest promotes', async () => {
    const image = await pushImage(reg, 'golden/agent-runner', 'v3')
    await attachBundle(reg, 'golden/agent-runner', image, JSON.stringify(await signImage(image.digest, key)))
    const plan = await fetchSig(`${repository}@${image.digest}`)
    expect(plan.exitCode).toBe(0)
    expect(plan.json.plan.details).toMatchObject({layout: 'referrer', via: 'referrers-tag', registry: reg.host})
    expect(plan.json.plan.changes.map((c: any) => c.path)).toEqual([sigPath(image.digest)])
    expect(existsSync(join(fleet.dir, sigPath(image.digest)))).toBe(false)
    const applied = await fetchSig(`${repository}@${image.digest}`, '--apply')
    expect(applied.exitCode).toBe(0)
    const promoted = await airlock(['promote', 'agent-runner', '--digest', image.digest, '--to', 'canary', '--reason', 'signed in the registry', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
    expect(promoted.exitCode).toBe(0)
    expect(promoted.json.plan.signature).toMatchObject({bundleType: 'dsse', verified: true})
  })

  it('finds a cosign v2 signature under the .sig tag, keeps its payload beside the bundle, and the digest promotes', async () => {
    const image = await pushImage(reg, 'golden/agent-runner', 'v2')
    const payload = simpleSigningPayload(repository, image.digest)
    await attachSigTag(reg, 'golden/agent-runner', image, payload, sign('sha256', payload, key.privateKey).toString('base64'))
    const applied = await fetchSig(`${repository}@${image.digest}`, '--apply')
    expect(applied.exitCode).toBe(0)
    expect(applied.json.plan.details).toMatchObject({layout: 'sig-tag', tag: `${image.digest.replace(':', '-')}.sig`})
    expect(JSON.parse(await readFile(join(fleet.dir, sigPath(image.digest, 'payload.json')), 'utf8')).critical.image['docker-manifest-digest']).toBe(image.digest)
    const promoted = await airlock(['promote', 'agent-runner', '--digest', image.digest, '--to', 'canary', '--reason', 'v2 signature', '--json'], {cwd: fleet.dir})
    expect(promoted.exitCode).toBe(0)
    expect(promoted.json.plan.signature).toMatchObject({bundleType: 'message_signature', signer: {keyid: expect.stringMatching(/^[0-9a-f]{64}$/)}})
  })

  it('refuses a v2 payload that names another image, even with a good signature (SUBJECT_MISMATCH)', async () => {
    const image = await pushImage(reg, 'golden/agent-runner', 'swapped')
    const other = await pushImage(reg, 'golden/agent-runner', 'other')
    const payload = simpleSigningPayload(repository, other.digest)
    await attachSigTag(reg, 'golden/agent-runner', image, payload, sign('sha256', payload, key.privateKey).toString('base64'))
    const r = await fetchSig(`${repository}@${image.digest}`, '--apply')
    expect(r.exitCode).toBe(1)
    expect(r.json.error.details.reason).toBe('SUBJECT_MISMATCH')
    expect(existsSync(join(fleet.dir, sigPath(image.digest)))).toBe(false)
  })

  it('names both layouts when both are there, and refuses signatures by a key the fleet does not trust (1), writing nothing', async () => {
    const image = await pushImage(reg, 'golden/agent-runner', 'stranger')
    const stranger = imageKeyPair('ec')
    await attachBundle(reg, 'golden/agent-runner', image, JSON.stringify(await signImage(image.digest, stranger)))
    const payload = simpleSigningPayload(repository, image.digest)
    await attachSigTag(reg, 'golden/agent-runner', image, payload, sign('sha256', payload, stranger.privateKey).toString('base64'))
    const head = await git(fleet.dir, 'rev-parse', 'HEAD')
    const r = await fetchSig(`${repository}@${image.digest}`, '--apply')
    expect(r.exitCode).toBe(1)
    expect(r.json.error.details.reason).toBe('UNTRUSTED_SIGNER')
    expect(r.json.error.details.found).toEqual([expect.objectContaining({layout: 'referrer', verified: false}), expect.objectContaining({layout: 'sig-tag', verified: false})])
    expect(await git(fleet.dir, 'rev-parse', 'HEAD')).toBe(head)
  })

  it('says so when an image has no signature (NO_SIGNATURE), for a tag (2) and for an image the fleet does not manage (2)', async () => {
    const image = await pushImage(reg, 'golden/agent-runner', 'unsigned')
    const none = await fetchSig(`${repository}@${image.digest}`)
    expect(none.exitCode).toBe(1)
    expect(none.json.error.details.reason).toBe('NO_SIGNATURE')
    const tag = await fetchSig(`${repository}:latest`)
    expect(tag.exitCode).toBe(2)
    expect(tag.json.error.code).toBe('NOT_PINNED')
    const plain = await airlock(['image', 'fetch-signature', `registry.example.com/golden/agent-runner@${image.digest}`, '--plain-http', '--json'], {cwd: fleet.dir})
    expect(plain.exitCode).toBe(2)
    expect(plain.json.error.code).toBe('UNKNOWN_IMAGE')
  })

  // Last: it turns the fleet's image policy keyless.
  it('carries a keyless cosign v2 signature over: certificate and Rekor entry, its integrated time the verified timestamp', async () => {
    const sigstore = await startMockSigstore(new Date())
    try {
      const identity = {subject: 'https://github.com/acme/golden/.github/workflows/release.yml@refs/heads/main', issuer: 'https://token.actions.githubusercontent.com'}
      await writeFile(join(fleet.dir, 'manifests/sigstore/private.json'), JSON.stringify(sigstore.trustedRoot))
      const file = join(fleet.dir, 'manifests/images/agent-runner.yaml')
      await writeFile(file, `${await readFile(file, 'utf8')}  verification:\n    identities:\n      - issuer: ${identity.issuer}\n        subject: ${identity.subject}\n    trustedRoot: manifests/sigstore/private.json\n    tlogThreshold: 1\n`)
      await commitChange(fleet.dir, fleet.env, 'keyless policy')
      const image = await pushImage(reg, 'golden/agent-runner', 'keyless-v2')
      const payload = simpleSigningPayload(repository, image.digest)
      // cosign v2 signs keyless without a timestamp authority: the Rekor entry is the timestamp.
      const signed = await sigstore.signKeyless(image.digest, identity, {manifest: payload, timestamp: false})
      const annotations = cosignV2Annotations(signed)
      await attachSigTag(reg, 'golden/agent-runner', image, payload, annotations['dev.cosignproject.cosign/signature']!, annotations)
      const applied = await fetchSig(`${repository}@${image.digest}`, '--apply')
      expect(applied.exitCode).toBe(0)
      expect(applied.json.plan.signature).toMatchObject({bundleType: 'message_signature', signer: identity, thresholds: {tlog: 1, timestamp: 1}})
      expect(applied.json.plan.signature.tlogEntries).toEqual([expect.objectContaining({integratedTime: expect.stringMatching(/^\d{4}-/)})])
      const promoted = await airlock(['promote', 'agent-runner', '--digest', image.digest, '--to', 'canary', '--json'], {cwd: fleet.dir})
      expect(promoted.exitCode).toBe(0)
      expect(promoted.json.plan.signature.signer).toEqual(identity)

      // The same signature without its Rekor entry has no verified time: refused.
      const bare = await pushImage(reg, 'golden/agent-runner', 'keyless-v2-bare')
      const barePayload = simpleSigningPayload(repository, bare.digest)
      const bareSigned = cosignV2Annotations(await sigstore.signKeyless(bare.digest, identity, {manifest: barePayload, timestamp: false}))
      delete bareSigned['dev.sigstore.cosign/bundle']
      await attachSigTag(reg, 'golden/agent-runner', bare, barePayload, bareSigned['dev.cosignproject.cosign/signature']!, bareSigned)
      const refused = await fetchSig(`${repository}@${bare.digest}`)
      expect(refused.exitCode).toBe(1)
      expect(refused.json.error.details.reason).toMatch(/NO_TIMESTAMP|TLOG_ERROR/)
    } finally {
      await sigstore.close()
    }
  })
})
