/**
 * Checkpoints published into the fleet repository (docs/audit.md, "Published checkpoints"): git as
 * the audit log's witness. Every clone holds, per log origin, the signed checkpoints published so
 * far and the RFC 6962 consistency proof from each to the next:
 *
 *   docs/evidence/audit/<origin slug>/<size, 20 digits>.checkpoint    the C2SP signed note, byte for byte
 *   docs/evidence/audit/<origin slug>/<size, 20 digits>.consistency   from the second on: the proof from the previous one
 *
 * This module owns the layout and the proof file's format, and reads what a commit holds. It
 * checks form (a note that parses, a checkpoint whose origin and size are the ones its path
 * names, a proof that parses) but not signatures: a published checkpoint was verified against
 * the trust of the commit it was published on, and the keys of a later trust policy may differ.
 */
import {AirlockError} from '../errors.js'
import {DEFAULT_LIMITS, type Limits} from '../limits.js'
import {CHECKPOINT_FILE, CONSISTENCY_FILE} from '../manifests/kinds.js'
import {EVIDENCE_DIR} from '../manifests/models.js'
import type {Repository} from '../repo/repository.js'
import {parseCheckpoint, parseNote} from './note.js'

/** Where published checkpoints live: one folder per log origin. */
export const PUBLISHED_DIR = `${EVIDENCE_DIR}/audit`

/** The first line of a consistency proof file. */
export const CONSISTENCY_HEADER = 'airlock.audit.consistency/v1'

/** Hashes a consistency proof may hold: 2·log2(2^53) is far below it. */
const MAX_PROOF_HASHES = 128

/** The longest origin slug (a folder name, well under every file system's limit). */
const MAX_SLUG = 200

const HASH_BYTES = 32

/**
 * The folder name of an origin: letters a–z, digits, `.` and `-` stay; `/` becomes `_`; every
 * other byte (upper case too, for case-insensitive file systems) becomes `~` and two hex digits,
 * as does a leading dot. Injective, so two origins never share a folder.
 */
export function originSlug(origin: string): string {
  let out = ''
  for (const byte of Buffer.from(origin, 'utf8')) {
    const c = String.fromCharCode(byte)
    if (/[a-z0-9-]/.test(c) || (c === '.' && out !== '')) out += c
    else if (c === '/') out += '_'
    else out += `~${byte.toString(16).padStart(2, '0')}`
  }
  if (out === '') throw invalid('BAD_ORIGIN', 'the checkpoint\'s origin is empty')
  if (out.length > MAX_SLUG) throw invalid('BAD_ORIGIN', `the checkpoint's origin makes a folder name of ${out.length} characters, more than ${MAX_SLUG}`)
  return out
}

/** A tree size as a file name: 20 decimal digits, so names sort as sizes do. */
export function sizeName(size: number): string {
  return String(size).padStart(20, '0')
}

export function checkpointPath(origin: string, size: number): string {
  return `${PUBLISHED_DIR}/${originSlug(origin)}/${sizeName(size)}.checkpoint`
}

export function consistencyPath(origin: string, size: number): string {
  return `${PUBLISHED_DIR}/${originSlug(origin)}/${sizeName(size)}.consistency`
}


function invalid(reason: string, message: string, details: Record<string, unknown> = {}): AirlockError {
  return new AirlockError('AUDIT_CHECKPOINT_INVALID', message, {reason, ...details})
}

/** Canonical base64 of exactly 32 bytes, or null. */
export function decodeHash(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) return null
  const bytes = Buffer.from(text, 'base64')
  return bytes.length === HASH_BYTES && bytes.toString('base64') === text ? new Uint8Array(bytes) : null
}

export function encodeHash(hash: Uint8Array): string {
  return Buffer.from(hash).toString('base64')
}

/** An RFC 6962 consistency proof between two tree sizes of one log. */
export interface ConsistencyFile {
  oldSize: number
  newSize: number
  proof: Uint8Array[]
}

/**
 * The proof file: the header, the old size, the new size, then the proof's hashes in base64, one
 * a line, each line ending with a newline (the same base64 a checkpoint's root hash is written in).
 */
export function formatConsistency(c: ConsistencyFile): string {
  return [CONSISTENCY_HEADER, String(c.oldSize), String(c.newSize), ...c.proof.map(encodeHash)].join('\n') + '\n'
}

