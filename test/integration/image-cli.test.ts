import {existsSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {afterAll, beforeAll, beforeEach, afterEach, describe, expect, it} from 'vitest'
import {airlock, commitChange, commitSignedByHand, git, initFleet, tempDir, fleetCopies, type Fleet} from '../helpers.js'
import {imageKeyPair, signImage, startMockSigstore, type MockSigstore} from '../sigstore-fixtures.js'

const t = await tempDir()
afterAll(() => t.cleanup())
const REPO = 'registry.example.com/golden/agent-runner'
const DIGEST = `sha256:${'c3'.repeat(32)}`
const WORKFLOW = 'https://github.com/acme/golden/.github/workflows/release.yml@refs/heads/main'
const GITHUB = 'https://token.actions.githubusercontent.com'
const bundlePath = (digest: string) => `manifests/signatures/agent-runner/${digest.replace(':', '-')}.sigstore.json`

describe('airlock image verify (ad hoc, as cosign verify)', () => {
  it('verifies a keyed DSSE bundle for the pinned digest; refuses the wrong key, another digest and a tag', async () => {
    const key = imageKeyPair('ec')
    const other = imageKeyPair('ec')
    await writeFile(join(t.dir, 'bundle.json'), JSON.stringify(await signImage(DIGEST, key)))
    await writeFile(join(t.dir, 'key.pem'), key.pem)
    await writeFile(join(t.dir, 'other.pem'), other.pem)
    const verify = (ref: string, keyFile: string) => airlock(['image', 'verify', ref, '--bundle', join(t.dir, 'bundle.json'), '--key', join(t.dir, keyFile), '--json'])

    const ok = await verify(`${REPO}@${DIGEST}`, 'key.pem')
    expect(ok.exitCode).toBe(0)
    expect(ok.json).toMatchObject({digest: DIGEST, bundleType: 'dsse'})
    const wrongKey = await verify(`${REPO}@${DIGEST}`, 'other.pem')
    expect(wrongKey.exitCode).toBe(1)
    expect(wrongKey.json.error.details.reason).toBe('UNTRUSTED_SIGNER')
    const otherDigest = await verify(`${REPO}@sha256:${'f4'.repeat(32)}`, 'key.pem')
    expect(otherDigest.exitCode).toBe(1)
    expect(otherDigest.json.error.details.reason).toBe('SUBJECT_MISMATCH')
    const tag = await verify(`${REPO}:latest`, 'key.pem')
    expect(tag.exitCode).toBe(2)
    expect(tag.json.error.code).toBe('NOT_PINNED')
  })

  it('refuses truncated and oversized bundles (2) and a key file that is not a key (2), naming the file', async () => {
    const key = imageKeyPair('ec')
    await writeFile(join(t.dir, 'k.pem'), key.pem)
    const text = JSON.stringify(await signImage(DIGEST, key))
    await writeFile(join(t.dir, 'trunc.json'), text.slice(0, text.length / 2))
    await writeFile(join(t.dir, 'big.json'), `{"pad":"${'x'.repeat(1024 * 1024 + 10)}"}`)
    await writeFile(join(t.dir, 'notkey.pem'), 'hello')
    const trunc = await airlock(['image', 'verify', `${REPO}@${DIGEST}`, '--bundle', join(t.dir, 'trunc.json'), '--key', join(t.dir, 'k.pem'), '--json'])
    expect(trunc.exitCode).toBe(2)
    expect(trunc.json.error).toMatchObject({code: 'INVALID_INPUT', message: expect.stringContaining('trunc.json')})
    const big = await airlock(['image', 'verify', `${REPO}@${DIGEST}`, '--bundle', join(t.dir, 'big.json'), '--key', join(t.dir, 'k.pem'), '--json'])
    expect(big.exitCode).toBe(2)
    expect(big.json.error.code).toBe('TOO_LARGE')
    const notKey = await airlock(['image', 'verify', `${REPO}@${DIGEST}`, '--bundle', join(t.dir, 'trunc.json'), '--key', join(t.dir, 'notkey.pem'), '--json'])
    expect(notKey.exitCode).toBe(2)
    expect(notKey.json.error.code).toBe('KEY_INVALID')
    expect(trunc.stderr + big.stderr + notKey.stderr).not.toMatch(/\n\s+at /)
  })
})

describe('signatures enforced on promotion', () => {
  const NEXT = `sha256:${'a1'.repeat(32)}`
  let fleet: Fleet
  const fleets = fleetCopies()
  afterAll(() => fleets.dispose())
  beforeEach(async () => {
    fleet = await fleets.copy()
  })
  afterEach(() => fleet.cleanup())

  it('init → image sign → promote → rollback: the signer is recorded in plan and receipt', async () => {
    const {dir, env, imageKey} = fleet
    const plan = await airlock(['image', 'sign', `${REPO}@${NEXT}`, '--key', imageKey, '--json'], {cwd: dir})
    expect(plan.exitCode).toBe(0)
    expect(plan.json.plan.changes).toEqual([expect.objectContaining({path: bundlePath(NEXT), action: 'create'})])
    expect(existsSync(join(dir, bundlePath(NEXT)))).toBe(false)
    const signed = await airlock(['image', 'sign', `agent-runner@${NEXT}`, '--key', imageKey, '--apply', '--json'], {cwd: dir, env})
    expect(signed.exitCode).toBe(0)
    const bundle = JSON.parse(await readFile(join(dir, bundlePath(NEXT)), 'utf8'))
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json')
    expect(bundle.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json')
    expect(JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString()).subject[0]).toEqual({name: REPO, digest: {sha256: NEXT.slice(7)}})

    const promoted = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'soaked', '--apply', '--json'], {cwd: dir, env})
    expect(promoted.exitCode).toBe(0)
    expect(promoted.json.plan.signature).toMatchObject({digest: NEXT, verified: true, bundleType: 'dsse', signer: {keyid: signed.json.plan.details.keyid}, bundle: {path: bundlePath(NEXT)}})
    const shown = await airlock(['evidence', 'show', promoted.json.applied.receipt, '--json'], {cwd: dir})
    expect(shown.json.statement.predicate.signature).toMatchObject({digest: NEXT, signer: {keyid: signed.json.plan.details.keyid}})
    const rolledBack = await airlock(['rollback', 'agent-runner', '--channel', 'canary', '--reason', 'undo', '--apply', '--json'], {cwd: dir, env})
    expect(rolledBack.exitCode).toBe(0)
    expect(rolledBack.json.plan.signature.verified).toBe(true)
    const all = await airlock(['image', 'verify', '--all', '--json'], {cwd: dir})
    expect(all.exitCode).toBe(0)
    expect(all.json).toMatchObject({verified: 2, failed: 0})
    const evidence = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(evidence.exitCode).toBe(0)
  })

  it('refuses an unsigned digest (1, NO_SIGNATURE) and writes nothing', async () => {
    const {dir, env} = fleet
    const head = await git(dir, 'rev-parse', 'HEAD')
    const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'IMAGE_NO_SIGNATURE', details: {reason: 'NO_SIGNATURE', bundle: bundlePath(NEXT)}})
    const plain = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary'], {cwd: dir})
    expect(plain.exitCode).toBe(1)
    expect(plain.stderr).toContain('NO_SIGNATURE')
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(head)
    expect(await git(dir, 'status', '--porcelain')).toBe('')
  })

  it('refuses a digest signed by a key trust.yaml does not hold: image sign will not store it, promote will not take it', async () => {
    const {dir, env} = fleet
    const stray = join(dir, '..', 'stray.key')
    const key = imageKeyPair('ec')
    await writeFile(stray, key.privateKey.export({format: 'pem', type: 'pkcs8'}), {mode: 0o600})
    const sign = await airlock(['image', 'sign', `agent-runner@${NEXT}`, '--key', stray, '--apply', '--json'], {cwd: dir, env})
    expect(sign.exitCode).toBe(1)
    expect(sign.json.error.details.reason).toBe('UNTRUSTED_SIGNER')
    // Committed by hand, past airlock: promotion still refuses it.
    await mkdir(dirname(join(dir, bundlePath(NEXT))), {recursive: true})
    await writeFile(join(dir, bundlePath(NEXT)), JSON.stringify(await signImage(NEXT, key)))
    await commitSignedByHand(dir, fleet.key, 'stray signature')
    const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.json.error.details.reason).toBe('UNTRUSTED_SIGNER')
    // The stray bundle pins nothing.
    const all = await airlock(['image', 'verify', '--all', '--json'], {cwd: dir})
    expect(all.exitCode).toBe(0)
  })

  it('refuses a bundle for another digest stored under this one (SUBJECT_MISMATCH), and --all names it', async () => {
    const {dir, env, imageKey} = fleet
    const OTHER = `sha256:${'b7'.repeat(32)}`
    expect((await airlock(['image', 'sign', `agent-runner@${OTHER}`, '--key', imageKey, '--apply'], {cwd: dir, env})).exitCode).toBe(0)
    const canary = /canary:\n\s+digest: (sha256:[0-9a-f]{64})/.exec(await readFile(join(dir, 'manifests/images/agent-runner.yaml'), 'utf8'))![1]!
    await writeFile(join(dir, bundlePath(canary)), await readFile(join(dir, bundlePath(OTHER))))
    await writeFile(join(dir, bundlePath(NEXT)), await readFile(join(dir, bundlePath(OTHER))))
    await commitSignedByHand(dir, fleet.key, 'swap signatures')
    const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.json.error.details.reason).toBe('SUBJECT_MISMATCH')
    const all = await airlock(['image', 'verify', '--all', '--json'], {cwd: dir})
    expect(all.exitCode).toBe(1)
    expect(all.json.results).toContainEqual(expect.objectContaining({channel: 'canary', verified: false, reason: 'SUBJECT_MISMATCH'}))
    expect(all.json.results).toContainEqual(expect.objectContaining({channel: 'stable', verified: true}))
  })

  it('refuses a bad verification policy in the manifest with file, line and field (2)', async () => {
    const {dir} = fleet
    const file = join(dir, 'manifests/images/agent-runner.yaml')
    const lines = (await readFile(file, 'utf8')).split('\n').length
    await writeFile(file, `${await readFile(file, 'utf8')}  verification:\n    identities:\n      - issuer: ${GITHUB}\n        subjectRegExp: https://github\\.com/acme/\n`)
    await commitSignedByHand(dir, fleet.key, 'unanchored identity')
    const r = await airlock(['image', 'verify', '--all', '--json'], {cwd: dir})
    expect(r.exitCode).toBe(2)
    expect(r.json.error).toMatchObject({code: 'SCHEMA_VIOLATION', details: {file: 'manifests/images/agent-runner.yaml', field: 'spec.verification.identities[0].subjectRegExp', line: lines + 3}})
    expect(r.json.error.message).toContain('anchored')
  })
})

