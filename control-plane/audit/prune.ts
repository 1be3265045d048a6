/**
 * Retention: `audit prune` replaces the bodies of events older than the retention with their
 * pruned stubs (docs/audit.md), keeping each entry's fingerprint and link. A Merkle leaf is the
 * hash of the fingerprint, not of the body, so the tree, every checkpoint and every inclusion
 * proof made before the prune still hold after it, and `audit verify` still passes.
 *
 * The order of the steps, and what each one stops:
 * 1. The floor: a retention shorter than the configured floor is refused (a hurried operator, or
 *    one covering tracks, cannot shorten what auditors were promised).
 * 2. The checkpoint limit: only entries under the last signed checkpoint are pruned, and only once
 *    that checkpoint's root is recomputed from the log: published checkpoints must prove what
 *    existed, so nothing is pruned that no checkpoint commits to.
 * 3. The bodies: each body pruned must hash to its fingerprint, so a prune never launders an
 *    edited entry into a stub that verifies.
 * 4. The archive (when configured): the bodies are sealed first, a DSSE envelope over their SHA-256
 *    signed with the audit key, so an auditor can restore and check them.
 * 5. The rewrite: events.jsonl is replaced atomically (temporary file, fsync, rename, fsync of the
 *    folder) under the log's lock; a crash before the rename leaves the log as it was.
 */
import {readAuditConfig} from './config.js'
import {createHash} from 'node:crypto'
import {constants} from 'node:fs'
import {open, rename, unlink} from 'node:fs/promises'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {signEnvelope, type Envelope} from '../crypto/dsse.js'
import type {Signer} from '../crypto/keys.js'
import {readRegularFile, tempName, writeFileAtomic, makeFolder} from '../repo/files.js'
import {fingerprintOf, prunedLine, type LogEntry} from './entry.js'
import {leafHash, rootFromLeafHashes} from './merkle.js'
import {parseCheckpoint, parseNote, verifyNote, type VerifierKey} from './note.js'
import {acquireAuditLock, DEFAULT_AUDIT_LOCK} from './lock.js'
import {readOrigin} from './log.js'
import {readEntries} from './store.js'
import {verifyLog} from './verify.js'

const DAY_MS = 86_400_000

/** The audit folder's config.json: what the operator configured for retention. */
export interface RetentionConfig {
  /** The shortest retention `audit prune` accepts, in days (0: none). */
  retentionFloorDays: number
  /** Seal pruned bodies into a signed archive segment instead of dropping them. */
  archive: boolean
}

/** config.json in the audit folder (config.ts); absent means no floor and no archive. */
export async function readRetentionConfig(dir: string): Promise<RetentionConfig> {
  const {retentionFloorDays, archive} = await readAuditConfig(dir)
  return {retentionFloorDays, archive}
}

/** The last checkpoint in checkpoints/ that commits to this log: its size (0 when there is none). */
export interface CheckpointLimit {
  size: number
  file: string | null
}

/**
 * Step 2: the largest checkpoint in checkpoints/, checked against the log before anything is
 * pruned under it: its origin is the log's, its signature verifies with `keys` when they are
 * given (an audit key of the fleet's trust), and its root is the root of the log's first `size`
 * leaves. A checkpoint that fails any of these is AUDIT_CHECKPOINT_INVALID / AUDIT_TAMPERED:
 * prune refuses rather than trust it.
 */
