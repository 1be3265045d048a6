/**
 * The file system handed to isomorphic-git. For every object it reads, isomorphic-git first
 * tries the loose file (a failed read that throws ENOENT) and then lists `objects/pack` again.
 * On a packed repository that is two system calls and an exception per object. This wrapper
 * answers those look-ups from one listing per object folder, kept for the life of the command
 * and dropped whenever the folder is written to. Everything else goes straight to node:fs.
 *
 * Other processes may add objects meanwhile. git writes objects before it moves a ref to them,
 * so every listing is dropped whenever a file of the git dir outside objects/ (a ref, HEAD,
 * packed-refs, the index) is read: any object reachable from a ref read after that is seen.
 */
import {promises as fsp} from 'node:fs'
import {basename, dirname, sep} from 'node:path'
import {writeFileAtomic} from './files.js'

type Listing = Promise<Set<string> | null>

function enoent(path: string): NodeJS.ErrnoException {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  const error: NodeJS.ErrnoException = new Error(`ENOENT: no such file or directory, '${path}'`)
  Error.stackTraceLimit = limit
  error.code = 'ENOENT'
  return error
}

export function gitFs(gitdir: string): {promises: typeof fsp} {
  const objects = `${gitdir}${sep}objects${sep}`
  const listings = new Map<string, Listing>()
  let gitdirStat: ReturnType<typeof fsp.stat> | undefined
  const isObjects = (path: string) => path.startsWith(objects)
  const listing = (dir: string): Listing => {
    let l = listings.get(dir)
    if (!l) {
      l = fsp.readdir(dir).then((names) => new Set(names), () => null)
      listings.set(dir, l)
    }
    return l
  }
  /** True when the listing of the file's folder says the file is absent. */
  const absent = async (path: string) => isObjects(path) && !(await listing(dirname(path)))?.has(basename(path))
  const touched = (path: string) => {
    listings.delete(dirname(path))
    listings.delete(path)
  }

  // isomorphic-git calls readFile() with no path on every API call to see whether it returns
  // a promise; answer that probe without building a Node error each time.
  const probe = Promise.reject(enoent('(probe)'))
  probe.catch(() => {})

  const promises = {
    ...fsp,
    readFile(path: string, options?: unknown) {
      if (typeof path !== 'string') return probe
      if (!isObjects(path) && path.startsWith(gitdir)) listings.clear()
      return absent(path).then((gone) => (gone ? Promise.reject(enoent(path)) : fsp.readFile(path, options as never)))
    },
    async stat(path: string, options?: unknown) {
      // isomorphic-git stats the git dir on every call to tell a worktree from a repository.
      if (path === gitdir && options === undefined) return (gitdirStat ??= fsp.stat(gitdir))
      if (await absent(path)) throw enoent(path)
      return fsp.stat(path, options as never)
    },
    async lstat(path: string, options?: unknown) {
      if (await absent(path)) throw enoent(path)
      return fsp.lstat(path, options as never)
    },
    async readdir(path: string, options?: unknown) {
      if (isObjects(`${path}${sep}`) && options === undefined) {
        const names = await listing(path)
        if (!names) return fsp.readdir(path)
        return [...names]
      }
      return fsp.readdir(path, options as never)
    },
    async writeFile(path: string, data: unknown, options?: unknown) {
      try {
        // Objects and the index are written under a temporary name, flushed, then renamed: a
        // process killed mid-write leaves a temporary file for `airlock repair`, never an empty
        // or torn object. A loose object is read-only, as git makes it.
        if (path.startsWith(gitdir) && (typeof data === 'string' || data instanceof Uint8Array)) return await writeFileAtomic(path, data, isObjects(path) ? 0o444 : 0o644)
        return await fsp.writeFile(path, data as never, options as never)
      } finally {
        touched(path)
      }
    },
    async mkdir(path: string, options?: unknown) {
      try {
        return await fsp.mkdir(path, options as never)
      } finally {
        touched(path)
      }
    },
    async unlink(path: string) {
      try {
        return await fsp.unlink(path)
      } finally {
        touched(path)
      }
    },
  } as unknown as typeof fsp
  return {promises}
}
