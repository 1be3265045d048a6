import {mkdir, readFile, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {cachePath, isRecord, readCache, writeCache} from '../../../control-plane/repo/cache.js'
import {tempDir} from '../../helpers.js'

const valid = (v: unknown): v is {n: number} => isRecord(v) && typeof v.n === 'number'

describe('cache files under .git/airlock/', () => {
  let t: Awaited<ReturnType<typeof tempDir>>
  beforeEach(async () => {
    t = await tempDir()
  })
  afterEach(() => t.cleanup())

  it('reads back what was written, under the same name and version', async () => {
    await writeCache(t.dir, 'x.json', 'v1', {n: 1})
    expect(await readCache(t.dir, 'x.json', 'v1', valid)).toEqual({n: 1})
    expect(cachePath(t.dir, 'x.json')).toBe(join(t.dir, 'airlock', 'x.json'))
  })

  it('is absent when there is no file', async () => {
    expect(await readCache(t.dir, 'x.json', 'v1', valid)).toBeNull()
  })

  describe('when the file is not what was written, it is ignored (null), never believed', () => {
    const cases: Array<[string, (text: string) => string]> = [
      ['truncated', (text) => text.slice(0, text.length - 3)],
      ['cut before its body', (text) => text.slice(0, text.indexOf('\n'))],
      ['garbage', () => '\u0000\u0001not json at all'],
      ['empty', () => ''],
      ['edited by hand (its digest no longer matches)', (text) => text.replace('"n":1', '"n":2')],
      ['of another version', (text) => text.replace('"version":"v1"', '"version":"v0"')],
      ['another cache renamed', (text) => text.replace('"name":"x.json"', '"name":"y.json"')],
    ]
    it.each(cases)('%s', async (_, damage) => {
      await writeCache(t.dir, 'x.json', 'v1', {n: 1})
      const path = cachePath(t.dir, 'x.json')
      const damaged = damage(await readFile(path, 'utf8'))
      await writeFile(path, damaged)
      expect(await readCache(t.dir, 'x.json', 'v1', valid)).toBeNull()
    })
  })

  it('a body of the wrong shape, even with a matching digest, is refused by the caller\'s check', async () => {
    await writeCache(t.dir, 'x.json', 'v1', {n: 'one'})
    expect(await readCache(t.dir, 'x.json', 'v1', valid)).toBeNull()
  })

  it('never writes through a symbolic link planted in its place (the write is skipped)', async () => {
    await mkdir(join(t.dir, 'airlock'))
    const target = join(t.dir, 'elsewhere')
    await writeFile(target, 'untouched')
    await symlink(target, cachePath(t.dir, 'x.json'))
    await writeCache(t.dir, 'x.json', 'v1', {n: 1})
    expect(await readFile(target, 'utf8')).toBe('untouched')
  })
})
