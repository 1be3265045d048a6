import {link, lstat, readFile, unlink, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {tempName} from '../repo/files.js'

export interface ApplyLock {
  release(): Promise<void>
}

export const APPLY_LOCK = 'airlock.lock'
/** A lock file younger than this with no readable holder may be one being written right now. */
export const TORN_LOCK_AGE_MS = 60_000

export interface LockHolder {
  pid?: number
  host?: string
  since?: string
}

/** Which case a lock file is, for the applier that finds it and for `airlock repair`. */
export type LockState =
  | {state: 'free'}
  | {state: 'running'; holder: LockHolder}
  | {state: 'dead'; holder: LockHolder}
  | {state: 'torn'; ageMs: number}
  | {state: 'fresh-torn'; ageMs: number}
  | {state: 'other-host'; holder: LockHolder}

export function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Reads and classifies `.git/airlock.lock`. */
export async function lockState(gitdir: string, now: Date): Promise<LockState> {
  const path = join(gitdir, APPLY_LOCK)
  const st = await lstat(path).catch(() => null)
  if (!st) return {state: 'free'}
  const text = await readFile(path, 'utf8').catch(() => '')
  let holder: LockHolder | null = null
  try {
    const v = JSON.parse(text) as LockHolder
    if (v && typeof v.pid === 'number' && Number.isSafeInteger(v.pid) && v.pid > 0 && typeof v.host === 'string') holder = v
  } catch {
    holder = null
  }
  const ageMs = Math.max(0, now.getTime() - st.mtimeMs)
  if (!holder) return ageMs >= TORN_LOCK_AGE_MS ? {state: 'torn', ageMs} : {state: 'fresh-torn', ageMs}
  if (holder.host !== hostname()) return {state: 'other-host', holder}
  return running(holder.pid!) ? {state: 'running', holder} : {state: 'dead', holder}
}

/** The message for a lock in the way: which case it is and the command that clears it. */
export function lockMessage(path: string, s: Exclude<LockState, {state: 'free'}>): string {
  switch (s.state) {
    case 'running':
      return `another apply holds ${path} (pid ${s.holder.pid}, running on this host since ${s.holder.since ?? '?'}); try again when it is done`
    case 'dead':
      return `an apply was interrupted: ${path} names pid ${s.holder.pid}, which is no longer running; run \`airlock repair\` to see what it left, then \`airlock repair --apply\``
    case 'torn':
      return `${path} is empty or torn (written ${Math.round(s.ageMs / 1000)} s ago by an apply that was interrupted); run \`airlock repair --apply\``
    case 'fresh-torn':
      return `${path} was created ${Math.round(s.ageMs / 1000)} s ago and names no holder yet: another apply is starting; try again in a minute (after that \`airlock repair --apply\` clears it)`
    case 'other-host':
      return `${path} is held by pid ${s.holder.pid} on host ${s.holder.host} since ${s.holder.since ?? '?'}; airlock cannot see that host's processes: if nothing applies there, remove it with \`rm ${path}\``
  }
}

/**
 * One applier per repository: `.git/airlock.lock`. The holder (pid, host, time) is written to a
 * temporary file first and hard-linked into place, so the lock file appears whole or not at all.
 * A lock left by a dead process is reported, not silently taken over: `airlock repair` clears it.
 */
export async function acquireApplyLock(gitdir: string, now: Date): Promise<ApplyLock> {
  const path = join(gitdir, APPLY_LOCK)
  const tmp = tempName(path)
  await writeFile(tmp, JSON.stringify({pid: process.pid, host: hostname(), since: now.toISOString()}), {flag: 'wx', flush: true})
  try {
    await link(tmp, path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const s = await lockState(gitdir, now)
    if (s.state === 'free') return acquireApplyLock(gitdir, now)
    throw new AirlockError('LOCK_HELD', lockMessage(path, s), {lockFile: path, ...s})
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return {release: () => unlink(path).catch(() => {})}
}
