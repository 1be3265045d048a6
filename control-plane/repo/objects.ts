/**
 * git's object database, read as git reads it: loose objects (zlib, checked against their id),
 * and packfiles through their version-2 index, one entry at a time with positional reads — the
 * pack is never read whole into memory — inflated by node:zlib, deltas applied here, with a
 * bounded cache of delta bases (git's delta_base_cache) so a long delta chain is not inflated
 * again for every object built on it. Memory is the indexes (28 bytes an object) and the base
 * cache (DELTA_BASE_CACHE_BYTES); nothing grows with the history read.
 *
 * What it cannot read (an index of version 1, an object added since the listing) it reports as
 * absent, and the repository falls back to isomorphic-git for that object.
 */
import {createHash} from 'node:crypto'
import {closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync} from 'node:fs'
import {join} from 'node:path'
import {inflateSync} from 'node:zlib'
import {Lru} from '../lru.js'

export interface RawObject {
  type: 'commit' | 'tree' | 'blob' | 'tag'
  object: Buffer
}

const TYPES = [undefined, 'commit', 'tree', 'blob', 'tag'] as const
const OFS_DELTA = 6
const REF_DELTA = 7
/** Bytes of inflated delta bases kept (git's core.deltaBaseCacheLimit is 96 MiB; airlock stays small). */
const DELTA_BASE_CACHE_BYTES = 8 << 20
/** Bytes read at once from a pack when an entry is not in the bytes read before (Pack.span). */
const READ_WINDOW_BYTES = 64 * 1024
/** Largest object inflated (a delta's result is checked against it too). */
export const MAX_OBJECT_BYTES = 512 << 20
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904'

class BadPack extends Error {}

interface PackEntry {
  offset: number
  type: number
  /** Inflated size (of the delta's instructions, for a delta). */
  size: number
  /** Where the compressed data starts, and where the entry ends. */
  dataAt: number
  end: number
  baseOffset?: number
  baseOid?: string
}
/** Reference deltas resolved one inside another (a cycle of them is a damaged pack). */
const MAX_REF_DEPTH = 64

/** One packfile and its version-2 index. */
class Pack {
  private fd: number | null = null
  private readonly count: number
  private readonly namesAt = 8 + 256 * 4
  private readonly offsetsAt: number
  private readonly largeAt: number
  /** Entry offsets in pack order, to find where an entry's compressed data ends. */
  private sorted: Float64Array | null = null
  private size = 0
  /** The bytes last read ahead (span), and where in the pack they start. */
  private window: Buffer | null = null
  private windowAt = 0

  constructor(
    readonly packPath: string,
    private readonly idx: Buffer,
  ) {
    if (idx.length < 8 + 256 * 4 || idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) throw new BadPack(`${packPath}: not a version-2 pack index`)
    this.count = idx.readUInt32BE(8 + 255 * 4)
    this.offsetsAt = this.namesAt + this.count * 24
    this.largeAt = this.offsetsAt + this.count * 4
    if (idx.length < this.largeAt + 40) throw new BadPack(`${packPath}: truncated pack index`)
  }

