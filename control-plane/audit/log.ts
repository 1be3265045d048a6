/**
 * The host's append-only audit log (docs/audit.md): where it lives, opening it, appending.
 *
 * Appends are group-committed: the append() calls of one process that arrive while a batch is
 * being written wait for the next batch, which is one write of complete lines to events.jsonl
 * (O_APPEND) and one fdatasync, under the folder's lock so processes never interleave. Under the
 * lock the writer first catches up with what other processes appended (read from where its state
 * ended), so index and prev are right, and moves a torn tail aside with a log-recovery event.
 *
 * Fail closed: anything that keeps an event from being written durably throws AUDIT_UNAVAILABLE
 * naming the path and the OS reason, and the caller (the pipeline's record step) refuses.
 */
import {createHash, randomBytes} from 'node:crypto'
import {constants} from 'node:fs'
import {link, lstat, open, readdir, readFile, stat, unlink, writeFile, type FileHandle} from 'node:fs/promises'
import {homedir, hostname} from 'node:os'
import {join, resolve} from 'node:path'
import {AirlockError} from '../errors.js'
import type {Signer} from '../crypto/keys.js'
import {makeFolder, tempName, writeFileAtomic} from '../repo/files.js'
import {MerkleLog} from './merkle.js'
import {formatCheckpoint, signNote} from './note.js'
import {Arena, encodeEntryInto, leafOf, parseLine, type AuditEvent} from './entry.js'
import {acquireAuditLock, unavailable, DEFAULT_AUDIT_LOCK, type AuditLockOptions} from './lock.js'
import {AUDIT_FILES, isValidOrigin, lineBatches, RECOVERY_MARKER} from './store.js'
import {readAuditConfig, type AuditConfig} from './config.js'
import {logRecoveryEvent} from './ocsf.js'
import {redactEvent} from './redact.js'

export {serializeEntry, prunedLine, fingerprintOf, parseLine, type AuditEvent, type LogEntry} from './entry.js'
export {readEntries, readOrigin, AUDIT_FILES, RECOVERY_MARKER} from './store.js'
export {checkpointLog} from './checkpoint.js'
export {verifyLog, type AuditVerifyReport, type AuditProblem, type AuditProblemCode, type VerifyLogOptions} from './verify.js'

/** --audit-dir, else AIRLOCK_AUDIT_DIR, else $XDG_STATE_HOME/airlock/audit, else ~/.local/state/airlock/audit. */
export function auditDirFrom(flag: string | undefined, env: NodeJS.ProcessEnv, home: string = homedir()): string {
  if (flag) return resolve(flag)
  if (env.AIRLOCK_AUDIT_DIR) return resolve(env.AIRLOCK_AUDIT_DIR)
  // The XDG base directory specification: a relative XDG_STATE_HOME is invalid and ignored.
  if (env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/')) return join(env.XDG_STATE_HOME, 'airlock', 'audit')
  return join(home, '.local', 'state', 'airlock', 'audit')
}

export interface AutoCheckpoint {
  signer: Signer
  /** Checkpoint after this many new entries (default 1024). */
  every?: number
  /** Checkpoint at the first append this long after the last checkpoint (default 60 s; the last one's file time counts across processes). */
  intervalMs?: number
  /** close() checkpoints whatever is new (default true); false: only when due by `every` or `intervalMs` (one-shot commands). */
  onClose?: boolean
}

export interface AuditLogOptions {
  now?: () => Date
  /** Replaces the default redaction (redact.ts's redactEvent under this log's redaction.key and config.json), e.g. in tests of the store. */
  redact?: (e: AuditEvent) => AuditEvent
  /** The airlock version events written by the log itself (recoveries) carry. */
  toolVersion?: string
  checkpoint?: AutoCheckpoint
  lock?: AuditLockOptions
  /** Save state.json after this many entries since the last save (default 4096; also on close). */
  saveStateEvery?: number
}

/** The Merkle state cache (state.json): never trusted, only a shortcut past re-reading the log. */
interface MerkleState {
  size: number
  /** Bytes of complete lines. */
  bytes: number
  /** Offset of the last line (valid when size > 0). */
  lastOffset: number
  last: string | null
  log: MerkleLog
}

interface Pending {
  event: AuditEvent
  resolve: (r: {index: number; fingerprint: string}) => void
  reject: (e: unknown) => void
}

/** The name a checkpoint of `size` entries is written under. */
export function checkpointName(size: number): string {
  return `${String(size).padStart(20, '0')}.checkpoint`
}

/** The log's origin for this host: a valid C2SP key name. */
export function newOrigin(host: string = hostname()): string {
  return `airlock.audit/${originHostName(host)}/${randomBytes(8).toString('hex')}`
}

/** A host name as an origin holds it (lower case, letters, digits, dots and dashes). */
export function originHostName(host: string = hostname()): string {
  return host.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 63) || 'host'
}