export async function checkpointLimit(dir: string, origin: string, entries: readonly LogEntry[], keys?: readonly VerifierKey[]): Promise<CheckpointLimit> {
  const {readdir} = await import('node:fs/promises')
  const names = (await readdir(join(dir, 'checkpoints')).catch(() => [] as string[])).filter((n) => /^\d{20}\.checkpoint$/.test(n)).sort()
  const name = names.at(-1)
  if (!name) return {size: 0, file: null}
  const file = join(dir, 'checkpoints', name)
  const note = parseNote(await readRegularFile(file, {maxBytes: 1024 * 1024}))
  if (keys) verifyNote(note, keys)
  const checkpoint = parseCheckpoint(note.text)
  if (checkpoint.origin !== origin) throw new AirlockError('AUDIT_CHECKPOINT_INVALID', `${file}: a checkpoint of ${checkpoint.origin}, not of this log (${origin})`, {file})
  if (checkpoint.size > entries.length) throw new AirlockError('AUDIT_TAMPERED', `${file}: checkpoints ${checkpoint.size} entries, the log has ${entries.length}`, {file})
  const root = rootFromLeafHashes(entries.slice(0, checkpoint.size).map((e) => leafHash(Buffer.from(e.fingerprint, 'hex'))))
  if (!Buffer.from(root).equals(checkpoint.rootHash)) throw new AirlockError('AUDIT_TAMPERED', `${file}: its root is not the root of the log's first ${checkpoint.size} entries`, {file})
  return {size: checkpoint.size, file}
}

/**
 * Step 2 with the fleet's audit keys: the whole log verified (verifyLog: fingerprints, chain, tree,
 * each checkpoint's signature and consistency) before anything is pruned; the limit is the largest
 * checkpoint that verified. A log that does not verify is not pruned: the bodies are evidence.
 */
export async function verifiedLimit(dir: string, keys: readonly VerifierKey[], now: Date, threshold = 1): Promise<CheckpointLimit> {
  const report = await verifyLog(dir, {keys, threshold, now})
  const problem = report.problems[0]
  if (problem) {
    const code = ['BAD_CHECKPOINT_SIGNATURE', 'UNKNOWN_CHECKPOINT_KEY', 'OTHER_ORIGIN', 'ROLLED_BACK'].includes(problem.code) ? 'AUDIT_CHECKPOINT_INVALID' : problem.code === 'TORN_TAIL' ? 'AUDIT_TORN_TAIL' : 'AUDIT_TAMPERED'
    throw new AirlockError(code, `the log does not verify, nothing pruned: ${problem.message}`, {problem: problem.code, ...(problem.index === undefined ? {} : {index: problem.index}), ...(problem.path === undefined ? {} : {path: problem.path})})
  }
  const best = report.checkpoints.filter((c) => c.ok && c.source === 'local').sort((a, b) => (b.size ?? 0) - (a.size ?? 0))[0]
  return {size: report.checkpointed, file: best?.path ?? null}
}

export interface PruneRequest {
  retentionDays: number
  now: Date
  archive: boolean
  /** Prune bodies a SIEM stream has not sent yet (without it, such a prune is refused unless archived). */
  ignoreStreams?: boolean
}

export interface PrunePlan {
  retentionDays: number
  floorDays: number
  /** Events whose OCSF `time` is before this are past the retention. */
  cutoff: string
  /** The size of the last checkpoint: nothing at or after this index is pruned. */
  checkpointSize: number
  /** The bodies to prune: the entries first..last that still have one. */
  first: number | null
  last: number | null
  bodies: number
  /** Bytes of events.jsonl before and after, and the bytes the bodies held. */
  bytesBefore: number
  bytesAfter: number
  /** What ended the range: the retention (a newer event), the last checkpoint, or the end of the log. */
  limitedBy: 'retention' | 'checkpoint' | 'end'
  /** Older events left with their bodies because no checkpoint covers them yet. */
  waitingForCheckpoint: number
  /** archive/<first>-<last>.jsonl when the bodies are sealed. */
  archive: string | null
}

/** Step 1: the floor. */
export function checkFloor(retentionDays: number, config: RetentionConfig, file: string): void {
  if (retentionDays < config.retentionFloorDays) {
    throw new AirlockError('USAGE', `--retention-days ${retentionDays} is shorter than the retention floor of ${config.retentionFloorDays} days (${file}: retentionFloorDays)`, {field: '--retention-days', floorDays: config.retentionFloorDays, file})
  }
}