/** Reads a proof file strictly: a located MALFORMED for anything else. */
export function parseConsistency(text: string, file: string): ConsistencyFile {
  const bad = (line: number, why: string) => new AirlockError('MALFORMED', `${file}:${line}: ${why}`, {file, line})
  if (!text.endsWith('\n')) throw bad(text.split('\n').length, 'the last line does not end with a newline')
  const lines = text.slice(0, -1).split('\n')
  if (lines[0] !== CONSISTENCY_HEADER) throw bad(1, `not ${CONSISTENCY_HEADER}`)
  const size = (i: number, what: string) => {
    const s = lines[i]
    if (s === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(s) || !Number.isSafeInteger(Number(s))) throw bad(i + 1, `the ${what} is not a decimal tree size`)
    return Number(s)
  }
  const oldSize = size(1, 'old size')
  const newSize = size(2, 'new size')
  if (!(0 < oldSize && oldSize < newSize)) throw bad(3, `a consistency proof goes from a smaller non-empty tree to a larger one (${oldSize} → ${newSize})`)
  const hashes = lines.slice(3)
  if (hashes.length > MAX_PROOF_HASHES) throw bad(4 + MAX_PROOF_HASHES, `more than ${MAX_PROOF_HASHES} proof hashes`)
  const proof = hashes.map((h, i) => {
    const hash = decodeHash(h)
    if (!hash) throw bad(i + 4, 'not a 32-byte hash in canonical base64')
    return hash
  })
  return {oldSize, newSize, proof}
}

/** A checkpoint as a commit holds it. */
export interface PublishedCheckpoint {
  /** Repository path of the note. */
  path: string
  /** Its blob id at the commit read. */
  oid: string
  origin: string
  size: number
  /** Base64 root hash, as the note's third line. */
  root: string
  /** The whole signed note, as committed. */
  text: string
  /** The proof from the previous checkpoint of this origin (null for the first). */
  consistency: {path: string; oid: string; oldSize: number; proof: string[]} | null
}

/** One checkpoint file's note, read and checked against where it lies. */
export function readCheckpointFile(path: string, text: string, limits: Limits): {origin: string; size: number; root: string} {
  let checkpoint
  try {
    checkpoint = parseCheckpoint(parseNote(text, {maxBytes: limits.maxFileBytes}).text)
  } catch (error) {
    if (!(error instanceof AirlockError)) throw error
    throw invalid('MALFORMED', `${path}: not a signed checkpoint (${error.message})`, {file: path})
  }
  const [slug, name] = path.slice(PUBLISHED_DIR.length + 1).split('/') as [string, string]
  if (originSlug(checkpoint.origin) !== slug) throw invalid('MISPLACED', `${path}: a checkpoint of origin ${JSON.stringify(checkpoint.origin)} belongs in ${PUBLISHED_DIR}/${originSlug(checkpoint.origin)}/`, {file: path})
  if (`${sizeName(checkpoint.size)}.checkpoint` !== name) throw invalid('MISPLACED', `${path}: the checkpoint's tree size is ${checkpoint.size}, not the one its name says`, {file: path})
  return {origin: checkpoint.origin, size: checkpoint.size, root: encodeHash(checkpoint.rootHash)}
}

/**
 * Every checkpoint `commit` holds under docs/evidence/audit/ (only those of `opts.origin` when
 * given), by origin and then size, each with the consistency proof published beside it. A file
 * that does not read, lies in another origin's folder or under another size, or a proof that does
 * not join the checkpoint to the one before it, is AUDIT_CHECKPOINT_INVALID naming the file.
 */
