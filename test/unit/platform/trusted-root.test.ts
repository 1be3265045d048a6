import {readFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {parseTrustedRoot} from '../../../platform/images/policy.js'
import {ROOT} from '../../helpers.js'

describe('the shipped public-good trusted root', () => {
  it('is the trusted_root.json target of the TUF seed in @sigstore/tuf, unchanged', async () => {
    const seeds = createRequire(import.meta.url)('@sigstore/tuf/seeds.json') as Record<string, {targets: Record<string, string>}>
    const seeded = Buffer.from(seeds['https://tuf-repo-cdn.sigstore.dev']!.targets['trusted_root.json']!, 'base64').toString('utf8')
    const shipped = await readFile(join(ROOT, 'manifests/sigstore/trusted_root.json'), 'utf8')
    expect(JSON.parse(shipped)).toEqual(JSON.parse(seeded))
    const root = parseTrustedRoot(shipped, 'manifests/sigstore/trusted_root.json', DEFAULT_LIMITS)
    expect(root.certificateAuthorities.length).toBeGreaterThan(0)
    expect(root.tlogs.map((l) => l.baseUrl)).toContain('https://rekor.sigstore.dev')
  })

  it('refuses a file that is not a trusted root, naming it', () => {
    expect(() => parseTrustedRoot('{"tlogs": []}', 'manifests/sigstore/x.json', DEFAULT_LIMITS)).toThrow(/x\.json: not a Sigstore trusted root/)
    expect(() => parseTrustedRoot('{"mediaType": "application/vnd.dev', 'manifests/sigstore/x.json', DEFAULT_LIMITS)).toThrow(/x\.json: not JSON/)
  })
})
