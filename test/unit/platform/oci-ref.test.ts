import {describe, expect, it} from 'vitest'
import {formatOciRef, parseOciRef} from '../../../platform/registry/client.js'

const D = `sha256:${'ab'.repeat(32)}`

describe('parseOciRef', () => {
  it('reads registry, repository, tag and digest', () => {
    expect(parseOciRef('oci://ghcr.io/acme/policy:org-acme', '--from')).toEqual({registry: 'ghcr.io', repository: 'acme/policy', tag: 'org-acme', digest: null})
    expect(parseOciRef('oci://127.0.0.1:5000/fleet/policy', '--from')).toEqual({registry: '127.0.0.1:5000', repository: 'fleet/policy', tag: null, digest: null})
    expect(parseOciRef(`oci://registry.internal/p@${D}`, '--from')).toEqual({registry: 'registry.internal', repository: 'p', tag: null, digest: D})
    expect(parseOciRef('oci://docker.io/policy:global', '--to')).toEqual({registry: 'registry-1.docker.io', repository: 'library/policy', tag: 'global', digest: null})
    expect(formatOciRef(parseOciRef(`oci://r.io/a/b:t@${D}`, '--from'))).toBe(`oci://r.io/a/b:t@${D}`)
  })

  describe('when the reference is not one', () => {
    it.each([
      ['https://ghcr.io/acme/policy', /is not oci:\/\//],
      ['oci://ghcr.io', /names no registry host and repository/],
      ['oci://ghcr.io/Acme/policy', /not a valid repository name/],
      ['oci://ghcr.io/acme/policy:-bad', /not a valid OCI tag/],
      [`oci://ghcr.io/acme/policy:${'t'.repeat(129)}`, /not a valid OCI tag/],
      ['oci://ghcr.io/acme/policy@sha256:abc', /./],
      ['oci://user@ghcr.io/acme/policy', /./],
    ])('%s is refused, naming the flag', (text, message) => {
      expect(() => parseOciRef(text, '--from')).toThrow(message)
      try {
        parseOciRef(text, '--from')
      } catch (error) {
        expect((error as {details: {field: string}}).details.field).toBe('--from')
      }
    })
  })
})
