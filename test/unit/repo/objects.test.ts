import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {readdirSync, readFileSync, writeFileSync, chmodSync, truncateSync} from 'node:fs'
import {join} from 'node:path'
import {deflateSync} from 'node:zlib'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {applyDelta, ObjectStore} from '../../../control-plane/repo/objects.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {git, tempDir} from '../../helpers.js'

/** Every object of a repository as native git reads it: id → type and bytes. */
function gitObjects(dir: string): Map<string, {type: string; object: Buffer}> {
  const ids = execFileSync('git', ['cat-file', '--batch-all-objects', '--batch-check=%(objectname)'], {cwd: dir}).toString().trim().split('\n')
  const batch = execFileSync('git', ['cat-file', '--batch'], {cwd: dir, input: `${ids.join('\n')}\n`, maxBuffer: 1 << 28})
  const out = new Map<string, {type: string; object: Buffer}>()
  let at = 0
  while (at < batch.length) {
    const nl = batch.indexOf(10, at)
    const [oid, type, size] = batch.toString('latin1', at, nl).split(' ')
    out.set(oid!, {type: type!, object: batch.subarray(nl + 1, nl + 1 + Number(size))})
    at = nl + 1 + Number(size) + 1
  }
  return out
}

/** A repository whose files change a little in each of many commits (git fast-import), so a repack stores long delta chains. */
async function history(dir: string, commits: number): Promise<void> {
  await git(dir, 'init', '-q', '-b', 'main')
  const lines = Array.from({length: 400}, (_, i) => `line ${i} ${'x'.repeat(i % 40)}`)
  let stream = ''
  const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}\n`
  for (let c = 0; c < commits; c++) {
    lines[(c * 37) % lines.length] = `changed in ${c}`
    stream += `commit refs/heads/main\ncommitter t <t@t> ${1_700_000_000 + c} +0000\n${data(`commit ${c}`)}`
    stream += `M 100644 inline big.txt\n${data(lines.join('\n'))}M 100644 inline f${c % 7}.txt\n${data(`small ${c}\n`)}\n`
  }
  execFileSync('git', ['fast-import', '--quiet'], {cwd: dir, input: stream})
}

describe('ObjectStore reads what git reads', () => {
  let t: Awaited<ReturnType<typeof tempDir>>
  beforeEach(async () => {
    t = await tempDir()
  })
  afterEach(() => t.cleanup())

  it.each([
    ['offset deltas', ['repack', '-adfq', '--depth=50', '--window=50']],
    ['reference deltas', ['-c', 'repack.useDeltaBaseOffset=false', 'repack', '-adfq', '--depth=50', '--window=50']],
  ])('every object of a packed repository with %s, byte for byte', async (_, repack) => {
    await history(t.dir, 60)
    await git(t.dir, ...repack)
    const verify = execFileSync('git', ['verify-pack', '-v', ...readdirSync(join(t.dir, '.git/objects/pack')).filter((n) => n.endsWith('.idx')).map((n) => join(t.dir, '.git/objects/pack', n))], {cwd: t.dir}).toString()
    // The case is what it says: the pack holds delta chains deeper than one.
    expect(verify).toMatch(/chain length = [2-9]/)
    const store = new ObjectStore(join(t.dir, '.git'))
    const all = gitObjects(t.dir)
    expect(all.size).toBeGreaterThan(200)
    for (const [oid, want] of all) {
      const got = store.read(oid)
      expect(got?.type, oid).toBe(want.type)
      expect(Buffer.compare(got!.object, want.object), oid).toBe(0)
    }
  })

  it('every object of a pack larger than its read window, in pack order and backwards, byte for byte', async () => {
    // Incompressible files of 1 byte to 150 KiB: entries that straddle a 64 KiB window's end, and ones larger than a window.
    await git(t.dir, 'init', '-q', '-b', 'main')
    for (let i = 0; i < 24; i++) writeFileSync(join(t.dir, `r${i}.bin`), randomBytes(i % 4 === 0 ? 1 + i : 7_000 * i))
    await git(t.dir, 'add', '.')
    await git(t.dir, 'commit', '-q', '-m', 'random')
    await git(t.dir, 'repack', '-adq')
    const idx = readdirSync(join(t.dir, '.git/objects/pack')).find((n) => n.endsWith('.idx'))!
    const byOffset = execFileSync('git', ['show-index'], {input: readFileSync(join(t.dir, '.git/objects/pack', idx))})
      .toString()
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .sort((a, b) => Number(a[0]) - Number(b[0]))
      .map((f) => f[1]!)
    const all = gitObjects(t.dir)
    expect(readFileSync(join(t.dir, '.git/objects/pack', idx.replace(/idx$/, 'pack'))).length).toBeGreaterThan(1024 * 1024)
    for (const order of [byOffset, [...byOffset].reverse()]) {
      const store = new ObjectStore(join(t.dir, '.git'))
      for (const oid of order) {
        const got = store.read(oid)
        expect(got?.type, oid).toBe(all.get(oid)!.type)
        expect(Buffer.compare(got!.object, all.get(oid)!.object), oid).toBe(0)
      }
    }
  })

  it('reads loose objects and packed ones side by side; an unknown id is absent', async () => {
    await history(t.dir, 10)
    await git(t.dir, 'repack', '-adq')
    writeFileSync(join(t.dir, 'new.txt'), 'after the repack\n')
    await git(t.dir, 'add', 'new.txt')
    await git(t.dir, 'commit', '-q', '-m', 'loose')
    const store = new ObjectStore(join(t.dir, '.git'))
    for (const [oid, want] of gitObjects(t.dir)) expect(store.read(oid)?.object.equals(want.object)).toBe(true)
    expect(store.read('0'.repeat(40))).toBeNull()
  })

  it('refuses a loose object whose content is not its id', async () => {
    await git(t.dir, 'init', '-q', '-b', 'main')
    const oid = execFileSync('git', ['hash-object', '-w', '--stdin'], {cwd: t.dir, input: 'honest\n'}).toString().trim()
    const file = join(t.dir, '.git/objects', oid.slice(0, 2), oid.slice(2))
    chmodSync(file, 0o644)
    writeFileSync(file, deflateSync(Buffer.from('blob 7\0forged\n')))
    expect(() => new ObjectStore(join(t.dir, '.git')).read(oid)).toThrow(/does not match its id/)
    // Through the repository: BROKEN_OBJECT naming the object, never the forged bytes.
    const repo = await Repository.open(t.dir)
    await expect(repo.readBlob(oid)).rejects.toMatchObject({code: 'BROKEN_OBJECT', details: {oid}})
  })

  it('refuses a truncated pack: what it reads is whole or an error, never other bytes', async () => {
    await history(t.dir, 5)
    await git(t.dir, 'repack', '-adq')
    const before = gitObjects(t.dir)
    const pack = readdirSync(join(t.dir, '.git/objects/pack')).find((n) => n.endsWith('.pack'))!
    const path = join(t.dir, '.git/objects/pack', pack)
    chmodSync(path, 0o644)
    truncateSync(path, Math.floor(readFileSync(path).length / 2))
    const store = new ObjectStore(join(t.dir, '.git'))
    const lost: string[] = []
    for (const [oid, want] of before) {
      let got
      try {
        got = store.read(oid)
      } catch {
        lost.push(oid)
        continue
      }
      expect(got!.object.equals(want.object)).toBe(true)
    }
    expect(lost.length).toBeGreaterThan(0)
    // Through the repository: BROKEN_OBJECT naming the object.
    const blob = lost.find((oid) => before.get(oid)!.type === 'blob')!
    const repo = await Repository.open(t.dir)
    await expect(repo.readBlob(blob)).rejects.toMatchObject({code: 'BROKEN_OBJECT', details: {oid: blob}})
  })
})

describe('applyDelta', () => {
  it('refuses a delta whose base size is not the base', () => {
    expect(() => applyDelta(Buffer.from('abc'), Buffer.from([5, 3, 3, 0x61, 0x62, 0x63]))).toThrow(/does not match its base/)
  })
  it('refuses a copy beyond the base', () => {
    expect(() => applyDelta(Buffer.from('abc'), Buffer.from([3, 4, 0x80 | 0x01 | 0x10, 2, 4]))).toThrow(/out of bounds/)
  })
  it('copies and inserts', () => {
    expect(applyDelta(Buffer.from('hello'), Buffer.from([5, 7, 0x80 | 0x10, 5, 2, 0x2c, 0x20])).toString()).toBe('hello, ')
  })
})
