/**
 * Inclusion proofs of audit entries: `proveEntry` writes a C2SP tlog-proof (the entry's index, its
 * audit path, the signed checkpoint) from the log's tiles; `checkEntryProof` is the check a third
 * party runs offline with nothing but the proof, the entry's line and the log's verifier keys.
 *
 * The prover trusts nothing it keeps: the tiles are a cache, so a proof is written only when the
 * root they give equals the checkpoint's (the tiles are rebuilt once from the log when it does
 * not), and only for an entry whose line still hashes to its fingerprint.
 */
import {readdir} from 'node:fs/promises'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {readRegularFile} from '../repo/files.js'
import {leafHash, verifyInclusion} from './merkle.js'
import {formatTlogProof, parseCheckpoint, parseNote, parseTlogProof, verifyNote, type Checkpoint, type VerifierKey} from './note.js'
import {fingerprintOf, parseLine, type LogEntry} from './entry.js'
import {readOrigin} from './log.js'
import {AUDIT_FILES} from './store.js'
import {consistencyFromTiles, inclusionFromTiles, withTiles, type TileLimits} from './tiles.js'

export const CHECKPOINTS_FOLDER = 'checkpoints'
const CHECKPOINT_NAME = /^(\d{20})\.checkpoint$/
/** The largest checkpoint read: a note with a hundred signatures is a few KiB. */
const MAX_CHECKPOINT_BYTES = 1024 * 1024

export interface EntryProof {
  /** The C2SP tlog-proof. */
  text: string
  index: number
  /** The checkpoint's tree size. */
  size: number
  origin: string
  /** The entry's fingerprint, 64 hex. */
  fingerprint: string
  /** The entry's line as the log holds it (no newline): what the proof's reader checks with it. */
  entry: string
  /** Where the checkpoint came from: its file, or `given` for a note passed as text. */
  checkpoint: string
}

/** A signed checkpoint as read: its note verbatim, what it says, and where it came from. */
interface LoadedCheckpoint {
  note: string
  tree: Checkpoint
  source: string
}

/**
 * The inclusion proof of entry `index` in a checkpoint of the log in `dir`: `opts.checkpoint` (a
 * file, or the note itself), else the newest under checkpoints/.
 *
 * 1. The checkpoint must be a checkpoint note of this log (its origin file), else AUDIT_CHECKPOINT_INVALID.
 * 2. The entry must be in its tree, else USAGE: a newer checkpoint is needed first.
 * 3. The log must hold the checkpoint's entries and hash to its root, else AUDIT_TAMPERED (the
 *    tiles are rebuilt from the log once before saying so: a stale cache is not tampering).
 * 4. The entry's line must hash to the fingerprint it states, else AUDIT_TAMPERED: a proof of an
 *    edited line would prove the original, not what the log shows.
 */
export async function proveEntry(dir: string, index: number, opts: {checkpoint?: string; limits?: Partial<TileLimits>} = {}): Promise<EntryProof> {
  if (!Number.isSafeInteger(index) || index < 0) throw new AirlockError('USAGE', `ENTRY: ${index} is not an entry index (a whole number from 0)`, {field: 'ENTRY'})
  const cp = await loadCheckpoint(dir, opts.checkpoint)
  // Step 1.
  const origin = await readOrigin(dir)
  if (cp.tree.origin !== origin) {
    throw new AirlockError('AUDIT_CHECKPOINT_INVALID', `${cp.source}: a checkpoint of log ${JSON.stringify(cp.tree.origin)}, not of this one (${JSON.stringify(origin)})`, {file: cp.source, origin: cp.tree.origin, expected: origin})
  }
  // Step 2.
  const {size, rootHash} = cp.tree
  if (index >= size) {
    throw new AirlockError('USAGE', `ENTRY: entry ${index} is not in ${cp.source} (${size} entries, 0 to ${size - 1}); run \`airlock audit checkpoint\` first, then prove it`, {field: 'ENTRY', index, size})
  }
  return withTiles(
    dir,
    async (tiles) => {
      // Step 3.
      const holds = () => tiles.tree.size >= size && Buffer.from(tiles.tree.root(size)).equals(rootHash)
      if (!holds()) {
        await tiles.rebuild(`the tiles' root at size ${size} is not ${cp.source}'s`)
        if (tiles.tree.size < size) throw new AirlockError('AUDIT_TAMPERED', `the log holds ${tiles.tree.size} entries, fewer than the ${size} of ${cp.source}`, {size: tiles.tree.size, checkpoint: size})
        if (!holds()) throw new AirlockError('AUDIT_TAMPERED', `the log's first ${size} entries do not hash to the root of ${cp.source}: an entry was changed, removed or reordered (run \`airlock audit verify\` to find it)`, {size, checkpoint: cp.source})
      }
      // Step 4.
      const entry = await tiles.entry(index)
      if (!entry.pruned && fingerprintOf(entry.line).toString('hex') !== entry.fingerprint) {
        throw new AirlockError('AUDIT_TAMPERED', `${AUDIT_FILES.events} line ${entry.lineNumber} (entry ${index}): the line does not hash to the fingerprint it states`, {file: AUDIT_FILES.events, line: entry.lineNumber, index})
      }
      // The root can match while a hash below it is wrong (a leaf under an intact tile): the path is checked too.
      const leaf = leafHash(Buffer.from(entry.fingerprint, 'hex'))
      let proof = inclusionFromTiles(tiles.tree, index, size)
      if (!verifyInclusion(leaf, index, size, proof, rootHash)) {
        await tiles.rebuild(`the tiles' audit path of entry ${index} does not lead to ${cp.source}'s root`)
        proof = tiles.tree.size >= size ? inclusionFromTiles(tiles.tree, index, size) : []
        if (!verifyInclusion(leaf, index, size, proof, rootHash)) throw new AirlockError('AUDIT_TAMPERED', `entry ${index} is not in the tree of ${cp.source}: the log changed under it`, {index, checkpoint: cp.source})
      }
      return {
        text: formatTlogProof({index, proof, checkpoint: cp.note}),
        index,
        size,
        origin: cp.tree.origin,
        fingerprint: entry.fingerprint,
        entry: entry.line.toString('utf8'),
        checkpoint: cp.source,
      }
    },
    opts.limits,
  )
}