/** The host segment of an origin airlock made (airlock.audit/<host>/<16 hex>); null for any other origin. */
export function hostOfOrigin(origin: string): string | null {
  return /^airlock\.audit\/([^/]+)\/[0-9a-f]{16}$/.exec(origin)?.[1] ?? null
}

export class AuditLog {
  readonly dir: string
  readonly origin: string
  readonly redactionKey: Uint8Array
  #handle: FileHandle
  readonly #opts: AuditLogOptions
  readonly #config: AuditConfig
  readonly #now: () => Date
  #state: MerkleState | null = null
  #queue: Pending[] = []
  #running: Promise<void> | null = null
  #closed = false
  #lastCheckpoint: {size: number; at: number}
  #savedAt = 0

  private constructor(dir: string, origin: string, redactionKey: Uint8Array, handle: FileHandle, opts: AuditLogOptions, lastCheckpoint: {size: number; at: number | null}, config: AuditConfig) {
    this.#config = config
    this.dir = dir
    this.origin = origin
    this.redactionKey = redactionKey
    this.#handle = handle
    this.#opts = opts
    this.#now = opts.now ?? (() => new Date())
    this.#lastCheckpoint = {size: lastCheckpoint.size, at: lastCheckpoint.at ?? this.#now().getTime()}
  }