export async function listPublished(repo: Repository, commit: string, opts: {origin?: string; limits?: Limits} = {}): Promise<PublishedCheckpoint[]> {
  const limits = opts.limits ?? DEFAULT_LIMITS
  const folders = opts.origin === undefined ? (await repo.listDir(commit, PUBLISHED_DIR)).filter((e) => e.type === 'tree') : [{path: `${PUBLISHED_DIR}/${originSlug(opts.origin)}`}]
  const out: PublishedCheckpoint[] = []
  for (const folder of folders) {
    const files = (await repo.listDir(commit, folder.path)).filter((e) => e.type === 'blob')
    const proofs = new Map(files.filter((f) => CONSISTENCY_FILE.test(f.path)).map((f) => [f.path, f]))
    const mine: PublishedCheckpoint[] = []
    for (const f of files.filter((e) => CHECKPOINT_FILE.test(e.path)).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const text = await repo.readBlob(f.oid)
      const read = readCheckpointFile(f.path, text, limits)
      const previous = mine.at(-1)
      if (previous && previous.origin !== read.origin) throw invalid('MISPLACED', `${f.path}: origin ${JSON.stringify(read.origin)} beside ${previous.path} of ${JSON.stringify(previous.origin)}`, {file: f.path})
      const proofFile = proofs.get(f.path.replace(/\.checkpoint$/, '.consistency'))
      let consistency: PublishedCheckpoint['consistency'] = null
      if (proofFile) {
        let c: ConsistencyFile
        try {
          c = parseConsistency(await repo.readBlob(proofFile.oid), proofFile.path)
        } catch (error) {
          if (!(error instanceof AirlockError)) throw error
          throw invalid('MALFORMED', error.message, {file: proofFile.path})
        }
        if (c.newSize !== read.size || c.oldSize !== previous?.size) {
          throw invalid('INCONSISTENT', `${proofFile.path}: a proof from size ${c.oldSize} to ${c.newSize}, but the checkpoint before ${sizeName(read.size)} is ${previous ? `of size ${previous.size}` : 'none'}`, {file: proofFile.path})
        }
        consistency = {path: proofFile.path, oid: proofFile.oid, oldSize: c.oldSize, proof: c.proof.map(encodeHash)}
      } else if (previous) throw invalid('INCONSISTENT', `${f.path}: no consistency proof from the checkpoint of size ${previous.size} published before it`, {file: f.path})
      mine.push({path: f.path, oid: f.oid, ...read, text, consistency})
    }
    if (opts.origin !== undefined && mine.some((c) => c.origin !== opts.origin)) throw invalid('MISPLACED', `${folder.path}: holds checkpoints of another origin than ${JSON.stringify(opts.origin)}`, {file: folder.path})
    out.push(...mine)
  }
  return out
}

/** The last checkpoint published for `origin` at `commit`, or null. */
export async function lastPublished(repo: Repository, commit: string, origin: string, limits?: Limits): Promise<PublishedCheckpoint | null> {
  return (await listPublished(repo, commit, {origin, ...(limits ? {limits} : {})})).at(-1) ?? null
}

/** A published checkpoint with the time it was published: what `audit verify` and the report read. */
export interface WitnessedCheckpoint extends PublishedCheckpoint {
  /**
   * Ledger time (ISO 8601): the `appliedAt` of the signed receipt of the change that published it
   * (the commit that added it, as history verification dates it); for a checkpoint no receipt
   * names, the date of the commit that added it.
   */
  publishedAt: string
}

/**
 * Every checkpoint published at `commit` (only `opts.origin`'s when given) with its publication
 * time. Reads the receipts of audit-publish changes (their file names say the operation; each is
 * parsed and must say it too), not the whole ledger.
 */
export async function publishedCheckpoints(repo: Repository, commit: string, opts: {origin?: string; limits?: Limits} = {}): Promise<WitnessedCheckpoint[]> {
  const limits = opts.limits ?? DEFAULT_LIMITS
  const list = await listPublished(repo, commit, opts)
  if (list.length === 0) return []
  const {listReceipts, parseReceipt} = await import('../evidence/ledger.js')
  const times = new Map<string, string>()
  for (const r of await listReceipts(repo, commit)) {
    if (!/-audit-publish-[^/]*\.json$/.test(r.path)) continue
    const receipt = parseReceipt(await repo.readBlob(r.oid), r.path, limits)
    const p = receipt.statement.predicate as {operation?: unknown; changes?: Array<{path?: unknown}>}
    if (p.operation !== 'audit-publish') continue
    for (const c of p.changes ?? []) if (typeof c.path === 'string' && !times.has(c.path)) times.set(c.path, receipt.time.toISOString())
  }
  const out: WitnessedCheckpoint[] = []
  for (const c of list) out.push({...c, publishedAt: times.get(c.path) ?? (await addedAt(repo, commit, c.path, c.oid))})
  return out
}

/** The date of the commit that added `path` (as `oid`), following first parents back from `commit`. */
async function addedAt(repo: Repository, commit: string, path: string, oid: string): Promise<string> {
  let c = await repo.readCommit(commit)
  for (;;) {
    const parent = c.parents[0]
    if (!parent || (await repo.oidAt(parent, path)) !== oid) return new Date(c.time * 1000).toISOString()
    c = await repo.readCommit(parent)
  }
}

/**
 * What git witnesses for this host's log: the checkpoints published for its origin, and any other
 * origin published for the same host — by the machine's host name or by the host the log's own
 * origin names. A host whose log now has another origin than the one it published under replaced
 * its log after publishing: nothing in the new log can show the old one was kept.
 */
