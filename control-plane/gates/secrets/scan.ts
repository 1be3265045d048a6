/**
 * The embedded secret scan: secretlint's recommended preset (engine.ts) over the files of a
 * repository's work tree, in bounded parallel. What it scans is git's own list: every tracked
 * file, plus every untracked file git does not ignore (`git ls-files --cached --others
 * --exclude-standard`), so a secret planted in a new file is found before it is committed, and
 * build output or dependencies the repository ignores are not read. Binary files (a NUL in the
 * first 8,000 bytes, as git decides) and files over `Limits.maxSecretScanFileBytes` are skipped
 * and counted; links are not followed.
 *
 * Findings leave it only as rule id, file, line, column and the keyed fingerprint (HMAC-SHA256 of
 * the secret under the fleet's scan key): never the secret, a part of it, a masked form or its
 * length — messages are airlock's own, written from the rule id.
 */
import {createHash, createHmac} from 'node:crypto'
import {availableParallelism} from 'node:os'
import {join} from 'node:path'
import {Worker} from 'node:worker_threads'
import {AirlockError} from '../../errors.js'
import type {Finding} from '../types.js'
import {SECRETLINT_PRESET, SECRETLINT_VERSION, scanBytes, scanFile, type FileOutcome, type WorkerAnswer, type WorkerJob} from './engine.js'

export {airlockRuleId, fingerprintOf, scanText, SECRETLINT_PRESET, SECRETLINT_VERSION} from './engine.js'

/** The SARIF/Finding tool name of the embedded scanner. */
export const EMBEDDED_TOOL = 'airlock-secret-scan'

/** The environment variable holding the fleet's secret scan key (a CI secret). */
export const SCAN_KEY_ENV = 'AIRLOCK_SECRET_SCAN_KEY'
/** Shortest scan key accepted from the environment, in characters. */
export const MIN_SCAN_KEY_CHARS = 32

/**
 * Where the fingerprint key came from:
 * - `env`: AIRLOCK_SECRET_SCAN_KEY, a secret of the fleet's CI: fingerprints reveal nothing, even
 *   of a short or guessable secret, to whoever lacks the key.
 * - `anchor-derived`: derived from the fleet's pinned trust anchor commit with a domain-separation
 *   string. The anchor is public, so anyone can recompute a fingerprint of a guess: it hides
 *   high-entropy secrets (tokens, keys) only, not a short password.
 * - `public`: no anchor known; a fixed public key: the same caveat, and not fleet-specific.
 */
export type ScanKeySource = 'env' | 'anchor-derived' | 'public'

export interface ScanKey {
  key: Uint8Array
  source: ScanKeySource
  /** A short public id of the key (HMAC of a constant under it): tells which key a baseline was made under. */
  id: string
}

const DOMAIN = 'airlock/secret-scan/v1'

function keyFrom(source: ScanKeySource, material: string): ScanKey {
  const key = createHmac('sha256', `${DOMAIN}/${source}`).update(material, 'utf8').digest()
  return {key, source, id: createHmac('sha256', key).update(`${DOMAIN}/key-id`).digest('hex').slice(0, 16)}
}

/**
 * The fleet's scan key: AIRLOCK_SECRET_SCAN_KEY when set (at least 32 characters), else derived
 * from the pinned trust anchor, else public. The key's value never appears in an error.
 */
export function resolveScanKey(opts: {env?: string | undefined; anchor?: string | null | undefined}): ScanKey {
  if (opts.env !== undefined && opts.env !== '') {
    if (opts.env.length < MIN_SCAN_KEY_CHARS) throw new AirlockError('INVALID_INPUT', `${SCAN_KEY_ENV} is shorter than ${MIN_SCAN_KEY_CHARS} characters; use a random key (e.g. openssl rand -hex 32)`, {field: SCAN_KEY_ENV})
    return keyFrom('env', opts.env)
  }
  if (opts.anchor) return keyFrom('anchor-derived', opts.anchor.toLowerCase())
  return keyFrom('public', '')
}

export interface SecretScanOptions {
  /** The work tree. */
  dir: string
  /** Lists the files to scan (Repository.unignoredFiles: tracked and untracked-not-ignored). */
  repo: {unignoredFiles(): Promise<Array<{path: string; tracked: boolean}>>; treeFiles?(commit: string): Promise<Map<string, {oid: string; mode: string}>>; readBlobBytes?(oid: string): Promise<Buffer>}
  /**
   * The commit a receipt will speak for: each of its files is scanned as committed wherever the
   * work tree does not hold exactly that (edited, deleted, swapped during the scan, hidden by
   * skip-worktree or a sparse checkout), so no work-tree game hides what the commit holds.
   */
  commit?: string
  key: ScanKey
  /** Files larger than this are skipped (and named). */
  maxFileBytes: number
  /** Worker threads; 0 scans in this thread. Default: up to 4 (the machine's parallelism) when there are many files. */
  threads?: number
  signal?: AbortSignal
}

