/**
 * Reading events.jsonl: complete lines in batches, streamed through fixed-size chunks, so a log of
 * any size is read in bounded memory (one chunk, plus one line when a line spans chunks). A last
 * line without `\n` is a torn tail, reported with its byte offset; a line longer than the limit is
 * AUDIT_TAMPERED (no event airlock writes comes near it).
 */
import {constants} from 'node:fs'
import {open, readFile, stat, type FileHandle} from 'node:fs/promises'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {isValidKeyName} from './note.js'
import {parseLine, type LogEntry} from './entry.js'
import {unavailable} from './lock.js'

/** The files of an audit folder (docs/audit.md "Where it lives"). */
export const AUDIT_FILES = Object.freeze({
  origin: 'origin',
  events: 'events.jsonl',
  state: 'state.json',
  redactionKey: 'redaction.key',
  checkpoints: 'checkpoints',
  torn: 'torn',
})

export interface ReadLimits {
  /** Bytes read at a time. */
  chunkBytes: number
  /** The longest line accepted. */
  maxLineBytes: number
}

export const DEFAULT_READ_LIMITS: Readonly<ReadLimits> = Object.freeze({chunkBytes: 1 << 20, maxLineBytes: 16 << 20})

export interface RawLine {
  line: Buffer
  offset: number
  lineNumber: number
}

/** Where reading stopped: after the last complete line, and what lies beyond it. */
export interface ReadEnd {
  /** Byte offset just past the last complete line. */
  end: number
  /** Complete lines read. */
  lines: number
  /** Bytes after the last `\n` (a torn tail), or null. */
  fragment: {offset: number; length: number} | null
}

/**
 * The complete lines of each chunk from byte `start` (which must be a line start, the
 * `startLine`-th line) to the end of the file, batch by batch; returns where reading stopped.
 * Lines are views of the chunk they came in, never reused by a later read.
 */
export async function* lineBatches(handle: FileHandle, path: string, from: {start: number; startLine: number}, limits: ReadLimits = DEFAULT_READ_LIMITS): AsyncGenerator<RawLine[], ReadEnd> {
  let pos = from.start
  let lineNumber = from.startLine
  let carry: Buffer | null = null
  let carryOffset = pos
  const tooLong = (n: number, offset: number) => new AirlockError('AUDIT_TAMPERED', `${path} line ${n} (byte ${offset}): longer than ${limits.maxLineBytes} bytes`, {problem: 'MALFORMED', line: n, offset})
  // The next chunk is read while this one's lines are being used (double buffering).
  const readAt = async (at: number): Promise<{chunk: Buffer; bytesRead: number}> => {
    const chunk = Buffer.allocUnsafe(limits.chunkBytes)
    try {
      const {bytesRead} = await handle.read(chunk, 0, chunk.length, at)
      return {chunk, bytesRead}
    } catch (error) {
      throw unavailable(path, error)
    }
  }
  let next = readAt(pos)
  for (;;) {
    const {chunk, bytesRead} = await next
    if (bytesRead === 0) break
    next = readAt(pos + bytesRead)
    // A failed read ahead is reported when it is awaited, not as an unhandled rejection.
    next.catch(() => {})
    const data = chunk.subarray(0, bytesRead)
    const lines: RawLine[] = []
    let at = 0
    let nl = data.indexOf(0x0a, 0)
    if (carry) {
      if (nl < 0) {
        carry = Buffer.concat([carry, data])
        if (carry.length > limits.maxLineBytes) throw tooLong(lineNumber, carryOffset)
        pos += bytesRead
        continue
      }
      lines.push({line: Buffer.concat([carry, data.subarray(0, nl)]), offset: carryOffset, lineNumber: lineNumber++})
      carry = null
      at = nl + 1
      nl = data.indexOf(0x0a, at)
    }
    while (nl >= 0) {
      lines.push({line: data.subarray(at, nl), offset: pos + at, lineNumber: lineNumber++})
      at = nl + 1
      nl = data.indexOf(0x0a, at)
    }
    if (at < data.length) {
      carryOffset = pos + at
      carry = Buffer.from(data.subarray(at))
    }
    for (const l of lines) if (l.line.length > limits.maxLineBytes) throw tooLong(l.lineNumber, l.offset)
    if (carry && carry.length > limits.maxLineBytes) throw tooLong(lineNumber, carryOffset)
    pos += bytesRead
    if (lines.length > 0) yield lines
  }
  const end = carry ? carryOffset : pos
  return {end, lines: lineNumber - from.startLine, fragment: carry ? {offset: carryOffset, length: carry.length} : null}
}