describe('keyless image policy in the repository (a private Sigstore with its own trusted root)', () => {
  let sigstore: MockSigstore
  let fleet: Fleet
  const NEXT = `sha256:${'a2'.repeat(32)}`
  beforeAll(async () => {
    sigstore = await startMockSigstore(new Date())
    fleet = await initFleet()
    const {dir} = fleet
    await writeFile(join(dir, 'manifests/sigstore/private.json'), JSON.stringify(sigstore.trustedRoot))
    const file = join(dir, 'manifests/images/agent-runner.yaml')
    await writeFile(
      file,
      `${await readFile(file, 'utf8')}  verification:\n    identities:\n      - issuer: ${GITHUB}\n        subject: ${WORKFLOW}\n    trustedRoot: manifests/sigstore/private.json\n    tlogThreshold: 1\n    timestampThreshold: 1\n`,
    )
    await commitChange(dir, fleet.env, 'keyless policy')
  })
  afterAll(async () => {
    await sigstore.close()
    await fleet.cleanup()
  })

  it('promotes a digest signed by the named workflow; refuses another identity and a keyed bundle', async () => {
    const {dir, env, imageKey} = fleet
    const put = async (bundle: unknown) => {
      await mkdir(dirname(join(dir, bundlePath(NEXT))), {recursive: true})
      await writeFile(join(dir, bundlePath(NEXT)), JSON.stringify(bundle))
      await commitChange(dir, env, 'signature')
    }
    await put(await sigstore.signKeyless(NEXT, {subject: WORKFLOW.replace('main', 'evil'), issuer: GITHUB}))
    const wrong = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--json'], {cwd: dir})
    expect(wrong.exitCode).toBe(1)
    expect(wrong.json.error.details).toMatchObject({reason: 'UNTRUSTED_SIGNER', subject: WORKFLOW.replace('main', 'evil')})
    // The scaffold's key-signed digests no longer satisfy a keyless-only policy.
    const keyed = await airlock(['image', 'sign', `agent-runner@${NEXT}`, '--key', imageKey, '--json'], {cwd: dir})
    expect(keyed.exitCode).toBe(1)
    expect(keyed.json.error.details.reason).toBe('UNTRUSTED_SIGNER')

    await put(await sigstore.signKeyless(NEXT, {subject: WORKFLOW, issuer: GITHUB}))
    const ok = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'release', '--apply', '--json'], {cwd: dir, env})
    expect(ok.exitCode).toBe(0)
    expect(ok.json.plan.signature).toMatchObject({signer: {subject: WORKFLOW, issuer: GITHUB}, thresholds: {tlog: 1, timestamp: 1}, policy: {trustedRoot: 'manifests/sigstore/private.json'}})
    expect(ok.json.plan.signature.tlogEntries).toHaveLength(1)

    const adHoc = await airlock(['image', 'verify', `${REPO}@${NEXT}`, '--bundle', join(dir, bundlePath(NEXT)), '--certificate-identity-regexp', '^https://github\\.com/acme/golden/.+$', '--certificate-oidc-issuer', GITHUB, '--trusted-root', join(dir, 'manifests/sigstore/private.json')], {cwd: dir})
    expect(adHoc.exitCode).toBe(0)
    expect(adHoc.stdout).toContain(WORKFLOW)
    expect(adHoc.stdout).toMatch(/tlog entry\s+index \d+, integrated \d{4}-/)
    const unanchored = await airlock(['image', 'verify', `${REPO}@${NEXT}`, '--bundle', join(dir, bundlePath(NEXT)), '--certificate-identity-regexp', 'github\\.com/acme', '--certificate-oidc-issuer', GITHUB, '--json'], {cwd: dir})
    expect(unanchored.exitCode).toBe(2)
    expect(unanchored.json.error.code).toBe('USAGE')
  })
})