export interface SecretScanReport {
  tool: typeof EMBEDDED_TOOL
  engine: string
  findings: Finding[]
  /** Files listed by git (tracked, and untracked not ignored). */
  listed: number
  untracked: number
  scanned: number
  /** Bytes of text scanned. */
  bytes: number
  skipped: {binary: number; large: number; missing: number; notRegular: number; unreadable: number}
  /** Files read otherwise than as UTF-8 text in one piece: with NULs (binary, UTF-16, UTF-32), larger than one window. */
  decoded: {binary: number; windowed: number}
  /** Files of the commit scanned from its blobs, the work tree not holding them as committed. */
  fromCommit: number
  /** Files over the size limit (the first 20), which the scan did not read. */
  largeFiles: string[]
  /** Files that could not be read (the first 20): the scan did not see them. */
  unreadable: string[]
  threads: number
  fingerprintKey: ScanKeySource
  keyId: string
}

const MAX_NAMED = 20
/** Files scanned in this thread at once (reads overlap; the rules run one at a time). */
const IN_THREAD_CONCURRENCY = 8
/** Below this many files, worker threads cost more than they save. */
const THREAD_MIN_FILES = 64

const short = (id: string) => id.replace(/^secret\//, '')

/** airlock's message for a finding: the rule and where, never anything of the value. */
export function secretMessage(ruleId: string, fingerprint: string): string {
  return `possible secret (${short(ruleId)}); value not shown, fingerprint ${fingerprint.slice(0, 16)}`
}

/** The engine's module, as a worker runs it: `engine.js` from dist/, `engine.ts` from sources. */
function engineUrl(): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './engine.ts' : './engine.js', import.meta.url)
}

type Outcome = FileOutcome | {status: 'unreadable'; bytes: 0}

/** Scans `files` in this thread, `IN_THREAD_CONCURRENCY` at a time. */
async function scanHere(dir: string, files: string[], opts: SecretScanOptions, done: (i: number, o: Outcome) => void): Promise<void> {
  let next = 0
  const lane = async () => {
    while (next < files.length) {
      opts.signal?.throwIfAborted()
      const i = next++
      let o: Outcome
      try {
        o = await scanFile(join(dir, files[i]!), files[i]!, opts.maxFileBytes, opts.key.key)
      } catch {
        o = {status: 'unreadable', bytes: 0}
      }
      done(i, o)
    }
  }
  await Promise.all(Array.from({length: Math.min(IN_THREAD_CONCURRENCY, files.length)}, lane))
}

