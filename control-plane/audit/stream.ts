/**
 * SIEM streaming: the log's entries, in order, in batches, to one HTTP sink, from a durable
 * cursor. The cursor (stream/<16 hex>.cursor in the audit folder) holds the index of the next
 * entry to send and moves only after the sink acknowledged a batch with 2xx, written atomically:
 * a crash or a sink outage sends a batch again (at least once), never skips one. Each event keeps
 * its log index (attestation_list uid) and each batch carries `Idempotency-Key:
 * <origin>:<first>-<last>`, so a sink can drop what it already has.
 */
import {createHash} from 'node:crypto'
import {dirname, join} from 'node:path'
import {AirlockError} from '../errors.js'
import {makeFolder, readRegularFile, writeFileAtomic} from '../repo/files.js'
import {deliver, redactUrl, type Clock, type Sink, type SinkLimits} from './sink.js'
import {parseLine} from './entry.js'
import {AUDIT_FILES, lineBatches, openEvents, readEntries} from './store.js'
import {readOrigin} from './log.js'

/** One entry as the streamer needs it: its index, its line as written (no \n), whether it is a pruned stub. */
export interface StreamEntry {
  index: number
  line: string
  pruned: boolean
}

/** Where entries come from: the log (logSource) or, in tests, anything. */
export interface StreamSource {
  /** The log's origin (the `chain_uid` of its entries). */
  origin: string
  /** The number of complete entries now. */
  size(): Promise<number>
  /** Up to `max` complete entries from index `from`, in order. */
  read(from: number, max: number): Promise<StreamEntry[]>
}

export type StreamFormat = 'ocsf' | 'jsonl'

export interface StreamOptions {
  dir: string
  sink: Sink
  source: StreamSource
  format: StreamFormat
  batchSize: number
  /** Follow mode: a batch smaller than batchSize is sent once its oldest entry waited this long. */
  flushIntervalMs: number
  /** Follow mode: how often the log is looked at for new entries. */
  pollMs: number
  /** Send what is there and return (cron); otherwise follow until `stop`. */
  once: boolean
  limits: SinkLimits
  clock: Clock
  /** Aborted on SIGINT/SIGTERM: the batch in flight finishes (or stays unsent), then the stream returns. */
  stop?: AbortSignal
  /** Called after each batch the sink took (progress, tests). */
  onBatch?: (batch: BatchReport) => void
}

export interface BatchReport {
  first: number
  last: number
  events: number
  skippedPruned: number
  attempts: number
  cursor: number
}

export interface StreamReport {
  sink: string
  cursorFile: string
  /** The cursor when the stream began and when it ended (the next index to send). */
  from: number
  cursor: number
  events: number
  batches: number
  skippedPruned: number
  /** Failed tries that were retried. */
  retries: number
  /** Waits the sink asked for (Retry-After), in ms, summed. */
  backPressureMs: number
  /** True when a stop (signal) ended the stream. */
  stopped: boolean
}

/** stream/<first 16 hex of SHA-256 of the URL>.cursor: one cursor per sink, named without the URL (it may hold a token). */
export function cursorFile(dir: string, url: URL): string {
  return join(dir, 'stream', `${createHash('sha256').update(url.href).digest('hex').slice(0, 16)}.cursor`)
}

/** The cursor: the next index to send (0 when there is none yet). A malformed one is INVALID_INPUT naming it. */
export async function readCursor(file: string): Promise<number> {
  let text: string
  try {
    text = await readRegularFile(file, {maxBytes: 4096, missingCode: 'AUDIT_UNAVAILABLE'})
  } catch (error) {
    if ((error as AirlockError).details?.errno === 'ENOENT') return 0
    throw error
  }
  let next: unknown
  try {
    next = (JSON.parse(text) as {next?: unknown}).next
  } catch {
    next = undefined
  }
  if (typeof next !== 'number' || !Number.isSafeInteger(next) || next < 0) throw new AirlockError('INVALID_INPUT', `${file}: next: not a cursor ({"next": <index>})`, {file, field: 'next'})
  return next
}

/** Writes the cursor atomically (temp file, fsync, rename), 0600 like the rest of the audit folder. */
export async function writeCursor(file: string, next: number, sink: URL): Promise<void> {
  await makeFolder(dirname(file), {mode: 0o700})
  await writeFileAtomic(file, `${JSON.stringify({next, sink: redactUrl(sink)})}\n`, 0o600)
}

/** The request body of a batch: ocsf = a JSON array of the events (the lines as written), jsonl = the lines, each ended by \n. */
export function batchBody(lines: readonly string[], format: StreamFormat): {body: Buffer; contentType: string} {
  if (format === 'ocsf') return {body: Buffer.from(`[${lines.join(',')}]`), contentType: 'application/json'}
  return {body: Buffer.from(lines.map((l) => `${l}\n`).join('')), contentType: 'application/x-ndjson'}
}

