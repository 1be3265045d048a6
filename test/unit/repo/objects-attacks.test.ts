/**
 * The object reader against packs and objects a writer of the repository could craft without
 * keys: a local clone (`git clone /path`) copies the source's packs and their indexes as they
 * are, so an index that lies, a pack entry whose size lies, a zlib bomb or a cycle of reference
 * deltas reaches a fresh clone. airlock shows an object's true content or BROKEN_OBJECT, never
 * another object's bytes, and never allocates without bound.
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {deflateSync} from 'node:zlib'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {applyDelta, ObjectStore} from '../../../control-plane/repo/objects.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {git, tempDir} from '../../helpers.js'

const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest()
const oidOf = (type: string, body: Buffer) => sha1(Buffer.concat([Buffer.from(`${type} ${body.length}\0`), body])).toString('hex')
const TYPE = {commit: 1, tree: 2, blob: 3, tag: 4, ofs: 6, ref: 7} as const

/** A pack entry's type-and-size header. */
function entryHeader(type: number, size: number): Buffer {
  const out = [((type << 4) | (size & 15)) | (size > 15 ? 0x80 : 0)]
  let rest = Math.floor(size / 16)
  while (rest > 0) {
    out.push((rest & 0x7f) | (rest > 0x7f ? 0x80 : 0))
    rest = Math.floor(rest / 128)
  }
  return Buffer.from(out)
}

/** A pack of the given raw entries, and its trailing checksum. */
function packOf(entries: Buffer[]): {pack: Buffer; offsets: number[]} {
  const head = Buffer.alloc(12)
  head.write('PACK', 0, 'latin1')
  head.writeUInt32BE(2, 4)
  head.writeUInt32BE(entries.length, 8)
  const offsets: number[] = []
  let at = 12
  for (const e of entries) {
    offsets.push(at)
    at += e.length
  }
  const body = Buffer.concat([head, ...entries])
  return {pack: Buffer.concat([body, sha1(body)]), offsets}
}

/** A version-2 index saying what the caller says: ids at offsets (no checks). */
function indexOf(items: Array<{oid: string; offset: number}>, pack: Buffer): Buffer {
  const sorted = [...items].sort((a, b) => a.oid.localeCompare(b.oid))
  const fan = Buffer.alloc(256 * 4)
  for (let b = 0; b < 256; b++) fan.writeUInt32BE(sorted.filter((i) => parseInt(i.oid.slice(0, 2), 16) <= b).length, b * 4)
  const names = Buffer.concat(sorted.map((i) => Buffer.from(i.oid, 'hex')))
  const crcs = Buffer.alloc(sorted.length * 4)
  const offs = Buffer.alloc(sorted.length * 4)
  sorted.forEach((i, n) => offs.writeUInt32BE(i.offset, n * 4))
  const body = Buffer.concat([Buffer.from([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]), fan, names, crcs, offs, pack.subarray(pack.length - 20)])
  return Buffer.concat([body, sha1(body)])
}

function installPack(gitdir: string, name: string, pack: Buffer, idx: Buffer): void {
  writeFileSync(join(gitdir, 'objects/pack', `pack-${name}.pack`), pack)
  writeFileSync(join(gitdir, 'objects/pack', `pack-${name}.idx`), idx)
}

const hashObject = (dir: string, text: string, write = true) =>
  execFileSync('git', ['hash-object', ...(write ? ['-w'] : []), '--stdin'], {cwd: dir, input: text}).toString().trim()

/** Packs the given objects with git (pack-objects, then prune-packed: they are packed only). */
function packObjects(dir: string, oids: string[]): void {
  execFileSync('git', ['pack-objects', '-q', '.git/objects/pack/pack'], {cwd: dir, input: `${oids.join('\n')}\n`})
  execFileSync('git', ['prune-packed'], {cwd: dir})
}

/** Swaps, in the index of the only pack, the offsets (and CRCs) of two ids: the index now lies. */
function swapInIndex(gitdir: string, a: string, b: string): void {
  const dir = join(gitdir, 'objects/pack')
  const file = join(dir, readdirSync(dir).find((n) => n.endsWith('.idx'))!)
  chmodSync(file, 0o644)
  const idx = readFileSync(file)
  const count = idx.readUInt32BE(8 + 255 * 4)
  const names = 8 + 1024
  const pos = (oid: string) => {
    for (let i = 0; i < count; i++) if (idx.toString('hex', names + i * 20, names + i * 20 + 20) === oid) return i
    throw new Error(`${oid} not in the index`)
  }
  const [i, j] = [pos(a), pos(b)]
  for (const table of [names + count * 20, names + count * 24]) {
    const x = idx.readUInt32BE(table + i * 4)
    idx.writeUInt32BE(idx.readUInt32BE(table + j * 4), table + i * 4)
    idx.writeUInt32BE(x, table + j * 4)
  }
  writeFileSync(file, idx)
}