/** Scans `files` on `threads` worker threads, two files in flight per worker. */
async function scanOnWorkers(dir: string, files: string[], threads: number, opts: SecretScanOptions, done: (i: number, o: Outcome) => void): Promise<void> {
  const workers = Array.from({length: threads}, () => new Worker(engineUrl(), {workerData: {airlockSecretScan: true, key: opts.key.key}}))
  try {
    await new Promise<void>((resolve, reject) => {
      let next = 0
      let pending = files.length
      if (pending === 0) return resolve()
      const onAbort = () => reject(opts.signal!.reason ?? new Error('aborted'))
      opts.signal?.addEventListener('abort', onAbort, {once: true})
      const send = (w: Worker) => {
        if (next >= files.length) return
        const i = next++
        w.postMessage({id: i, abs: join(dir, files[i]!), file: files[i]!, maxBytes: opts.maxFileBytes} satisfies WorkerJob)
      }
      for (const w of workers) {
        w.on('message', (a: WorkerAnswer) => {
          done(a.id, 'outcome' in a ? a.outcome : {status: 'unreadable', bytes: 0})
          if (--pending === 0) {
            opts.signal?.removeEventListener('abort', onAbort)
            resolve()
          } else send(w)
        })
        // A worker's error is the engine failing, never a file's content: its class only.
        w.on('error', (e) => reject(new AirlockError('INVALID_INPUT', `secret scan worker failed (${e.name})`)))
        send(w)
        send(w)
      }
    })
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
}

/** Scans the work tree's tracked and untracked-not-ignored files. */
export async function scanWorkTree(opts: SecretScanOptions): Promise<SecretScanReport> {
  const listed = (await opts.repo.unignoredFiles()).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const files = listed.map((f) => f.path)
  const threads = opts.threads ?? (files.length >= THREAD_MIN_FILES ? Math.min(4, availableParallelism()) : 0)
  const outcomes: Outcome[] = new Array(files.length)
  const done = (i: number, o: Outcome) => void (outcomes[i] = o)
  if (threads > 0 && files.length > 0) await scanOnWorkers(opts.dir, files, threads, opts, done)
  else await scanHere(opts.dir, files, opts, done)
  const report: SecretScanReport = {
    tool: EMBEDDED_TOOL,
    engine: `secretlint ${SECRETLINT_PRESET}@${SECRETLINT_VERSION}`,
    findings: [],
    listed: files.length,
    untracked: listed.filter((f) => !f.tracked).length,
    scanned: 0,
    bytes: 0,
    skipped: {binary: 0, large: 0, missing: 0, notRegular: 0, unreadable: 0},
    decoded: {binary: 0, windowed: 0},
    fromCommit: 0,
    largeFiles: [],
    unreadable: [],
    threads,
    fingerprintKey: opts.key.source,
    keyId: opts.key.id,
  }
  for (const [i, o] of outcomes.entries()) {
    const file = files[i]!
    if (o.status === 'scanned') {
      report.scanned++
      report.bytes += o.bytes
      if (o.decoded === 'binary') report.decoded.binary++
      if (o.windows) {
        report.decoded.windowed++
        if (report.largeFiles.length < MAX_NAMED) report.largeFiles.push(file)
      }
      for (const f of o.findings) report.findings.push({tool: EMBEDDED_TOOL, ruleId: f.ruleId, level: 'error', message: secretMessage(f.ruleId, f.fingerprint), file, line: f.line, column: f.column, fingerprint: f.fingerprint})
    } else if (o.status === 'unreadable') {
      report.skipped.unreadable++
      if (report.unreadable.length < MAX_NAMED) report.unreadable.push(file)
    } else if (o.status === 'large') {
      report.skipped.large++
      if (report.largeFiles.length < MAX_NAMED) report.largeFiles.push(file)
    } else if (o.status === 'binary') report.skipped.binary++
    else if (o.status === 'missing') report.skipped.missing++
    else report.skipped.notRegular++
  }
  if (opts.commit && opts.repo.treeFiles && opts.repo.readBlobBytes) await scanCommitted(opts, files, outcomes, report)
  return report
}

/** The commit's files the work tree does not hold as committed, scanned from their blobs. */
async function scanCommitted(opts: SecretScanOptions, files: string[], outcomes: Outcome[], report: SecretScanReport): Promise<void> {
  const at = new Map(files.map((f, i) => [f, outcomes[i]!]))
  const seen = new Set(report.findings.map((f) => `${f.file}\0${f.ruleId}\0${f.line}\0${f.fingerprint}`))
  const tree = await opts.repo.treeFiles!(opts.commit!)
  const push = (file: string, r: {findings: Array<{ruleId: string; line: number; column: number; fingerprint: string}>}) => {
    for (const f of r.findings) {
      const key = `${file}\0${f.ruleId}\0${f.line}\0${f.fingerprint}`
      if (seen.has(key)) continue
      seen.add(key)
      report.findings.push({tool: EMBEDDED_TOOL, ruleId: f.ruleId, level: 'error', message: secretMessage(f.ruleId, f.fingerprint), file, line: f.line, column: f.column, fingerprint: f.fingerprint})
    }
  }
  // The paths themselves: a name can hold a secret (each path is one line; a finding names its path).
  const paths = [...tree.keys()]
  const named = await scanBytes(Buffer.from(paths.join('\n')), '.', opts.maxFileBytes, opts.key.key)
  for (const f of named.findings) push(paths[f.line - 1] ?? '.', {findings: [{...f, line: 1}]})
  for (const [file, entry] of tree) {
    // A link's blob is its target text, which can hold a secret as well as any file (submodules have no blob here).
    if (entry.mode !== '100644' && entry.mode !== '100755' && entry.mode !== '120000') continue
    const o = at.get(file)
    if (o?.status === 'scanned' && o.oid === entry.oid) continue
    opts.signal?.throwIfAborted()
    const r = await scanBytes(await opts.repo.readBlobBytes!(entry.oid), file, opts.maxFileBytes, opts.key.key)
    report.fromCommit++
    push(file, r)
  }
}

/** A fingerprint for a finding without a secret (sandbox, policy): stable across line moves. */
export function findingFingerprint(parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex')
}
