/**
 * The host's store of used approvals: real files in a temporary folder. A crash is simulated by
 * leaving exactly what a checker killed at each point of consumeApproval leaves (a temporary file
 * of a writer that is gone, with or without the entry linked; an entry emptied by a power loss).
 */
import {chmod, link, mkdir, readdir, stat, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {consumeApproval, pruneUsedApprovals, USED_APPROVALS_DIR} from '../../../control-plane/policy/tools/used-approvals.js'
import {gonePid, tempDir} from '../../helpers.js'

let t: Awaited<ReturnType<typeof tempDir>>
beforeEach(async () => {
  t = await tempDir()
})
afterEach(() => t.cleanup())

const now = new Date('2026-12-01T12:00:00Z')
const use = (nonce: string, expiresAt = '2026-12-01T12:15:00.000Z') => ({nonce, tool: 'send_email', paramsDigest: `sha256:${'a'.repeat(64)}`, approvedBy: 'dana', expiresAt})
const N1 = 'AAAAAAAAAAAAAAAAAAAAAA'
const N2 = 'BBBBBBBBBBBBBBBBBBBBBB'
const store = () => join(t.dir, USED_APPROVALS_DIR)

describe('used approvals', () => {
  it('the first use is recorded; the second is APPROVAL_REPLAYED naming when it was used', async () => {
    const first = await consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)
    expect(first.entry).toBe(join(store(), N1))
    expect((await stat(store())).mode & 0o777).toBe(0o700)
    await expect(consumeApproval(t.dir, use(N1), new Date('2026-12-01T12:01:00Z'), DEFAULT_LIMITS)).rejects.toThrowAirlockError('APPROVAL_REPLAYED')
    await expect(consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)).rejects.toThrow(/already used at 2026-12-01T12:00:00\.000Z/)
    expect(await readdir(store())).toEqual([N1])
  })

  it('many consumers of one approval at once: exactly one succeeds', async () => {
    const results = await Promise.allSettled(Array.from({length: 16}, () => consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)))
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({code: 'APPROVAL_REPLAYED'})
    expect(await readdir(store())).toEqual([N1])
  })

  it('a crash after writing the temporary file, before linking: not consumed; the leftover is removed', async () => {
    await mkdir(store(), {recursive: true})
    const leftover = join(store(), `${N1}.${await gonePid()}-0123456789ab.airlock-tmp`)
    await writeFile(leftover, JSON.stringify({...use(N1), usedAt: now.toISOString(), pid: 1}))
    await consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)
    expect(await readdir(store())).toEqual([N1])
    await expect(consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)).rejects.toThrowAirlockError('APPROVAL_REPLAYED')
  })

  it('a crash after linking, before removing the temporary file: consumed; the leftover is removed', async () => {
    await mkdir(store(), {recursive: true})
    const leftover = join(store(), `${N1}.${await gonePid()}-0123456789ab.airlock-tmp`)
    await writeFile(leftover, JSON.stringify({...use(N1), usedAt: now.toISOString(), pid: 1}))
    await link(leftover, join(store(), N1))
    await expect(consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)).rejects.toThrowAirlockError('APPROVAL_REPLAYED')
    expect(await readdir(store())).toEqual([N1])
    // Another approval goes through: nothing the crash left wedges the store.
    await consumeApproval(t.dir, use(N2), now, DEFAULT_LIMITS)
  })

  it('a temporary file of a checker still running is left alone', async () => {
    await mkdir(store(), {recursive: true})
    const live = join(store(), `${N2}.${process.pid}-0123456789ab.airlock-tmp`)
    await writeFile(live, '')
    await consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)
    expect((await readdir(store())).sort()).toEqual([N1, `${N2}.${process.pid}-0123456789ab.airlock-tmp`].sort())
  })

  it('an unreadable (emptied) entry counts as used, and is pruned only after the longest an approval lives', async () => {
    await mkdir(store(), {recursive: true})
    await writeFile(join(store(), N1), '')
    await utimes(join(store(), N1), now, now)
    await expect(consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)).rejects.toThrowAirlockError('APPROVAL_REPLAYED')
    expect(await pruneUsedApprovals(t.dir, new Date('2026-12-02T12:04:00Z'), DEFAULT_LIMITS)).toBe(0)
    expect(await pruneUsedApprovals(t.dir, new Date('2026-12-02T12:05:00Z'), DEFAULT_LIMITS)).toBe(1)
  })

  it('entries are pruned once their approval has expired, plus the clock skew', async () => {
    await consumeApproval(t.dir, use(N1, '2026-12-01T12:15:00.000Z'), now, DEFAULT_LIMITS)
    // 12:19: expired, but a checker whose clock lags by the skew (5 min) could still accept it.
    await consumeApproval(t.dir, use(N2, '2026-12-01T13:00:00.000Z'), new Date('2026-12-01T12:19:00Z'), DEFAULT_LIMITS)
    expect((await readdir(store())).sort()).toEqual([N1, N2])
    expect(await pruneUsedApprovals(t.dir, new Date('2026-12-01T12:20:00Z'), DEFAULT_LIMITS)).toBe(1)
    expect(await readdir(store())).toEqual([N2])
  })

  it('a store that is not a folder, or cannot be written, refuses the call', async () => {
    await writeFile(join(t.dir, 'file'), '')
    await expect(consumeApproval(join(t.dir, 'file'), use(N1), now, DEFAULT_LIMITS)).rejects.toThrowAirlockError('INVALID_INPUT')
    await expect(consumeApproval(t.dir, use('../../etc/x'), now, DEFAULT_LIMITS)).rejects.toThrowAirlockError('INVALID_INPUT')
  })

  it('a store others may write to refuses the call: they could remove an entry and replay its approval', async () => {
    await consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)
    await chmod(store(), 0o777)
    await expect(consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)).rejects.toThrow(/writable by others/)
    await expect(consumeApproval(t.dir, use(N2), now, DEFAULT_LIMITS)).rejects.toThrowAirlockError('INVALID_INPUT')
    await chmod(store(), 0o700)
    await expect(consumeApproval(t.dir, use(N1), now, DEFAULT_LIMITS)).rejects.toThrowAirlockError('APPROVAL_REPLAYED')
  })
})
