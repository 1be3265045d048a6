/**
 * Files are what they claim. Every file a user names is read through `readRegularFile`: a FIFO,
 * a device, a socket or a folder is refused at once (opened non-blocking, so a FIFO with no
 * writer never hangs). Every file airlock writes outside git goes through `writeFileAtomic`: a
 * temporary file created exclusively, flushed, renamed over the target; a target that is a
 * symbolic link, a device or anything but a regular file is refused, never replaced.
 */
import {randomBytes} from 'node:crypto'
import {constants, type Stats} from 'node:fs'
import {lstat, mkdir, open, readFile, rename, stat, statfs, unlink} from 'node:fs/promises'
import {dirname, relative, resolve, sep} from 'node:path'
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

/** Kernel pseudo file systems by their statfs(2) magic: nothing airlock writes belongs in them. */
const PSEUDO_FS = new Map<number, string>([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x1cd1, 'devpts'], [0x64626720, 'debugfs'], [0x73636673, 'securityfs'], [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'],
  [0x74726163, 'tracefs'], [0xcafe4a11, 'bpf'], [0x6165676c, 'pstore'], [0xde5e81e4, 'efivarfs'], [0x62656570, 'configfs'], [0x65735543, 'fusectl'], [0xf97cff8c, 'selinuxfs'],
  [0x6e736673, 'nsfs'], [0x42494e4d, 'binfmt_misc'],
])
/** devtmpfs reports tmpfs's magic; only the mount table tells them apart. */
const TMPFS_MAGIC = 0x01021994

/** The file system type /proc/self/mountinfo gives the mount holding `path` (null: unknown). */
async function mountType(path: string): Promise<string | null> {
  const table = await readFile('/proc/self/mountinfo', 'utf8').catch(() => null)
  if (table === null) return null
  let best: {point: string; type: string} | null = null
  for (const line of table.split('\n')) {
    // id parent major:minor root mount-point options [optional…] - fstype source super-options
    const fields = line.split(' ')
    const dash = fields.indexOf('-')
    if (fields.length < 5 || dash < 0) continue
    const point = fields[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
    const inside = point === '/' || path === point || path.startsWith(`${point}/`)
    if (inside && (!best || point.length >= best.point.length)) best = {point, type: fields[dash + 1]!}
  }
  return best?.type ?? null
}

/**
 * Refuses at once a folder nothing can be written to, before anything tries: the nearest part of
 * `dir` that exists must be a folder on a real file system, not a kernel pseudo file system
 * (/proc, /sys, /dev, cgroups, …) where writes fail, or where Node's recursive mkdir loops for ever.
 * Returns that nearest existing folder and the parts still missing below it.
 */
export async function checkWritableFolder(dir: string, label = dir): Promise<{existing: string; missing: string[]}> {
  const unwritable = (why: string, extra: Record<string, unknown> = {}) => new AirlockError('TARGET_UNWRITABLE', `${label}: ${why}; airlock writes only into folders of a real file system`, {path: label, ...extra})
  let at = resolve(dir)
  const missing: string[] = []
  let st: Stats | null = null
  for (;;) {
    try {
      st = await stat(at)
      break
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(at) === at) throw unwritable(`cannot look at ${at} (${code})`, {errno: code})
      missing.unshift(at)
      at = dirname(at)
    }
  }
  if (!st.isDirectory()) throw unwritable(`${at} is ${describeFile(st)}, not a folder`, {type: describeFile(st)})
  const fs = await statfs(at).catch(() => null)
  const pseudo = fs ? (PSEUDO_FS.get(fs.type) ?? (fs.type === TMPFS_MAGIC && (await mountType(at)) === 'devtmpfs' ? 'devtmpfs' : null)) : null
  if (pseudo) throw unwritable(`${at} is on ${pseudo}, a kernel pseudo file system`, {filesystem: pseudo})
  return {existing: at, missing}
}

/** Creates `dir` and the folders above it that are missing, one at a time, after `checkWritableFolder`. */
export async function makeFolder(dir: string, opts: {label?: string; mode?: number} = {}): Promise<void> {
  const {missing} = await checkWritableFolder(dir, opts.label)
  for (const part of missing) {
    try {
      await mkdir(part, opts.mode === undefined ? {} : {mode: opts.mode})
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'EEXIST' && (await stat(part).catch(() => null))?.isDirectory()) continue
      throw new AirlockError('TARGET_UNWRITABLE', `${opts.label ?? dir}: cannot create ${part} (${code ?? (error as Error).message})`, {path: opts.label ?? dir, errno: code})
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
  await makeFolder(dirname(path), {label: path})
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
