/**
 * Files are what they claim. Every file a user names is read through `readRegularFile`: a FIFO,
 * a device, a socket or a folder is refused at once (opened non-blocking, so a FIFO with no
 * writer never hangs). Every file airlock writes outside git goes through `writeFileAtomic`: a
 * temporary file created exclusively, flushed, renamed over the target; a target that is a
 * symbolic link, a device or anything but a regular file is refused, never replaced.
 */
import {randomBytes} from 'node:crypto'
import {constants, type Stats} from 'node:fs'
import {lstat, mkdir, open, rename, stat, unlink} from 'node:fs/promises'
import {dirname, relative, sep} from 'node:path'
import {AirlockError, type ErrorCode} from '../errors.js'

/** A file type in words, for messages. */
export function describeFile(st: Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isSocket()) return 'a socket'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isSymbolicLink()) return 'a symbolic link'
  return 'not a regular file'
}

export interface ReadOptions {
  /** Largest file accepted, in bytes (TOO_LARGE beyond). */
  maxBytes: number
  /** How the file is named in messages (the flag or the path). */
  label?: string
  /** The code for a file that is absent or cannot be opened (default INVALID_INPUT). */
  missingCode?: ErrorCode
}

/** Reads a regular file as bytes; anything else is exit 2 naming the file and what it is. */
export async function readRegularBytes(path: string, opts: ReadOptions): Promise<Buffer> {
  const label = opts.label ?? path
  let handle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    // A socket cannot be opened at all (ENXIO): say what it is, as for any other non-file.
    const st = await stat(path).catch(() => null)
    if (st && !st.isFile()) throw new AirlockError('INVALID_INPUT', `${label}: is ${describeFile(st)}, not a regular file`, {file: path, type: describeFile(st)})
    throw new AirlockError(opts.missingCode ?? 'INVALID_INPUT', `${label}: cannot read (${code === 'ENOENT' ? 'no such file' : (code ?? (error as Error).message)})`, {file: path, errno: code})
  }
  try {
    const st = await handle.stat()
    if (!st.isFile()) throw new AirlockError('INVALID_INPUT', `${label}: is ${describeFile(st)}, not a regular file`, {file: path, type: describeFile(st)})
    if (st.size > opts.maxBytes) throw new AirlockError('TOO_LARGE', `${label}: larger than ${opts.maxBytes} bytes`, {file: path, limit: opts.maxBytes})
    const buf = Buffer.alloc(Math.min(st.size, opts.maxBytes) + 1)
    let n = 0
    for (;;) {
      const {bytesRead} = await handle.read(buf, n, buf.length - n, n)
      if (bytesRead === 0) break
      n += bytesRead
      if (n === buf.length) throw new AirlockError('TOO_LARGE', `${label}: larger than ${opts.maxBytes} bytes`, {file: path, limit: opts.maxBytes})
    }
    return buf.subarray(0, n)
  } finally {
    await handle.close()
  }
}

/** Reads a regular file as UTF-8 text. */
export async function readRegularFile(path: string, opts: ReadOptions): Promise<string> {
  return (await readRegularBytes(path, opts)).toString('utf8')
}

/**
 * Refuses a path below `root` with a symbolic link (or anything but a folder) on the way, so a
 * write inside the repository can never land outside it. Missing components are fine.
 */
export async function checkInside(root: string, path: string): Promise<void> {
  const rel = relative(root, path)
  if (rel.startsWith('..') || rel === '') throw new AirlockError('PATH_OUTSIDE_REPO', `${path}: not inside ${root}`, {path})
  const parts = rel.split(sep)
  let at = root
  for (const part of parts.slice(0, -1)) {
    at = `${at}${sep}${part}`
    const st = await lstat(at).catch(() => null)
    if (!st) return
    if (!st.isDirectory()) {
      throw new AirlockError('PATH_OUTSIDE_REPO', `${relative(root, at)}: is ${describeFile(st)}; airlock does not write through it`, {path: relative(root, at), type: describeFile(st)})
    }
  }
}

/**
 * Writes through a temporary file and a rename: a reader sees the old or the new file, never
 * half. The temporary file is created exclusively (never through an existing link) and flushed
 * before the rename. A target that exists and is not a regular file is refused (TARGET_NOT_REGULAR):
 * a symbolic link is not followed out, a device is not replaced. With `root`, the path must lie
 * below it with no symbolic link on the way.
 */
export async function writeFileAtomic(path: string, content: string | Uint8Array, mode = 0o644, root?: string): Promise<void> {
  if (root) await checkInside(root, path)
  await mkdir(dirname(path), {recursive: true})
  const st = await lstat(path).catch(() => null)
  if (st && !st.isFile()) throw new AirlockError('TARGET_NOT_REGULAR', `${path}: is ${describeFile(st)}; airlock replaces regular files only`, {file: path, type: describeFile(st)})
  const tmp = tempName(path)
  try {
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode)
    try {
      await handle.writeFile(content)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, path)
  } catch (error) {
    await unlink(tmp).catch(() => {})
    throw error
  }
}

/** The suffix of airlock's temporary files, for `airlock repair` to find what a crash left. */
export const TEMP_SUFFIX = '.airlock-tmp'

/** `<path>.<pid>-<random>.airlock-tmp`: the writer's pid tells `airlock repair` whether it is still running. */
export function tempName(path: string): string {
  return `${path}.${process.pid}-${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`
}

/** The pid that wrote a temporary file, from its name (null: not one of airlock's). */
export function tempWriter(name: string): number | null {
  const m = /\.(\d{1,10})-[0-9a-f]{8,12}\.airlock-tmp$/.exec(name)
  return m ? Number(m[1]) : null
}
