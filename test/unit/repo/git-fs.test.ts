import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {gitFs} from '../../../control-plane/repo/git-fs.js'
import {tempDir} from '../../helpers.js'

const t = await tempDir()
afterAll(() => t.cleanup())

describe('gitFs object-folder listings', () => {
  it('sees an object written by another process once a ref has been read again', async () => {
    const gitdir = join(t.dir, '.git')
    const folder = join(gitdir, 'objects', 'ab')
    await mkdir(folder, {recursive: true})
    await mkdir(join(gitdir, 'refs', 'heads'), {recursive: true})
    await writeFile(join(gitdir, 'refs', 'heads', 'main'), 'old\n')
    const fs = gitFs(gitdir).promises
    await expect(fs.readFile(join(folder, 'cdef'))).rejects.toMatchObject({code: 'ENOENT'})
    // Another process writes the object, then moves the ref (objects always come first).
    await writeFile(join(folder, 'cdef'), 'object')
    await writeFile(join(gitdir, 'refs', 'heads', 'main'), 'new\n')
    await fs.readFile(join(gitdir, 'refs', 'heads', 'main'), 'utf8')
    expect(String(await fs.readFile(join(folder, 'cdef')))).toBe('object')
  })

  it('sees its own writes at once', async () => {
    const gitdir = join(t.dir, 'own', '.git')
    const folder = join(gitdir, 'objects', '12')
    await mkdir(folder, {recursive: true})
    const fs = gitFs(gitdir).promises
    await expect(fs.stat(join(folder, '34'))).rejects.toMatchObject({code: 'ENOENT'})
    await fs.writeFile(join(folder, '34'), 'x')
    expect((await fs.stat(join(folder, '34'))).size).toBe(1)
  })
})
