/** A channel's evidence requirements (spec.channels.NAME.requires) as the image loader reads and refuses them. */
import {describe, expect, it} from 'vitest'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {parseImage} from '../../../control-plane/manifests/load.js'

const D = `sha256:${'a1'.repeat(32)}`
const image = (requires: string) => `apiVersion: airlock/v1
kind: GoldenImage
metadata:
  name: runner
spec:
  repository: registry.example.com/golden/runner
  tier: 2
  channels:
    canary:
      digest: ${D}
    stable:
      digest: ${D}
      requires:
${requires}
`
const parse = (requires: string) => parseImage(image(requires), 'manifests/images/runner.yaml', 'oid', DEFAULT_LIMITS)
const refusal = (requires: string) => {
  try {
    parse(requires)
  } catch (error) {
    return error as {code: string; details: Record<string, unknown>}
  }
  throw new Error('accepted')
}

describe('channels.NAME.requires', () => {
  it('reads suites, the channel they ran on, and the soak in milliseconds', () => {
    expect(parse('        suites: [postsession, preflight]\n        on: canary\n        soak: 24h').channels.stable!.requires).toEqual({suites: ['postsession', 'preflight'], on: 'canary', soak: '24h', soakMs: 86_400_000})
    expect(parse('        suites: [postsession]').channels.stable!.requires).toEqual({suites: ['postsession'], soakMs: 0})
  })
  it('refuses a channel `on` the image does not have, naming the field and line', () => {
    expect(refusal('        suites: [postsession]\n        on: edge')).toMatchObject({code: 'SCHEMA_VIOLATION', details: {field: 'spec.channels.stable.requires.on', line: 15}})
  })
  it('refuses the channel itself as `on`', () => {
    expect(refusal('        suites: [postsession]\n        on: stable')).toMatchObject({code: 'SCHEMA_VIOLATION', details: {field: 'spec.channels.stable.requires.on'}})
  })
  it('refuses no suites, an unknown field, and a soak that is not a duration', () => {
    for (const bad of ['        suites: []', '        suites: [postsession]\n        soak: 1 day', '        suites: [postsession]\n        soak: 0h', '        suites: [postsession]\n        wait: 24h', '        on: canary']) {
      expect(refusal(bad).code, bad).toBe('SCHEMA_VIOLATION')
    }
  })
})
