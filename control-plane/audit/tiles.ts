/**
 * The audit log's Merkle tree kept on disk, so an inclusion or consistency proof at ten million
 * entries costs a few dozen small reads instead of a scan of the log.
 *
 * Layout, under `<audit dir>/tiles/`, for a height h (2 by default; 8 would make each level's
 * file the concatenation of C2SP tlog-tiles' 256-hash tiles):
 *
 * ```
 * <L>.hashes   tree level h·L: the root of every complete subtree of 2^(h·L) leaves, in order, 32 bytes each
 *              (0.hashes holds the leaf hashes; 1.hashes one hash per 2^h leaves; …)
 * offsets      the byte offset in events.jsonl of every 256th entry (0, 256, 512, …), 8 bytes big-endian each
 * state.json   {version, height, size, bytes, last}: entries covered, bytes of events.jsonl read, last fingerprint
 * lock         held while the tiles are brought up to the log and read (holder pid inside)
 * ```
 *
 * A node at tree level h·L + r is folded from 2^r consecutive hashes of `<L>.hashes` (one read);
 * a subtree that is not complete (the right edge) from at most log2(n) complete ones. Appending
 * costs a leaf hash and, amortized, one node hash an entry.
 *
 * The tiles are a cache, never evidence: they are rebuilt from events.jsonl when missing, corrupt
 * or not matching the log, and nothing is accepted because the tiles say so — a proof is made only
 * once the root they give equals a signed checkpoint's (prove.ts), and checked only against one.
 * They are written without fsync: a crash that loses their tail is found by the checks in
 * `updateTiles` or, at the latest, by that root comparison, and costs a rebuild.
 */
import {hash} from 'node:crypto'
import {closeSync, constants, fstatSync, ftruncateSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, truncateSync, writeFileSync, writeSync} from 'node:fs'
import type {FileHandle} from 'node:fs/promises'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {tempName} from '../repo/files.js'
import {parseLine, type LogEntry} from './entry.js'
import {consistencyPath, emptyRoot, HASH_SIZE, inclusionPath, leafHash} from './merkle.js'
import {AUDIT_FILES, DEFAULT_READ_LIMITS, lineBatches, openEvents, type ReadLimits} from './store.js'

/** Tree levels per tile level: a tile holds 256 hashes, as in C2SP tlog-tiles. */
/** Tree levels per stored level by default (see TileTree); recorded in state.json, a change rebuilds. */
export const DEFAULT_TILE_HEIGHT = 2
export const TILES_FOLDER = 'tiles'
/** Every 256th entry's byte offset is recorded: reading entry i skips at most 255 lines. */
const OFFSET_STRIDE = 256

/** How the tiles read the log (log.ts's reader limits) and wait for their lock; one object, overridable by callers. */
export interface TileLimits extends ReadLimits {
  /** How long to wait for another process holding the tiles' lock (AUDIT_LOCKED after). */
  lockWaitMs: number
}

export const DEFAULT_TILE_LIMITS: Readonly<TileLimits> = Object.freeze({...DEFAULT_READ_LIMITS, lockWaitMs: 30_000})

/** SHA-256(prefix ‖ data…) through one reused buffer: no allocation but the digest's. */
const scratch = Buffer.alloc(1 + 2 * HASH_SIZE)
function node(left: Uint8Array, right: Uint8Array): Buffer {
  scratch[0] = 0x01
  scratch.set(left, 1)
  scratch.set(right, 1 + HASH_SIZE)
  return hash('sha256', scratch, 'buffer')
}

/** RFC 6962's leaf hash SHA-256(0x00 ‖ fingerprint) of a 32-byte fingerprint, as merkle.ts's leafHash. */
export function leafOfFingerprint(fingerprint: Uint8Array): Buffer {
  scratch[0] = 0x00
  scratch.set(fingerprint, 1)
  return hash('sha256', scratch.subarray(0, 1 + HASH_SIZE), 'buffer')
}

/** Folds `count` (a power of two) consecutive hashes of a flat buffer into their perfect subtree's root, in place. */
function fold(buf: Buffer, count: number): Buffer {
  for (let n = count; n > 1; n /= 2) {
    for (let i = 0; i < n / 2; i++) node(buf.subarray(2 * i * HASH_SIZE, (2 * i + 1) * HASH_SIZE), buf.subarray((2 * i + 1) * HASH_SIZE, (2 * i + 2) * HASH_SIZE)).copy(buf, i * HASH_SIZE)
  }
  return Buffer.from(buf.subarray(0, HASH_SIZE))
}