/** A consistency proof between two sizes of a log, with the roots it joins (as the tiles give them). */
export interface LogConsistency {
  oldSize: number
  newSize: number
  oldRoot: Uint8Array
  newRoot: Uint8Array
  proof: Uint8Array[]
}

/**
 * The RFC 6962 consistency proof from size `oldSize` to `newSize` of the log in `dir`, from its
 * tiles (logarithmic, not a scan). The roots come from the same tiles, so they are as trusted as
 * a cache: the caller compares them with the signed checkpoints it publishes (verifyConsistency
 * against those roots), and a mismatch means `airlock audit verify`, not a proof.
 */
export async function consistencyOf(dir: string, oldSize: number, newSize: number, opts: {limits?: Partial<TileLimits>} = {}): Promise<LogConsistency> {
  return withTiles(
    dir,
    (tiles) => {
      if (!Number.isSafeInteger(newSize) || newSize > tiles.tree.size) throw new AirlockError('USAGE', `the log holds ${tiles.tree.size} entries, not ${newSize}`, {size: tiles.tree.size, newSize})
      return {oldSize, newSize, oldRoot: tiles.tree.root(oldSize), newRoot: tiles.tree.root(newSize), proof: consistencyFromTiles(tiles.tree, oldSize, newSize)}
    },
    opts.limits,
  )
}

/** A checkpoint file, a checkpoint note given as text (it holds a newline), or the newest of the log's. */
async function loadCheckpoint(dir: string, given: string | undefined): Promise<LoadedCheckpoint> {
  let source: string
  let note: string
  if (given !== undefined && given.includes('\n')) {
    source = 'given'
    note = given
  } else {
    source = given ?? (await newestCheckpoint(dir))
    note = await readRegularFile(source, {maxBytes: MAX_CHECKPOINT_BYTES, label: source})
  }
  try {
    return {note, tree: parseCheckpoint(parseNote(note).text), source}
  } catch (error) {
    if (!(error instanceof AirlockError)) throw error
    throw new AirlockError('AUDIT_CHECKPOINT_INVALID', `${source}: not a signed checkpoint (${error.message})`, {...error.details, file: source})
  }
}

async function newestCheckpoint(dir: string): Promise<string> {
  const folder = join(dir, CHECKPOINTS_FOLDER)
  const names = await readdir(folder).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return []
    throw new AirlockError('AUDIT_UNAVAILABLE', `${folder}: cannot read (${error.code ?? error.message})`, {file: folder})
  })
  // Twenty digits: the names sort as the sizes do.
  const newest = names.filter((n) => CHECKPOINT_NAME.test(n)).sort().at(-1)
  if (!newest) throw new AirlockError('USAGE', `${folder}: no checkpoint yet; run \`airlock audit checkpoint\` first`, {file: folder})
  return join(folder, newest)
}

// ---------------------------------------------------------------------------------------------
// The offline check

/** Why a proof does not show an entry in a log; each names the attack it stops. */
export type ProofProblem =
  /** The checkpoint is signed by none of the keys given: a checkpoint anyone could have made. */
  | 'UNKNOWN_KEY'
  /** A known key's signature on the checkpoint does not verify: a forged or altered checkpoint. */
  | 'BAD_SIGNATURE'
  /** The entry is not an audit entry's line (or was given with more than one line). */
  | 'ENTRY_MALFORMED'
  /** The entry's body was removed under retention: its fingerprint proves nothing about an event. */
  | 'ENTRY_PRUNED'
  /** The line does not hash to the fingerprint it states: an edited entry. */
  | 'FINGERPRINT_MISMATCH'
  /** The entry's index (uid) is not the proof's: another entry than the one proven. */
  | 'INDEX_MISMATCH'
  /** The entry's log (chain_uid), or the origin asked for, is not the checkpoint's: a proof against another log. */
  | 'ORIGIN_MISMATCH'
  /** The audit path does not lead from the entry's leaf to the checkpoint's root: a tampered proof, or an entry not in that tree. */
  | 'NOT_INCLUDED'

