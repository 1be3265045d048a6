import {describe, expect, it} from 'vitest'
import {verifyImageSignature} from '../../../platform/images/verify.js'
import {imageKeyPair as keyPair, signImage} from '../../sigstore-fixtures.js'

const DIGEST = `sha256:${'d1'.repeat(32)}`
const OTHER = `sha256:${'e2'.repeat(32)}`

describe('image signature verification (keyed DSSE bundles, offline)', () => {
  it.each(['ec', 'ed25519'] as const)('verifies a %s-signed bundle for the pinned digest and names the policy key', async (type) => {
    const key = keyPair(type)
    const bundle = await signImage(DIGEST, key)
    expect(verifyImageSignature(DIGEST, bundle, {keys: [{id: 'release-key', publicKeyPem: key.pem}]})).toMatchObject({digest: DIGEST, signer: {keyid: 'release-key'}, bundleType: 'dsse'})
  })

  describe('when it must be refused', () => {
    it('SUBJECT_MISMATCH: a bundle for another digest', async () => {
      const key = keyPair('ec')
      const bundle = await signImage(DIGEST, key)
      expect(() => verifyImageSignature(OTHER, bundle, {keys: [{id: 'k', publicKeyPem: key.pem}]})).toThrow(expect.objectContaining({reason: 'SUBJECT_MISMATCH'}))
    })
    it('a subject edited to the pinned digest after signing verifies under no policy key', async () => {
      const key = keyPair('ec')
      const bundle = await signImage(OTHER, key)
      const payload = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString())
      payload.subject[0].digest.sha256 = DIGEST.slice(7)
      bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64')
      expect(() => verifyImageSignature(DIGEST, bundle, {keys: [{id: 'k', publicKeyPem: key.pem}]})).toThrow(expect.objectContaining({reason: 'UNTRUSTED_SIGNER', message: expect.stringContaining('edited content or another key')}))
    })
    it('UNTRUSTED_SIGNER: signed by a key the image policy does not name', async () => {
      const signer = keyPair('ed25519')
      const policy = keyPair('ed25519')
      const bundle = await signImage(DIGEST, signer)
      expect(() => verifyImageSignature(DIGEST, bundle, {keys: [{id: 'policy-key', publicKeyPem: policy.pem}]})).toThrow(expect.objectContaining({reason: 'UNTRUSTED_SIGNER'}))
      expect(() => verifyImageSignature(DIGEST, bundle, {keys: []})).toThrow(expect.objectContaining({reason: 'UNTRUSTED_SIGNER'}))
    })
    it('NOT_PINNED: a tag or short digest', async () => {
      const key = keyPair('ec')
      const bundle = await signImage(DIGEST, key)
      expect(() => verifyImageSignature('latest', bundle, {keys: [{id: 'k', publicKeyPem: key.pem}]})).toThrow(expect.objectContaining({reason: 'NOT_PINNED'}))
      expect(() => verifyImageSignature('sha256:abc', bundle, {keys: [{id: 'k', publicKeyPem: key.pem}]})).toThrow(expect.objectContaining({reason: 'NOT_PINNED'}))
    })
    it('SIGNATURE_ERROR: not a Sigstore bundle (truncated or foreign JSON)', () => {
      expect(() => verifyImageSignature(DIGEST, {mediaType: 'x'}, {keys: [{id: 'k', publicKeyPem: keyPair('ec').pem}]})).toThrow(expect.objectContaining({reason: 'SIGNATURE_ERROR'}))
    })
  })
})
