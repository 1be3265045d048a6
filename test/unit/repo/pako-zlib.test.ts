/**
 * control-plane/repo/pako-zlib.ts against the real pako 1.0.11 on real git objects and packs
 * written by native git, driven the way isomorphic-git 1.44.11 drives pako; and isomorphic-git
 * itself, with `pako` aliased to the shim (test/pako-alias.ts), indexing and reading a pack.
 */
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import * as fs from 'node:fs'
import shim, {deflate, Inflate, inflate} from '../../../control-plane/repo/pako-zlib.js'

const require = createRequire(import.meta.url)
const isomorphicGitPath = require.resolve('isomorphic-git')
/** The real pako, by its file (the bare name `pako` is the shim for isomorphic-git). */
const pako = require(createRequire(isomorphicGitPath).resolve('pako/index.js')) as typeof shim
/** isomorphic-git as the repository layer loads it, and `pako` as isomorphic-git resolves it. */
const git = createRequire(import.meta.url)('isomorphic-git') as typeof import('isomorphic-git')
const pakoOfIsomorphicGit = createRequire(isomorphicGitPath)('pako') as {default?: typeof shim} & typeof shim

const sh = (cwd: string, ...args: string[]) => execFileSync('git', args, {cwd, maxBuffer: 1 << 28}).toString()

let dir: string
let pack: Buffer
let loose: Buffer[]

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'airlock-pako-'))
  sh(dir, 'init', '-q', '-b', 'main')
  sh(dir, 'config', 'user.email', 't@example.com')
  sh(dir, 'config', 'user.name', 't')
  // Text that deltas well, incompressible bytes (stored blocks), an empty file, a large file.
  const yaml = (i: number, d: string) => `apiVersion: airlock/v1\nkind: GoldenImage\nmetadata:\n  name: img-${i}\nspec:\n  digest: sha256:${d}\n`
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 30; i++) writeFileSync(join(dir, `img-${i}.yaml`), yaml(i, randomBytes(32).toString('hex')))
    writeFileSync(join(dir, 'random.bin'), randomBytes(70_000 + round))
    writeFileSync(join(dir, 'empty'), '')
    writeFileSync(join(dir, 'big.txt'), `${'line of a large text file\n'.repeat(20_000)}${round}`)
    sh(dir, 'add', '-A')
    sh(dir, 'commit', '-q', '-m', `round ${round}`)
  }
  const objects = join(dir, '.git', 'objects')
  loose = readdirSync(objects)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => readdirSync(join(objects, d)).map((f) => readFileSync(join(objects, d, f))))
  sh(dir, 'repack', '-adq', '--depth=50', '--window=50')
  const packs = join(objects, 'pack')
  pack = readFileSync(join(packs, readdirSync(packs).find((f) => f.endsWith('.pack'))!))
})

afterAll(() => rmSync(dir, {recursive: true, force: true}))

interface Entry {
  type: number
  size: number
  /** Where the object's zlib stream starts. */
  data: number
}

/** The header of the pack entry at `at` (git's pack format: type, size varint, delta base). */
function entryAt(at: number): Entry {
  let byte = pack[at++]!
  const type = (byte >> 4) & 7
  let size = byte & 15
  let shift = 4
  while (byte & 0x80) {
    byte = pack[at++]!
    size += (byte & 0x7f) * 2 ** shift
    shift += 7
  }
  if (type === 6) while (pack[at++]! & 0x80);
  if (type === 7) at += 20
  return {type, size, data: at}
}

type Inflater = {push(data: Uint8Array, mode: boolean): boolean; result?: Uint8Array; err: number; msg: string; strm: {avail_in: number}}

/**
 * isomorphic-git's listpack over the pack split into `chunkSize` pieces: push chunks until
 * `result`, then step back to where the stream ended (chunk length − avail_in). Returns each
 * object's bytes and where the next entry starts.
 */
