import {describe, expect, it} from 'vitest'
import {signEnvelope} from '../../../control-plane/crypto/dsse.js'
import {generateSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {parseTrust} from '../../../control-plane/manifests/load.js'
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
const DAY = 86_400_000
function trust(keys: TrustKey[], policy = 1, maxLifetimeMs = 30 * DAY): TrustPolicy {
  return {file: 'trust.yaml', oid: null, org: '', keys, thresholds: {evidence: 1, policy, image: 1, audit: 1, approval: 1}, bundles: {maxLifetimeMs}, doc: null}
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
      expect(() => verifyBundle(env, payload(), {trust: trust([key(a)]), now: NOW, source: 'b.json'})).toThrowAirlockError('BAD_SIGNATURE')
      // Read from a file, it is not a bundle at all.
      expect(() => verify(env, trust([key(a)]))).toThrowAirlockError('INVALID_INPUT')
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
    it('FUTURE_DATED: issued beyond now plus the clock skew', () => {
      expect(() => verify(signBundle(payload({issuedAt: '2026-06-01T13:00:00.000Z', expiresAt: '2026-06-02T13:00:00.000Z'}), [a]), trust([key(a)]))).toThrowAirlockError('FUTURE_DATED')
      // Within the skew (DEFAULT_LIMITS.clockSkewMs) it is a clock difference, not a forgery.
      const within = new Date(NOW.getTime() + DEFAULT_LIMITS.clockSkewMs - 1000).toISOString()
      expect(verify(signBundle(payload({issuedAt: within}), [a]), trust([key(a)])).payload.issuedAt).toBe(within)
    })
    it('LIFETIME_EXCEEDED: living longer than the trust policy allows', () => {
      expect(() => verify(signBundle(payload({expiresAt: '2026-07-02T11:00:00.000Z'}), [a]), trust([key(a)]))).toThrowAirlockError('LIFETIME_EXCEEDED')
      expect(() => verify(signBundle(payload(), [a]), trust([key(a)], 1, 3_600_000))).toThrowAirlockError('LIFETIME_EXCEEDED')
    })
    it("LIFETIME_EXCEEDED: a retired key's forgery backdated into its validity, with a 70-year expiry and version 10^6", () => {
      const retired = key(a, {validUntil: new Date('2026-05-01T00:00:00Z')})
      const forged = payload({version: 1_000_000, issuedAt: '2026-04-30T00:00:00.000Z', expiresAt: '2096-04-30T00:00:00.000Z'})
      expect(() => verify(signBundle(forged, [a]), trust([retired]))).toThrowAirlockError('LIFETIME_EXCEEDED')
      // Within the lifetime it verifies at its (backdated) issue time, and has expired by now.
      const shortLived = payload({version: 1_000_000, issuedAt: '2026-04-30T00:00:00.000Z', expiresAt: '2026-05-30T00:00:00.000Z'})
      expect(() => verify(signBundle(shortLived, [a]), trust([retired]))).toThrowAirlockError('EXPIRED')
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
    it('a signature that is not {keyid, sig} is invalid input naming the field', () => {
      const env = {...signBundle(payload(), [a]), signatures: [{keyid: a.keyid, sig: 7}]}
      expect(() => parseBundle(JSON.stringify(env), 'b.json')).toThrow(/b\.json: signatures\[0\]\.sig must be a string/)
    })
    it('a truncated bundle is invalid input (exit 2)', () => {
      const text = JSON.stringify(signBundle(payload(), [a]))
      expect(() => parseBundle(text.slice(0, text.length / 2), 'b.json')).toThrow(expect.objectContaining({code: 'INVALID_INPUT'}))
    })
  })
})

describe('the bundle lifetime in trust.yaml', () => {
  const doc = (bundles: string) => `apiVersion: airlock/v1\nkind: TrustPolicy\nspec:\n  keys: []\n  thresholds: {policy: 1}\n${bundles}`
  it('is 30 days unless spec.bundles.maxLifetime says otherwise', () => {
    expect(parseTrust(doc(''), 'trust.yaml', null, DEFAULT_LIMITS).bundles.maxLifetimeMs).toBe(30 * DAY)
    expect(parseTrust(doc('  bundles:\n    maxLifetime: 720h\n'), 'trust.yaml', null, DEFAULT_LIMITS).bundles.maxLifetimeMs).toBe(30 * DAY)
    expect(parseTrust(doc('  bundles:\n    maxLifetime: 7d\n'), 'trust.yaml', null, DEFAULT_LIMITS).bundles.maxLifetimeMs).toBe(7 * DAY)
  })
  it('refuses what is not a duration, naming the field', () => {
    for (const bad of ['0d', '30 days', '-1d', '3w']) {
      expect(() => parseTrust(doc(`  bundles:\n    maxLifetime: ${bad}\n`), 'trust.yaml', null, DEFAULT_LIMITS)).toThrowAirlockError('SCHEMA_VIOLATION')
    }
  })
})
