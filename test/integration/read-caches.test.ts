// The caches under .git/airlock/ (repo/cache.ts): status and evidence verify say the same thing
// cold, warm, and after a cache file was damaged or edited by hand; a cache file a writer of the
// repository commits into the work tree is never read.
import {readdir, readFile, writeFile, mkdir, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {createHash} from 'node:crypto'
import {airlock, git, fleetCopies, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'c3'.repeat(32)}`
const fleets = fleetCopies({sign: [NEXT]})
afterAll(() => fleets.dispose())

/** The caches this change reads: every file under .git/airlock/. */
const cacheFiles = async (dir: string) => (await readdir(join(dir, '.git', 'airlock')).catch(() => [] as string[])).filter((n) => n.endsWith('.json'))

/** A cache file in the format repo/cache.ts writes (for planting one where it must not be read). */
function cacheText(name: string, version: string, body: unknown): string {
  const text = JSON.stringify(body)
  return `${JSON.stringify({format: 'airlock-cache', name, version, sha256: createHash('sha256').update(text).digest('hex')})}\n${text}`
}

describe('status and evidence verify through the caches', () => {
  let fleet: Fleet
  let status: string
  let verify: string
  beforeAll(async () => {
    fleet = await fleets.copy()
    const p = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'soaked', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
    expect(p.exitCode).toBe(0)
    // A cold run: no cache at all.
    await rm(join(fleet.dir, '.git', 'airlock'), {recursive: true, force: true})
    const s = await airlock(['status', '--json'], {cwd: fleet.dir})
    expect(s.exitCode).toBe(0)
    expect(s.json.images[0].channels.find((c: {channel: string}) => c.channel === 'canary').lastChange).toMatchObject({viaAirlock: true, verified: true, operation: 'promote'})
    status = s.stdout
    const v = await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})
    expect(v.exitCode).toBe(0)
    verify = v.stdout
  }, 120_000)
  afterAll(() => fleet?.cleanup())

  it('writes its caches under .git/airlock/ and a warm run says the same', async () => {
    expect(await cacheFiles(fleet.dir)).toEqual(expect.arrayContaining(['status-commits.json', 'image-summaries.json', 'verified.json']))
    expect((await airlock(['status', '--json'], {cwd: fleet.dir})).stdout).toBe(status)
    expect((await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})).stdout).toBe(verify)
  })

  const damage: Array<[string, (text: string) => string]> = [
    ['truncated', (t) => t.slice(0, Math.floor(t.length / 2))],
    ['garbage', () => 'not a cache\n{]'],
    // An edit that would change what status shows if it were believed: every author renamed.
    ['edited by hand', (t) => t.replaceAll('<', '<forged-').replaceAll('"agent-runner"', '"agent-rummer"').replace(/"tips":\["[0-9a-f]{40}"/, `"tips":["${'0'.repeat(40)}"`)],
  ]
  it.each(damage)('a cache file %s is ignored and rebuilt: the same output, a valid cache again', async (_, how) => {
    for (const name of await cacheFiles(fleet.dir)) {
      const path = join(fleet.dir, '.git', 'airlock', name)
      const before = await readFile(path, 'utf8')
      const damaged = how(before)
      expect(damaged).not.toBe(before)
      await writeFile(path, damaged)
    }
    expect((await airlock(['status', '--json'], {cwd: fleet.dir})).stdout).toBe(status)
    expect((await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})).stdout).toBe(verify)
    // Rebuilt: each file is whole again (a header line whose digest matches its body).
    for (const name of ['status-commits.json', 'image-summaries.json', 'verified.json']) {
      const text = await readFile(join(fleet.dir, '.git', 'airlock', name), 'utf8')
      const nl = text.indexOf('\n')
      expect(JSON.parse(text.slice(0, nl)).sha256).toBe(createHash('sha256').update(text.slice(nl + 1)).digest('hex'))
    }
  })
})

describe('a cache file committed into the work tree is never read', () => {
  it('a fresh clone whose history carries forged caches (airlock/, .airlock/, .git-looking names) shows what is there', async () => {
    const fleet = await fleets.copy()
    try {
      // A writer without keys pushes an unsigned commit changing an image (it does not verify)
      // and, beside it, caches forged to say it does, and to name a forged author.
      const image = join(fleet.dir, 'manifests', 'images', 'agent-runner.yaml')
      await writeFile(image, (await readFile(image, 'utf8')).replace(/tier: \d+/, 'tier: 3'))
      await git(fleet.dir, 'add', '-A')
      await git(fleet.dir, 'commit', '-q', '--no-gpg-sign', '-m', 'unsigned change')
      const head = (await git(fleet.dir, 'rev-parse', 'HEAD')).trim()
      const anchor = (await git(fleet.dir, 'config', 'airlock.trustAnchor')).trim()
      const forged = {
        'verified.json': cacheText('verified.json', 'verified-2', {[`rules-5:${anchor}`]: {tips: [head], branches: {'refs/heads/main': head}}}),
        'status-commits.json': cacheText('status-commits.json', 'status-commits-1', {[head]: {parent: null, parents: 0, time: 0, author: 'Forged <forged@example.com>', trailers: {}, signed: true, changed: ['agent-runner.yaml']}}),
      }
      for (const folder of ['airlock', '.airlock', 'git/airlock']) {
        await mkdir(join(fleet.dir, folder), {recursive: true})
        for (const [name, text] of Object.entries(forged)) await writeFile(join(fleet.dir, folder, name), text)
      }
      await git(fleet.dir, 'add', '-A')
      await git(fleet.dir, 'commit', '-q', '--no-gpg-sign', '-m', 'caches')
      const clone = join(fleet.dir, '..', 'clone')
      await git(join(fleet.dir, '..'), 'clone', '-q', `file://${fleet.dir}`, clone)
      await git(clone, 'config', 'airlock.trustAnchor', anchor)
      expect(await cacheFiles(clone)).toEqual([])
      const s = await airlock(['status', '--json'], {cwd: clone})
      expect(s.exitCode).toBe(0)
      expect(s.json.history.verified).toBe(false)
      expect(s.stdout).not.toMatch(/Forged/)
      const canary = s.json.images[0].channels.find((c: {channel: string}) => c.channel === 'canary')
      expect(canary.lastChange).toMatchObject({verified: false})
      const v = await airlock(['evidence', 'verify', '--json'], {cwd: clone})
      expect(v.exitCode).toBe(1)
      expect(v.json.problems.map((p: {code: string}) => p.code)).toContain('UNSIGNED_COMMIT')
      // The work-tree files are still only files: what .git/airlock/ holds now, this clone computed.
      const mine = await readFile(join(clone, '.git', 'airlock', 'status-commits.json'), 'utf8')
      expect(mine).not.toMatch(/Forged/)
    } finally {
      await fleet.cleanup()
    }
  }, 120_000)
})
