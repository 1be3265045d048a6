import {open, readFile, unlink} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'

export interface ApplyLock {
  release(): Promise<void>
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * One applier per repository: `.git/airlock.lock`, created exclusively. A lock left by a dead
 * process is reported, not silently taken over: the operator removes it knowingly.
 */
export async function acquireApplyLock(gitdir: string, now: Date): Promise<ApplyLock> {
  const path = join(gitdir, 'airlock.lock')
  let handle
  try {
    handle = await open(path, 'wx')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const holder = await readFile(path, 'utf8').then((t) => JSON.parse(t) as {pid?: number; host?: string; since?: string}).catch(() => ({}) as {pid?: number; host?: string; since?: string})
    const stale = holder.host === hostname() && typeof holder.pid === 'number' && !running(holder.pid)
    throw new AirlockError(
      'LOCK_HELD',
      stale
        ? `another apply left ${path} behind (pid ${holder.pid} is not running); check the repository, then remove the lock file`
        : `another apply holds ${path} (pid ${holder.pid ?? '?'} on ${holder.host ?? '?'} since ${holder.since ?? '?'}); try again when it is done`,
      {lockFile: path, holder, stale},
    )
  }
  try {
    await handle.writeFile(JSON.stringify({pid: process.pid, host: hostname(), since: now.toISOString()}))
  } finally {
    await handle.close()
  }
  return {release: () => unlink(path).catch(() => {})}
}
