import {writeFile, mkdir, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {Repository} from '../../../control-plane/repo/repository.js'
import {git, tempDir} from '../../helpers.js'

const t = await tempDir()
afterAll(() => t.cleanup())

describe('changedEntries (raw tree merge-scan)', () => {
  it('names exactly the entries git diff-tree names, for adds, removes, edits and neighbours', async () => {
    const dir = t.dir
    await git(dir, 'init', '-q', '-b', 'main')
    await mkdir(join(dir, 'd'))
    for (const n of ['a.yaml', 'b.yaml', 'b.yml', 'c.yaml', 'e.yaml']) await writeFile(join(dir, 'd', n), n)
    await git(dir, 'add', '-A')
    await git(dir, 'commit', '-qm', 'one')
    await writeFile(join(dir, 'd', 'b.yaml'), 'changed')
    await rm(join(dir, 'd', 'c.yaml'))
    await writeFile(join(dir, 'd', 'bb.yaml'), 'new')
    await writeFile(join(dir, 'd', 'z.yaml'), 'new')
    await git(dir, 'add', '-A')
    await git(dir, 'commit', '-qm', 'two')
    const repo = await Repository.open(dir)
    const [one, two] = [await git(dir, 'rev-parse', 'HEAD~1:d'), await git(dir, 'rev-parse', 'HEAD:d')]
    const expected = (await git(dir, 'diff-tree', '--name-only', one, two)).split('\n').sort()
    expect((await repo.changedEntries(one, two)).sort()).toEqual(expected)
    expect((await repo.changedEntries(two, one)).sort()).toEqual(expected)
    expect(await repo.changedEntries(one, one)).toEqual([])
    expect((await repo.changedEntries(null, two)).sort()).toEqual(['a.yaml', 'b.yaml', 'b.yml', 'bb.yaml', 'e.yaml', 'z.yaml'])
  })
})
