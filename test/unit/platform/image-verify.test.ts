import {createHash} from 'node:crypto'
import {createPublicKey} from 'node:crypto'
import {TrustedRoot} from '@sigstore/protobuf-specs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {emptyTrustedRoot, imageKey, verifyImageSignature, type CertificateIdentity, type ImagePolicy} from '../../../platform/images/verify.js'
import {imageKeyPair as keyPair, signImage, signImageMessage, startMockSigstore, type ImageKeyPair, type MockSigstore} from '../../sigstore-fixtures.js'

const DIGEST = `sha256:${'d1'.repeat(32)}`
const OTHER = `sha256:${'e2'.repeat(32)}`
const WORKFLOW = 'https://github.com/acme/golden/.github/workflows/release.yml@refs/heads/main'
const GITHUB = 'https://token.actions.githubusercontent.com'

function keyed(...keys: ImageKeyPair[]): ImagePolicy {
  return {keys: keys.map((k, i) => imageKey(`key-${i}`, createPublicKey(k.pem))), identities: [], trustedRoot: emptyTrustedRoot(), tlogThreshold: 0, timestampThreshold: 0}
}

const reason = (r: string, message?: string) => expect.objectContaining({reason: r, ...(message ? {message: expect.stringContaining(message)} : {})})

describe('keyed DSSE bundles (as cosign v3 writes for images)', () => {
  it.each(['ec', 'ed25519'] as const)('verifies a %s-signed bundle for the pinned digest and names the policy key', async (type) => {
    const key = keyPair(type)
    const bundle = await signImage(DIGEST, key)
    expect(verifyImageSignature(DIGEST, bundle, keyed(keyPair('ec'), key))).toMatchObject({digest: DIGEST, signer: {keyid: 'key-1'}, bundleType: 'dsse'})
  })

  it('SUBJECT_MISMATCH: a bundle for another digest', async () => {
    const key = keyPair('ec')
    const bundle = await signImage(DIGEST, key)
    expect(() => verifyImageSignature(OTHER, bundle, keyed(key))).toThrow(reason('SUBJECT_MISMATCH'))
  })

  it('a subject edited to the pinned digest after signing verifies under no policy key', async () => {
    const key = keyPair('ec')
    const bundle = await signImage(OTHER, key)
    const payload = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString())
    payload.subject[0].digest.sha256 = DIGEST.slice(7)
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64')
    expect(() => verifyImageSignature(DIGEST, bundle, keyed(key))).toThrow(reason('UNTRUSTED_SIGNER', 'edited content or another key'))
  })

  it('UNTRUSTED_SIGNER: signed by a key the image policy does not name, or a policy with no key', async () => {
    const bundle = await signImage(DIGEST, keyPair('ed25519'))
    expect(() => verifyImageSignature(DIGEST, bundle, keyed(keyPair('ed25519')))).toThrow(reason('UNTRUSTED_SIGNER'))
    expect(() => verifyImageSignature(DIGEST, bundle, keyed())).toThrow(reason('UNTRUSTED_SIGNER'))
  })

  it('TLOG_ERROR / NO_TIMESTAMP: a keyed bundle without the log entries or timestamps the policy asks for', async () => {
    const key = keyPair('ec')
    const bundle = await signImage(DIGEST, key)
    expect(() => verifyImageSignature(DIGEST, bundle, {...keyed(key), tlogThreshold: 1})).toThrow(reason('TLOG_ERROR'))
    expect(() => verifyImageSignature(DIGEST, bundle, {...keyed(key), timestampThreshold: 1})).toThrow(reason('NO_TIMESTAMP'))
  })

  it('a tag is NOT_PINNED and a short digest BAD_DIGEST, as the one digest parser says everywhere', async () => {
    const key = keyPair('ec')
    const bundle = await signImage(DIGEST, key)
    expect(() => verifyImageSignature('latest', bundle, keyed(key))).toThrowAirlockError('NOT_PINNED')
    expect(() => verifyImageSignature('sha256:abc', bundle, keyed(key))).toThrowAirlockError('BAD_DIGEST')
  })

  it('SIGNATURE_ERROR: not a Sigstore bundle (truncated or foreign JSON)', () => {
    expect(() => verifyImageSignature(DIGEST, {mediaType: 'x'}, keyed(keyPair('ec')))).toThrow(reason('SIGNATURE_ERROR'))
    expect(() => verifyImageSignature(DIGEST, null, keyed(keyPair('ec')))).toThrow(reason('SIGNATURE_ERROR'))
  })
})