  /** The offset of `oid` in the pack, or -1 when this pack does not hold it. */
  find(oid: Buffer): number {
    const first = oid[0]!
    let lo = first === 0 ? 0 : this.idx.readUInt32BE(8 + (first - 1) * 4)
    let hi = this.idx.readUInt32BE(8 + first * 4)
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const cmp = this.idx.compare(oid, 0, 20, this.namesAt + mid * 20, this.namesAt + mid * 20 + 20)
      if (cmp === 0) return this.offsetOf(mid)
      if (cmp < 0) lo = mid + 1
      else hi = mid
    }
    return -1
  }

  private offsetOf(i: number): number {
    const small = this.idx.readUInt32BE(this.offsetsAt + i * 4)
    if (!(small & 0x80000000)) return small
    const at = this.largeAt + (small & 0x7fffffff) * 8
    return this.idx.readUInt32BE(at) * 2 ** 32 + this.idx.readUInt32BE(at + 4)
  }

  private open(): number {
    if (this.fd === null) {
      this.fd = openSync(this.packPath, 'r')
      this.size = fstatSync(this.fd).size
      const head = this.read(0, 12)
      if (head.toString('latin1', 0, 4) !== 'PACK' || head.readUInt32BE(8) !== this.count) throw new BadPack(`${this.packPath}: does not match its index`)
    }
    return this.fd
  }

  /** Where the entry at `offset` ends: the next entry's offset, or the pack's checksum. */
  private end(offset: number): number {
    if (!this.sorted) {
      const all = new Float64Array(this.count)
      for (let i = 0; i < this.count; i++) all[i] = this.offsetOf(i)
      this.sorted = all.sort()
    }
    let lo = 0
    let hi = this.count
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.sorted[mid]! <= offset) lo = mid + 1
      else hi = mid
    }
    return lo < this.count ? this.sorted[lo]! : this.size - 20
  }

  /**
   * The bytes from `from` to `to`: served from the last window read when they lie in it, else
   * read with what follows (up to READ_WINDOW_BYTES), as entries a walk reads one after the other
   * (commits, a tree's blobs) sit side by side in a pack. One window per pack: memory stays bounded.
   */
  private span(from: number, to: number): Buffer {
    const w = this.window
    if (w !== null && from >= this.windowAt && to <= this.windowAt + w.length) return w.subarray(from - this.windowAt, to - this.windowAt)
    const length = to - from
    if (length >= READ_WINDOW_BYTES) return this.read(from, length)
    this.window = this.read(from, Math.max(length, Math.min(READ_WINDOW_BYTES, this.size - 20 - from)))
    this.windowAt = from
    return this.window.subarray(0, length)
  }

  read(at: number, length: number): Buffer {
    const fd = this.fd ?? this.open()
    const buf = Buffer.allocUnsafe(length)
    let n = 0
    while (n < length) {
      const got = readSync(fd, buf, n, length - n, at + n)
      if (got === 0) throw new BadPack(`${this.packPath}: truncated at ${at + n}`)
      n += got
    }
    return buf
  }

  /**
   * The header of the entry at `offset`: its type, size, base (for a delta) and where its
   * compressed data lies. Nothing is inflated: a delta chain is walked by headers, and each delta
   * is inflated only when it is applied, so memory is one delta and its base, not the chain.
   */
  header(offset: number): PackEntry {
    this.open()
    const end = this.end(offset)
    if (end <= offset || end > this.size - 20) throw new BadPack(`${this.packPath}: bad entry offset ${offset}`)
    // The longest header: a 10-byte size, then a 20-byte base id or a 10-byte base distance.
    const raw = this.span(offset, Math.min(end, offset + 40))
    let p = 0
    let c = raw[p++]!
    const type = (c >> 4) & 7
    let size = c & 15
    let shift = 4
    while (c & 0x80 && p < raw.length) {
      c = raw[p++]!
      size += (c & 0x7f) * 2 ** shift
      shift += 7
    }
    if (size > MAX_OBJECT_BYTES) throw new BadPack(`${this.packPath}: entry at ${offset} is too large`)
    const entry: PackEntry = {offset, type, size, dataAt: 0, end}
    if (type === OFS_DELTA) {
      c = raw[p++]!
      let back = c & 0x7f
      while (c & 0x80 && p < raw.length) {
        c = raw[p++]!
        back = (back + 1) * 128 + (c & 0x7f)
      }
      entry.baseOffset = offset - back
      if (entry.baseOffset < 12 || entry.baseOffset >= offset) throw new BadPack(`${this.packPath}: bad delta base at ${offset}`)
    } else if (type === REF_DELTA) {
      entry.baseOid = raw.toString('hex', p, p + 20)
      p += 20
    } else if (!TYPES[type]) throw new BadPack(`${this.packPath}: entry at ${offset} has type ${type}`)
    if (p >= raw.length) throw new BadPack(`${this.packPath}: entry at ${offset} has a truncated header`)
    entry.dataAt = offset + p
    return entry
  }

  /** An entry's inflated data (a delta's instructions for a delta): exactly its size, or an error. */
  inflate(e: PackEntry): Buffer {
    const data = inflateSync(this.span(e.dataAt, e.end), {maxOutputLength: Math.max(e.size, 1)})
    if (data.length !== e.size) throw new BadPack(`${this.packPath}: entry at ${e.offset} inflates to ${data.length} bytes, not ${e.size}`)
    return data
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
    this.window = null
  }
}