/** Why the cache cannot be used as it is; `updateTiles` rebuilds it, nothing else sees this. */
class StaleTiles extends Error {}

/** Hashes buffered per stored level before they are written. */
const WRITE_BATCH = 8192

/**
 * The tree's hashes on disk, one file per stored level: `<L>.hashes` holds tree level L·height,
 * the root of every complete subtree of 2^(L·height) leaves in order, 32 bytes each. A node at
 * tree level L·height + r is folded from 2^r consecutive hashes of `<L>.hashes` (one read).
 *
 * The height trades space for proof time: 8 (C2SP tlog-tiles' 256-hash tiles) stores 32.1 bytes
 * an entry but folds up to 255 hashes a stored level per proof node; 1 stores every level (64
 * bytes an entry) and folds none; 2, the default, stores 42.7 and folds at most 1.
 *
 * Appended hashes are kept in memory until `flush` (or a read) writes them, each at its place.
 * Reads and writes are synchronous and positional on open descriptors.
 */
export class TileTree {
  readonly #folder: string
  readonly height: number
  readonly #width: number
  #size: number
  readonly #fds: number[] = []
  /** Per stored level: the hashes of its last, incomplete group of `width` (to fold when it fills), and how many. */
  readonly #pending: Buffer[] = []
  readonly #pendingCount: number[] = []
  /** Per stored level: hashes appended and not yet written, how many, and how many the file held before them. */
  readonly #unwritten: (Buffer | null)[] = []
  readonly #unwrittenCount: number[] = []
  readonly #written: number[] = []

  private constructor(folder: string, size: number, height: number) {
    if (!Number.isInteger(height) || height < 1 || height > 8) throw new AirlockError('INVALID_INPUT', `tile height ${height} is not from 1 to 8`, {height})
    this.#folder = folder
    this.#size = size
    this.height = height
    this.#width = 2 ** height
  }

  /**
   * The tiles of a tree of `size` leaves in `folder`. Each level's file must hold at least its
   * hashes (more is the tail of an interrupted update, overwritten by the next one); fewer is a
   * stale cache (StaleTiles, internal: `withTiles` rebuilds).
   */
  static open(folder: string, size: number, height = DEFAULT_TILE_HEIGHT): TileTree {
    const tree = new TileTree(folder, size, height)
    try {
      for (let level = 0; level === 0 || tree.#countAt(level - 1) >= tree.#width; level++) {
        const count = tree.#countAt(level)
        const fd = tree.#fd(level)
        if (fstatSync(fd).size < count * HASH_SIZE) throw new StaleTiles(`${level}.hashes holds fewer than the ${count} hashes of ${size} entries`)
        tree.#addLevel(count)
        const partial = count % tree.#width
        if (partial > 0) tree.#readInto(level, count - partial, partial, tree.#pending[level]!)
        tree.#pendingCount[level] = partial
      }
    } catch (error) {
      tree.close()
      throw error
    }
    return tree
  }

  /** Entries (leaves) the tree holds, flushed or not. */
  get size(): number {
    return this.#size
  }