describe('keyed message-signature bundles, verified pre-hashed from the digest alone', () => {
  const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: []}))
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`

  it('verifies an ECDSA P-256 signature over the manifest against the pinned digest, without the bytes', async () => {
    const key = keyPair('ec')
    const bundle = await signImageMessage(manifest, key)
    expect(verifyImageSignature(digest, bundle, keyed(key))).toMatchObject({bundleType: 'message_signature', signer: {keyid: 'key-0'}})
  })

  it('refuses an edited message digest: SUBJECT_MISMATCH for another pin, no signature for the edited one', async () => {
    const key = keyPair('ec')
    const bundle = await signImageMessage(manifest, key)
    expect(() => verifyImageSignature(OTHER, bundle, keyed(key))).toThrow(reason('SUBJECT_MISMATCH'))
    // Without a log entry the library would pass a message signature whose digest field was
    // edited; airlock checks the signature itself against the pin, so the edit is caught.
    bundle.messageSignature.messageDigest.digest = Buffer.from(OTHER.slice(7), 'hex').toString('base64')
    expect(() => verifyImageSignature(OTHER, bundle, keyed(key))).toThrow(reason('UNTRUSTED_SIGNER'))
  })

  it('refuses an Ed25519 message signature, which a digest cannot stand in for', async () => {
    const key = keyPair('ed25519')
    const bundle = await signImageMessage(manifest, key)
    expect(() => verifyImageSignature(digest, bundle, keyed(key))).toThrow(reason('SIGNATURE_ERROR', 'Ed25519 message signature'))
  })
})

describe('keyless bundles (certificate from a Fulcio CA, Rekor entry, RFC 3161 timestamp)', () => {
  let sigstore: MockSigstore
  let expired: MockSigstore
  let stranger: MockSigstore
  beforeAll(async () => {
    const now = new Date()
    sigstore = await startMockSigstore(now)
    // A CA an hour behind: its certificates (10 minutes) have expired by the timestamp.
    expired = await startMockSigstore(now, {caClock: new Date(now.getTime() - 3600_000)})
    stranger = await startMockSigstore(now)
  })
  afterAll(async () => {
    await Promise.all([sigstore.close(), expired.close(), stranger.close()])
  })

  const keyless = (m: MockSigstore, ...identities: CertificateIdentity[]): ImagePolicy => ({keys: [], identities, trustedRoot: TrustedRoot.fromJSON(m.trustedRoot), tlogThreshold: 1, timestampThreshold: 1})

  it('verifies an exact subject and issuer, and reports the log entry', async () => {
    const bundle = await sigstore.signKeyless(DIGEST, {subject: WORKFLOW, issuer: GITHUB})
    const result = verifyImageSignature(DIGEST, bundle, keyless(sigstore, {issuer: GITHUB, subject: WORKFLOW}))
    expect(result).toMatchObject({bundleType: 'dsse', signer: {subject: WORKFLOW, issuer: GITHUB}, thresholds: {tlog: 1, timestamp: 1}})
    expect(result.tlogEntries).toHaveLength(1)
    expect(result.tlogEntries[0]!.integratedTime).toMatch(/^\d{4}-/)
  })

  it('verifies an anchored subject pattern', async () => {
    const bundle = await sigstore.signKeyless(DIGEST, {subject: WORKFLOW, issuer: GITHUB})
    expect(verifyImageSignature(DIGEST, bundle, keyless(sigstore, {issuer: GITHUB, subjectRegExp: '^https://github\\.com/acme/golden/\\.github/workflows/[a-z-]+\\.yml@refs/heads/main$'}))).toMatchObject({signer: {subject: WORKFLOW}})
  })

  it('verifies a keyless message signature from the digest alone', async () => {
    const manifest = Buffer.from('{"schemaVersion":2}')
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`
    const bundle = await sigstore.signKeyless(digest, {subject: WORKFLOW, issuer: GITHUB}, {manifest})
    expect(verifyImageSignature(digest, bundle, keyless(sigstore, {issuer: GITHUB, subject: WORKFLOW}))).toMatchObject({bundleType: 'message_signature'})
  })

  describe('when it must be refused', () => {
    it('UNTRUSTED_SIGNER: another subject, another issuer, a longer identity an unanchored match would let through', async () => {
      const bundle = await sigstore.signKeyless(DIGEST, {subject: 'https://github.com/acme/golden-evil/.github/workflows/release.yml@refs/heads/main', issuer: GITHUB})
      expect(() => verifyImageSignature(DIGEST, bundle, keyless(sigstore, {issuer: GITHUB, subject: WORKFLOW}))).toThrow(reason('UNTRUSTED_SIGNER', 'golden-evil'))
      expect(() => verifyImageSignature(DIGEST, bundle, keyless(sigstore, {issuer: GITHUB, subjectRegExp: '^https://github\\.com/acme/golden/.*$'}))).toThrow(reason('UNTRUSTED_SIGNER'))
      // An unanchored pattern is never applied, so it admits no one, not even the right signer.
      const right = await sigstore.signKeyless(DIGEST, {subject: WORKFLOW, issuer: GITHUB})
      expect(() => verifyImageSignature(DIGEST, right, keyless(sigstore, {issuer: GITHUB, subjectRegExp: 'https://github\\.com/acme/golden'}))).toThrow(reason('UNTRUSTED_SIGNER'))
      const good = await sigstore.signKeyless(DIGEST, {subject: WORKFLOW, issuer: 'https://accounts.example.com'})
      expect(() => verifyImageSignature(DIGEST, good, keyless(sigstore, {issuer: GITHUB, subject: WORKFLOW}))).toThrow(reason('UNTRUSTED_SIGNER', 'accounts.example.com'))
    })

    it('UNTRUSTED_SIGNER: a keyless bundle under a policy that names only keys', async () => {
      const bundle = await sigstore.signKeyless(DIGEST, {subject: WORKFLOW, issuer: GITHUB})
      expect(() => verifyImageSignature(DIGEST, bundle, {...keyed(keyPair('ec')), trustedRoot: TrustedRoot.fromJSON(sigstore.trustedRoot)})).toThrow(reason('UNTRUSTED_SIGNER', 'names only keys'))
    })

    it('CERTIFICATE_ERROR: a certificate from a CA the trusted root does not hold', async () => {
      const bundle = await stranger.signKeyless(DIGEST, {subject: WORKFLOW, issuer: GITHUB}, {tlog: false})
      const root = TrustedRoot.fromJSON({...sigstore.trustedRoot, timestampAuthorities: stranger.trustedRoot.timestampAuthorities})
      expect(() => verifyImageSignature(DIGEST, bundle, {...keyless(sigstore, {issuer: GITHUB, subject: WORKFLOW}), trustedRoot: root, tlogThreshold: 0})).toThrow(reason('CERTIFICATE_ERROR', 'chain'))
    })

    it('CERTIFICATE_ERROR: a certificate that had expired when it was timestamped', async () => {
      const bundle = await expired.signKeyless(DIGEST, {subject: WORKFLOW, issuer: GITHUB}, {tlog: false})
      expect(() => verifyImageSignature(DIGEST, bundle, {...keyless(expired, {issuer: GITHUB, subject: WORKFLOW}), tlogThreshold: 0})).toThrow(reason('CERTIFICATE_ERROR', 'certificate chain'))
    })

    it('NO_TIMESTAMP: keyless with no timestamp at all, even when the policy asks for none', async () => {
      const bundle = await sigstore.signKeyless(DIGEST, {subject: WORKFLOW, issuer: GITHUB}, {tlog: false, timestamp: false})
      expect(() => verifyImageSignature(DIGEST, bundle, {...keyless(sigstore, {issuer: GITHUB, subject: WORKFLOW}), tlogThreshold: 0, timestampThreshold: 0})).toThrow(reason('NO_TIMESTAMP'))
    })

    it('TLOG_ERROR: a log entry the trusted root has no log for', async () => {
      const bundle = await sigstore.signKeyless(DIGEST, {subject: WORKFLOW, issuer: GITHUB})
      const root = TrustedRoot.fromJSON({...sigstore.trustedRoot, tlogs: stranger.trustedRoot.tlogs})
      expect(() => verifyImageSignature(DIGEST, bundle, {...keyless(sigstore, {issuer: GITHUB, subject: WORKFLOW}), trustedRoot: root})).toThrow(reason('TLOG_ERROR'))
    })

    it('SUBJECT_MISMATCH: a keyless bundle for another digest', async () => {
      const bundle = await sigstore.signKeyless(OTHER, {subject: WORKFLOW, issuer: GITHUB})
      expect(() => verifyImageSignature(DIGEST, bundle, keyless(sigstore, {issuer: GITHUB, subject: WORKFLOW}))).toThrow(reason('SUBJECT_MISMATCH'))
    })
  })
})