/** The OCSF `time` of an event (ms), or null when it has none. */
function eventTime(entry: LogEntry): number | null {
  try {
    const t = (JSON.parse(entry.line.toString('utf8')) as {time?: unknown}).time
    return typeof t === 'number' && Number.isFinite(t) ? t : null
  } catch {
    return null
  }
}

/**
 * The plan: the longest run of entries from the start whose events are older than the cutoff and
 * lie under the last checkpoint (stubs already pruned are passed over). The range is contiguous,
 * so one archive segment holds it and a reader sees one boundary between pruned and kept.
 */
export function planPrune(entries: readonly LogEntry[], limit: CheckpointLimit, request: PruneRequest, config: RetentionConfig): PrunePlan & {selected: LogEntry[]} {
  const cutoff = request.now.getTime() - request.retentionDays * DAY_MS
  const selected: LogEntry[] = []
  let limitedBy: PrunePlan['limitedBy'] = 'end'
  let at = 0
  for (; at < entries.length; at++) {
    const entry = entries[at]!
    if (entry.pruned) continue
    const time = eventTime(entry)
    if (time === null || time >= cutoff) {
      limitedBy = 'retention'
      break
    }
    if (at >= limit.size) {
      limitedBy = 'checkpoint'
      break
    }
    selected.push(entry)
  }
  let waiting = 0
  if (limitedBy === 'checkpoint') for (let i = at; i < entries.length && !entries[i]!.pruned && (eventTime(entries[i]!) ?? cutoff) < cutoff; i++) waiting++
  const bytesBefore = entries.reduce((n, e) => n + e.line.length + 1, 0)
  const freed = selected.reduce((n, e) => n + e.line.length - Buffer.byteLength(stubOf(e)), 0)
  const first = selected[0]?.index ?? null
  const last = selected.at(-1)?.index ?? null
  return {
    retentionDays: request.retentionDays,
    floorDays: config.retentionFloorDays,
    cutoff: new Date(cutoff).toISOString(),
    checkpointSize: limit.size,
    first,
    last,
    bodies: selected.length,
    bytesBefore,
    bytesAfter: bytesBefore - freed,
    limitedBy,
    waitingForCheckpoint: waiting,
    archive: request.archive && first !== null ? `archive/${first}-${last}.jsonl` : null,
    selected,
  }
}

function stubOf(entry: LogEntry): string {
  return prunedLine({index: entry.index, fingerprint: entry.fingerprint, prev: entry.prev, time: eventTime(entry) ?? 0})
}

/** The DSSE payload type of a sealed archive segment. */
export const ARCHIVE_PAYLOAD_TYPE = 'application/vnd.airlock.audit-archive.v1+json'

/** What the archive envelope signs. */
export interface ArchiveStatement {
  origin: string
  first: number
  last: number
  entries: number
  /** SHA-256 of the segment file's bytes, hex. */
  sha256: string
  /** The checkpoint the entries lie under. */
  checkpointSize: number
  sealedAt: string
}

export interface PruneHooks {
  /** Called with the temporary file written and flushed, before the rename (crash tests). */
  beforeRename?: () => Promise<void> | void
}

export interface PruneResult {
  archive: {file: string; envelope: string; sha256: string} | null
}

/**
 * Steps 3–5, run by the caller under the log's lock with the entries it just read: checks each
 * body against its fingerprint, seals the archive when asked, then replaces events.jsonl.
 */
