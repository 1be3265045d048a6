/**
 * `audit export`: a range of the log as an OCSF JSON array, as the lines written (jsonl), or as
 * flat CSV for spreadsheets. The range is by index or by the events' OCSF `time`, `since`
 * inclusive, `until` exclusive. Pruned stubs have no body to export: they are skipped and counted.
 * The events were redacted before they were written, so nothing here sees a secret to remove.
 */
import {AirlockError} from '../errors.js'
import type {StreamEntry} from './stream.js'

export type ExportFormat = 'ocsf' | 'jsonl' | 'csv'

/** A bound of the range: a log index, or a time (ms since the epoch) compared with the event's `time`. */
export type Bound = {index: number} | {time: number}

export interface ExportRange {
  since: Bound
  until?: Bound
}

export interface ExportSummary {
  format: ExportFormat
  events: number
  skippedPruned: number
  first: number | null
  last: number | null
}

/** `--since 120` (an index) or `--since 2026-11-01T00:00:00Z` (a time, RFC 3339 with a zone) → Bound; anything else is USAGE. */
export function parseBound(text: string, flag: string): Bound {
  if (/^\d{1,15}$/.test(text)) return {index: Number(text)}
  const rfc3339 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/i
  const time = rfc3339.test(text) ? Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text) : Number.NaN
  if (Number.isNaN(time)) throw new AirlockError('USAGE', `${flag}: "${text}" is neither a log index nor a time like 2026-11-01T00:00:00Z`, {field: flag})
  return {time}
}

/** The CSV columns, in order. */
export const CSV_COLUMNS = ['index', 'time', 'class_uid', 'type_uid', 'activity', 'status', 'actor', 'operation', 'resource', 'decision', 'fingerprint'] as const

/**
 * One CSV cell: RFC 4180 quoting (a cell with a comma, a quote, CR or LF is quoted, quotes
 * doubled) and the formula-injection defence (OWASP CSV injection): a cell starting with = + - @
 * tab or CR gets a leading ' so a spreadsheet shows it as text instead of evaluating it. No CSV
 * library is installed (node_modules has none), hence this small function.
 */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe
}

/** A CSV record (RFC 4180: fields by commas, records ended by CRLF). */
export function csvRow(cells: readonly string[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`
}

type Json = Record<string, unknown>
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {})
const str = (...vs: unknown[]): string => {
  for (const v of vs) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v)
  return ''
}

/** An OCSF event's flat row (the columns of CSV_COLUMNS). */
export function csvRecord(index: number, event: Json): string[] {
  const actor = obj(event.actor)
  const user = obj(actor.user)
  const resources = Array.isArray(event.resources) ? event.resources.map(obj) : []
  const attestation = obj(Array.isArray(event.attestation_list) ? event.attestation_list[0] : undefined)
  const time = typeof event.time === 'number' && Number.isFinite(event.time) ? new Date(event.time).toISOString() : ''
  return [
    String(index),
    time,
    str(event.class_uid),
    str(event.type_uid),
    str(event.activity_name, event.activity_id),
    str(event.status, event.status_id),
    str(user.name, user.uid, obj(actor.app).name, actor.app_name, obj(actor.process).name),
    str(obj(event.api).operation),
    resources.map((r) => str(r.name, r.uid)).filter(Boolean).join(';'),
    str(event.action, event.disposition, obj(event.unmapped).decision),
    str(obj(attestation.fingerprint).value),
  ]
}

function inRange(index: number, time: number | undefined, range: ExportRange): boolean {
  const at = (b: Bound) => ('index' in b ? index : (time ?? Number.NaN))
  const limit = (b: Bound) => ('index' in b ? b.index : b.time)
  if (!(at(range.since) >= limit(range.since))) return false
  return range.until === undefined || at(range.until) < limit(range.until)
}

/**
 * The export as chunks of text, written by the caller as they come (a large log is never held
 * whole); `summary` is filled in when the generator is done. An entry whose line is not JSON is
 * AUDIT_TAMPERED (the log's writer only writes JSON).
 */
export async function* exportLog(entries: AsyncIterable<StreamEntry> | Iterable<StreamEntry>, range: ExportRange, format: ExportFormat, summary: ExportSummary): AsyncGenerator<string> {
  Object.assign(summary, {format, events: 0, skippedPruned: 0, first: null, last: null})
  if (format === 'csv') yield csvRow(CSV_COLUMNS)
  if (format === 'ocsf') yield '['
  for await (const entry of entries) {
    if ('index' in range.since && entry.index < range.since.index) continue
    if (range.until && 'index' in range.until && entry.index >= range.until.index) break
    let event: Json
    try {
      event = obj(JSON.parse(entry.line))
    } catch {
      throw new AirlockError('AUDIT_TAMPERED', `entry ${entry.index}: not a JSON object`, {index: entry.index})
    }
    const time = entry.pruned ? obj(event.pruned).time : event.time
    if (!inRange(entry.index, typeof time === 'number' ? time : undefined, range)) continue
    if (entry.pruned) {
      summary.skippedPruned++
      continue
    }
    summary.first ??= entry.index
    summary.last = entry.index
    if (format === 'csv') yield csvRow(csvRecord(entry.index, event))
    else if (format === 'jsonl') yield `${entry.line}\n`
    else yield `${summary.events > 0 ? ',' : ''}\n${entry.line}`
    summary.events++
  }
  if (format === 'ocsf') yield summary.events > 0 ? '\n]\n' : ']\n'
}
