/**
 * Caches of work already done, kept under `.git/airlock/` — local state of this clone, which a
 * push never carries and a clone never receives; never in the work tree, where a writer of the
 * repository could plant one. Every entry is keyed by immutable object ids (and by the rules
 * that produced it), so an entry is either the answer for that key or absent.
 *
 * A file is one header line — its format, name, version and the SHA-256 of the body — then the
 * body (JSON). It is written atomically (temporary file, rename) and checked when read: a file
 * that is missing, truncated, corrupt, of another version, or edited by hand (its digest no
 * longer matches) is ignored and rebuilt, never believed; so is one reached through a symbolic
 * link (the file, or `.git/airlock` itself), which is also never written through. The caller's `valid` check then
 * judges the body's shape, so no malformed value reaches the code that reads it.
 *
 * What a cache can and cannot do: it saves recomputing; it never carries authority. Anyone
 * who can write `.git/` can already move refs, replace objects and repin the trust anchor
 * (`git config airlock.trustAnchor`), so a cache there adds nothing they could not do; what a
 * push, a clone or a work-tree file can carry never reaches it.
 */
import {createHash} from 'node:crypto'
import {constants} from 'node:fs'
import {lstat, open} from 'node:fs/promises'
import {join} from 'node:path'
import {writeFileAtomic} from './files.js'

export const CACHE_DIR = 'airlock'
const FORMAT = 'airlock-cache'

/** Where the cache `name` lives: `.git/airlock/<name>`. */
export function cachePath(gitdir: string, name: string): string {
  return join(gitdir, CACHE_DIR, name)
}

/** Is `.git/airlock` a folder of its own (not a symbolic link to one elsewhere, e.g. into the work tree)? */
async function realFolder(gitdir: string): Promise<boolean> {
  return (await lstat(join(gitdir, CACHE_DIR)).catch(() => null))?.isDirectory() === true
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex')

/**
 * The body of cache `name` when the file is whole, of `version`, and `valid` accepts it; else
 * null (the caller rebuilds it).
 */
export async function readCache<T>(gitdir: string, name: string, version: string, valid: (body: unknown) => body is T): Promise<T | null> {
  let text: string
  try {
    if (!(await realFolder(gitdir))) return null
    // Never through a link: a cache is this clone's own file, not one it points at.
    const handle = await open(cachePath(gitdir, name), constants.O_RDONLY | constants.O_NOFOLLOW)
    try {
      text = await handle.readFile('utf8')
    } finally {
      await handle.close()
    }
  } catch {
    return null
  }
  const nl = text.indexOf('\n')
  if (nl < 0) return null
  try {
    const header = JSON.parse(text.slice(0, nl)) as Record<string, unknown>
    const body = text.slice(nl + 1)
    if (header.format !== FORMAT || header.name !== name || header.version !== version || header.sha256 !== digest(body)) return null
    const value: unknown = JSON.parse(body)
    return valid(value) ? value : null
  } catch {
    return null
  }
}

/** Writes cache `name` atomically; a cache that cannot be written only costs the next run time. */
export async function writeCache(gitdir: string, name: string, version: string, body: unknown): Promise<void> {
  const text = JSON.stringify(body)
  if ((await lstat(join(gitdir, CACHE_DIR)).catch(() => null)) && !(await realFolder(gitdir))) return
  await writeFileAtomic(cachePath(gitdir, name), `${JSON.stringify({format: FORMAT, name, version, sha256: digest(text)})}\n${text}`).catch(() => {})
}

/** Is `v` a plain object (not null, not an array)? */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A full object id. */
export function isOid(v: unknown): v is string {
  return typeof v === 'string' && v.length === 40 && /^[0-9a-f]{40}$/.test(v)
}
