import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, describe, expect, it} from 'vitest'
import {generateSigner} from '../../../control-plane/crypto/keys.js'
import {allowedSignersLine, sshSign, sshVerify} from '../../../control-plane/crypto/sshsig.js'
import {tempDir} from '../../helpers.js'

const t = await tempDir()
afterAll(() => t.cleanup())

describe('SSH signatures (git gpg.format=ssh)', () => {
  it('produces signatures that OpenSSH ssh-keygen -Y verify accepts', async () => {
    const {signer} = generateSigner()
    const message = 'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nhello\n'
    await writeFile(join(t.dir, 'allowed'), `${allowedSignersLine('airlock', signer.publicKey)}\n`)
    await writeFile(join(t.dir, 'sig'), sshSign(Buffer.from(message), signer))
    const r = await execa('ssh-keygen', ['-Y', 'verify', '-f', join(t.dir, 'allowed'), '-I', 'airlock', '-n', 'git', '-s', join(t.dir, 'sig')], {input: message, reject: false})
    expect(r.stdout).toContain('Good "git" signature')
    expect(r.exitCode).toBe(0)
  })

  it('verifies its own signatures and returns the signing key', () => {
    const {signer} = generateSigner()
    const r = sshVerify(sshSign(Buffer.from('m'), signer), Buffer.from('m'))
    expect(r.valid && Buffer.from(r.publicKey).equals(Buffer.from(signer.publicKey))).toBe(true)
  })

  describe('when verification must fail', () => {
    const {signer} = generateSigner()
    const sig = sshSign(Buffer.from('payload'), signer)
    it('rejects another message', () => expect(sshVerify(sig, Buffer.from('payload!')).valid).toBe(false))
    it('rejects another namespace', () => expect(sshVerify(sig, Buffer.from('payload'), 'file')).toMatchObject({valid: false, reason: expect.stringContaining('namespace')}))
    it('rejects garbage', () => expect(sshVerify('-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----', Buffer.from('x')).valid).toBe(false))
    it('rejects a PGP signature', () => expect(sshVerify('-----BEGIN PGP SIGNATURE-----\n', Buffer.from('x')).valid).toBe(false))
  })
})

describe('allowed-signers from trust.yaml', () => {
  it('names a key by its id when its name is not a plain word (no line or principal can be injected)', async () => {
    const {allowedSigners} = await import('../../../control-plane/manifests/trust.js')
    const {emptyTrust} = await import('../../../control-plane/manifests/load.js')
    const {generateSigner: gen} = await import('../../../control-plane/crypto/keys.js')
    const {signer} = gen()
    const key = {id: signer.keyid, algorithm: 'ed25519' as const, publicKey: signer.publicKey, roles: ['evidence' as const], validFrom: new Date('2026-01-01T00:00:00Z')}
    const trust = {...emptyTrust(), keys: [{...key, name: 'ci\n* namespaces="git" ssh-ed25519 AAAA\nevidence'}, {...key, id: 'x'.repeat(64), name: 'ops,*'}, {...key, id: 'y'.repeat(64), name: 'release-bot'}]}
    const lines = allowedSigners(trust).trimEnd().split('\n').slice(1)
    expect(lines).toHaveLength(3)
    expect(lines.map((l) => l.split(' ')[0])).toEqual([`airlock-${signer.keyid.slice(0, 16)}`, `airlock-${'x'.repeat(16)}`, 'release-bot'])
    for (const l of lines) expect(l).toMatch(/^\S+ namespaces="git",valid-after="20260101000000Z" ssh-ed25519 [A-Za-z0-9+/=]+$/)
  })
})