export async function applyPrune(dir: string, origin: string, entries: readonly LogEntry[], plan: PrunePlan & {selected: LogEntry[]}, opts: {signer?: Signer; now: Date; hooks?: PruneHooks}): Promise<PruneResult> {
  // Step 3: a body that does not hash to its fingerprint is an edited entry: refused, kept as evidence.
  for (const entry of plan.selected) {
    if (fingerprintOf(Buffer.from(entry.line)).toString('hex') !== entry.fingerprint) {
      throw new AirlockError('AUDIT_TAMPERED', `events.jsonl line ${entry.lineNumber}: entry ${entry.index}'s body does not hash to its fingerprint; nothing pruned`, {index: entry.index, line: entry.lineNumber})
    }
  }
  if (plan.selected.length === 0) return {archive: null}
  const archive = plan.archive ? await sealArchive(dir, origin, plan, opts) : null
  // Step 5: the rewrite. The stubs take the place of the bodies; every other byte stays.
  const pruned = new Set(plan.selected.map((e) => e.index))
  const chunks = entries.map((e) => (pruned.has(e.index) ? `${stubOf(e)}\n` : Buffer.concat([e.line, Buffer.from('\n')])))
  await replaceLog(join(dir, 'events.jsonl'), chunks, dir, opts.hooks)
  return {archive}
}

/** Step 4: archive/<first>-<last>.jsonl (the bodies as written) and its signed envelope, both flushed before the log changes. */
async function sealArchive(dir: string, origin: string, plan: PrunePlan & {selected: LogEntry[]}, opts: {signer?: Signer; now: Date}): Promise<NonNullable<PruneResult['archive']>> {
  if (!opts.signer) throw new AirlockError('KEY_MISSING', 'no audit key to seal the archive with: pass --audit-key FILE or set AIRLOCK_AUDIT_KEY', {})
  const bytes = Buffer.concat(plan.selected.map((e) => Buffer.concat([e.line, Buffer.from('\n')])))
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const statement: ArchiveStatement = {origin, first: plan.first!, last: plan.last!, entries: plan.selected.length, sha256, checkpointSize: plan.checkpointSize, sealedAt: opts.now.toISOString()}
  const envelope: Envelope = signEnvelope(ARCHIVE_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), [opts.signer])
  const folder = join(dir, 'archive')
  await makeFolder(folder, {mode: 0o700})
  const file = join(folder, `${plan.first}-${plan.last}.jsonl`)
  const envelopeFile = `${file}.dsse.json`
  await writeFileAtomic(file, bytes, 0o600)
  await writeFileAtomic(envelopeFile, `${JSON.stringify(envelope, null, 2)}\n`, 0o600)
  return {file, envelope: envelopeFile, sha256}
}

/** The lines in writes of about 1 MiB (one write a line would be a system call a line). */
function* grouped(chunks: ReadonlyArray<string | Buffer>): Generator<Buffer> {
  let group: Buffer[] = []
  let size = 0
  for (const chunk of chunks) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    group.push(b)
    size += b.length
    if (size >= 1 << 20) {
      yield Buffer.concat(group)
      group = []
      size = 0
    }
  }
  if (group.length > 0) yield Buffer.concat(group)
}

/** Temporary file beside the log, written and fsynced, renamed over it, the folder fsynced; state.json (a cache) dropped first. */
async function replaceLog(path: string, chunks: ReadonlyArray<string | Buffer>, dir: string, hooks?: PruneHooks): Promise<void> {
  const tmp = tempName(path)
  try {
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    try {
      await handle.writeFile(grouped(chunks))
      await handle.sync()
    } finally {
      await handle.close()
    }
    await hooks?.beforeRename?.()
    // The Merkle cache names the old byte length; dropped so no reader trusts it against the new file.
    await unlink(join(dir, 'state.json')).catch(() => {})
    await rename(tmp, path)
  } catch (error) {
    await unlink(tmp).catch(() => {})
    throw error
  }
  const folder = await open(dir, constants.O_RDONLY)
  try {
    await folder.sync()
  } finally {
    await folder.close()
  }
}

