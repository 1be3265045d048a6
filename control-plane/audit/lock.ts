/**
 * The audit log's append lock: `lock` in the log's folder, made the way control-plane/plan/lock.ts
 * makes the apply lock (the holder written to a temporary file, then hard-linked into place, so
 * the lock appears whole or not at all). Unlike the apply lock, a lock left by a dead process is
 * taken over at once: an append that died holding it left at most a torn tail, which the next
 * append reports (log.ts), and an audit log that stays locked would make every command fail closed.
 */
import {randomBytes} from 'node:crypto'
import {link, readFile, rename, unlink, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {running} from '../plan/lock.js'
import {tempName} from '../repo/files.js'

export const AUDIT_LOCK = 'lock'

export interface AuditLockOptions {
  /** How long to wait for a running holder before AUDIT_LOCKED. */
  waitMs: number
}

export const DEFAULT_AUDIT_LOCK: Readonly<AuditLockOptions> = Object.freeze({waitMs: 30_000})

interface Holder {
  pid: number
  host: string
  since: string
  nonce: string
}

/** Takes the lock, waiting for a running holder; returns the release. Any fs failure is AUDIT_UNAVAILABLE. */
export async function acquireAuditLock(dir: string, opts: AuditLockOptions = DEFAULT_AUDIT_LOCK): Promise<() => Promise<void>> {
  const path = join(dir, AUDIT_LOCK)
  const started = Date.now()
  let pause = 1
  for (;;) {
    const holder: Holder = {pid: process.pid, host: hostname(), since: new Date().toISOString(), nonce: randomBytes(8).toString('hex')}
    if (await tryLink(path, holder)) return () => release(path, holder)
    const found = await readHolder(path)
    if (found === 'gone') continue
    if (found !== 'unreadable' && stale(found)) {
      await takeOver(path, found)
      continue
    }
    if (Date.now() - started > opts.waitMs) {
      const who = found === 'unreadable' ? 'a holder that cannot be read' : `pid ${found.holder.pid} on ${found.holder.host} since ${found.holder.since}`
      throw new AirlockError('AUDIT_LOCKED', `${path}: held by ${who} for longer than ${opts.waitMs} ms`, {lockFile: path})
    }
    // Short, jittered waits: a batch holds the lock for one write and one fdatasync (milliseconds).
    await new Promise((r) => setTimeout(r, pause * (0.5 + Math.random())))
    pause = Math.min(pause * 2, 8)
  }
}

async function tryLink(path: string, holder: Holder): Promise<boolean> {
  const tmp = tempName(path)
  try {
    await writeFile(tmp, JSON.stringify(holder), {flag: 'wx', mode: 0o600})
    await link(tmp, path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw unavailable(path, error)
  } finally {
    await unlink(tmp).catch(() => {})
  }
}

type Found = 'gone' | 'unreadable' | {holder: Holder; text: string}

async function readHolder(path: string): Promise<Found> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone'
    throw unavailable(path, error)
  }
  try {
    const h = JSON.parse(text) as Holder
    if (h && Number.isSafeInteger(h.pid) && h.pid > 0 && typeof h.host === 'string') return {holder: h, text}
  } catch {
    // fall through: unreadable
  }
  return 'unreadable'
}

function stale(found: Exclude<Found, 'gone'>): boolean {
  // Written through a link, a lock file is whole: one that cannot be read is not ours to judge (waited for, then AUDIT_LOCKED).
  if (found === 'unreadable') return false
  // Another host's processes cannot be seen: its lock is never taken over (waited for, then AUDIT_LOCKED).
  return found.holder.host === hostname() && !running(found.holder.pid)
}

/**
 * Moves a dead holder's lock aside under a unique name, then checks that what moved is the lock
 * that was judged dead (its nonce): two processes taking over the same lock must not move away a
 * live lock the faster one just made. A wrong file moved aside is linked back.
 */
async function takeOver(path: string, found: Exclude<Found, 'gone' | 'unreadable'>): Promise<void> {
  const aside = `${path}.stale.${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    await rename(path, aside)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw unavailable(path, error)
  }
  const moved = await readFile(aside, 'utf8').catch(() => '')
  if (moved !== found.text) await link(aside, path).catch(() => {})
  await unlink(aside).catch(() => {})
}

async function release(path: string, holder: Holder): Promise<void> {
  // Only our own lock is removed: if it was (wrongly) taken over, the new holder's stays.
  const text = await readFile(path, 'utf8').catch(() => '')
  if (text === JSON.stringify(holder)) await unlink(path).catch(() => {})
}

export function unavailable(path: string, error: unknown): AirlockError {
  if (error instanceof AirlockError) return error.code === 'AUDIT_UNAVAILABLE' || error.code === 'AUDIT_LOCKED' ? error : new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${error.message}`, {path, ...error.details})
  const code = (error as NodeJS.ErrnoException).code
  const reason = code ?? (error as Error).message
  return new AirlockError('AUDIT_UNAVAILABLE', `audit log unavailable: ${path}: ${reason}${code ? ` (${(error as Error).message.split(',')[0]?.replace(`${code}: `, '')})` : ''}`, {path, errno: code})
}