/** lineBatches with a callback per batch. */
export async function readLines(handle: FileHandle, path: string, from: {start: number; startLine: number}, onBatch: (lines: RawLine[]) => void | Promise<void>, limits: ReadLimits = DEFAULT_READ_LIMITS): Promise<ReadEnd> {
  const it = lineBatches(handle, path, from, limits)
  for (;;) {
    const r = await it.next()
    if (r.done) return r.value
    await onBatch(r.value)
  }
}

/** The torn-tail error of a read that ended in a partial line. */
export function tornTail(path: string, fragment: {offset: number; length: number}, lineNumber: number): AirlockError {
  return new AirlockError(
    'AUDIT_TORN_TAIL',
    `${path}: the log ends in a partial line at byte ${fragment.offset} (${fragment.length} bytes, line ${lineNumber}, no final newline): an append was interrupted; the next append moves it to torn/${fragment.offset}.partial and records a log-recovery event`,
    {problem: 'TORN_TAIL', path, offset: fragment.offset, length: fragment.length, line: lineNumber},
  )
}

/** Opens events.jsonl for reading; a missing file is an empty log (null). */
export async function openEvents(dir: string): Promise<FileHandle | null> {
  const path = join(dir, AUDIT_FILES.events)
  try {
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
    const st = await handle.stat()
    if (!st.isFile()) {
      await handle.close()
      throw new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${path} is not a regular file`, {path})
    }
    return handle
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      await assertFolder(dir)
      return null
    }
    throw unavailable(path, error)
  }
}

async function assertFolder(dir: string): Promise<void> {
  const st = await stat(dir).catch((error: unknown) => {
    throw unavailable(dir, error)
  })
  if (!st.isDirectory()) throw new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${dir} is not a folder`, {path: dir})
}

/**
 * The entries of the log in `dir`, streamed in order. A malformed line is AUDIT_TAMPERED (naming
 * its line number and what is wrong); a last line without `\n` is AUDIT_TORN_TAIL (naming its byte
 * offset), thrown after every complete line before it was yielded. `from` skips entries before it.
 */
export async function* readEntries(dir: string, opts: {from?: number; limits?: ReadLimits} = {}): AsyncIterable<LogEntry> {
  const handle = await openEvents(dir)
  if (!handle) return
  const path = join(dir, AUDIT_FILES.events)
  const from = opts.from ?? 0
  try {
    const it = lineBatches(handle, path, {start: 0, startLine: 1}, opts.limits)
    for (;;) {
      const r = await it.next()
      if (r.done) {
        if (r.value.fragment) throw tornTail(path, r.value.fragment, r.value.lines + 1)
        break
      }
      for (const raw of r.value) {
        const entry = parseLine(raw.line, raw.lineNumber, raw.offset)
        if (entry.index >= from) yield entry
      }
    }
  } finally {
    await handle.close()
  }
}

/** The marker verify looks for to list recoveries without parsing every line. */
export const RECOVERY_MARKER = '"airlock_log_recovery":'

/** Reads `origin` from an audit folder; AUDIT_UNAVAILABLE when absent or not a valid origin. */
export async function readOrigin(dir: string): Promise<string> {
  const path = join(dir, AUDIT_FILES.origin)
  const text = await readFile(path, 'utf8').catch((error: unknown) => {
    throw unavailable(path, error)
  })
  const origin = text.endsWith('\n') ? text.slice(0, -1) : text
  if (!isValidOrigin(origin)) throw new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${path} does not hold one origin line (a C2SP key name in printable ASCII)`, {path})
  return origin
}

export function isValidOrigin(origin: string): boolean {
  return isValidKeyName(origin) && /^[\x21-\x7e]+$/.test(origin) && !origin.includes('"') && !origin.includes('\\')
}