  /**
   * Opens (creating once) the audit folder: 0700, with `origin` and `redaction.key` made the
   * first time and never overwritten, events.jsonl opened for appending, and the lock taken and
   * released once so an unwritable folder fails here rather than at the first event.
   */
  static async open(dir: string, opts: AuditLogOptions = {}): Promise<AuditLog> {
    const abs = resolve(dir)
    const st = await lstat(abs).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null
      throw unavailable(abs, error)
    })
    if (st && !st.isDirectory()) throw new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${abs} is not a folder`, {path: abs})
    if (!st) await makeFolder(abs, {mode: 0o700, label: abs}).catch((error: unknown) => {
      throw unavailable(abs, error)
    })
    const origin = (await createOnce(join(abs, AUDIT_FILES.origin), () => Buffer.from(`${newOrigin()}\n`))).toString('utf8').replace(/\n$/, '')
    if (!isValidOrigin(origin)) throw new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${join(abs, AUDIT_FILES.origin)} does not hold a valid origin`, {path: join(abs, AUDIT_FILES.origin)})
    const keyPath = join(abs, AUDIT_FILES.redactionKey)
    const redactionKey = await createOnce(keyPath, () => randomBytes(32))
    if (redactionKey.length !== 32) throw new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${keyPath} holds ${redactionKey.length} bytes, not 32`, {path: keyPath})
    const handle = await openEventsForAppend(join(abs, AUDIT_FILES.events))
    try {
      const release = await acquireAuditLock(abs, opts.lock ?? DEFAULT_AUDIT_LOCK)
      await release()
      const log = new AuditLog(abs, origin, new Uint8Array(redactionKey), handle, opts, await lastCheckpointOf(abs), await readAuditConfig(abs))
      return log
    } catch (error) {
      await handle.close()
      throw unavailable(abs, error)
    }
  }

  /** Queues an event; resolves once it is durably in the log (its batch written and fdatasync'd). */
  append(event: AuditEvent): Promise<{index: number; fingerprint: string}> {
    if (this.#closed) return Promise.reject(new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${this.dir} is closed`, {path: this.dir}))
    let redacted: AuditEvent
    try {
      // Redaction before persistence, on by default: secrets and personal data become typed placeholders with a keyed hash.
      redacted = this.#opts.redact ? this.#opts.redact(event) : redactEvent(event, {key: this.redactionKey, ipAddresses: this.#config.redactIpAddresses})
    } catch (error) {
      return Promise.reject(error)
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({event: redacted, resolve, reject})
      this.#kick()
    })
  }

  /** Resolves when every append queued so far is written (or failed). */
  async flush(): Promise<void> {
    while (this.#running) await this.#running
  }

  /** Flushes, makes a last checkpoint when a signer was given, saves the state cache, closes. */
  async close(): Promise<void> {
    if (this.#closed) return
    await this.flush()
    this.#closed = true
    try {
      const state = this.#state
      const auto = this.#opts.checkpoint
      if (state && auto && state.size > this.#lastCheckpoint.size && (auto.onClose !== false || this.#due(state.size))) {
        const release = await acquireAuditLock(this.dir, this.#opts.lock ?? DEFAULT_AUDIT_LOCK)
        try {
          await this.#catchUp()
          await this.#checkpoint()
        } finally {
          await release()
        }
      }
      if (this.#state && this.#savedAt !== this.#state.size) await saveState(this.dir, this.#state)
    } finally {
      await this.#handle.close()
    }
  }

  /** Starts a batch on the next turn, so the appends of this turn go into it together. */
  #kick(): void {
    if (this.#running) return
    this.#running = new Promise<void>((r) => setImmediate(r)).then(() => this.#drain()).finally(() => {
      this.#running = null
      if (this.#queue.length > 0) this.#kick()
    })
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue
      this.#queue = []
      try {
        const results = await this.#commit(batch.map((p) => p.event))
        batch.forEach((p, i) => {
          const r = results[i]!
          if (r instanceof Error) p.reject(r)
          else p.resolve(r)
        })
      } catch (error) {
        // The state may no longer match the file: re-read it at the next batch.
        this.#state = null
        const failure = error instanceof AirlockError && error.code !== 'INVALID_INPUT' ? unavailable(this.dir, error) : error
        for (const p of batch) p.reject(failure)
      }
    }
  }

  /** One batch: lock, catch up (recovering a torn tail), one write, one fdatasync, unlock. */
  async #commit(events: AuditEvent[]): Promise<Array<{index: number; fingerprint: string} | Error>> {
    const release = await acquireAuditLock(this.dir, this.#opts.lock ?? DEFAULT_AUDIT_LOCK)
    try {
      const recovery = await this.#catchUp()
      const state = this.#state!
      // About a kilobyte an event; the arena grows if they are larger.
      const arena = new Arena(Math.min(64 << 20, (events.length + 1) * 1024))
      const leaves: string[] = []
      let prev = state.last
      let index = state.size
      let lastLength = 0
      const add = (event: AuditEvent) => {
        const {fingerprint, length} = encodeEntryInto(arena, event, {index, prev, origin: this.origin})
        leaves.push(fingerprint)
        lastLength = length
        prev = fingerprint
        return {index: index++, fingerprint}
      }
      if (recovery) add(logRecoveryEvent({now: this.#now(), offset: recovery.offset, length: recovery.length, sha256: recovery.sha256, path: recovery.path, host: hostname(), toolVersion: this.#opts.toolVersion ?? 'unknown'}))
      // An event the serializer refuses (INVALID_INPUT) fails alone; the others are written.
      const results = events.map((e) => {
        try {
          return add(e)
        } catch (error) {
          return error as Error
        }
      })
      if (arena.length === 0) return results
      const written = await writeAll(this.#handle, [arena.bytes()])
      await this.#handle.datasync()
      for (const fp of leaves) state.log.append(leafOf(fp))
      state.lastOffset = state.bytes + written - lastLength
      state.bytes += written
      state.size = index
      state.last = prev
      await this.#maybeCheckpoint()
      if (state.size - this.#savedAt >= (this.#opts.saveStateEvery ?? 4096)) {
        await saveState(this.dir, state).catch(() => {})
        this.#savedAt = state.size
      }
      return results
    } finally {
      await release()
    }
  }

  /**
   * Brings the state up to the file (under the lock): loads or rebuilds it the first time, reads
   * the lines other processes appended since, and moves a torn tail aside. Returns the torn
   * fragment recovered, if any, for the log-recovery event.
   */
  async #catchUp(): Promise<TornRecovery | null> {
    const path = join(this.dir, AUDIT_FILES.events)
    await this.#reopenIfReplaced(path)
    const size = (await this.#handle.stat()).size
    if (!this.#state || size < this.#state.bytes) this.#state = (await loadState(this.dir, this.#handle, size)) ?? emptyState()
    const state = this.#state
    if (size === state.bytes) return null
    const it = lineBatches(this.#handle, path, {start: state.bytes, startLine: state.size + 1})
    for (;;) {
      const r = await it.next()
      if (r.done) {
        if (!r.value.fragment) return null
        return this.#recoverTorn(r.value.fragment)
      }
      for (const raw of r.value) {
        advance(state, raw)
      }
    }
  }

  /**
   * events.jsonl replaced under the lock (retention rewrites it and renames the new file into
   * place): this handle still points at the old file, so appending through it would lose events.
   * Reopen the file the path names now, and re-read its state.
   */
  async #reopenIfReplaced(path: string): Promise<void> {
    const [held, named] = await Promise.all([this.#handle.stat(), stat(path).catch(() => null)])
    if (named && named.ino === held.ino && named.dev === held.dev) return
    const handle = await openEventsForAppend(path)
    await this.#handle.close().catch(() => {})
    this.#handle = handle
    this.#state = null
  }

  /** Moves the partial last line to torn/<offset>.partial (fsync'd) and truncates the log to its last complete line. */
  async #recoverTorn(fragment: {offset: number; length: number}): Promise<TornRecovery> {
    const bytes = Buffer.alloc(fragment.length)
    await this.#handle.read(bytes, 0, fragment.length, fragment.offset)
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    const tornDir = join(this.dir, AUDIT_FILES.torn)
    await makeFolder(tornDir, {mode: 0o700, label: tornDir})
    let name = `${fragment.offset}.partial`
    const existing = await readFile(join(tornDir, name)).catch(() => null)
    if (existing && !existing.equals(bytes)) name = `${fragment.offset}.${sha256.slice(0, 16)}.partial`
    if (!existing || !existing.equals(bytes)) {
      await writeFileAtomic(join(tornDir, name), bytes, 0o600)
      await syncFolder(tornDir)
    }
    await this.#handle.truncate(fragment.offset)
    await this.#handle.datasync()
    return {offset: fragment.offset, length: fragment.length, sha256, path: `${AUDIT_FILES.torn}/${name}`}
  }

  async #maybeCheckpoint(): Promise<void> {
    const auto = this.#opts.checkpoint
    const state = this.#state
    if (!auto || !state || state.size <= this.#lastCheckpoint.size) return
    if (this.#due(state.size)) await this.#checkpoint()
  }

  #due(size: number): boolean {
    const auto = this.#opts.checkpoint!
    return size - this.#lastCheckpoint.size >= (auto.every ?? 1024) || this.#now().getTime() - this.#lastCheckpoint.at >= (auto.intervalMs ?? 60_000)
  }

  async #checkpoint(): Promise<void> {
    const state = this.#state!
    await writeCheckpoint(this.dir, this.origin, this.#opts.checkpoint!.signer, state.size, state.log.root())
    this.#lastCheckpoint = {size: state.size, at: this.#now().getTime()}
  }
}

export interface TornRecovery {
  offset: number
  length: number
  sha256: string
  /** Where the fragment was moved, relative to the audit folder. */
  path: string
}

/**
 * The log-recovery event: OCSF Event Log Activity (1008), activity Other (99), saying where the
 * torn fragment was, how long it was and its SHA-256, and where it was moved.
 */
/** The Merkle state past one more complete line of the log (parsed: a malformed line throws). */
function advance(state: MerkleState, raw: {line: Buffer; lineNumber: number; offset: number}): void {
  const entry = parseLine(raw.line, raw.lineNumber, raw.offset)
  state.log.append(leafOf(entry.fingerprint))
  state.size++
  state.last = entry.fingerprint
  state.lastOffset = raw.offset
  state.bytes = raw.offset + raw.line.length + 1
}

/** The newest checkpoint's size and file time (null time: none yet, counted from now). */
async function lastCheckpointOf(dir: string): Promise<{size: number; at: number | null}> {
  const size = await latestCheckpointSize(dir)
  if (size === 0) return {size, at: null}
  const st = await stat(join(dir, AUDIT_FILES.checkpoints, checkpointName(size))).catch(() => null)
  return {size, at: st ? st.mtimeMs : null}
}

/** Writes every chunk, in order, with writev (one system call per IOV_MAX chunks); a short write continues where it stopped. */
async function writeAll(handle: FileHandle, chunks: Buffer[]): Promise<number> {
  const total = chunks.reduce((n, c) => n + c.length, 0)
  let left = chunks
  let done = 0
  while (done < total) {
    const {bytesWritten} = await handle.writev(left)
    if (bytesWritten <= 0) throw new AirlockError('AUDIT_UNAVAILABLE', 'audit log unavailable: a write wrote nothing')
    done += bytesWritten
    let skip = bytesWritten
    let i = 0
    while (i < left.length && skip >= left[i]!.length) skip -= left[i++]!.length
    left = i < left.length ? [left[i]!.subarray(skip), ...left.slice(i + 1)] : []
  }
  return total
}

/** Opens (creating, 0600) events.jsonl for appending; not a regular file, or a link, is AUDIT_UNAVAILABLE. */
async function openEventsForAppend(eventsPath: string): Promise<FileHandle> {
  let handle: FileHandle | null = null
  try {
    handle = await open(eventsPath, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
    const fst = await handle.stat()
    if (!fst.isFile()) throw new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${eventsPath} is not a regular file`, {path: eventsPath})
    return handle
  } catch (error) {
    await handle?.close().catch(() => {})
    throw unavailable(eventsPath, error)
  }
}

/**
 * Reads a file made once and never changed, creating it when absent: written to a temporary file
 * (0600, flushed) and hard-linked into place, so two processes making it at once keep one.
 */
async function createOnce(path: string, make: () => Buffer): Promise<Buffer> {
  const read = async () => {
    const st = await lstat(path)
    if (!st.isFile()) throw new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${path} is not a regular file`, {path})
    return readFile(path)
  }
  try {
    return await read()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw unavailable(path, error)
  }
  const tmp = tempName(path)
  try {
    await writeFile(tmp, make(), {flag: 'wx', mode: 0o600, flush: true})
    await link(tmp, path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error
    })
    return await read()
  } catch (error) {
    throw unavailable(path, error)
  } finally {
    await unlink(tmp).catch(() => {})
  }
}

async function syncFolder(dir: string): Promise<void> {
  const h = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    await h.sync()
  } finally {
    await h.close()
  }
}

function emptyState(): MerkleState {
  return {size: 0, bytes: 0, lastOffset: 0, last: null, log: new MerkleLog()}
}

/** Saves the cache (best effort: it is only a shortcut). */
async function saveState(dir: string, s: MerkleState): Promise<void> {
  const json = {version: 1, size: s.size, bytes: s.bytes, lastOffset: s.lastOffset, last: s.last, range: s.log.compactRange().map((h) => Buffer.from(h).toString('hex'))}
  await writeFileAtomic(join(dir, AUDIT_FILES.state), `${JSON.stringify(json)}\n`, 0o600)
}

/**
 * The state for a file of `fileSize` bytes: state.json when it matches the file (its last line is
 * where it says, with its fingerprint and index), else rebuilt by reading events.jsonl. Lines
 * past the cache's end are read by the caller. Never trusted for verification.
 */
async function loadState(dir: string, handle: FileHandle, fileSize: number): Promise<MerkleState> {
  const cached = await readCachedState(dir, handle, fileSize)
  if (cached) return cached
  const state = emptyState()
  const path = join(dir, AUDIT_FILES.events)
  const it = lineBatches(handle, path, {start: 0, startLine: 1})
  for (;;) {
    const r = await it.next()
    if (r.done) break
    for (const raw of r.value) {
      advance(state, raw)
    }
  }
  return state
}

async function readCachedState(dir: string, handle: FileHandle, fileSize: number): Promise<MerkleState | null> {
  try {
    const v = JSON.parse(await readFile(join(dir, AUDIT_FILES.state), 'utf8')) as {version: number; size: number; bytes: number; lastOffset: number; last: string | null; range: string[]}
    if (v.version !== 1 || !Number.isSafeInteger(v.size) || !Number.isSafeInteger(v.bytes) || v.bytes > fileSize || !Array.isArray(v.range)) return null
    const log = MerkleLog.fromCompactRange(v.size, v.range.map((h) => Buffer.from(String(h), 'hex')))
    if (v.size === 0) return v.bytes === 0 ? {size: 0, bytes: 0, lastOffset: 0, last: null, log} : null
    const length = v.bytes - v.lastOffset
    if (!Number.isSafeInteger(v.lastOffset) || length < 2 || length > (16 << 20)) return null
    const buf = Buffer.alloc(length)
    await handle.read(buf, 0, length, v.lastOffset)
    if (buf[length - 1] !== 0x0a || (v.lastOffset > 0 && (await byteAt(handle, v.lastOffset - 1)) !== 0x0a)) return null
    const entry = parseLine(buf.subarray(0, length - 1), v.size, v.lastOffset)
    if (entry.index !== v.size - 1 || entry.fingerprint !== v.last) return null
    return {size: v.size, bytes: v.bytes, lastOffset: v.lastOffset, last: v.last, log}
  } catch {
    return null
  }
}

async function byteAt(handle: FileHandle, at: number): Promise<number> {
  const b = Buffer.alloc(1)
  await handle.read(b, 0, 1, at)
  return b[0]!
}

/** The largest size among checkpoints/<size>.checkpoint (0 when none). */
export async function latestCheckpointSize(dir: string): Promise<number> {
  const names = await readdir(join(dir, AUDIT_FILES.checkpoints)).catch(() => [] as string[])
  let max = 0
  for (const n of names) {
    const m = /^(\d{20})\.checkpoint$/.exec(n)
    if (m) max = Math.max(max, Number(m[1]))
  }
  return max
}

/** Signs and writes checkpoints/<size>.checkpoint (kept if one of that size exists: the same log has one root per size). */
export async function writeCheckpoint(dir: string, origin: string, signer: Signer, size: number, root: Uint8Array): Promise<{path: string; text: string; size: number; root: string; existing: boolean}> {
  const folder = join(dir, AUDIT_FILES.checkpoints)
  const path = join(folder, checkpointName(size))
  const old = await readFile(path, 'utf8').catch(() => null)
  const rootHex = Buffer.from(root).toString('hex')
  if (old !== null) return {path, text: old, size, root: rootHex, existing: true}
  const text = signNote(formatCheckpoint({origin, size, rootHash: root, extensions: []}), [{name: origin, signer}])
  try {
    await makeFolder(folder, {mode: 0o700, label: folder})
    await writeFileAtomic(path, text, 0o600)
  } catch (error) {
    throw unavailable(path, error)
  }
  return {path, text, size, root: rootHex, existing: false}
}
