/**
 * The host's store of used tool-call approvals: an approval allows one call. Each consumed
 * approval is one file named by its signed nonce under `<state dir>/used-approvals/`.
 *
 * Consuming is one atomic step, with no lock to hold: the entry is written whole to a temporary
 * file (created exclusively, flushed) and hard-linked to its name, which link(2) refuses when the
 * name exists — the technique of the apply lock (plan/lock.ts). So:
 * - of any number of checkers racing with one approval, exactly one links the name (the others
 *   get APPROVAL_REPLAYED);
 * - a crash at any point leaves the approval consumed (the entry exists, whole) or not (at most a
 *   temporary file, which the next checker removes once its writer is gone), never a torn entry;
 *   an entry that is unreadable anyway (a power loss before the flush reached the disk) counts as
 *   used, so the failure is closed;
 * - a killed checker holds nothing that wedges the next one.
 * Entries are pruned once their approval has expired, plus the clock skew of the limits (a
 * checker whose clock lags that much would refuse it anyway); an unreadable entry after the longest
 * an approval lives. Reference time comes from the caller.
 */
import {constants} from 'node:fs'
import {link, lstat, mkdir, open, readdir, unlink} from 'node:fs/promises'
import {join} from 'node:path'
import {AirlockError} from '../../errors.js'
import type {Limits} from '../../limits.js'
import {running} from '../../plan/lock.js'
import {readRegularFile, TEMP_SUFFIX, tempName, tempWriter} from '../../repo/files.js'
import {MAX_APPROVAL_TTL_MS, NONCE} from './approval.js'

export const USED_APPROVALS_DIR = 'used-approvals'
const MAX_ENTRY_BYTES = 4096

/** What the store records of one use. */
export interface ApprovalUse {
  nonce: string
  tool: string
  paramsDigest: string
  approvedBy: string
  expiresAt: string
}

interface Entry extends ApprovalUse {
  usedAt: string
  pid: number
}

/** The store's folder under a state directory: created private, and refused if it is not a plain folder. */
async function storeDir(stateDir: string): Promise<string> {
  const dir = join(stateDir, USED_APPROVALS_DIR)
  try {
    await mkdir(dir, {recursive: true, mode: 0o700})
  } catch (error) {
    throw unusable(dir, error)
  }
  const st = await lstat(dir)
  if (!st.isDirectory()) throw new AirlockError('INVALID_INPUT', `${dir}: the store of used approvals is not a folder (a symbolic link is not followed)`, {file: dir})
  // Anyone who may remove an entry may replay its approval.
  if (st.mode & 0o002) throw new AirlockError('INVALID_INPUT', `${dir}: the store of used approvals is writable by others, who could remove an entry and replay its approval; chmod o-w it (airlock makes it 0700)`, {file: dir})
  return dir
}

function unusable(path: string, error: unknown): AirlockError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error'
  return new AirlockError('INVALID_INPUT', `${path}: the store of used approvals cannot be written (${code}), so no approval can be used; give a writable --state-dir (or AIRLOCK_STATE_DIR)`, {file: path, cause: code})
}

async function readEntry(path: string): Promise<Entry | null> {
  try {
    const v = JSON.parse(await readRegularFile(path, {maxBytes: MAX_ENTRY_BYTES})) as Entry
    return v && typeof v.usedAt === 'string' && typeof v.expiresAt === 'string' ? v : null
  } catch {
    return null
  }
}

/**
 * Removes what is no longer needed: entries whose approval expired (plus the clock skew) before
 * `now`, unreadable entries older than the longest an approval lives, and temporary files whose
 * writer is gone. Returns how many files it removed.
 */
export async function pruneUsedApprovals(stateDir: string, now: Date, limits: Limits): Promise<number> {
  const dir = await storeDir(stateDir)
  let removed = 0
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    let stale = false
    if (name.endsWith(TEMP_SUFFIX)) {
      const pid = tempWriter(name)
      stale = pid === null || !running(pid)
    } else if (NONCE.test(name)) {
      const entry = await readEntry(path)
      const expires = entry ? Date.parse(entry.expiresAt) : Number.NaN
      if (Number.isNaN(expires)) {
        const st = await lstat(path).catch(() => null)
        stale = st !== null && st.mtimeMs + MAX_APPROVAL_TTL_MS + limits.clockSkewMs <= now.getTime()
      } else stale = expires + limits.clockSkewMs <= now.getTime()
    }
    if (stale && (await unlink(path).then(() => true, () => false))) removed++
  }
  return removed
}

/**
 * Consumes one approval: records its nonce, or throws APPROVAL_REPLAYED when it was used before.
 * Prunes the store first. Any other failure to record the use refuses the call (fail closed).
 */
export async function consumeApproval(stateDir: string, use: ApprovalUse, now: Date, limits: Limits): Promise<{entry: string; pruned: number}> {
  if (!NONCE.test(use.nonce)) throw new AirlockError('INVALID_INPUT', 'the approval\'s nonce is not 22 to 64 base64url characters', {field: 'nonce'})
  const pruned = await pruneUsedApprovals(stateDir, now, limits)
  const dir = await storeDir(stateDir)
  const path = join(dir, use.nonce)
  const entry: Entry = {...use, usedAt: now.toISOString(), pid: process.pid}
  const tmp = tempName(path)
  try {
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    try {
      await handle.writeFile(`${JSON.stringify(entry)}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await link(tmp, path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const earlier = await readEntry(path)
      throw new AirlockError(
        'APPROVAL_REPLAYED',
        `this approval of ${use.tool} was already used${earlier ? ` at ${earlier.usedAt}` : ''} (${path}); an approval allows one call: approve the call again`,
        {nonce: use.nonce, entry: path, ...(earlier ? {usedAt: earlier.usedAt} : {})},
      )
    }
    // The new name is durable once the folder is flushed.
    const folder = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
    try {
      await folder.sync()
    } finally {
      await folder.close()
    }
  } catch (error) {
    if (error instanceof AirlockError) throw error
    throw unusable(dir, error)
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return {entry: path, pruned}
}
