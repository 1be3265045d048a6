import {describe, expect, it} from 'vitest'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {parseDigestRef} from '../../../control-plane/manifests/digest.js'
import {parseImage, parseTrust} from '../../../control-plane/manifests/load.js'
import {generateSigner} from '../../../control-plane/crypto/keys.js'

const D1 = `sha256:${'1'.repeat(64)}`
const D2 = `sha256:${'2'.repeat(64)}`
const image = (channels = `    canary:\n      digest: ${D1}\n      previous: ${D2}\n`) =>
  `apiVersion: airlock/v1\nkind: GoldenImage\nmetadata:\n  name: runner\nspec:\n  repository: registry.example.com/golden/runner\n  tier: 2\n  channels:\n${channels}`
const parse = (text: string, limits = DEFAULT_LIMITS) => parseImage(text, 'manifests/images/runner.yaml', 'oid', limits)

describe('GoldenImage manifests', () => {
  it('parses a valid manifest', () => {
    expect(parse(image()).channels).toEqual({canary: {digest: D1, previous: D2}})
  })

  describe('when the manifest is bad', () => {
    it('names line and column of a YAML syntax error', () => {
      expect(() => parse('apiVersion: airlock/v1\nkind: [GoldenImage\n')).toThrow(expect.objectContaining({code: 'YAML_ERROR', details: expect.objectContaining({line: expect.any(Number)})}))
    })
    it('refuses duplicate keys', () => {
      expect(() => parse(`${image()}    canary:\n      digest: ${D1}\n`)).toThrow(expect.objectContaining({code: 'YAML_ERROR'}))
    })
    it('names the field and line of a schema violation', () => {
      const text = image().replace('tier: 2', 'tier: nine')
      expect(() => parse(text)).toThrow(expect.objectContaining({code: 'SCHEMA_VIOLATION', details: expect.objectContaining({field: 'spec.tier', line: 7})}))
    })
    it('names an unknown field', () => {
      expect(() => parse(image().replace('  tier: 2', '  tier: 2\n  tag: latest'))).toThrow(expect.objectContaining({code: 'SCHEMA_VIOLATION', details: expect.objectContaining({field: 'spec.tag', line: 8})}))
    })
    it('refuses a tag where a digest belongs', () => {
      expect(() => parse(image(`    canary:\n      digest: v1.2.3\n`))).toThrow(expect.objectContaining({code: 'NOT_PINNED', details: expect.objectContaining({field: 'spec.channels.canary.digest', line: 10})}))
    })
    it('refuses an uppercase digest', () => {
      expect(() => parse(image(`    canary:\n      digest: sha256:${'A'.repeat(64)}\n`))).toThrow(expect.objectContaining({code: 'BAD_DIGEST'}))
    })
    it('refuses a short rollback target', () => {
      expect(() => parse(image(`    canary:\n      digest: ${D1}\n      previous: sha256:abc\n`))).toThrow(expect.objectContaining({code: 'BAD_DIGEST', details: expect.objectContaining({field: 'spec.channels.canary.previous'})}))
    })
    it('refuses a name that does not match the file', () => {
      expect(() => parseImage(image(), 'manifests/images/other.yaml', 'oid', DEFAULT_LIMITS)).toThrow(expect.objectContaining({details: expect.objectContaining({field: 'metadata.name'})}))
    })
    it('stops a billion-laughs alias bomb', () => {
      const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({length: 8}, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n')
      expect(() => parse(bomb)).toThrow(expect.objectContaining({code: 'YAML_ERROR', message: expect.stringContaining('alias')}))
    })
    it('refuses an oversized file', () => {
      expect(() => parse(`${image()}#${'x'.repeat(2048)}\n`, {...DEFAULT_LIMITS, maxFileBytes: 1024})).toThrow(expect.objectContaining({code: 'TOO_LARGE'}))
    })
  })
})

describe('digest references', () => {
  it.each([
    [`sha256:${'a'.repeat(64)}`, {digest: `sha256:${'a'.repeat(64)}`}],
    [`r.example.com/x/y@sha256:${'a'.repeat(64)}`, {repository: 'r.example.com/x/y', digest: `sha256:${'a'.repeat(64)}`}],
  ])('accepts %s', (input, expected) => expect(parseDigestRef(input)).toEqual(expected))
  it.each([
    ['r.example.com/x/y:latest', 'NOT_PINNED'],
    ['latest', 'NOT_PINNED'],
    ['a'.repeat(64), 'BAD_DIGEST'],
    [`sha512:${'a'.repeat(128)}`, 'BAD_DIGEST'],
    [`sha256:${'a'.repeat(63)}`, 'BAD_DIGEST'],
    [`sha256:${'g'.repeat(64)}`, 'BAD_DIGEST'],
  ])('refuses %s with %s', (input, code) => expect(() => parseDigestRef(input)).toThrow(expect.objectContaining({code})))
})

describe('TrustPolicy', () => {
  const {signer} = generateSigner()
  const trust = (id: string, extra = '') =>
    `apiVersion: airlock/v1\nkind: TrustPolicy\nspec:\n  keys:\n    - id: '${id}'\n      algorithm: ed25519\n      publicKey: ${Buffer.from(signer.publicKey).toString('base64')}\n      roles: [evidence]\n      validFrom: 2026-01-01T00:00:00Z\n${extra}  thresholds:\n    evidence: 1\n`
  it('parses keys with their validity windows', () => {
    const t = parseTrust(trust(signer.keyid, '      validUntil: 2027-01-01T00:00:00Z\n'), 'trust.yaml', null, DEFAULT_LIMITS)
    expect(t.keys[0]).toMatchObject({id: signer.keyid, roles: ['evidence']})
  })
  it('refuses an id that does not match the public key', () => {
    expect(() => parseTrust(trust('0'.repeat(64)), 'trust.yaml', null, DEFAULT_LIMITS)).toThrow(expect.objectContaining({details: expect.objectContaining({field: 'spec.keys[0].id', line: 5})}))
  })
  it('refuses a window that ends before it starts', () => {
    expect(() => parseTrust(trust(signer.keyid, '      validUntil: 2025-01-01T00:00:00Z\n'), 'trust.yaml', null, DEFAULT_LIMITS)).toThrow(expect.objectContaining({details: expect.objectContaining({field: 'spec.keys[0].validUntil'})}))
  })
})