export interface ProofCheck {
  ok: boolean
  index: number
  size: number
  origin: string
  /** The entry's fingerprint as the line states it, when it could be read. */
  fingerprint?: string
  /** The keys whose signatures on the checkpoint verified (C2SP verifier key form). */
  signedBy: string[]
  problem?: ProofProblem
  message?: string
}

/**
 * Checks that `proofText` (a C2SP tlog-proof) shows `entryLine` in a checkpoint signed by one of
 * `keys`, in this order:
 *
 * 1. The checkpoint note is signed by a known key (UNKNOWN_KEY, BAD_SIGNATURE).
 * 2. The entry is one line of an audit entry with its body (ENTRY_MALFORMED, ENTRY_PRUNED).
 * 3. The line hashes to its fingerprint, by docs/audit.md's rule (FINGERPRINT_MISMATCH).
 * 4. The entry's uid is the proof's index (INDEX_MISMATCH).
 * 5. The entry's chain_uid, and `opts.origin` when given, is the checkpoint's origin (ORIGIN_MISMATCH).
 * 6. The audit path leads from leaf SHA-256(0x00 ‖ fingerprint) to the checkpoint's root (NOT_INCLUDED).
 *
 * A proof that cannot be read throws MALFORMED (note.ts names the line); a trust list that cannot
 * be used throws KEY_INVALID. Pure: no file, clock or network.
 */
export function checkEntryProof(proofText: string | Uint8Array, entryLine: string | Uint8Array, keys: readonly VerifierKey[], opts: {origin?: string} = {}): ProofCheck {
  const proof = parseTlogProof(proofText)
  const {index, tree} = proof
  const result: ProofCheck = {ok: false, index, size: tree.size, origin: tree.origin, signedBy: []}
  const fail = (problem: ProofProblem, message: string): ProofCheck => ({...result, problem, message})
  // Step 1.
  try {
    result.signedBy = verifyNote(proof.note, keys).verifiedBy.map((k) => k.text)
  } catch (error) {
    if (error instanceof AirlockError && (error.code === 'UNKNOWN_KEY' || error.code === 'BAD_SIGNATURE')) return fail(error.code, `checkpoint: ${error.message}`)
    throw error
  }
  // Step 2.
  let line = typeof entryLine === 'string' ? Buffer.from(entryLine, 'utf8') : Buffer.from(entryLine)
  if (line.at(-1) === 0x0a) line = line.subarray(0, -1)
  if (line.includes(0x0a)) return fail('ENTRY_MALFORMED', 'the entry holds more than one line; give the one line of the entry proven')
  let entry: LogEntry
  try {
    entry = parseLine(line, 1, 0)
  } catch (error) {
    if (error instanceof AirlockError) return fail('ENTRY_MALFORMED', `the entry is not an audit entry line: ${error.message.replace(/^events\.jsonl line 1 \(byte 0\): /, '')}`)
    throw error
  }
  result.fingerprint = entry.fingerprint
  if (entry.pruned) return fail('ENTRY_PRUNED', `the entry is pruned: its body is gone, so the proof shows only fingerprint ${entry.fingerprint}; check the archived entry instead`)
  // Step 3.
  if (fingerprintOf(line).toString('hex') !== entry.fingerprint) return fail('FINGERPRINT_MISMATCH', `the entry does not hash to the fingerprint it states (${entry.fingerprint}); it was changed`)
  // Step 4.
  if (entry.index !== index) return fail('INDEX_MISMATCH', `the entry is entry ${entry.index}, not entry ${index} the proof is for`)
  // Step 5.
  if (entry.chainUid !== tree.origin) return fail('ORIGIN_MISMATCH', `the entry is of log ${JSON.stringify(entry.chainUid)}, the checkpoint of log ${JSON.stringify(tree.origin)}`)
  if (opts.origin !== undefined && opts.origin !== tree.origin) return fail('ORIGIN_MISMATCH', `the checkpoint is of log ${JSON.stringify(tree.origin)}, not ${JSON.stringify(opts.origin)}`)
  // Step 6.
  if (!verifyInclusion(leafHash(Buffer.from(entry.fingerprint, 'hex')), index, tree.size, proof.proof, tree.rootHash)) {
    return fail('NOT_INCLUDED', `the proof's audit path does not lead from entry ${index} to the root of the checkpoint (size ${tree.size})`)
  }
  return {...result, ok: true}
}