export async function witnessFor(repo: Repository, commit: string, origin: string, host: string, limits: Limits = DEFAULT_LIMITS): Promise<{witnessed: WitnessedCheckpoint[]; replaced: string[]}> {
  const {hostOfOrigin, originHostName} = await import('./log.js')
  const hosts = new Set([originHostName(host), hostOfOrigin(origin)].filter((h): h is string => h !== null))
  const all = await listPublished(repo, commit, {limits})
  const replaced = [...new Set(all.filter((c) => c.origin !== origin && hosts.has(hostOfOrigin(c.origin) ?? '')).map((c) => c.origin))]
  return {witnessed: await publishedCheckpoints(repo, commit, {origin, limits}), replaced}
}

/** The one line saying a log was replaced after publishing (audit verify and the audit-integrity gate). */
export function replacedMessage(origin: string, replaced: readonly string[]): string {
  return `this host published checkpoints under ${replaced.length === 1 ? 'origin' : 'origins'} ${replaced.join(', ')}, but its log's origin is now ${origin}: a log replaced after publishing (restore the published log, or have the fleet record its retirement)`
}

/** What `audit publish` asks the pipeline for, and what it read to ask it. */
export interface PublishRequest {
  request: {kind: 'audit-publish'; checkpoint: string; proof: string[]}
  origin: string
  /** The local checkpoint's path, tree size and root (base64). */
  checkpoint: {path: string; size: number; root: string}
  /** The last checkpoint published for this origin at the commit read (null: none yet). */
  previous: {path: string; size: number; root: string} | null
}

/**
 * The request publishing the newest checkpoint of the log in `dir`: its signed note, byte for
 * byte, and the consistency proof from the last checkpoint published for the log's origin at
 * `commit`, computed from the log's leaves (SHA-256(0x00 ‖ fingerprint) of each entry). Nothing
 * here is trusted: the change kind verifies the note against the base's audit keys and the proof
 * against both signed roots. With nothing newer published, the proof is empty and the pipeline
 * says whether the checkpoint is already published, a rollback or a fork.
 */
export async function publishRequest(repo: Repository, commit: string, dir: string, limits: Limits = DEFAULT_LIMITS): Promise<PublishRequest> {
  const [{readFile}, {join}, log, {consistencyProofAt, leafHash}] = await Promise.all([import('node:fs/promises'), import('node:path'), import('./log.js'), import('./merkle.js')])
  const origin = await log.readOrigin(dir)
  const size = await log.latestCheckpointSize(dir)
  if (size === 0) throw new AirlockError('USAGE', `the audit log in ${dir} has no checkpoint yet; make one with \`airlock audit checkpoint\``, {dir})
  const path = join(dir, log.AUDIT_FILES.checkpoints, log.checkpointName(size))
  const text = await readFile(path, 'utf8').catch((error: unknown) => {
    throw new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${path}: ${(error as Error).message}`, {path})
  })
  let checkpoint
  try {
    checkpoint = parseCheckpoint(parseNote(text, {maxBytes: limits.maxFileBytes}).text)
  } catch (error) {
    if (!(error instanceof AirlockError)) throw error
    throw invalid('MALFORMED', `${path}: not a signed checkpoint (${error.message})`, {file: path})
  }
  if (checkpoint.origin !== origin || checkpoint.size !== size) {
    throw invalid('MISPLACED', `${path}: a checkpoint of ${JSON.stringify(checkpoint.origin)} at size ${checkpoint.size}, in the log of ${JSON.stringify(origin)} under size ${size}`, {file: path})
  }
  const previous = await lastPublished(repo, commit, origin, limits)
  const proof: string[] = []
  if (previous && previous.size < size) {
    // One buffer of leaf hashes (32 bytes an entry), not an object per entry.
    const leaves = Buffer.alloc(size * 32)
    let n = 0
    for await (const entry of log.readEntries(dir)) {
      if (n === size) break
      if (entry.index !== n) throw new AirlockError('AUDIT_TAMPERED', `${join(dir, log.AUDIT_FILES.events)}:${entry.lineNumber}: entry ${entry.index} where entry ${n} belongs; run \`airlock audit verify\``, {line: entry.lineNumber})
      leaves.set(leafHash(Buffer.from(entry.fingerprint, 'hex')), n * 32)
      n++
    }
    if (n < size) throw new AirlockError('AUDIT_TAMPERED', `the audit log in ${dir} holds ${n} entries, fewer than its checkpoint of size ${size}; run \`airlock audit verify\``, {dir, entries: n, size})
    proof.push(...consistencyProofAt((i) => leaves.subarray(i * 32, i * 32 + 32), previous.size, size).map(encodeHash))
  }
  return {
    request: {kind: 'audit-publish', checkpoint: text, proof},
    origin,
    checkpoint: {path, size, root: encodeHash(checkpoint.rootHash)},
    previous: previous ? {path: previous.path, size: previous.size, root: previous.root} : null,
  }
}