export interface PruneOptions {
  /** Replace the bodies; without it, only the plan. */
  apply: boolean
  /** The audit key, to seal the archive with (needed when the plan archives). */
  signer?: Signer
  /** The fleet's audit keys: with them the whole log is verified first (verifyLog) and only verified checkpoints count; without them the last checkpoint's root is still checked against the log, its signature is not. */
  keys?: readonly VerifierKey[]
  /** How many of `keys` must have signed a checkpoint (trust.yaml's thresholds.audit). */
  threshold?: number
  hooks?: PruneHooks
  /** How long to wait for the log's lock. */
  lockWaitMs?: number
}

export interface PruneReport extends PrunePlan {
  applied: boolean
  archived: PruneResult['archive']
  /** SIEM stream cursors (stream/*.cursor) that have not sent every body being pruned: that sink never gets them. */
  streamsBehind: Array<{cursor: string; next: number}>
}

/** The stream cursors whose next entry to send is at or before `last`. */
async function streamsBehind(dir: string, last: number | null): Promise<PruneReport['streamsBehind']> {
  if (last === null) return []
  const {readdir} = await import('node:fs/promises')
  const {readCursor} = await import('./stream.js')
  const names = (await readdir(join(dir, 'stream')).catch(() => [] as string[])).filter((n) => n.endsWith('.cursor')).sort()
  const behind: PruneReport['streamsBehind'] = []
  for (const name of names) {
    const next = await readCursor(join(dir, 'stream', name)).catch(() => 0)
    if (next <= last) behind.push({cursor: `stream/${name}`, next})
  }
  return behind
}

/**
 * `audit prune`: the floor, then (under the log's lock when applying, so no append lands between
 * the read and the rename) the log read whole, the checkpoint limit, the plan, and with `apply`
 * the archive and the rewrite.
 */
export async function pruneLog(dir: string, request: PruneRequest, opts: PruneOptions): Promise<PruneReport> {
  const config = await readRetentionConfig(dir)
  checkFloor(request.retentionDays, config, join(dir, 'config.json'))
  const archive = request.archive || config.archive
  const origin = await readOrigin(dir)
  const release = opts.apply ? await acquireAuditLock(dir, opts.lockWaitMs === undefined ? DEFAULT_AUDIT_LOCK : {waitMs: opts.lockWaitMs}) : null
  try {
    const entries: LogEntry[] = []
    for await (const entry of readEntries(dir)) entries.push(entry)
    const limit = opts.keys ? await verifiedLimit(dir, opts.keys, request.now, opts.threshold) : await checkpointLimit(dir, origin, entries)
    const {selected, ...plan} = planPrune(entries, limit, {...request, archive}, config)
    const behind = await streamsBehind(dir, plan.last)
    if (!opts.apply) return {...plan, applied: false, archived: null, streamsBehind: behind}
    // A sink outage longer than the retention must not lose events: bodies a stream has not sent
    // yet are pruned only into a signed archive, or when the operator says so.
    const unsent = plan.first === null ? [] : behind.filter((b) => b.next <= plan.last!)
    if (selected.length > 0 && unsent.length > 0 && !archive && !request.ignoreStreams) {
      throw new AirlockError('USAGE', `${unsent.map((b) => `the SIEM stream ${b.cursor} has sent entries up to ${b.next}`).join('; ')}: pruning entries ${plan.first}..${plan.last} would drop bodies its sink never got; run \`airlock audit stream --once\` first, keep them with --archive, or pass --ignore-streams`, {streamsBehind: unsent, field: '--ignore-streams'})
    }
    if (archive && selected.length > 0 && !opts.signer) throw new AirlockError('KEY_MISSING', 'no audit key to seal the archive with: pass --audit-key FILE or set AIRLOCK_AUDIT_KEY', {})
    const result = await applyPrune(dir, origin, entries, {...plan, selected}, {signer: opts.signer, now: request.now, hooks: opts.hooks})
    return {...plan, applied: selected.length > 0, archived: result.archive, streamsBehind: behind}
  } finally {
    await release?.()
  }
}
