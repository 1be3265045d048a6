import {chmod, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {generateKeyPairSync} from 'node:crypto'
import {afterAll, describe, expect, it} from 'vitest'
import {generateSigner, loadSigner, writePrivateKey} from '../../../control-plane/crypto/keys.js'
import {tempDir} from '../../helpers.js'

const t = await tempDir()
afterAll(() => t.cleanup())

describe('private keys', () => {
  it('round-trips a generated key through a 0600 file', async () => {
    const {signer, pem} = generateSigner()
    const file = join(t.dir, 'a.key')
    await writePrivateKey(file, pem)
    expect((await loadSigner({file})).keyid).toBe(signer.keyid)
  })

  it('accepts PEM text from the environment (CI secrets)', async () => {
    const {signer, pem} = generateSigner()
    expect((await loadSigner({env: pem})).keyid).toBe(signer.keyid)
  })

  describe('when the key cannot be used', () => {
    it('refuses a missing key source', async () => {
      await expect(loadSigner({})).rejects.toMatchObject({code: 'KEY_MISSING'})
    })
    it('refuses a missing file', async () => {
      await expect(loadSigner({file: join(t.dir, 'nope.key')})).rejects.toMatchObject({code: 'KEY_MISSING'})
    })
    it('refuses a key readable by group or others', async () => {
      const file = join(t.dir, 'open.key')
      await writePrivateKey(file, generateSigner().pem)
      await chmod(file, 0o640)
      await expect(loadSigner({file})).rejects.toMatchObject({code: 'KEY_PERMISSIONS'})
    })
    it('refuses a key that is not Ed25519', async () => {
      const file = join(t.dir, 'ec.key')
      const {privateKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
      await writeFile(file, privateKey.export({format: 'pem', type: 'pkcs8'}), {mode: 0o600})
      await expect(loadSigner({file})).rejects.toMatchObject({code: 'KEY_INVALID'})
    })
    it('refuses to overwrite an existing key file', async () => {
      const file = join(t.dir, 'once.key')
      await writePrivateKey(file, generateSigner().pem)
      await expect(writePrivateKey(file, generateSigner().pem)).rejects.toMatchObject({code: 'KEY_EXISTS'})
    })
  })
})
