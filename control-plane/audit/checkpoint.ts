/**
 * `audit checkpoint`: signs the log's current tree head. The log is verified first (fingerprints,
 * chain, and every checkpoint before, without their signatures: an older one may be by a rotated
 * key), so a signature never vouches for an edited entry or a history that forks an earlier
 * checkpoint. A torn tail is not an entry: the complete lines before it are what is signed.
 */
import {AirlockError} from '../errors.js'
import type {Signer} from '../crypto/keys.js'
import {acquireAuditLock, DEFAULT_AUDIT_LOCK, unavailable} from './lock.js'
import {writeCheckpoint} from './log.js'
import {readOrigin} from './store.js'
import {verifyLogWith} from './verify.js'

export interface CheckpointResult {
  /** The checkpoint file written (or the one of this size already there). */
  path: string
  /** The signed note. */
  text: string
  size: number
  /** Hex root hash. */
  root: string
  origin: string
  existing: boolean
}

export async function checkpointLog(dir: string, signer: Signer, now: Date): Promise<CheckpointResult> {
  const origin = await readOrigin(dir)
  // Under the append lock, a partial last line is a real torn tail, not a batch being written.
  const release = await acquireAuditLock(dir, DEFAULT_AUDIT_LOCK).catch((error: unknown) => {
    throw unavailable(dir, error)
  })
  try {
    const report = await verifyLogWith(dir, {keys: [], now, signatures: false})
    const bad = report.problems.find((p) => p.code !== 'TORN_TAIL')
    if (bad) throw new AirlockError('AUDIT_TAMPERED', `not signing a checkpoint over a log that does not verify: ${bad.message}`, {problem: bad.code, ...bad})
    if (report.size === 0) throw new AirlockError('USAGE', `the audit log in ${dir} has no entries yet: there is nothing to checkpoint`, {dir})
    const written = await writeCheckpoint(dir, origin, signer, report.size, Buffer.from(report.root, 'hex'))
    return {...written, origin}
  } finally {
    await release()
  }
}
