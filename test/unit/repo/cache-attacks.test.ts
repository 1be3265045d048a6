/**
 * Cache files a writer of the repository, or a link, would have airlock believe: whatever the
 * work tree holds, and whatever `.git/airlock` or a cache file points at, is not this clone's
 * cache. (A process that can write `.git/` itself can move refs and repin the anchor: out of
 * scope, as cache.ts says.)
 */
import {mkdir, readdir, readFile, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {cachePath, isRecord, readCache, writeCache} from '../../../control-plane/repo/cache.js'
import {git, tempDir} from '../../helpers.js'

const valid = (v: unknown): v is {n: number} => isRecord(v) && typeof v.n === 'number'

describe('cache files that are not this clone’s own', () => {
  let t: Awaited<ReturnType<typeof tempDir>>
  beforeEach(async () => {
    t = await tempDir()
  })
  afterEach(() => t.cleanup())

  /** A well-formed cache file (its digest matches: anyone can compute one) in `dir`/airlock/x.json. */
  async function plant(dir: string, n: number): Promise<void> {
    await writeCache(dir, 'x.json', 'v1', {n})
    expect(await readCache(dir, 'x.json', 'v1', valid)).toEqual({n})
  }

  it('a cache committed into the work tree reaches no clone’s .git/airlock', async () => {
    const src = join(t.dir, 'src')
    await git(t.dir, 'init', '-q', '-b', 'main', src)
    await plant(src, 7) // src/airlock/x.json, in the work tree
    await git(src, 'add', 'airlock/x.json')
    await git(src, 'commit', '-q', '-m', 'a cache in the work tree')
    const clone = join(t.dir, 'clone')
    await git(t.dir, 'clone', '-q', src, clone)
    expect(await readFile(join(clone, 'airlock/x.json'), 'utf8')).toContain('"n":7')
    expect(await readCache(join(clone, '.git'), 'x.json', 'v1', valid)).toBeNull()
  })

  it('.git/airlock as a link to a folder of the work tree: its files are not read, nothing is written through it', async () => {
    const work = join(t.dir, 'work')
    await plant(work, 7) // work/airlock/x.json
    const gitdir = join(t.dir, 'gitdir')
    await mkdir(gitdir)
    await symlink(join(work, 'airlock'), join(gitdir, 'airlock'))
    expect(await readCache(gitdir, 'x.json', 'v1', valid)).toBeNull()
    await writeCache(gitdir, 'y.json', 'v1', {n: 1})
    expect(await readdir(join(work, 'airlock'))).toEqual(['x.json'])
  })

  it('a cache file that is a link to a well-formed one elsewhere is not read', async () => {
    const elsewhere = join(t.dir, 'elsewhere')
    await plant(elsewhere, 7)
    const gitdir = join(t.dir, 'gitdir')
    await mkdir(join(gitdir, 'airlock'), {recursive: true})
    await symlink(cachePath(elsewhere, 'x.json'), cachePath(gitdir, 'x.json'))
    expect(await readCache(gitdir, 'x.json', 'v1', valid)).toBeNull()
  })

  it('a .git/airlock that is a file, not a folder: no cache, and writing one is skipped', async () => {
    await writeFile(join(t.dir, 'airlock'), 'not a folder')
    expect(await readCache(t.dir, 'x.json', 'v1', valid)).toBeNull()
    await writeCache(t.dir, 'x.json', 'v1', {n: 1})
    expect(await readFile(join(t.dir, 'airlock'), 'utf8')).toBe('not a folder')
  })
})