describe('reading objects a writer of the repository crafted', () => {
  let t: Awaited<ReturnType<typeof tempDir>>
  beforeEach(async () => {
    t = await tempDir()
  })
  afterEach(() => t.cleanup())

  it('an index that gives one id another object’s entry: git shows the other bytes, airlock refuses (a local clone copies the index as is)', async () => {
    const src = join(t.dir, 'src')
    await git(t.dir, 'init', '-q', '-b', 'main', src)
    const approved = hashObject(src, 'digest: sha256:approved\n')
    const forged = hashObject(src, 'digest: sha256:forged\n')
    packObjects(src, [approved, forged])
    swapInIndex(join(src, '.git'), approved, forged)
    const clone = join(t.dir, 'clone')
    await git(t.dir, 'clone', '-q', src, clone)
    // The case is what it says: git itself, in the fresh clone, believes the index.
    expect(execFileSync('git', ['cat-file', 'blob', approved], {cwd: clone}).toString()).toBe('digest: sha256:forged\n')
    expect(() => new ObjectStore(join(clone, '.git')).read(approved)).toThrow(/is another object/)
    const repo = await Repository.open(clone)
    await expect(repo.readBlob(approved)).rejects.toMatchObject({code: 'BROKEN_OBJECT', details: {oid: approved}})
  })

  it('a lying packed copy and an honest loose copy of one id: airlock reads the honest one (git prefers the pack)', async () => {
    await git(t.dir, 'init', '-q', '-b', 'main')
    const honest = hashObject(t.dir, 'honest\n')
    const other = hashObject(t.dir, 'other!\n')
    packObjects(t.dir, [honest, other])
    swapInIndex(join(t.dir, '.git'), honest, other)
    // git writes no loose copy of what a pack holds: written by hand, honest.
    mkdirSync(join(t.dir, '.git/objects', honest.slice(0, 2)), {recursive: true})
    writeFileSync(join(t.dir, '.git/objects', honest.slice(0, 2), honest.slice(2)), deflateSync(Buffer.from('blob 7\0honest\n')))
    expect(execFileSync('git', ['cat-file', 'blob', honest], {cwd: t.dir}).toString()).toBe('other!\n')
    expect(new ObjectStore(join(t.dir, '.git')).read(honest)?.object.toString()).toBe('honest\n')
  })

  it('a pack entry whose size header claims less than its zlib stream inflates to (a bomb) is refused without inflating it', async () => {
    await git(t.dir, 'init', '-q', '-b', 'main')
    const bomb = deflateSync(Buffer.alloc(64 << 20))
    const oid = oidOf('blob', Buffer.alloc(10))
    const {pack, offsets} = packOf([Buffer.concat([entryHeader(TYPE.blob, 10), bomb])])
    installPack(join(t.dir, '.git'), 'a'.repeat(40), pack, indexOf([{oid, offset: offsets[0]!}], pack))
    const before = process.memoryUsage().arrayBuffers
    expect(() => new ObjectStore(join(t.dir, '.git')).read(oid)).toThrow()
    // What it allocated is bounded by the claimed size, not by the stream (64 MiB here).
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 << 20)
    const repo = await Repository.open(t.dir)
    await expect(repo.readBlob(oid)).rejects.toMatchObject({code: 'BROKEN_OBJECT', details: {oid}})
  })

  it('a size header that claims more than the stream holds, and a stream followed by a second one, read as git would or not at all', async () => {
    await git(t.dir, 'init', '-q', '-b', 'main')
    const body = Buffer.from('first stream\n')
    const oid = oidOf('blob', body)
    const liar = oidOf('blob', Buffer.from('claims more\n'))
    const {pack, offsets} = packOf([
      Buffer.concat([entryHeader(TYPE.blob, body.length), deflateSync(body), deflateSync(Buffer.from('second stream, ignored\n'))]),
      Buffer.concat([entryHeader(TYPE.blob, 1000), deflateSync(Buffer.from('claims more\n'))]),
    ])
    installPack(join(t.dir, '.git'), 'b'.repeat(40), pack, indexOf([{oid, offset: offsets[0]!}, {oid: liar, offset: offsets[1]!}], pack))
    const store = new ObjectStore(join(t.dir, '.git'))
    expect(store.read(oid)?.object.toString()).toBe('first stream\n')
    expect(execFileSync('git', ['cat-file', 'blob', oid], {cwd: t.dir}).toString()).toBe('first stream\n')
    expect(() => store.read(liar)).toThrow(/inflates to 12 bytes, not 1000/)
  })

  it('a cycle of reference deltas, and an offset delta pointing before the pack, are damaged objects, not a crash', async () => {
    await git(t.dir, 'init', '-q', '-b', 'main')
    const a = oidOf('blob', Buffer.from('a\n'))
    const b = oidOf('blob', Buffer.from('b\n'))
    const c = oidOf('blob', Buffer.from('c\n'))
    // A delta of 2 bytes to 2 bytes: insert 2 bytes.
    const delta = (text: string) => deflateSync(Buffer.from([2, 2, 2, ...Buffer.from(text)]))
    const d = Buffer.from(delta('a\n'))
    const {pack, offsets} = packOf([
      Buffer.concat([entryHeader(TYPE.ref, 5), Buffer.from(b, 'hex'), d]),
      Buffer.concat([entryHeader(TYPE.ref, 5), Buffer.from(a, 'hex'), delta('b\n')]),
      Buffer.concat([entryHeader(TYPE.ofs, 5), Buffer.from([0x7f]), delta('c\n')]),
    ])
    installPack(join(t.dir, '.git'), 'c'.repeat(40), pack, indexOf([{oid: a, offset: offsets[0]!}, {oid: b, offset: offsets[1]!}, {oid: c, offset: offsets[2]!}], pack))
    const store = new ObjectStore(join(t.dir, '.git'))
    expect(() => store.read(a)).toThrow(/nested too deep/)
    expect(() => store.read(c)).toThrow(/bad delta base/)
    const repo = await Repository.open(t.dir)
    await expect(repo.readBlob(a)).rejects.toMatchObject({code: 'BROKEN_OBJECT', details: {oid: a}})
  })

  it('a lying version-1 index (objects.ts leaves it to the fallback, which does not read version 1 either): BROKEN_OBJECT, never the bytes git shows', async () => {
    await git(t.dir, 'init', '-q', '-b', 'main')
    const approved = hashObject(t.dir, 'digest: sha256:approved\n')
    const forged = hashObject(t.dir, 'digest: sha256:forged\n')
    packObjects(t.dir, [approved, forged])
    const dir = join(t.dir, '.git/objects/pack')
    const name = readdirSync(dir).find((n) => n.endsWith('.pack'))!
    const idxFile = join(dir, name.replace(/\.pack$/, '.idx'))
    chmodSync(idxFile, 0o644)
    execFileSync('git', ['index-pack', '--index-version=1', '-o', idxFile, join(dir, name)], {cwd: t.dir})
    // Version 1: the fan-out, then (offset, id) pairs sorted by id; swap the two offsets.
    const idx = readFileSync(idxFile)
    const at = (i: number) => 1024 + i * 24
    const x = idx.readUInt32BE(at(0))
    idx.writeUInt32BE(idx.readUInt32BE(at(1)), at(0))
    idx.writeUInt32BE(x, at(1))
    writeFileSync(idxFile, idx)
    expect(execFileSync('git', ['cat-file', 'blob', approved], {cwd: t.dir}).toString()).toBe('digest: sha256:forged\n')
    expect(new ObjectStore(join(t.dir, '.git')).read(approved)).toBeNull()
    const repo = await Repository.open(t.dir)
    await expect(repo.readBlob(approved)).rejects.toMatchObject({code: 'BROKEN_OBJECT', details: {oid: approved}})
  })

  it('a reference delta on a loose base reads the object its id names', async () => {
    await git(t.dir, 'init', '-q', '-b', 'main')
    const base = hashObject(t.dir, 'base text\n')
    const want = Buffer.from('base text, and more\n')
    const oid = oidOf('blob', want)
    // copy 9 bytes from 0, insert the rest
    const tail = Buffer.from(', and more\n')
    const ops = Buffer.from([10, want.length, 0x90, 9, tail.length, ...tail])
    const {pack, offsets} = packOf([Buffer.concat([entryHeader(TYPE.ref, ops.length), Buffer.from(base, 'hex'), deflateSync(ops)])])
    installPack(join(t.dir, '.git'), 'd'.repeat(40), pack, indexOf([{oid, offset: offsets[0]!}], pack))
    expect(new ObjectStore(join(t.dir, '.git')).read(oid)?.object.equals(want)).toBe(true)
  })
  it('the clean merge an unsigned merge commit is checked against is computed from objects that are their ids (isomorphic-git reads the packs itself)', async () => {
    const src = join(t.dir, 'src')
    await git(t.dir, 'init', '-q', '-b', 'main', src)
    const lines = (first: string, last: string) => `${first}\n2\n3\n4\n5\n6\n${last}\n`
    writeFileSync(join(src, 'f.txt'), lines('1', '7'))
    await git(src, 'add', 'f.txt')
    await git(src, 'commit', '-q', '-m', 'base')
    await git(src, 'checkout', '-q', '-b', 'theirs')
    writeFileSync(join(src, 'f.txt'), lines('1', 'theirs'))
    await git(src, 'commit', '-qam', 'theirs')
    await git(src, 'checkout', '-q', 'main')
    writeFileSync(join(src, 'f.txt'), lines('ours', '7'))
    await git(src, 'commit', '-qam', 'ours')
    const ours = (await git(src, 'rev-parse', 'main')).trim()
    const theirs = (await git(src, 'rev-parse', 'theirs')).trim()
    const honest = (await git(src, 'merge-tree', '--write-tree', ours, theirs)).trim()
    // The index gives our side's blob the entry of one the attacker chose.
    const ourBlob = (await git(src, 'rev-parse', `${ours}:f.txt`)).trim()
    const planted = hashObject(src, lines('ours', '7').replace('4', 'approved: yes'))
    await git(src, 'tag', 'planted', planted)
    await git(src, 'repack', '-adq')
    swapInIndex(join(src, '.git'), ourBlob, planted)
    const clone = join(t.dir, 'clone')
    await git(t.dir, 'clone', '-q', src, clone)
    const repo = await Repository.open(clone)
    const tree = await repo.cleanMergeTree([ours, theirs]).catch((error: {code?: string}) => error.code)
    // Never a merge of other bytes: the honest tree, or the read refused.
    expect([honest, 'BROKEN_OBJECT']).toContain(tree)
  })
})

