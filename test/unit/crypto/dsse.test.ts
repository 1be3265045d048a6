import {describe, expect, it} from 'vitest'
import {checkEnvelopeSignatures, pae, signEnvelope} from '../../../control-plane/crypto/dsse.js'
import {generateSigner} from '../../../control-plane/crypto/keys.js'

describe('DSSE', () => {
  it('encodes the PAE exactly as the DSSE v1 specification example', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world')
  })

  it('verifies its own signatures and counts one per distinct key', () => {
    const a = generateSigner().signer
    const env = signEnvelope('application/x', Buffer.from('{}'), [a, a])
    const checks = checkEnvelopeSignatures(env, (id) => (id === a.keyid ? a.publicKey : undefined))
    expect(checks.map((c) => c.valid)).toEqual([true, false])
    expect(checks[1]!.reason).toBe('DUPLICATE_KEY')
  })

  describe('when the envelope is altered', () => {
    const a = generateSigner().signer
    const env = signEnvelope('application/x', Buffer.from('{"a":1}'), [a])
    const key = (id: string) => (id === a.keyid ? a.publicKey : undefined)

    it('rejects a changed payload', () => {
      expect(checkEnvelopeSignatures({...env, payload: Buffer.from('{"a":2}').toString('base64')}, key)[0]!.reason).toBe('BAD_SIGNATURE')
    })
    it('rejects a changed payload type (the PAE binds it)', () => {
      expect(checkEnvelopeSignatures({...env, payloadType: 'application/y'}, key)[0]!.reason).toBe('BAD_SIGNATURE')
    })
    it('reports a key it does not know', () => {
      const b = generateSigner().signer
      expect(checkEnvelopeSignatures(signEnvelope('application/x', Buffer.from('{}'), [b]), key)[0]!.reason).toBe('UNKNOWN_KEY')
    })
    it('has nothing valid when signatures are stripped', () => {
      expect(checkEnvelopeSignatures({...env, signatures: []}, key)).toEqual([])
    })
  })
})