/** Streams from the cursor until the log is sent (--once) or `stop` aborts (follow). */
export async function streamLog(opts: StreamOptions): Promise<StreamReport> {
  const file = cursorFile(opts.dir, opts.sink.url)
  const from = await readCursor(file)
  const size = await opts.source.size()
  // A cursor past the end: the log this cursor was written for had more entries than this one.
  if (from > size) throw new AirlockError('AUDIT_TAMPERED', `${file}: the cursor says ${from} entries were sent, the log has ${size}; it was replaced or cut`, {file, cursor: from, size})
  const report: StreamReport = {sink: redactUrl(opts.sink.url), cursorFile: file, from, cursor: from, events: 0, batches: 0, skippedPruned: 0, retries: 0, backPressureMs: 0, stopped: false}
  let waitingSince: number | null = null
  for (;;) {
    if (opts.stop?.aborted) return {...report, stopped: true}
    const entries = await opts.source.read(report.cursor, opts.batchSize)
    const now = opts.clock.now()
    if (entries.length > 0 && waitingSince === null) waitingSince = now
    const due = entries.length >= opts.batchSize || (entries.length > 0 && (opts.once || now - waitingSince! >= opts.flushIntervalMs))
    if (due) {
      const sent = await sendBatch(opts, entries, file, report)
      if (!sent) return {...report, stopped: true}
      waitingSince = null
      continue
    }
    if (opts.once) return report
    const wait = waitingSince === null ? opts.pollMs : Math.min(opts.pollMs, Math.max(0, waitingSince + opts.flushIntervalMs - now))
    await opts.clock.sleep(wait, opts.stop)
  }
}

/** One batch: the pruned stubs skipped, the rest posted until taken, then the cursor moved past it. False when a stop left it unsent. */
async function sendBatch(opts: StreamOptions, entries: StreamEntry[], file: string, report: StreamReport): Promise<boolean> {
  const first = entries[0]!.index
  const last = entries[entries.length - 1]!.index
  const events = entries.filter((e) => !e.pruned)
  const skipped = entries.length - events.length
  let attempts = 0
  if (events.length > 0) {
    const {body, contentType} = batchBody(
      events.map((e) => e.line),
      opts.format,
    )
    const headers = {'content-type': contentType, 'idempotency-key': `${opts.source.origin}:${events[0]!.index}-${events[events.length - 1]!.index}`, 'x-airlock-events': String(events.length)}
    const result = await deliver(opts.sink, body, headers, opts.limits, opts.clock, opts.stop)
    attempts = result.report.attempts
    report.retries += result.report.failures.length
    report.backPressureMs += result.report.backPressure.reduce((a, b) => a + b, 0)
    if (!result.delivered) return false
  }
  await writeCursor(file, last + 1, opts.sink.url)
  report.cursor = last + 1
  report.events += events.length
  report.skippedPruned += skipped
  report.batches += events.length > 0 ? 1 : 0
  opts.onBatch?.({first, last, events: events.length, skippedPruned: skipped, attempts, cursor: last + 1})
  return true
}

/** The log's entries as the export reads them (a torn tail is reported after every complete line). */
export async function* logEntries(dir: string): AsyncIterable<StreamEntry> {
  for await (const e of readEntries(dir)) yield {index: e.index, line: e.line.toString('utf8'), pruned: e.pruned}
}

/**
 * The log as a stream source: complete lines only (a line being appended, or a torn tail, is not
 * sent until it is whole; `audit verify` reports torn tails), read from the byte offset where the
 * last read stopped, so following a large log costs only what was appended. When the file was
 * replaced (a prune renames a new one in) or shrank, the position is found again from the start.
 * An entry whose uid is not its position is AUDIT_TAMPERED.
 */
export async function logSource(dir: string): Promise<StreamSource> {
  const origin = await readOrigin(dir)
  const path = join(dir, AUDIT_FILES.events)
  // Where the next entry (index `next`) starts in the file `ino`.
  let at = {ino: -1, offset: 0, next: 0}
  const read = async (from: number, max: number): Promise<{entries: StreamEntry[]; complete: number}> => {
    const handle = await openEvents(dir)
    if (!handle) return {entries: [], complete: 0}
    try {
      const st = await handle.stat()
      if (st.ino !== at.ino || st.size < at.offset || from < at.next) at = {ino: st.ino, offset: 0, next: 0}
      const entries: StreamEntry[] = []
      const it = lineBatches(handle, path, {start: at.offset, startLine: at.next + 1})
      let complete = at.next
      for (;;) {
        const r = await it.next()
        if (r.done) break
        for (const raw of r.value) {
          const entry = parseLine(raw.line, raw.lineNumber, raw.offset)
          if (entry.index !== raw.lineNumber - 1) throw new AirlockError('AUDIT_TAMPERED', `${path} line ${raw.lineNumber}: uid ${entry.index} is not its position ${raw.lineNumber - 1}`, {line: raw.lineNumber})
          complete = entry.index + 1
          if (entry.index < from) {
            at = {ino: st.ino, offset: raw.offset + raw.line.length + 1, next: entry.index + 1}
            continue
          }
          if (entries.length < max) entries.push({index: entry.index, line: raw.line.toString('utf8'), pruned: entry.pruned})
        }
        if (entries.length >= max) break
      }
      await it.return(undefined as never)
      return {entries, complete}
    } finally {
      await handle.close()
    }
  }
  return {
    origin,
    size: async () => (await read(Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY)).complete,
    read: async (from, max) => (await read(from, max)).entries,
  }
}
