/**
 * The one envelope reader and signer counter: every way an envelope is not one, and every reason
 * a role's signatures fall short, with real Ed25519 keys.
 */
import {describe, expect, it} from 'vitest'
import {signEnvelope} from '../../../control-plane/crypto/dsse.js'
import {countSigners, envelopeJson, parseEnvelope} from '../../../control-plane/crypto/envelope.js'
import {generateSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import type {Role, TrustKey, TrustPolicy} from '../../../control-plane/manifests/models.js'

const TYPE = 'application/vnd.example+json'
const LIMITS = {maxBytes: 4096, maxDepth: 8}
const AT = new Date('2026-06-01T12:00:00Z')
const a = generateSigner().signer
const b = generateSigner().signer
const c = generateSigner().signer

function key(s: Signer, over: Partial<TrustKey> = {}): TrustKey {
  return {id: s.keyid, algorithm: 'ed25519', publicKey: s.publicKey, roles: ['evidence'], validFrom: new Date('2026-01-01T00:00:00Z'), ...over}
}
function trust(keys: TrustKey[], evidence = 1): TrustPolicy {
  return {file: 'trust.yaml', oid: null, org: '', keys, thresholds: {evidence, policy: 1, image: 1, audit: 1, approval: 1}, bundles: {maxLifetimeMs: 0}, doc: null}
}
const envelope = (signers: Signer[]) => signEnvelope(TYPE, Buffer.from('{"a":1}'), signers)
const count = (signers: Signer[], t: TrustPolicy, role: Role = 'evidence', threshold?: number) =>
  countSigners(envelope(signers), {trust: t, role, at: AT, notValid: 'KEY_NOT_VALID_AT_SIGNING', what: 'x.json', ...(threshold === undefined ? {} : {threshold})})

describe('parseEnvelope', () => {
  it('keeps only the envelope fields', () => {
    const text = JSON.stringify({...envelope([a]), extra: 1, signatures: [{keyid: a.keyid, sig: envelope([a]).signatures[0]!.sig, more: 2}]})
    expect(parseEnvelope(text, 'x.json', {payloadType: TYPE, limits: LIMITS})).toEqual({payloadType: TYPE, payload: envelope([a]).payload, signatures: [{keyid: a.keyid, sig: envelope([a]).signatures[0]!.sig}]})
  })

  describe('when it is not an envelope of the type asked for', () => {
    const parse = (text: string) => () => parseEnvelope(text, 'x.json', {payloadType: TYPE, limits: LIMITS})
    it.each([
      ['larger than the limit', JSON.stringify({...envelope([a]), pad: 'x'.repeat(5000)}), 'TOO_LARGE', /x\.json: is larger than 4096 bytes/],
      ['nested too deep', `${'['.repeat(20)}${']'.repeat(20)}`, 'TOO_LARGE', /nested deeper than 8/],
      ['not JSON', '{"payloadType":', 'INVALID_INPUT', /x\.json: is not JSON/],
      ['not an object', '[]', 'INVALID_INPUT', /x\.json: is not a DSSE envelope/],
      ['a payload that is not a string', JSON.stringify({...envelope([a]), payload: 3}), 'INVALID_INPUT', /x\.json: payload must be a string/],
      ['signatures that are not a list', JSON.stringify({...envelope([a]), signatures: {}}), 'INVALID_INPUT', /x\.json: signatures must be a list/],
      ['a signature without a keyid', JSON.stringify({...envelope([a]), signatures: [{sig: 'AA=='}]}), 'INVALID_INPUT', /x\.json: signatures\[0\]\.keyid must be a string/],
      ['another payload type', JSON.stringify(signEnvelope('text/plain', Buffer.from('{}'), [a])), 'INVALID_INPUT', /x\.json: payloadType is "text\/plain", not application\/vnd\.example\+json/],
      ['a payload that is not base64', JSON.stringify({...envelope([a]), payload: 'not base64!'}), 'INVALID_INPUT', /x\.json: payload is not base64/],
    ])('%s', (_name, text, code, message) => {
      expect(parse(text)).toThrowAirlockError(code)
      expect(parse(text)).toThrow(message)
    })
    it('a payload that is not a JSON object', () => {
      const env = signEnvelope(TYPE, Buffer.from('[1]'), [a])
      expect(() => envelopeJson(env, 'x.json', 8)).toThrow(/x\.json: payload is not a JSON object/)
    })
  })
})

describe('countSigners: distinct valid signers of a role at a time', () => {
  it('counts each key once, and only keys of the role valid at the time', () => {
    expect(count([a, b], trust([key(a), key(b)], 2))).toEqual({signers: [a.keyid, b.keyid], threshold: 2})
    expect(count([a, a], trust([key(a), key(b)], 2)).failure?.code).toBe('THRESHOLD_NOT_MET')
  })

  it('never passes an envelope without signatures, whatever the threshold says', () => {
    expect(count([], trust([key(a)]), 'evidence', 0).failure).toEqual({code: 'THRESHOLD_NOT_MET', message: 'x.json: carries no signature'})
  })

  describe('when the threshold is not met, the reason names the signature at fault', () => {
    it('BAD_SIGNATURE: a signature that does not match', () => {
      const env = {...envelope([a]), payload: Buffer.from('{"a":2}').toString('base64')}
      expect(countSigners(env, {trust: trust([key(a)]), role: 'evidence', at: AT, notValid: 'KEY_NOT_VALID_AT_SIGNING', what: 'x.json'}).failure).toMatchObject({code: 'BAD_SIGNATURE', keyid: a.keyid})
    })
    it('KEY_NOT_VALID_AT_…: a key of the role retired before, or not valid until after, the time', () => {
      expect(count([a], trust([key(a, {validUntil: new Date('2026-05-01T00:00:00Z')})])).failure).toMatchObject({code: 'KEY_NOT_VALID_AT_SIGNING', keyid: a.keyid})
      expect(count([a], trust([key(a, {validFrom: new Date('2026-07-01T00:00:00Z')})])).failure?.code).toBe('KEY_NOT_VALID_AT_SIGNING')
      const issue = countSigners(envelope([a]), {trust: trust([key(a, {validUntil: new Date('2026-05-01T00:00:00Z')})]), role: 'evidence', at: AT, notValid: 'KEY_NOT_VALID_AT_ISSUE', what: 'x.json'})
      expect(issue.failure?.code).toBe('KEY_NOT_VALID_AT_ISSUE')
    })
    it('UNKNOWN_KEY: a key the trust policy does not hold, or holds for another role', () => {
      expect(count([c], trust([key(a)])).failure).toMatchObject({code: 'UNKNOWN_KEY', keyid: c.keyid})
      expect(count([a], trust([key(a, {roles: ['policy']})])).failure?.code).toBe('UNKNOWN_KEY')
    })
    it('THRESHOLD_NOT_MET: valid signatures, too few of them', () => {
      expect(count([a], trust([key(a), key(b)], 2)).failure).toEqual({code: 'THRESHOLD_NOT_MET', message: 'x.json: 1 valid evidence signature(s), 2 needed'})
    })
    it('a signature at fault does not matter once the threshold is met', () => {
      expect(count([a, c], trust([key(a)])).failure).toBeUndefined()
    })
  })
})