/** The id git gives an object: the SHA-1 of its type, size and bytes. */
export function objectId(o: {type: string; object: Buffer}): string {
  return createHash('sha1').update(`${o.type} ${o.object.length}\0`).update(o.object).digest('hex')
}

/** A delta's variable-length size header. */
function deltaSize(d: Buffer, at: {p: number}): number {
  let size = 0
  let shift = 0
  let c
  do {
    c = d[at.p++]!
    size += (c & 0x7f) * 2 ** shift
    shift += 7
  } while (c & 0x80)
  return size
}

/** git's patch_delta: copy and insert instructions over `base`. */
export function applyDelta(base: Buffer, delta: Buffer): Buffer {
  const at = {p: 0}
  if (deltaSize(delta, at) !== base.length) throw new BadPack('a delta does not match its base')
  const size = deltaSize(delta, at)
  if (size > MAX_OBJECT_BYTES) throw new BadPack('a delta result is too large')
  const out = Buffer.allocUnsafe(size)
  let o = 0
  let p = at.p
  while (p < delta.length) {
    const op = delta[p++]!
    if (op & 0x80) {
      let off = 0
      let len = 0
      if (op & 1) off |= delta[p++]!
      if (op & 2) off |= delta[p++]! << 8
      if (op & 4) off |= delta[p++]! << 16
      if (op & 8) off += delta[p++]! * 2 ** 24
      if (op & 16) len |= delta[p++]!
      if (op & 32) len |= delta[p++]! << 8
      if (op & 64) len |= delta[p++]! << 16
      if (len === 0) len = 0x10000
      if (off + len > base.length || o + len > size) throw new BadPack('a delta copies out of bounds')
      base.copy(out, o, off, off + len)
      o += len
    } else if (op > 0) {
      if (p + op > delta.length || o + op > size) throw new BadPack('a delta inserts out of bounds')
      delta.copy(out, o, p, p + op)
      o += op
      p += op
    } else throw new BadPack('a delta holds a reserved instruction')
  }
  // A copy instruction cut off at the end read bytes past the delta (git: "delta replay has gone wild").
  if (p !== delta.length) throw new BadPack('a delta ends inside an instruction')
  if (o !== size) throw new BadPack('a delta result has the wrong size')
  return out
}

/** The object database of one git dir. */
export class ObjectStore {
  private packs: Pack[] | null = null
  private readonly bases = new Lru<string, RawObject>(DELTA_BASE_CACHE_BYTES, (o) => o.object.length)
  /** Loose object names by fan-out folder, listed once until refresh(). */
  private readonly loose = new Map<string, Set<string>>()
  private refDepth = 0

  constructor(private readonly gitdir: string) {}

  private listPacks(): Pack[] {
    if (!this.packs) {
      const dir = join(this.gitdir, 'objects', 'pack')
      let names: string[] = []
      try {
        names = readdirSync(dir).filter((n) => n.endsWith('.idx'))
      } catch {
        names = []
      }
      this.packs = []
      for (const name of names) {
        try {
          this.packs.push(new Pack(join(dir, `${name.slice(0, -4)}.pack`), readFileSync(join(dir, name))))
        } catch {
          // An index this reader does not know (version 1), or one being written: the fallback reads it.
        }
      }
    }
    return this.packs
  }

  /** Forgets the pack listing (another process may have added or repacked objects). */
  refresh(): void {
    for (const p of this.packs ?? []) p.close()
    this.packs = null
    this.loose.clear()
  }