describe('the git airlock runs reads objects by their ids', () => {
  let t: Awaited<ReturnType<typeof tempDir>>
  beforeEach(async () => {
    t = await tempDir()
  })
  afterEach(() => t.cleanup())

  it('a replace ref (refs/replace/, fetched with every ref) does not hide a modified tracked file from the clean-work-tree check', async () => {
    const src = join(t.dir, 'src')
    await git(t.dir, 'init', '-q', '-b', 'main', src)
    writeFileSync(join(src, 'check.sh'), 'exit 1\n')
    await git(src, 'add', 'check.sh')
    await git(src, 'commit', '-q', '-m', 'a gate that fails')
    const head = (await git(src, 'rev-parse', 'HEAD')).trim()
    // The writer pushes a replacement of HEAD whose tree holds the edited file.
    writeFileSync(join(src, 'check.sh'), 'exit 0\n')
    const blob = hashObject(src, 'exit 0\n')
    const tree = execFileSync('git', ['mktree'], {cwd: src, input: `100644 blob ${blob}\tcheck.sh\n`}).toString().trim()
    const fake = (await git(src, 'commit-tree', tree, '-m', 'a gate that fails')).trim()
    await git(src, 'replace', head, fake)
    // git, by default, believes it: nothing differs from "HEAD".
    expect((await git(src, 'diff', '--name-only', 'HEAD', '--')).trim()).toBe('')
    const repo = await Repository.open(src)
    expect(await repo.modifiedTracked()).toEqual(['check.sh'])
  })
})

describe('applyDelta refuses what git’s patch_delta refuses', () => {
  const base = Buffer.from('0123456789')
  it('a copy instruction cut off at the end (its size byte missing) is refused, not read as a size of 0 (0x10000)', () => {
    // result 10 bytes: copy 9 bytes from offset 1 (0x91: offset byte, size byte), then a copy whose offset byte is missing
    const big = Buffer.alloc(70_000, 7)
    const varint = (n: number) => Buffer.from([(n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14])
    // Copy with a size byte (0x90): a size of 0 means 0x10000; here the byte itself is missing.
    expect(applyDelta(big, Buffer.concat([varint(70_000), varint(0x10000), Buffer.from([0x90, 0])])).length).toBe(0x10000)
    expect(() => applyDelta(big, Buffer.concat([varint(70_000), varint(0x10000), Buffer.from([0x90])]))).toThrow(/inside an instruction/)
  })
  it('an instruction 0 (reserved), and a result of the wrong size, are refused', () => {
    expect(() => applyDelta(base, Buffer.from([10, 2, 0]))).toThrow(/reserved/)
    expect(() => applyDelta(base, Buffer.from([10, 3, 2, 0x61, 0x62]))).toThrow(/wrong size/)
  })
})