function walkPack(make: () => Inflater, chunkSize: number): {objects: Buffer[]; ends: number[]} {
  const count = pack.readUInt32BE(8)
  const objects: Buffer[] = []
  const ends: number[] = []
  let at = 12
  for (let i = 0; i < count; i++) {
    const {size, data} = entryAt(at)
    const inflator = make()
    let pos = data
    let end = -1
    while (inflator.result === undefined) {
      const next = Math.min(pack.length, (Math.floor(pos / chunkSize) + 1) * chunkSize)
      if (pos >= pack.length) throw new Error('stream did not end')
      const chunk = pack.subarray(pos, next)
      inflator.push(chunk, false)
      if (inflator.err) throw new Error(`inflate error ${inflator.msg}`)
      if (inflator.result !== undefined) end = next - inflator.strm.avail_in
      pos = next
    }
    expect(inflator.result!.length).toBe(size)
    objects.push(Buffer.from(inflator.result!))
    ends.push(end)
    at = end
  }
  expect(at).toBe(pack.length - 20)
  return {objects, ends}
}

describe('pako-zlib against pako 1.0.11', () => {
  it('inflates every loose object git wrote to the same bytes', () => {
    expect(loose.length).toBeGreaterThan(100)
    for (const file of loose) {
      const ours = inflate(file)
      expect(ours).toBeInstanceOf(Uint8Array)
      expect(Buffer.from(ours).equals(Buffer.from(pako.inflate(file)))).toBe(true)
    }
  })

  it('deflates to a zlib stream pako inflates back to the same bytes', () => {
    // Not always pako's own bytes: Node's zlib matches differently on some inputs. git names an
    // object by its inflated bytes, so any valid stream of them is the same object.
    const inputs = [...loose.slice(0, 40).map((f) => Buffer.from(pako.inflate(f))), randomBytes(100_000), Buffer.alloc(0), Buffer.alloc(300_000, 7)]
    for (const input of inputs) {
      const ours = deflate(input)
      expect(ours).toBeInstanceOf(Uint8Array)
      expect(Buffer.from(pako.inflate(ours)).equals(input)).toBe(true)
    }
  })

  for (const chunkSize of [1021, 16_384, Number.MAX_SAFE_INTEGER]) {
    it(`streams a real pack in ${chunkSize === Number.MAX_SAFE_INTEGER ? 'one piece' : `${chunkSize}-byte chunks`}: same objects, same ends`, () => {
      const ours = walkPack(() => new Inflate(), chunkSize)
      const theirs = walkPack(() => new pako.Inflate() as unknown as Inflater, chunkSize)
      expect(ours.ends).toEqual(theirs.ends)
      expect(ours.objects.length).toBe(theirs.objects.length)
      ours.objects.forEach((o, i) => expect(o.equals(theirs.objects[i]!)).toBe(true))
      // Whole streams through inflate() as well.
      const deltas = new Set([6, 7])
      expect(ours.objects.some((_, i) => deltas.has(entryAt(i === 0 ? 12 : ours.ends[i - 1]!).type))).toBe(true)
    })
  }

  describe('when the data is corrupt', () => {
    const good = Buffer.from(deflate(Buffer.from('hello world '.repeat(500))))
    const bad = Buffer.from(good)
    bad[5]! ^= 0xff

    it('inflate throws zlib’s message as a string, as pako does', () => {
      let ours: unknown
      let theirs: unknown
      try {
        inflate(bad)
      } catch (e) {
        ours = e
      }
      try {
        pako.inflate(bad)
      } catch (e) {
        theirs = e
      }
      expect(typeof ours).toBe('string')
      expect(ours).toBe(theirs)
    })

    it('Inflate.push reports err and msg as pako does, and refuses further input', () => {
      const ours = new Inflate()
      const theirs = new pako.Inflate() as unknown as Inflater
      expect(ours.push(bad, false)).toBe(theirs.push(bad, false))
      expect(ours.err).toBe(theirs.err)
      expect(ours.err).not.toBe(0)
      expect(ours.msg).toBe(theirs.msg)
      expect(ours.result).toBeUndefined()
      expect(ours.push(good, false)).toBe(false)
    })

    it('an empty input throws a string (pako: "buffer error")', () => {
      expect(() => inflate(Buffer.alloc(0))).toThrow()
      expect(() => pako.inflate(Buffer.alloc(0))).toThrow()
      try {
        inflate(Buffer.alloc(0))
      } catch (e) {
        expect(typeof e).toBe('string')
      }
    })

    it('a truncated stream is refused, where pako 1.0.11 returns the part it could inflate', () => {
      const cut = good.subarray(0, 20)
      expect(() => inflate(cut)).toThrow()
      expect(pako.inflate(cut).length).toBeLessThan(6000)
    })
  })

  it('a stream followed by other bytes: only the stream, and avail_in counts the rest', () => {
    const body = Buffer.from('a'.repeat(10_000))
    const stream = Buffer.from(deflate(body))
    const input = Buffer.concat([stream, Buffer.from('TRAILING')])
    expect(Buffer.from(inflate(input)).equals(body)).toBe(true)
    const ours = new Inflate()
    const theirs = new pako.Inflate() as unknown as Inflater
    ours.push(input, false)
    theirs.push(input, false)
    expect(ours.strm.avail_in).toBe(8)
    expect(theirs.strm.avail_in).toBe(8)
    expect(Buffer.from(ours.result!).equals(Buffer.from(theirs.result!))).toBe(true)
  })
})

