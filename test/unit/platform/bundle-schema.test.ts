/**
 * Bundles every Sigstore client reads: every bundle the project writes (`image sign`, the
 * conversion of a cosign v2 `.sig` signature by `fetch-signature`, the bundles committed in this
 * repository) validates against the Bundle JSON Schema sigstore/protobuf-specs published
 * (vendored in test/fixtures/sigstore-jsonschema/, see its README), strictly: no unknown
 * fields, required fields present, `tlogEntries` always there, a non-empty key hint. Trusted
 * roots without validity starts are invalid input.
 */
import {createHash, createPublicKey, sign} from 'node:crypto'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import Ajv from 'ajv-draft-04'
import {describe, expect, it} from 'vitest'
import {generateImageKey} from '../../../control-plane/crypto/keys.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {parseTrustedRoot} from '../../../platform/images/policy.js'
import {cosignKeyHint, signImageBundle} from '../../../platform/images/sign.js'
import {bundleFromSigTag} from '../../../platform/registry/cosign.js'
import {emptyTrustedRoot, imageKey, verifyImageSignature} from '../../../platform/images/verify.js'
import {ROOT} from '../../helpers.js'

const SCHEMAS = join(ROOT, 'test', 'fixtures', 'sigstore-jsonschema')
const DIGEST = `sha256:${'c3'.repeat(32)}`

/** The published schema, with the oneOf `required` names in their proto3 JSON form (README). */
function schema(name: string): object {
  const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
  const fix = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(fix)
    if (!v || typeof v !== 'object') return v
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = k === 'oneOf' && Array.isArray(x) ? x.map((alt) => (alt.required ? {...alt, required: alt.required.map(camel)} : fix(alt))) : fix(x)
    return out
  }
  return fix(JSON.parse(readFileSync(join(SCHEMAS, name), 'utf8'))) as object
}

// Draft-04: keywords beside a $ref are ignored (the generator writes additionalProperties there).
const ajv = new Ajv({allErrors: true, strict: false, ignoreKeywordsWithRef: true})
ajv.addFormat('binary', /^[A-Za-z0-9+/]*={0,2}$/)
const validBundle = ajv.compile(schema('Bundle.schema.json'))

function expectValid(bundle: unknown, what: string) {
  const ok = validBundle(bundle)
  expect(ok ? [] : validBundle.errors, what).toEqual([])
  const vm = (bundle as {verificationMaterial: {tlogEntries?: unknown; publicKey?: {hint?: string}}}).verificationMaterial
  expect(Array.isArray(vm.tlogEntries), `${what}: tlogEntries`).toBe(true)
  if (vm.publicKey) expect(vm.publicKey.hint, `${what}: hint`).toMatch(/^.+$/)
}

describe('bundles validate against the published Bundle schema', () => {
  it('the schema is strict: an unknown field or a missing content fails', () => {
    expect(validBundle({mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', verificationMaterial: {publicKey: {hint: 'x'}, tlogEntries: []}})).toBe(false)
    expect(validBundle({mediaType: 'x', verificationMaterial: {publicKey: {hint: 'x'}}, messageSignature: {signature: 'AA=='}, extra: 1})).toBe(false)
  })

  it('what image sign writes, for ECDSA P-256 and Ed25519 keys, with the hint cosign gives the key', async () => {
    for (const algorithm of ['ecdsa-p256', 'ed25519'] as const) {
      const {key} = generateImageKey(algorithm)
      const bundle = JSON.parse(await signImageBundle('registry.example.com/golden/x', DIGEST, key))
      expectValid(bundle, algorithm)
      expect(bundle.verificationMaterial.publicKey.hint).toBe(createHash('sha256').update(createPublicKey(key.publicKeyPem).export({format: 'der', type: 'spki'})).digest('base64'))
    }
  })

  it('a keyed cosign v2 signature converted by fetch-signature, with the hint of the key that signed it', () => {
    const {key} = generateImageKey('ecdsa-p256')
    const other = generateImageKey('ecdsa-p256').key
    const payload = Buffer.from(JSON.stringify({critical: {identity: {'docker-reference': 'r/x'}, image: {'docker-manifest-digest': DIGEST}, type: 'cosign container image signature'}, optional: null}))
    const signature = sign('sha256', payload, key.privateKey).toString('base64')
    const {bundleText} = bundleFromSigTag({layout: 'sig-tag', tag: 'sha256-x.sig', payload, signature}, [createPublicKey(other.publicKeyPem), createPublicKey(key.publicKeyPem)])
    const bundle = JSON.parse(bundleText)
    expectValid(bundle, 'converted')
    expect(bundle.verificationMaterial.publicKey.hint).toBe(cosignKeyHint(key.publicKeyPem))
  })

  it('still verifies a bundle from another tool that leaves tlogEntries out (liberal in what it reads)', async () => {
    const {key} = generateImageKey('ecdsa-p256')
    const bundle = JSON.parse(await signImageBundle('registry.example.com/golden/x', DIGEST, key))
    delete bundle.verificationMaterial.tlogEntries
    const policy = {keys: [imageKey('k', createPublicKey(key.publicKeyPem))], identities: [], trustedRoot: emptyTrustedRoot(), tlogThreshold: 0, timestampThreshold: 0}
    expect(verifyImageSignature(DIGEST, bundle, policy)).toMatchObject({verified: true, tlogEntries: []})
  })

  it('every bundle committed in this repository', () => {
    const dir = join(ROOT, 'manifests', 'signatures')
    const files = readdirSync(dir, {recursive: true, withFileTypes: true}).filter((e) => e.isFile() && e.name.endsWith('.sigstore.json'))
    expect(files.length).toBeGreaterThan(0)
    for (const f of files) expectValid(JSON.parse(readFileSync(join(f.parentPath, f.name), 'utf8')), f.name)
  })
})

describe('trusted roots', () => {
  const shipped = JSON.parse(readFileSync(join(ROOT, 'manifests/sigstore/trusted_root.json'), 'utf8'))

  it('refuses keys and authorities without a validity start (exit 2)', () => {
    expect(() => parseTrustedRoot(JSON.stringify(shipped), 'root.json', DEFAULT_LIMITS)).not.toThrow()
    type TrustedRootJson = {tlogs: Array<{publicKey: {validFor?: {start?: string}}}>; ctlogs: Array<{publicKey: {validFor?: {start?: string}}}>; certificateAuthorities: Array<{validFor?: {start?: string}}>; timestampAuthorities?: Array<{validFor?: {start?: string}}>}
    const cases: Array<[string, (r: TrustedRootJson) => void]> = [
      ['tlogs[0].publicKey', (r) => delete r.tlogs[0]!.publicKey.validFor!.start],
      ['ctlogs[0].publicKey', (r) => delete r.ctlogs[0]!.publicKey.validFor],
      ['certificateAuthorities[0]', (r) => delete r.certificateAuthorities[0]!.validFor!.start],
      ['timestampAuthorities[0]', (r) => delete r.timestampAuthorities![0]!.validFor],
    ]
    for (const [field, edit] of cases) {
      const r = structuredClone(shipped) as TrustedRootJson
      if (field.startsWith('timestampAuthorities') && !r.timestampAuthorities?.length) continue
      edit(r)
      const parse = () => parseTrustedRoot(JSON.stringify(r), 'root.json', DEFAULT_LIMITS)
      expect(parse, field).toThrowAirlockError('INVALID_INPUT')
      expect(parse).toThrow(expect.objectContaining({details: expect.objectContaining({field: `${field}.validFor.start`})}))
    }
  })
})
