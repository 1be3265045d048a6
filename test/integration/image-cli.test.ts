import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {airlock, tempDir} from '../helpers.js'
import {imageKeyPair, signImage} from '../sigstore-fixtures.js'

const t = await tempDir()
afterAll(() => t.cleanup())
const REPO = 'registry.example.com/golden/agent-runner'
const DIGEST = `sha256:${'c3'.repeat(32)}`

describe('airlock image verify', () => {
  it('verifies a keyed DSSE bundle for the pinned digest; refuses the wrong key, another digest and a tag', async () => {
    const key = imageKeyPair('ec')
    const other = imageKeyPair('ec')
    await writeFile(join(t.dir, 'bundle.json'), JSON.stringify(await signImage(DIGEST, key)))
    await writeFile(join(t.dir, 'key.pem'), key.pem)
    await writeFile(join(t.dir, 'other.pem'), other.pem)
    const verify = (ref: string, keyFile: string) => airlock(['image', 'verify', ref, '--bundle', join(t.dir, 'bundle.json'), '--key', join(t.dir, keyFile), '--json'])

    const ok = await verify(`${REPO}@${DIGEST}`, 'key.pem')
    expect(ok.exitCode).toBe(0)
    expect(ok.json).toMatchObject({digest: DIGEST, bundleType: 'dsse'})
    const wrongKey = await verify(`${REPO}@${DIGEST}`, 'other.pem')
    expect(wrongKey.exitCode).toBe(1)
    expect(wrongKey.json.error.details.reason).toBe('UNTRUSTED_SIGNER')
    const otherDigest = await verify(`${REPO}@sha256:${'f4'.repeat(32)}`, 'key.pem')
    expect(otherDigest.exitCode).toBe(1)
    expect(otherDigest.json.error.details.reason).toBe('SUBJECT_MISMATCH')
    const tag = await verify(`${REPO}:latest`, 'key.pem')
    expect(tag.exitCode).toBe(2)
    expect(tag.json.error.code).toBe('NOT_PINNED')
  })
})