  /**
   * The object `oid` (40 lowercase hex), or null when neither a loose object nor a listed pack
   * holds it. A damaged object throws.
   */
  read(oid: string): RawObject | null {
    if (oid === EMPTY_TREE) return {type: 'tree', object: Buffer.alloc(0)}
    const loose = this.readLoose(oid)
    if (loose) return loose
    const key = Buffer.from(oid, 'hex')
    for (const pack of this.listPacks()) {
      const offset = pack.find(key)
      if (offset >= 0) {
        // A pack's index is a claim too (a local clone copies it as the source wrote it): what
        // an entry holds is checked against the id it was asked for, as a loose object is.
        const found = this.readPacked(pack, offset)
        if (objectId(found) !== oid) throw new BadPack(`${pack.packPath}: the entry its index gives for ${oid} is another object`)
        return found
      }
    }
    return null
  }

  private readLoose(oid: string): RawObject | null {
    // One listing per fan-out folder, not a failed open per object of a packed repository.
    const folder = oid.slice(0, 2)
    let names = this.loose.get(folder)
    if (!names) {
      try {
        names = new Set(readdirSync(join(this.gitdir, 'objects', folder)))
      } catch {
        names = new Set()
      }
      this.loose.set(folder, names)
    }
    if (!names.has(oid.slice(2))) return null
    let deflated: Buffer
    try {
      deflated = readFileSync(join(this.gitdir, 'objects', oid.slice(0, 2), oid.slice(2)))
    } catch {
      return null
    }
    const wrapped = inflateSync(deflated, {maxOutputLength: MAX_OBJECT_BYTES + 64})
    // A loose object is checked against its name: a file is what it claims.
    if (createHash('sha1').update(wrapped).digest('hex') !== oid) throw new BadPack(`loose object ${oid} does not match its id`)
    const nul = wrapped.indexOf(0)
    const [type, size] = wrapped.toString('latin1', 0, nul).split(' ')
    const object = wrapped.subarray(nul + 1)
    if (!TYPES.includes(type as RawObject['type']) || Number(size) !== object.length) throw new BadPack(`loose object ${oid} has a malformed header`)
    return {type: type as RawObject['type'], object}
  }

  /** An entry of a pack, its delta chain resolved base first (bases from the cache where they are). */
  private readPacked(pack: Pack, offset: number): RawObject {
    const chain: PackEntry[] = []
    const key = (at: number) => `${pack.packPath}\0${at}`
    let at = offset
    let base: RawObject | undefined
    for (;;) {
      if (chain.length > 10_000) throw new BadPack(`${pack.packPath}: a delta chain too long at ${offset}`)
      base = this.bases.get(key(at))
      if (base) break
      const e = pack.header(at)
      if (e.baseOffset !== undefined) {
        chain.push(e)
        at = e.baseOffset
        continue
      }
      if (e.baseOid !== undefined) {
        chain.push(e)
        if (this.refDepth >= MAX_REF_DEPTH) throw new BadPack(`${pack.packPath}: reference deltas nested too deep at ${offset}`)
        this.refDepth++
        let found: RawObject | null
        try {
          found = this.read(e.baseOid)
        } finally {
          this.refDepth--
        }
        if (!found) throw new BadPack(`${pack.packPath}: delta base ${e.baseOid} is missing`)
        base = found
        break
      }
      base = {type: TYPES[e.type]!, object: pack.inflate(e)}
      if (chain.length > 0) this.keepBase(key(at), base)
      break
    }
    let object = base.object
    for (let i = chain.length - 1; i >= 0; i--) {
      object = applyDelta(object, pack.inflate(chain[i]!))
      // Intermediate results are the bases of the rest of the chain (and of its siblings).
      if (i > 0) this.keepBase(key(chain[i]!.offset), {type: base.type, object})
    }
    return {type: base.type, object}
  }

  /** A delta base kept for the rest of the chain; one over a quarter of the cache is not kept. */
  private keepBase(k: string, base: RawObject): void {
    if (base.object.length <= DELTA_BASE_CACHE_BYTES / 4) this.bases.set(k, base)
  }
}

export {BadPack}
