import {describe, expect, it} from 'vitest'
import {signEnvelope} from '../../../control-plane/crypto/dsse.js'
import {generateSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import type {TrustKey, TrustPolicy} from '../../../control-plane/manifests/models.js'
import {parseBundle, signBundle, verifyBundle, type BundlePayload} from '../../../control-plane/policy/bundle.js'

const NOW = new Date('2026-06-01T12:00:00Z')
const SCHEMA = 'namespace K { entity User; entity Box; action Run appliesTo { principal: User, resource: Box }; }'
const a = generateSigner().signer
const b = generateSigner().signer

function payload(over: Partial<BundlePayload> = {}): BundlePayload {
  return {
    apiVersion: 'airlock/v1',
    kind: 'PolicyBundle',
    scope: 'org:acme',
    version: 3,
    issuedAt: '2026-06-01T11:00:00.000Z',
    expiresAt: '2026-06-02T11:00:00.000Z',
    schema: SCHEMA,
    policies: [{id: 'p', file: 'policies/orgs/acme/a.cedar', line: 1, text: 'permit(principal, action == K::Action::"Run", resource);'}],
    ...over,
  }
}
function key(s: Signer, over: Partial<TrustKey> = {}): TrustKey {
  return {id: s.keyid, algorithm: 'ed25519', publicKey: s.publicKey, roles: ['policy'], validFrom: new Date('2026-01-01T00:00:00Z'), ...over}
}
function trust(keys: TrustKey[], policy = 1): TrustPolicy {
  return {file: 'trust.yaml', oid: null, org: '', keys, thresholds: {evidence: 1, policy, image: 1, audit: 1, approval: 1}, doc: null}
}
function verify(env: ReturnType<typeof signBundle>, t: TrustPolicy, opts: {scope?: string; minVersion?: number} = {}) {
  const parsed = parseBundle(JSON.stringify(env), 'b.json')
  return verifyBundle(parsed.envelope, parsed.payload, {trust: t, now: NOW, source: 'b.json', ...opts})
}

describe('policy bundle verification', () => {
  it('accepts a bundle signed by enough valid policy keys', () => {
    const r = verify(signBundle(payload(), [a, b]), trust([key(a), key(b)], 2), {scope: 'org:acme', minVersion: 3})
    expect(r.signers.sort()).toEqual([a.keyid, b.keyid].sort())
    expect(r.payload.version).toBe(3)
  })

  describe('when it must be refused', () => {
    it('BAD_SIGNATURE: the payload was edited after signing', () => {
      const env = signBundle(payload(), [a])
      env.payload = Buffer.from(JSON.stringify(payload({version: 99}))).toString('base64')
      expect(() => verify(env, trust([key(a)]))).toThrow(expect.objectContaining({code: 'BAD_SIGNATURE'}))
    })
    it('BAD_SIGNATURE: another DSSE document (type confusion)', () => {
      const env = signEnvelope('application/vnd.in-toto+json', Buffer.from(JSON.stringify(payload())), [a])
      expect(() => verify(env, trust([key(a)]))).toThrow(expect.objectContaining({code: 'BAD_SIGNATURE'}))
    })
    it('THRESHOLD_NOT_MET: signatures stripped', () => {
      const env = {...signBundle(payload(), [a]), signatures: []}
      expect(() => verify(env, trust([key(a)]))).toThrow(expect.objectContaining({code: 'THRESHOLD_NOT_MET'}))
    })
    it('THRESHOLD_NOT_MET: one key signing twice does not make two', () => {
      expect(() => verify(signBundle(payload(), [a, a]), trust([key(a), key(b)], 2))).toThrow(expect.objectContaining({code: 'THRESHOLD_NOT_MET'}))
    })
    it('UNKNOWN_KEY: signed by a key the trust policy does not hold', () => {
      expect(() => verify(signBundle(payload(), [b]), trust([key(a)]))).toThrow(expect.objectContaining({code: 'UNKNOWN_KEY'}))
    })
    it('UNKNOWN_KEY: a key trusted for evidence only is no policy key', () => {
      expect(() => verify(signBundle(payload(), [a]), trust([key(a, {roles: ['evidence']})]))).toThrow(expect.objectContaining({code: 'UNKNOWN_KEY'}))
    })
    it('KEY_NOT_VALID_AT_ISSUE: the key was retired before the bundle was issued', () => {
      expect(() => verify(signBundle(payload(), [a]), trust([key(a, {validUntil: new Date('2026-05-01T00:00:00Z')})]))).toThrow(expect.objectContaining({code: 'KEY_NOT_VALID_AT_ISSUE'}))
    })
    it('EXPIRED: past its expiry', () => {
      expect(() => verify(signBundle(payload({expiresAt: '2026-06-01T11:30:00.000Z'}), [a]), trust([key(a)]))).toThrow(expect.objectContaining({code: 'EXPIRED'}))
    })
    it('EXPIRED: issued in the future', () => {
      expect(() => verify(signBundle(payload({issuedAt: '2026-06-01T13:00:00.000Z'}), [a]), trust([key(a, {validFrom: new Date('2026-01-01T00:00:00Z')})]))).toThrow(expect.objectContaining({code: 'EXPIRED'}))
    })
    it('DOWNGRADE: a replayed older version', () => {
      expect(() => verify(signBundle(payload(), [a]), trust([key(a)]), {minVersion: 4})).toThrow(expect.objectContaining({code: 'DOWNGRADE'}))
    })
    it('SCOPE_MISMATCH: a bundle for another org', () => {
      expect(() => verify(signBundle(payload(), [a]), trust([key(a)]), {scope: 'org:globex'})).toThrow(expect.objectContaining({code: 'SCOPE_MISMATCH'}))
    })
    it("SCOPE_MISMATCH: a policy from another scope's folder", () => {
      const p = payload({policies: [{id: 'x', file: 'policies/global/a.cedar', line: 1, text: 'permit(principal, action, resource);'}]})
      expect(() => verify(signBundle(p, [a]), trust([key(a)]))).toThrow(expect.objectContaining({code: 'SCOPE_MISMATCH'}))
    })
    it('INVALID_POLICY: signed, but does not validate against its schema', () => {
      const p = payload({policies: [{id: 'x', file: 'policies/orgs/acme/a.cedar', line: 1, text: 'permit(principal, action, resource) when { principal.nope };'}]})
      expect(() => verify(signBundle(p, [a]), trust([key(a)]))).toThrow(expect.objectContaining({code: 'INVALID_POLICY'}))
    })
    it('a truncated bundle is invalid input (exit 2)', () => {
      const text = JSON.stringify(signBundle(payload(), [a]))
      expect(() => parseBundle(text.slice(0, text.length / 2), 'b.json')).toThrow(expect.objectContaining({code: 'INVALID_INPUT'}))
    })
  })
})