  /** Appends one leaf hash; each group of `width` it completes is folded into the stored level above. */
  append(leaf: Uint8Array): void {
    if (leaf.length !== HASH_SIZE) throw new AirlockError('INVALID_INPUT', `a leaf hash has ${HASH_SIZE} bytes, not ${leaf.length}`)
    let h: Uint8Array = leaf
    for (let level = 0; ; level++) {
      if (level === this.#pending.length) this.#addLevel(0)
      if (this.#unwrittenCount[level] === WRITE_BATCH) this.#flushLevel(level)
      // Allocated at the first append: a tree opened to be read (every proof) writes nothing.
      const out = (this.#unwritten[level] ??= Buffer.allocUnsafe(WRITE_BATCH * HASH_SIZE))
      out.set(h, this.#unwrittenCount[level]!++ * HASH_SIZE)
      const at = this.#pendingCount[level]!++
      this.#pending[level]!.set(h, at * HASH_SIZE)
      if (at + 1 < this.#width) break
      h = fold(this.#pending[level]!, this.#width)
      this.#pendingCount[level] = 0
    }
    this.#size++
  }

  /** Appends the leaf of a fingerprint (SHA-256(0x00 ‖ fingerprint)). */
  appendFingerprint(fingerprint: Uint8Array): void {
    this.append(leafOfFingerprint(fingerprint))
  }

  /** Writes the appended hashes to their level files, each at its place (never O_APPEND: a rerun rewrites the same bytes). */
  flush(): void {
    for (let level = 0; level < this.#unwritten.length; level++) this.#flushLevel(level)
  }

  /** The root of the perfect subtree of 2^height leaves starting at leaf index·2^height (which must be complete). */
  node(height: number, index: number): Uint8Array {
    const width = 2 ** height
    if (!Number.isSafeInteger(index) || index < 0 || (index + 1) * width > this.#size) {
      throw new AirlockError('INVALID_INPUT', `no complete subtree of ${width} leaves at ${index * width} in a tree of ${this.#size}`, {height, index, size: this.#size})
    }
    this.flush()
    const level = Math.floor(height / this.height)
    const below = 2 ** (height - level * this.height)
    const buf = Buffer.alloc(below * HASH_SIZE)
    this.#readInto(level, index * below, below, buf)
    return below === 1 ? buf : fold(buf, below)
  }

  /** MTH(D[start:end]): complete subtrees read, the right edge folded from them (RFC 6962 §2.1 splits). */
  subtree(start: number, end: number): Uint8Array {
    const n = end - start
    if (n <= 0) throw new AirlockError('INVALID_INPUT', `empty leaf range ${start}..${end}`, {start, end})
    let k = 1
    let height = 0
    while (k * 2 <= n) {
      k *= 2
      height++
    }
    // A perfect, aligned range is one stored node; otherwise split at the largest power of two below n.
    if (k === n && start % k === 0) return this.node(height, start / k)
    if (k === n) k /= 2
    return node(this.subtree(start, start + k), this.subtree(start + k, end))
  }

  /** The tree head of the first `size` leaves. */
  root(size: number): Uint8Array {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.#size) throw new AirlockError('INVALID_INPUT', `no tree of size ${size} in tiles of ${this.#size} entries`, {size, tiles: this.#size})
    return size === 0 ? emptyRoot() : this.subtree(0, size)
  }

  close(): void {
    for (const fd of this.#fds) if (fd !== undefined) closeSync(fd)
    this.#fds.length = 0
  }

  /** Hashes stored at `level` for the tree's size: its complete subtrees of 2^(level·height) leaves. */
  #countAt(level: number): number {
    return Math.floor(this.#size / 2 ** (level * this.height))
  }

  #addLevel(written: number): void {
    this.#pending.push(Buffer.alloc(this.#width * HASH_SIZE))
    this.#pendingCount.push(0)
    this.#unwritten.push(null)
    this.#unwrittenCount.push(0)
    this.#written.push(written)
  }

  #flushLevel(level: number): void {
    const n = this.#unwrittenCount[level]!
    if (n === 0) return
    writeAt(this.#fd(level), this.#unwritten[level]!.subarray(0, n * HASH_SIZE), this.#written[level]! * HASH_SIZE)
    this.#written[level]! += n
    this.#unwrittenCount[level] = 0
  }

  #fd(level: number): number {
    let fd = this.#fds[level]
    if (fd === undefined) {
      fd = openSync(join(this.#folder, `${level}.hashes`), constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
      this.#fds[level] = fd
    }
    return fd
  }

  #readInto(level: number, from: number, count: number, buf: Buffer): void {
    const fd = this.#fd(level)
    const bytes = count * HASH_SIZE
    for (let done = 0; done < bytes; ) {
      const n = readSync(fd, buf, done, bytes - done, from * HASH_SIZE + done)
      if (n === 0) throw new StaleTiles(`${level}.hashes ends before hash ${from + count}`)
      done += n
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Proofs from the tiles: RFC 6962's PATH and SUBPROOF (as merkle.ts has them), each subtree root
// read from the tiles instead of recomputed from every leaf.

/** The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1). */
export function inclusionFromTiles(tree: TileTree, index: number, size: number): Uint8Array[] {
  checkSizes(tree, size)
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new AirlockError('INVALID_INPUT', `leaf index ${index} is not in a tree of size ${size}`, {index, size})
  return inclusionPath((start, end) => tree.subtree(start, end), index, size)
}

/** The consistency proof from the tree of `oldSize` leaves to that of `newSize` (RFC 9162 §2.1.4.1). */
export function consistencyFromTiles(tree: TileTree, oldSize: number, newSize: number): Uint8Array[] {
  checkSizes(tree, newSize)
  if (!Number.isSafeInteger(oldSize) || oldSize <= 0 || oldSize > newSize) {
    throw new AirlockError('INVALID_INPUT', `no consistency proof from size ${oldSize} to ${newSize} (0 < old ≤ new)`, {oldSize, newSize})
  }
  return consistencyPath((start, end) => tree.subtree(start, end), oldSize, newSize)
}

function checkSizes(tree: TileTree, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > tree.size) throw new AirlockError('INVALID_INPUT', `no tree of size ${size} in tiles of ${tree.size} entries`, {size, tiles: tree.size})
}

// ---------------------------------------------------------------------------------------------
// The cache kept up to the log

interface TileState {
  version: 1
  /** Tree levels per stored level (TileTree). */
  height: number
  /** Entries the tiles cover. */
  size: number
  /** Bytes of events.jsonl read: the end of entry size−1's line. */
  bytes: number
  /** Entry size−1's fingerprint (hex), to tell a log replaced under the cache; null when size is 0. */
  last: string | null
}

const EMPTY_STATE: Readonly<TileState> = Object.freeze({version: 1, height: DEFAULT_TILE_HEIGHT, size: 0, bytes: 0, last: null})

export interface TilesUpdate {
  /** Entries the tiles cover now. */
  size: number
  /** Of which read from the log by this update. */
  added: number
  /** Why the cache was rebuilt from the whole log, or null when it was only brought up to date. */
  rebuilt: string | null
}

/** Open tiles, up to date with the log, under their lock. */
export interface TilesSession {
  readonly tree: TileTree
  readonly update: TilesUpdate
  /** Entry `index` as log.ts reads it, from the nearest recorded offset (at most 255 lines skipped). */
  entry(index: number): Promise<LogEntry>
  /** Throws the tiles away and builds them again from the whole log (e.g. after a root that does not match a checkpoint). */
  rebuild(reason: string): Promise<TilesUpdate>
}

/**
 * Brings the tiles of audit folder `dir` up to its log, reading only the entries added since the
 * last update (the whole log when the cache is missing or does not match it). The log's appender
 * may call it after a checkpoint; proofs call it anyway.
 */
export async function updateTiles(dir: string, limits: Partial<TileLimits> = {}): Promise<TilesUpdate> {
  return withTiles(dir, (s) => s.update, limits)
}

/** Runs `use` on the tiles of `dir`, brought up to the log, under the tiles' lock (released after). */
export async function withTiles<T>(dir: string, use: (session: TilesSession) => T | Promise<T>, limits: Partial<TileLimits> = {}): Promise<T> {
  const lim = {...DEFAULT_TILE_LIMITS, ...limits}
  const folder = join(dir, TILES_FOLDER)
  const path = join(dir, AUDIT_FILES.events)
  const events = await openEvents(dir)
  if (!events) throw new AirlockError('AUDIT_UNAVAILABLE', `${path}: no audit log here (no such file)`, {file: path})
  let release: (() => void) | undefined
  let cache: Cache | undefined
  try {
    mkdirSync(folder, {recursive: true, mode: 0o700})
    release = await lock(folder, lim)
    cache = await Cache.open(folder, {handle: events, path}, lim)
    const c = cache
    let update = await c.update(c.staleReason)
    const session: TilesSession = {
      get tree() {
        return c.tree
      },
      get update() {
        return update
      },
      // An offset that leads elsewhere (the log rewritten, e.g. pruned, to the same length) rebuilds the cache once.
      entry: async (index) => {
        try {
          return await c.entry(index)
        } catch (error) {
          if (!(error instanceof StaleTiles)) throw error
          c.reset()
          update = await c.update(error.message)
          return c.entry(index)
        }
      },
      rebuild: async (reason) => {
        c.reset()
        update = await c.update(reason)
        return update
      },
    }
    return await use(session)
  } finally {
    cache?.close()
    release?.()
    await events.close()
  }
}

interface EventsFile {
  handle: FileHandle
  path: string
}

/** The state, the tree and the offsets file, with the checks that decide whether they can be kept. */
class Cache {
  state: TileState
  tree: TileTree
  readonly offsets: number
  /** Why the stored cache was thrown away on opening, if it was. */
  staleReason: string | null = null

  private constructor(
    readonly folder: string,
    readonly events: EventsFile,
    readonly limits: TileLimits,
  ) {
    this.offsets = openSync(join(folder, OFFSETS_FILE), constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
    this.state = EMPTY_STATE
    this.tree = TileTree.open(folder, 0)
  }

  /** The cache as stored when it still describes the log, else an empty one that knows why. */
  static async open(folder: string, events: EventsFile, limits: TileLimits): Promise<Cache> {
    const cache = new Cache(folder, events, limits)
    try {
      const state = readState(folder)
      if (typeof state === 'string') throw new StaleTiles(state)
      if (state.height !== DEFAULT_TILE_HEIGHT) throw new StaleTiles(`the tiles have height ${state.height}, not ${DEFAULT_TILE_HEIGHT}`)
      cache.state = state
      cache.tree.close()
      cache.tree = TileTree.open(folder, state.size, state.height)
      await cache.check()
    } catch (error) {
      if (!(error instanceof StaleTiles)) {
        cache.close()
        throw error
      }
      cache.reset()
      cache.staleReason = error.message
    }
    return cache
  }

  /** Throws StaleTiles unless the log still holds, where the offsets say, the last entry the tiles were built from. */
  async check(): Promise<void> {
    const {size, bytes, last} = this.state
    if (fstatSync(this.offsets).size < Math.ceil(size / OFFSET_STRIDE) * 8) throw new StaleTiles(`the ${OFFSETS_FILE} file is shorter than its entries need`)
    if ((await this.events.handle.stat()).size < bytes) throw new StaleTiles(`the log is shorter than the ${bytes} bytes the tiles were built from`)
    if (size === 0) return
    let entry: LogEntry
    try {
      entry = await this.entry(size - 1)
    } catch (error) {
      // A line that no longer parses where one did: the log changed under the cache.
      if (error instanceof AirlockError && error.code === 'AUDIT_TAMPERED') throw new StaleTiles(`entry ${size - 1} is not where the tiles recorded it (${error.message})`)
      throw error
    }
    if (entry.offset + entry.line.length + 1 !== bytes) throw new StaleTiles(`entry ${size - 1} does not end at byte ${bytes} of the log`)
    if (entry.fingerprint !== last) throw new StaleTiles(`entry ${size - 1} is not the one the tiles were built from`)
    if (!Buffer.from(this.tree.node(0, size - 1)).equals(leafHash(Buffer.from(last, 'hex')))) throw new StaleTiles(`the tiles' leaf hash of entry ${size - 1} is not its fingerprint's`)
  }

  /**
   * Reads the entries appended to the log since the state (a torn last line is left for later:
   * the appender recovers it), adds them, and saves the state. Each entry's uid must be its
   * position, else AUDIT_TAMPERED naming the line: a tree over a misnumbered log proves nothing.
   */
  async update(rebuilt: string | null): Promise<TilesUpdate> {
    let {size, bytes, last} = this.state
    const before = size
    const offsets: Buffer[] = []
    const lines = lineBatches(this.events.handle, this.events.path, {start: bytes, startLine: size + 1}, this.limits)
    for (let r = await lines.next(); !r.done; r = await lines.next()) {
      for (const raw of r.value) {
        const entry = parseLine(raw.line, raw.lineNumber, raw.offset)
        if (entry.index !== size) {
          throw new AirlockError('AUDIT_TAMPERED', `${this.events.path} line ${raw.lineNumber}: entry ${entry.index} where entry ${size} belongs`, {file: this.events.path, line: raw.lineNumber, index: size})
        }
        if (size % OFFSET_STRIDE === 0) {
          const o = Buffer.alloc(8)
          o.writeBigUInt64BE(BigInt(raw.offset))
          offsets.push(o)
        }
        this.tree.appendFingerprint(Buffer.from(entry.fingerprint, 'hex'))
        size++
        bytes = raw.offset + raw.line.length + 1
        last = entry.fingerprint
      }
    }
    if (size !== before || rebuilt !== null) {
      // Hashes and offsets first, the state last: a crash in between leaves a state that claims less than the files hold.
      this.tree.flush()
      writeAt(this.offsets, Buffer.concat(offsets), Math.ceil(before / OFFSET_STRIDE) * 8)
      this.state = {version: 1, height: this.tree.height, size, bytes, last}
      writeState(this.folder, this.state)
    }
    return {size, added: size - before, rebuilt}
  }

  /** Entry `index` read from the offset of the first entry of its tile. */
  async entry(index: number): Promise<LogEntry> {
    const {size} = this.state
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new AirlockError('INVALID_INPUT', `entry ${index} is not among the log's ${size} entries`, {index, size})
    const first = index - (index % OFFSET_STRIDE)
    const o = Buffer.alloc(8)
    if (readSync(this.offsets, o, 0, 8, (first / OFFSET_STRIDE) * 8) !== 8) throw new StaleTiles(`the ${OFFSETS_FILE} file has no offset for entry ${first}`)
    // Small reads: at most 256 lines are wanted, not a megabyte chunk (a longer line is carried over as usual).
    const lines = lineBatches(this.events.handle, this.events.path, {start: Number(o.readBigUInt64BE()), startLine: first + 1}, {...this.limits, chunkBytes: Math.min(this.limits.chunkBytes, ENTRY_READ_BYTES)})
    let at = first
    for (let r = await lines.next(); !r.done; r = await lines.next()) {
      for (const raw of r.value) {
        if (at === index) {
          const entry = parseLine(Buffer.from(raw.line), raw.lineNumber, raw.offset)
          if (entry.index !== index) throw new StaleTiles(`${this.events.path} line ${raw.lineNumber} is entry ${entry.index}, not ${index}`)
          return entry
        }
        at++
      }
    }
    throw new StaleTiles(`the log ends before entry ${index}`)
  }

  /** Empties the cache, to be built again from the start of the log. */
  reset(): void {
    this.tree.close()
    for (const name of readdirSync(this.folder)) if (/^\d+\.hashes$/.test(name)) truncateSync(join(this.folder, name), 0)
    ftruncateSync(this.offsets, 0)
    rmSync(join(this.folder, STATE_FILE), {force: true})
    this.state = EMPTY_STATE
    this.tree = TileTree.open(this.folder, 0)
  }

  close(): void {
    this.tree.close()
    closeSync(this.offsets)
  }
}

const STATE_FILE = 'state.json'
const OFFSETS_FILE = 'offsets'
/** Bytes read at a time when looking for one entry. */
const ENTRY_READ_BYTES = 64 * 1024
const LOCK_FILE = 'lock'

/** The stored state, or why it cannot be used. */
function readState(folder: string): TileState | string {
  let text: string
  try {
    text = readFileSync(join(folder, STATE_FILE), 'utf8')
  } catch (error) {
    return `no ${STATE_FILE} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return `${STATE_FILE} is not JSON`
  }
  const s = value as Partial<TileState> | null
  const natural = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0
  if (!s || typeof s !== 'object' || s.version !== 1 || !natural(s.height) || !natural(s.size) || !natural(s.bytes) || !(s.last === null || (typeof s.last === 'string' && /^[0-9a-f]{64}$/.test(s.last))) || (s.size === 0) !== (s.last === null) || (s.size === 0 && s.bytes !== 0)) {
    return `${STATE_FILE} is not a tiles state`
  }
  return {version: 1, height: s.height, size: s.size, bytes: s.bytes, last: s.last}
}

/** Written to a temporary file and renamed: a reader sees the old state or the new one. */
function writeState(folder: string, state: TileState): void {
  const path = join(folder, STATE_FILE)
  const tmp = tempName(path)
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    try {
      writeAt(fd, Buffer.from(`${JSON.stringify(state)}\n`), 0)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  } catch (error) {
    rmSync(tmp, {force: true})
    throw error
  }
}

function writeAt(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, position + done)
}

/**
 * The tiles' lock: a file created with its holder's pid inside (linked into place, so it never
 * exists empty). A lock whose holder is no longer running is taken over; a live holder is waited
 * for up to `lockWaitMs`, then AUDIT_LOCKED.
 */
async function lock(folder: string, limits: TileLimits): Promise<() => void> {
  const path = join(folder, LOCK_FILE)
  const mine = `${process.pid}\n`
  const tmp = tempName(path)
  writeFileSync(tmp, mine, {mode: 0o600, flag: 'wx'})
  try {
    const deadline = performance.now() + limits.lockWaitMs
    for (;;) {
      try {
        linkSync(tmp, path)
        return () => {
          if (readText(path) === mine) rmSync(path, {force: true})
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new AirlockError('AUDIT_UNAVAILABLE', `${path}: cannot take the tiles' lock (${(error as NodeJS.ErrnoException).code})`, {file: path})
      }
      const holder = readText(path)
      const pid = holder === null ? null : Number(holder.trim())
      if (pid !== null && !alive(pid)) {
        // Taken over only if it still names the dead holder (another waiter may have just done so).
        if (readText(path) === holder) rmSync(path, {force: true})
        continue
      }
      if (performance.now() > deadline) throw new AirlockError('AUDIT_LOCKED', `${path}: held by process ${holder?.trim() ?? '?'} for more than ${limits.lockWaitMs} ms`, {file: path, holder: pid})
      await new Promise((r) => setTimeout(r, 20))
    }
  } finally {
    rmSync(tmp, {force: true})
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
