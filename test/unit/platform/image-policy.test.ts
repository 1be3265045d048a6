// An image's verification policy is worked out once per (trust policy, commit, manifest text,
// time) and shared: these tests read it from a real temporary git repository.
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {generateImageKey} from '../../../control-plane/crypto/keys.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {emptyTrust, parseImage} from '../../../control-plane/manifests/load.js'
import type {TrustPolicy} from '../../../control-plane/manifests/models.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {imagePolicy} from '../../../platform/images/policy.js'
import {git, tempDir} from '../../helpers.js'

const t = await tempDir()
afterAll(() => t.cleanup())

const manifest = (verification = '') => `apiVersion: airlock/v1
kind: GoldenImage
metadata:
  name: runner
spec:
  repository: registry.example.com/golden/runner
  tier: 2
  channels:
    canary:
      digest: sha256:${'a'.repeat(64)}
${verification}`

function trustWith(...keys: Array<ReturnType<typeof generateImageKey>['key']>): TrustPolicy {
  return {...emptyTrust(), keys: keys.map((k) => ({id: k.keyid, algorithm: k.algorithm, publicKey: k.publicKey, roles: ['image'], validFrom: new Date('2020-01-01T00:00:00Z')}))}
}

describe('imagePolicy', async () => {
  const dir = join(t.dir, 'repo')
  await git(t.dir, 'init', '-q', '-b', 'main', dir)
  await git(dir, 'commit', '-q', '--allow-empty', '-m', 'empty')
  const commit = (await git(dir, 'rev-parse', 'HEAD')).trim()
  const repo = await Repository.open(dir)
  const [a, b] = [generateImageKey('ecdsa-p256').key, generateImageKey('ecdsa-p256').key]
  const trust = trustWith(a, b)
  const now = new Date()
  const file = 'manifests/images/runner.yaml'

  it('is worked out once for the same trust policy, commit, manifest and time, and cannot be changed', async () => {
    const image = parseImage(manifest(), file, '', DEFAULT_LIMITS)
    const first = await imagePolicy(repo, commit, image, trust, now, DEFAULT_LIMITS)
    expect(first.policy.keys.map((k) => k.id).sort()).toEqual([a.keyid, b.keyid].sort())
    expect(await imagePolicy(repo, commit, parseImage(manifest(), file, '', DEFAULT_LIMITS), trust, now, DEFAULT_LIMITS)).toBe(first)
    expect(Object.isFrozen(first.policy)).toBe(true)
    expect(() => (first.policy.keys as unknown[]).push(null)).toThrow(TypeError)
  })

  it('is worked out again for another manifest text under the same file name (and no blob id)', async () => {
    const all = await imagePolicy(repo, commit, parseImage(manifest(), file, '', DEFAULT_LIMITS), trust, now, DEFAULT_LIMITS)
    const onlyA = await imagePolicy(repo, commit, parseImage(manifest(`  verification:\n    keys: [${a.keyid}]\n`), file, '', DEFAULT_LIMITS), trust, now, DEFAULT_LIMITS)
    expect(onlyA).not.toBe(all)
    expect(onlyA.policy.keys.map((k) => k.id)).toEqual([a.keyid])
  })

  it('is worked out again for another trust policy, and at another time', async () => {
    const image = parseImage(manifest(), file, '', DEFAULT_LIMITS)
    const first = await imagePolicy(repo, commit, image, trust, now, DEFAULT_LIMITS)
    const other = await imagePolicy(repo, commit, image, trustWith(b), now, DEFAULT_LIMITS)
    expect(other.policy.keys.map((k) => k.id)).toEqual([b.keyid])
    const before = await imagePolicy(repo, commit, image, trust, new Date('2019-01-01T00:00:00Z'), DEFAULT_LIMITS)
    expect(before).not.toBe(first)
    expect(before.policy.keys).toEqual([])
  })
})