describe('isomorphic-git with pako aliased to the shim', () => {
  it('`pako` imported through vite is the shim (vitest.config.ts alias)', async () => {
    const viaVite = (await import('pako' as string)) as {default: typeof shim}
    expect(viaVite.default).toBe(shim)
  })

  it('isomorphic-git’s pako is the shim (a truncated stream throws)', () => {
    const p = pakoOfIsomorphicGit.default ?? pakoOfIsomorphicGit
    const cut = Buffer.from(deflate(Buffer.from('x'.repeat(5000)))).subarray(0, 10)
    expect(() => p.inflate(cut)).toThrow()
  })

  it('indexes a pack native git wrote (indexPack: Inflate over the pack) to an index git verifies, and reads every object', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'airlock-pako-index-'))
    try {
      const packs = join(dir, '.git', 'objects', 'pack')
      const name = readdirSync(packs).find((f) => f.endsWith('.pack'))!
      execFileSync('git', ['clone', '-q', '--bare', '--no-local', dir, join(copy, 'r.git')])
      const gitdir = join(copy, 'r.git')
      const target = join(gitdir, 'objects', 'pack')
      for (const f of readdirSync(target)) rmSync(join(target, f))
      mkdirSync(target, {recursive: true})
      copyFileSync(join(packs, name), join(target, name))
      await git.indexPack({fs, dir: gitdir, gitdir, filepath: `objects/pack/${name}`})
      const idx = join(target, name.replace(/\.pack$/, '.idx'))
      expect(readFileSync(idx).length).toBeGreaterThan(0)
      const verified = execFileSync('git', ['verify-pack', '-v', idx]).toString()
      expect(verified).toMatch(/: ok\n$/)
      const oids = sh(gitdir, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname)').trim().split('\n')
      expect(oids.length).toBeGreaterThan(100)
      // Native git's bytes of every object, from one `git cat-file --batch`.
      const batch = execFileSync('git', ['cat-file', '--batch'], {cwd: gitdir, input: `${oids.join('\n')}\n`, maxBuffer: 1 << 28})
      let at = 0
      for (const oid of oids) {
        const nl = batch.indexOf(10, at)
        const size = Number(batch.toString('utf8', at, nl).split(' ')[2])
        const native = batch.subarray(nl + 1, nl + 1 + size)
        at = nl + 1 + size + 1
        const {object} = await git.readObject({fs, dir: gitdir, gitdir, oid, format: 'content'})
        expect(Buffer.from(object as Uint8Array).equals(native)).toBe(true)
      }
    } finally {
      rmSync(copy, {recursive: true, force: true})
    }
  })
})
