import {describe, expect, it} from 'vitest'
import {generateSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import {signEnvelope} from '../../../control-plane/crypto/dsse.js'
import {checkReceiptSignatures, parseReceipt} from '../../../control-plane/evidence/ledger.js'
import {RECEIPT_PAYLOAD_TYPE, receiptStatement, receiptText, signReceipt} from '../../../control-plane/evidence/receipt.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import type {TrustKey, TrustPolicy} from '../../../control-plane/manifests/models.js'
import {sealPlan} from '../../../control-plane/plan/plan.js'

const APPLIED = new Date('2026-06-01T12:00:00Z')
const plan = sealPlan({
  apiVersion: 'airlock/v1',
  kind: 'Plan',
  operation: 'promote',
  summary: 'promote x',
  reason: 'test',
  requestedBy: {actor: 'ci', via: 'ci'},
  createdAt: '2026-06-01T11:59:00.000Z',
  branch: 'refs/heads/main',
  baseCommit: 'a'.repeat(40),
  inputs: [],
  details: {},
  subjects: [{name: 'registry.example.com/x', digest: {sha256: 'b'.repeat(64)}}],
  changes: [{path: 'manifests/images/x.yaml', action: 'modify', before: 'a', after: 'b'}],
  receiptPath: 'docs/evidence/r.json',
})

function key(s: Signer, over: Partial<TrustKey> = {}): TrustKey {
  return {id: s.keyid, algorithm: 'ed25519', publicKey: s.publicKey, roles: ['evidence'], validFrom: new Date('2026-01-01T00:00:00Z'), ...over}
}
function trust(keys: TrustKey[], evidence = 1): TrustPolicy {
  return {file: 'manifests/trust.yaml', oid: null, org: '', keys, thresholds: {evidence, policy: 1, image: 1, audit: 1, approval: 1}, bundles: {maxLifetimeMs: 0}, doc: null}
}
function receipt(signers: Signer[]) {
  return parseReceipt(receiptText(signReceipt(receiptStatement(plan, APPLIED, '0.0.0'), signers)), 'docs/evidence/r.json', DEFAULT_LIMITS)
}

describe('receipt signatures against trust.yaml', () => {
  const a = generateSigner().signer
  const b = generateSigner().signer

  it('passes with a valid evidence key', () => {
    expect(checkReceiptSignatures(receipt([a]), trust([key(a)]))).toEqual({signers: [a.keyid]})
  })

  it('needs as many distinct keys as the threshold says', () => {
    expect(checkReceiptSignatures(receipt([a, b]), trust([key(a), key(b)], 2)).problem).toBeUndefined()
    expect(checkReceiptSignatures(receipt([a, a]), trust([key(a), key(b)], 2)).problem?.code).toBe('THRESHOLD_NOT_MET')
  })

  describe('when it must fail', () => {
    it('a key not yet valid when the receipt was signed', () => {
      expect(checkReceiptSignatures(receipt([a]), trust([key(a, {validFrom: new Date('2026-07-01T00:00:00Z')})])).problem?.code).toBe('KEY_NOT_VALID_AT_SIGNING')
    })
    it('a key that expired before the receipt was signed', () => {
      expect(checkReceiptSignatures(receipt([a]), trust([key(a, {validUntil: new Date('2026-05-01T00:00:00Z')})])).problem?.code).toBe('KEY_NOT_VALID_AT_SIGNING')
    })
    it('a key without the evidence role is not an evidence key at all', () => {
      expect(checkReceiptSignatures(receipt([a]), trust([key(a, {roles: ['policy']})])).problem?.code).toBe('UNKNOWN_KEY')
    })
    it('a signature that does not match the receipt (edited after signing)', () => {
      const r = receipt([a])
      r.envelope.payload = Buffer.from(Buffer.from(r.envelope.payload, 'base64').toString().replace('promote x', 'promote y')).toString('base64')
      expect(checkReceiptSignatures(r, trust([key(a)])).problem?.code).toBe('BAD_SIGNATURE')
    })
    it('a key that trust.yaml does not hold', () => {
      expect(checkReceiptSignatures(receipt([b]), trust([key(a)])).problem?.code).toBe('UNKNOWN_KEY')
    })
    it('a receipt whose signatures were stripped', () => {
      const r = receipt([a])
      r.envelope.signatures = []
      expect(checkReceiptSignatures(r, trust([key(a)])).problem).toMatchObject({code: 'THRESHOLD_NOT_MET', message: expect.stringContaining('no signature')})
    })
    it('a receipt that is not a DSSE in-toto envelope', () => {
      expect(() => parseReceipt('{"payloadType":"text/plain","payload":"","signatures":[]}', 'r.json', DEFAULT_LIMITS)).toThrowAirlockError('MALFORMED')
      expect(() => parseReceipt('not json', 'r.json', DEFAULT_LIMITS)).toThrow(/r\.json: is not JSON/)
      expect(() => parseReceipt('{"payloadType":"x","payload":"","signatures":[{"keyid":1}]}', 'r.json', DEFAULT_LIMITS)).toThrow(/r\.json: signatures\[0\]\.keyid must be a string/)
    })
  })
})

describe('receipt kinds: only registered predicate types', () => {
  const a = generateSigner().signer
  const envelopeOf = (statement: object) => receiptText(signEnvelope(RECEIPT_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), [a]))
  const change = receiptStatement(plan, APPLIED, '0.0.0')

  it('reads a change receipt: its time and base commit from its kind', () => {
    const r = parseReceipt(receiptText(signReceipt(change, [a])), 'docs/evidence/r.json', DEFAULT_LIMITS)
    expect(r.kind.predicateType).toBe('https://airlock.dev/attestations/change/v1')
    expect(r.time).toEqual(APPLIED)
    expect(r.baseCommit).toBe('a'.repeat(40))
  })

  describe('when it must be refused (MALFORMED)', () => {
    it('a predicate type no kind is registered for', () => {
      const gate = {...change, predicateType: 'https://slsa.dev/provenance/v1'}
      expect(() => parseReceipt(envelopeOf(gate), 'r.json', DEFAULT_LIMITS)).toThrow(/predicateType "https:\/\/slsa\.dev\/provenance\/v1" is not one airlock accepts/)
      expect(() => parseReceipt(envelopeOf(gate), 'r.json', DEFAULT_LIMITS)).toThrowAirlockError('MALFORMED')
    })
    it('a change receipt without its time', () => {
      const {appliedAt: _, ...predicate} = change.predicate
      expect(() => parseReceipt(envelopeOf({...change, predicate}), 'r.json', DEFAULT_LIMITS)).toThrow(/predicate\.appliedAt must be a string/)
      expect(() => parseReceipt(envelopeOf({...change, predicate: {...change.predicate, appliedAt: 'yesterday'}}), 'r.json', DEFAULT_LIMITS)).toThrow(/predicate\.appliedAt is not a time/)
    })
    it('a change receipt whose base is not a commit id', () => {
      expect(() => parseReceipt(envelopeOf({...change, predicate: {...change.predicate, baseCommit: 'HEAD~1'}}), 'r.json', DEFAULT_LIMITS)).toThrowAirlockError('MALFORMED')
    })
  })
})
