/** plan/lock.ts: each case a lock file can be in, classified from a real file in a temporary git dir. */
import {mkdir, readFile, utimes, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {acquireApplyLock, lockMessage, lockState} from '../../../control-plane/plan/lock.js'
import {gonePid, tempDir} from '../../helpers.js'

const NOW = new Date('2026-12-01T12:00:00Z')
let t: Awaited<ReturnType<typeof tempDir>>
let gitdir: string
beforeEach(async () => {
  t = await tempDir()
  gitdir = join(t.dir, '.git')
  await mkdir(gitdir)
})
afterEach(() => t.cleanup())

const lock = () => join(gitdir, 'airlock.lock')

describe('lockState', () => {
  it('free, running, dead and other-host holders', async () => {
    expect(await lockState(gitdir, NOW)).toEqual({state: 'free'})
    await writeFile(lock(), JSON.stringify({pid: process.pid, host: hostname(), since: NOW.toISOString()}))
    expect(await lockState(gitdir, NOW)).toMatchObject({state: 'running'})
    await writeFile(lock(), JSON.stringify({pid: await gonePid(), host: hostname()}))
    expect(await lockState(gitdir, NOW)).toMatchObject({state: 'dead'})
    await writeFile(lock(), JSON.stringify({pid: 1, host: 'elsewhere.example'}))
    expect(await lockState(gitdir, NOW)).toMatchObject({state: 'other-host', holder: {host: 'elsewhere.example'}})
  })

  it('an empty or torn file is fresh for a minute, torn after', async () => {
    await writeFile(lock(), '{"pid": 1')
    await utimes(lock(), NOW, NOW)
    expect(await lockState(gitdir, new Date(NOW.getTime() + 59_000))).toMatchObject({state: 'fresh-torn'})
    expect(await lockState(gitdir, new Date(NOW.getTime() + 61_000))).toMatchObject({state: 'torn'})
  })

  it('every message says which case it is and what clears it', async () => {
    expect(lockMessage('L', {state: 'dead', holder: {pid: 7}})).toMatch(/no longer running.*airlock repair --apply/)
    expect(lockMessage('L', {state: 'torn', ageMs: 90_000})).toMatch(/empty or torn.*airlock repair --apply/)
    expect(lockMessage('L', {state: 'fresh-torn', ageMs: 1000})).toMatch(/another apply is starting/)
    expect(lockMessage('L', {state: 'other-host', holder: {pid: 7, host: 'h'}})).toMatch(/rm L/)
    expect(lockMessage('L', {state: 'running', holder: {pid: 7}})).toMatch(/try again when it is done/)
  })
})

describe('acquireApplyLock', () => {
  it('writes the holder whole, refuses a second applier (LOCK_HELD), and releases', async () => {
    const held = await acquireApplyLock(gitdir, NOW)
    expect(JSON.parse(await readFile(lock(), 'utf8'))).toMatchObject({pid: process.pid, host: hostname()})
    await expect(acquireApplyLock(gitdir, NOW)).rejects.toThrowAirlockError('LOCK_HELD')
    await held.release()
    expect(await lockState(gitdir, NOW)).toEqual({state: 'free'})
  })
})
