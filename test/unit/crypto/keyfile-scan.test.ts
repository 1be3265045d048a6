// The private-key scan `airlock status` runs over the work tree (DESIGN.md §6): a real temp git
// repository, real key files, a FIFO and a symbolic link.
import {execFileSync} from 'node:child_process'
import {generateKeyPairSync} from 'node:crypto'
import {mkdir, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {exposedPrivateKeys, holdsPrivateKey} from '../../../control-plane/crypto/keyfile.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {git, tempDir} from '../../helpers.js'

const pem = generateKeyPairSync('ed25519').privateKey.export({type: 'pkcs8', format: 'pem'}).toString()

describe('exposedPrivateKeys', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => {
    ;({dir, cleanup} = await tempDir())
    await git(dir, 'init', '-q', '-b', 'main')
    await mkdir(join(dir, 'keys'))
    await writeFile(join(dir, '.gitignore'), 'ignored.key\n')
    await writeFile(join(dir, 'ignored.key'), pem)
    await writeFile(join(dir, 'tracked.txt'), `${'x'.repeat(5000)}\n${pem}`)
    await git(dir, 'add', '.gitignore', 'tracked.txt')
    await git(dir, 'commit', '-q', '-m', 'c')
    await writeFile(join(dir, 'keys', 'late.key'), `${'y'.repeat(3000)}\n${pem}`)
    await writeFile(join(dir, 'keys', 'beyond.key'), `${'z'.repeat(9000)}\n${pem}`)
    await writeFile(join(dir, 'keys', 'id.ppk'), 'notes\nPuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n')
    await writeFile(join(dir, 'keys', 'ssh2.key'), '---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nAAAA\n')
    await writeFile(join(dir, 'keys', 'id.pub'), 'ssh-ed25519 AAAA... PRIVATE KEY mentioned in prose\n')
    await writeFile(join(dir, 'keys', 'putty-mid-line.txt'), 'see PuTTY-User-Key-File-3: in the docs\n')
    await symlink(join(dir, 'ignored.key'), join(dir, 'keys', 'link.key'))
    execFileSync('mkfifo', [join(dir, 'keys', 'fifo')])
  })
  afterAll(() => cleanup())

  it('finds keys anywhere in the bytes read, tracked or not, and nothing else', async () => {
    const repo = await Repository.open(dir)
    const found = await exposedPrivateKeys(repo, 8192)
    expect(found.sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      {path: 'keys/id.ppk', tracked: false},
      {path: 'keys/late.key', tracked: false},
      {path: 'keys/ssh2.key', tracked: false},
      {path: 'tracked.txt', tracked: true},
    ])
  })

  it('judges bytes as the pattern does, read as latin1', () => {
    const b = (s: string) => Buffer.from(s, 'latin1')
    expect(holdsPrivateKey(b(pem), pem.length)).toBe(true)
    expect(holdsPrivateKey(b('-----BEGIN OPENSSH PRIVATE KEY-----'), 35)).toBe(true)
    expect(holdsPrivateKey(b('-----BEGIN OPENSSH PRIVATE KEY-----'), 30)).toBe(false)
    expect(holdsPrivateKey(b('-----BEGIN PUBLIC KEY-----'), 26)).toBe(false)
    expect(holdsPrivateKey(b('a PRIVATE KEY'), 13)).toBe(false)
    expect(holdsPrivateKey(b('x\nPuTTY-User-Key-File-2: ssh-rsa'), 31)).toBe(true)
  })
})
