/**
 * Image thresholds are enforced: a digest needs verifying signatures by as many distinct trusted
 * image keys (or identities) as the image's spec.verification.threshold, else trust.yaml's
 * thresholds.image. Real keys made by `keys generate`, real bundles made by `image sign`, each
 * further bundle of a digest in its own slot (`sha256-<hex>.<n>.sigstore.json`).
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {airlock, commitChange, fleetCopies, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const OTHER = `sha256:${'b2'.repeat(32)}`
const IMAGE = 'manifests/images/agent-runner.yaml'

let fleet: Fleet
/** Fleets with a second image key (ECDSA P-256, keys/image2.key): generated once for the file, copied per test. */
const fleets = fleetCopies({
  prepare: async ({dir, env}) => {
    const k = await airlock(['keys', 'generate', 'image2', '--role', 'image', '--algorithm', 'ecdsa-p256', '--reason', 'second signer', '--apply', '--json'], {cwd: dir, env})
    expect(k.exitCode, k.stdout).toBe(0)
  },
})
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
})
afterEach(async () => {
  await fleet.cleanup()
})

const sign = (digest: string, key: string) => airlock(['image', 'sign', `agent-runner@${digest}`, '--key', key, '--reason', 'signed', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
const promote = (digest: string) => airlock(['promote', 'agent-runner', '--to', 'canary', '--digest', digest, '--reason', 'threshold', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})

describe('image thresholds', () => {
  it('with threshold 2: one signature is refused, the same key twice counts once, two keys promote', async () => {
    const {dir, env} = fleet
    const text = await readFile(join(dir, IMAGE), 'utf8')
    await writeFile(join(dir, IMAGE), text.replace(/^spec:\n/m, 'spec:\n  verification:\n    threshold: 2\n'))
    await commitChange(dir, env, 'two signers for agent-runner')
    const first = await sign(NEXT, fleet.imageKey)
    expect(first.exitCode, first.stdout).toBe(0)
    const one = await promote(NEXT)
    expect(one.exitCode).toBe(1)
    expect(one.json.error).toMatchObject({code: 'IMAGE_THRESHOLD_NOT_MET', details: {threshold: 2}})
    const again = await sign(NEXT, fleet.imageKey)
    expect(again.exitCode).toBe(0)
    expect(again.json.plan.changes[0].path).toMatch(/sha256-(a1)+\.1\.sigstore\.json$/)
    const same = await promote(NEXT)
    expect(same.exitCode).toBe(1)
    expect(same.json.error.code).toBe('IMAGE_THRESHOLD_NOT_MET')
    expect(same.json.error.details.signers).toHaveLength(1)
    expect((await sign(NEXT, join(dir, 'keys', 'image2.key'))).exitCode).toBe(0)
    const two = await promote(NEXT)
    expect(two.exitCode, two.stdout).toBe(0)
    expect(two.json.plan.signature.threshold).toBe(2)
    expect(two.json.plan.signature.signers).toHaveLength(2)
    const receipt = await airlock(['evidence', 'show', two.json.applied.receipt, '--json'], {cwd: dir})
    expect(JSON.stringify(receipt.json)).toContain(two.json.plan.signature.signers[1].signer.keyid)
    expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)
  })

  it("without a per-image threshold, trust.yaml's thresholds.image decides", async () => {
    const {dir, env} = fleet
    const trust = await readFile(join(dir, 'manifests/trust.yaml'), 'utf8')
    await writeFile(join(dir, 'manifests/trust.yaml'), trust.replace(/image: 1/, 'image: 2'))
    const change = await airlock(['change', '--reason', 'two image signers', '--apply', '--json'], {cwd: dir, env})
    expect(change.exitCode, change.stdout).toBe(0)
    expect((await sign(OTHER, fleet.imageKey)).exitCode).toBe(0)
    const one = await promote(OTHER)
    expect(one.json.error?.code).toBe('IMAGE_THRESHOLD_NOT_MET')
    expect((await sign(OTHER, join(dir, 'keys', 'image2.key'))).exitCode).toBe(0)
    expect((await promote(OTHER)).exitCode).toBe(0)
  })
})
