/**
 * git as the source of truth, on isomorphic-git. Reads happen at a commit (never from the
 * work tree); writes create objects first, then move the branch with a compare-and-swap under
 * git's own `<ref>.lock` protocol, so native git and airlock exclude each other.
 */
import * as nodeFs from 'node:fs'
import {appendFile, chmod, link, lstat, mkdir, readFile, rename, stat, symlink, unlink, writeFile} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'
import {execa} from 'execa'
import git from 'isomorphic-git'
import {AirlockError} from '../errors.js'
import {identityText} from '../identity/text.js'
import {checkInside, tempName, writeFileAtomic} from './files.js'
import {gitFs} from './git-fs.js'
import {repoPath} from './paths.js'

export interface TreeEntry {
  name: string
  path: string
  oid: string
  type: 'blob' | 'tree' | 'commit'
  /** git's file mode: 100644 or 100755 a file, 040000 a folder, 120000 a symbolic link, 160000 a submodule. */
  mode: string
}

/** One entry of a tree, by its name: object id, type and git file mode. */
export interface TreeItem {
  oid: string
  type: 'blob' | 'tree' | 'commit'
  mode: string
}

export interface FileChange {
  path: string
  /** New content, or null to delete the file. */
  content: string | null
}

export interface Person {
  name: string
  email: string
}

export interface CommitRequest {
  base: string | null
  changes: FileChange[]
  message: string
  author: Person
  /** The committer, when it is not the author. */
  committer?: Person
  /** Seconds since the epoch: the command's `now`, captured once. */
  time: number
  /** Produces an armored signature for the commit payload (git's SSH signature format). */
  sign?: (payload: string) => string
}

export interface CommitInfo {
  oid: string
  parents: string[]
  message: string
  time: number
  author: Person
  /** The commit object without its signature: what a signature covers. */
  payload: string
  signature?: string
  tree: string
}

/** Finds the top of the work tree holding `start`, like `git rev-parse --show-toplevel`. */
export async function findTopLevel(start: string): Promise<string> {
  let dir = resolve(start)
  for (;;) {
    try {
      await stat(join(dir, '.git'))
      return dir
    } catch {
      const up = dirname(dir)
      if (up === dir) throw new AirlockError('NOT_A_REPOSITORY', `${start}: not inside a git repository (pass --repo DIR)`, {path: start})
      dir = up
    }
  }
}

export class Repository {
  /** One object cache for the life of the command: without it isomorphic-git re-reads packfiles per object. */
  readonly cache: object = {}
  readonly gitdir: string
  /** Commits whose parents a shallow clone does not have (`.git/shallow`). */
  readonly shallow = new Set<string>()
  private readonly trees = new Map<string, Promise<Map<string, TreeItem>>>()
  private readonly commits = new Map<string, Promise<CommitInfo>>()
  private readonly fs: {promises: typeof nodeFs.promises}

  private constructor(readonly dir: string) {
    this.gitdir = join(dir, '.git')
    this.fs = gitFs(this.gitdir)
  }

  /** Opens the repository at `dir` (its top level), refusing layouts isomorphic-git mis-reads. */
  static async open(dir: string): Promise<Repository> {
    const top = resolve(dir)
    let gitStat
    try {
      gitStat = await stat(join(top, '.git'))
    } catch {
      throw new AirlockError('NOT_A_REPOSITORY', `${top}: not a git repository (no .git)`, {path: top})
    }
    if (!gitStat.isDirectory()) {
      throw new AirlockError(
        'UNSUPPORTED_REPOSITORY',
        `${top}: .git is a file (a linked worktree or submodule); airlock needs the main work tree of a repository`,
        {path: top, reason: 'linked-worktree'},
      )
    }
    // An empty or half-made .git (no HEAD, no objects/) is not a repository, whatever its name.
    const head = await readFile(join(top, '.git', 'HEAD'), 'utf8').catch(() => null)
    const objects = await stat(join(top, '.git', 'objects')).catch(() => null)
    if (head === null || !objects?.isDirectory() || !/^(ref: refs\/|[0-9a-f]{40}\s*$)/.test(head)) {
      throw new AirlockError('NOT_A_REPOSITORY', `${top}: .git is not a git repository (${head === null ? 'no HEAD' : !objects?.isDirectory() ? 'no objects/' : 'HEAD is malformed'})`, {path: top})
    }
    const repo = new Repository(top)
    const format = await git.getConfig({fs: nodeFs, dir: top, path: 'extensions.objectformat'}).catch(() => undefined)
    if (typeof format === 'string' && format.toLowerCase() !== 'sha1') {
      throw new AirlockError('UNSUPPORTED_REPOSITORY', `${top}: a ${format} object-format repository; airlock supports SHA-1 repositories only`, {path: top, reason: 'object-format'})
    }
    const index = await readFile(join(repo.gitdir, 'index')).catch(() => undefined)
    if (index && index.length >= 8) {
      const version = index.readUInt32BE(4)
      if (version === 4) {
        throw new AirlockError('UNSUPPORTED_REPOSITORY', `${top}: the git index is version 4; run: git update-index --index-version 2`, {path: top, reason: 'index-v4'})
      }
    }
    const shallow = await readFile(join(repo.gitdir, 'shallow'), 'utf8').catch(() => '')
    for (const line of shallow.split('\n')) if (/^[0-9a-f]{40}$/.test(line)) repo.shallow.add(line)
    return repo
  }

  /** user.name and user.email from git's configuration (repository, then global), '' when unset. */
  async gitIdentity(): Promise<{name: string; email: string}> {
    const get = async (path: string) => {
      const local = await git.getConfig({fs: this.fs, dir: this.dir, path}).catch(() => undefined)
      return typeof local === 'string' ? local : ''
    }
    return {name: await get('user.name'), email: await get('user.email')}
  }

  /** The branch HEAD names and the commit it points at (null in a repository with no commit). */
  async head(): Promise<{ref: string; oid: string | null}> {
    const ref = await git.currentBranch({fs: this.fs, dir: this.dir, fullname: true})
    if (!ref) throw new AirlockError('UNSUPPORTED_REPOSITORY', `${this.dir}: HEAD is detached; check out a branch first`, {reason: 'detached-head'})
    const oid = await this.resolve(ref)
    return {ref, oid}
  }

  /** The base every read or plan starts from: the branch HEAD names and its commit. */
  async base(): Promise<{branch: string; commit: string}> {
    const head = await this.head()
    if (!head.oid) throw new AirlockError('INVALID_INPUT', `${head.ref} has no commit yet; nothing to plan against`, {branch: head.ref})
    return {branch: head.ref, commit: head.oid}
  }

  async resolve(ref: string): Promise<string | null> {
    try {
      return await git.resolveRef({fs: this.fs, dir: this.dir, ref})
    } catch (error) {
      if ((error as {code?: string}).code === 'NotFoundError') return null
      throw error
    }
  }

  /** A commit from a ref name, a full id, or an abbreviated id (4+ hex); null when unknown. */
  async resolveRevision(rev: string): Promise<string | null> {
    const ref = await this.resolve(rev).catch(() => null)
    if (ref) return ref
    if (!/^[0-9a-f]{4,40}$/.test(rev)) return null
    return git.expandOid({fs: this.fs, dir: this.dir, oid: rev, cache: this.cache}).catch(() => null)
  }

  /**
   * Text of `path` at `commit`, with its blob id, or undefined when absent. A symbolic link or
   * a submodule where a file is read is refused: a file is what it claims or nothing.
   */
  async readFile(commit: string, path: string): Promise<{oid: string; text: string} | undefined> {
    const filepath = repoPath(path)
    const entry = await this.entryAt((await this.readCommit(commit)).tree, filepath)
    if (!entry) return undefined
    if (entry.mode !== '100644' && entry.mode !== '100755') {
      throw new AirlockError('INVALID_INPUT', `${filepath} at ${commit.slice(0, 12)} is ${describeMode(entry.mode)}, not a regular file`, {path: filepath, commit, mode: entry.mode})
    }
    return {oid: entry.oid, text: await this.readBlob(entry.oid)}
  }

  async readBlob(oid: string): Promise<string> {
    const {object, type} = await this.readObject(oid)
    if (type !== 'blob') throw brokenObject(oid, `is a ${type}, not a file`)
    return object.toString('utf8')
  }

  /** Entries of the folder `path` at `commit` (empty when the folder is absent or not a folder). */
  async listDir(commit: string, path: string): Promise<TreeEntry[]> {
    const filepath = path === '' ? '' : repoPath(path)
    const tree = (await this.readCommit(commit)).tree
    const entry = filepath === '' ? {oid: tree, type: 'tree' as const, mode: '040000'} : await this.entryAt(tree, filepath)
    if (!entry || entry.type !== 'tree') return []
    return [...(await this.treeEntries(entry.oid))].map(([name, e]) => ({name, path: filepath ? `${filepath}/${name}` : name, oid: e.oid, type: e.type, mode: e.mode}))
  }

  /** The object id of the tree (or blob) at `path` in `commit`, or null when absent. */
  async oidAt(commit: string, path: string): Promise<string | null> {
    return this.oidInTree((await this.readCommit(commit)).tree, repoPath(path))
  }

  /** The object id at `path` below the tree `tree`, or null when absent. */
  async oidInTree(tree: string, path: string): Promise<string | null> {
    return (await this.entryAt(tree, path))?.oid ?? null
  }

  /** The entry at `path` below the tree `tree` (its id, type and mode), or null when absent. */
  async entryAt(tree: string, path: string): Promise<TreeItem | null> {
    const parts = path.split('/')
    let at = tree
    for (const [i, part] of parts.entries()) {
      const entry = (await this.treeEntries(at)).get(part)
      if (!entry) return null
      if (i === parts.length - 1) return entry
      if (entry.type !== 'tree') return null
      at = entry.oid
    }
    return null
  }

  /** A tree's entries by name; trees never change, so each is read once for the command. */
  async treeEntries(oid: string): Promise<Map<string, TreeItem>> {
    let found = this.trees.get(oid)
    if (!found) {
      if (this.trees.size > 50_000) this.trees.clear()
      found = this.readObject(oid).then(({object, type}) => {
        if (type !== 'tree') throw brokenObject(oid, `is a ${type}, not a folder`)
        return parseTree(oid, object)
      })
      this.trees.set(oid, found)
    }
    return found
  }

  /** One object's raw content; a missing or unreadable object is BROKEN_OBJECT naming it. */
  private async readObject(oid: string): Promise<{object: Buffer; type: string}> {
    if (!/^[0-9a-f]{40}$/.test(oid)) throw brokenObject(oid, 'is not an object id')
    try {
      const r = await git.readObject({fs: this.fs, dir: this.dir, oid, format: 'content', cache: this.cache})
      return {object: Buffer.from(r.object as Uint8Array), type: r.type}
    } catch (error) {
      throw brokenObject(oid, (error as {code?: string}).code === 'NotFoundError' ? 'is missing from the repository' : `cannot be read (${(error as Error).message})`)
    }
  }

  /**
   * The tree of the clean three-way merge of two commits, as a forge's merge button makes it;
   * null when there is none (a conflict, several merge bases, unrelated histories, more than
   * two parents). Nothing is written.
   */
  async cleanMergeTree(parents: string[]): Promise<string | null> {
    if (parents.length !== 2) return null
    const [ours, theirs] = parents as [string, string]
    const bases = await git.findMergeBase({fs: this.fs, dir: this.dir, oids: [ours, theirs], cache: this.cache})
    if (bases.length !== 1) return null
    if (bases[0] === theirs) return (await this.readCommit(ours)).tree
    if (bases[0] === ours) return (await this.readCommit(theirs)).tree
    try {
      const person = {name: 'airlock', email: 'airlock@localhost', timestamp: 0, timezoneOffset: 0}
      const r = await git.merge({fs: this.fs, dir: this.dir, ours, theirs, fastForward: false, dryRun: true, abortOnConflict: true, author: person, committer: person, cache: this.cache})
      return r.tree ?? null
    } catch {
      return null
    }
  }

  /** A value of the repository's git config (`.git/config`), undefined when unset. */
  async config(path: string): Promise<string | undefined> {
    const value = await git.getConfig({fs: this.fs, dir: this.dir, path}).catch(() => undefined)
    return typeof value === 'string' ? value : undefined
  }

  async setConfig(path: string, value: string): Promise<void> {
    await git.setConfig({fs: this.fs, dir: this.dir, path, value})
  }

  /**
   * Names of the entries that differ between two trees (added, removed or changed), by a
   * merge-scan of the raw tree objects: equal entries are skipped without being decoded.
   */
  async changedEntries(a: string | null, b: string | null): Promise<string[]> {
    return (await this.changedTreeEntries(a, b)).map((e) => e.name)
  }

  /** As changedEntries, with each entry's object id on either side (null: absent there). */
  async changedTreeEntries(a: string | null, b: string | null): Promise<TreeDifference[]> {
    if (a === b) return []
    const raw = async (oid: string | null) => {
      if (!oid) return Buffer.alloc(0)
      const {object, type} = await this.readObject(oid)
      if (type !== 'tree') throw brokenObject(oid, `is a ${type}, not a folder`)
      return object
    }
    return diffRawTrees(await raw(a), await raw(b))
  }

  /** Paths of the files that differ between two trees (added, removed or changed), recursively. */
  async changedPaths(a: string | null, b: string | null, prefix = ''): Promise<string[]> {
    if (a === b) return []
    const [ea, eb] = await Promise.all([a ? this.treeEntries(a) : new Map(), b ? this.treeEntries(b) : new Map()])
    const out: string[] = []
    for (const name of [...new Set([...ea.keys(), ...eb.keys()])].sort()) {
      const x = ea.get(name)
      const y = eb.get(name)
      if (x?.oid === y?.oid && x?.mode === y?.mode) continue
      const path = prefix ? `${prefix}/${name}` : name
      const sub = (e: typeof x) => (e?.type === 'tree' ? e.oid : null)
      if (x?.type === 'tree' || y?.type === 'tree') out.push(...(await this.changedPaths(sub(x), sub(y), path)))
      if ((x && x.type !== 'tree') || (y && y.type !== 'tree')) out.push(path)
    }
    return out
  }

  /** The blob id the index holds for each of `paths` (absent: not in the index). */
  async indexOids(paths: string[]): Promise<Map<string, string>> {
    const wanted = new Set(paths.map((p) => repoPath(p)))
    const out = new Map<string, string>()
    await git.walk({
      fs: this.fs,
      dir: this.dir,
      cache: this.cache,
      trees: [git.STAGE()],
      map: async (filepath, [entry]) => {
        if (entry && wanted.has(filepath)) out.set(filepath, (await entry.oid()) as string)
        return true
      },
    })
    return out
  }

  /**
   * Reads a commit from its raw object. The signed payload is the object with its `gpgsig`
   * header removed, as git computes it (isomorphic-git's own payload only knows PGP armour).
   */
  async readCommit(oid: string): Promise<CommitInfo> {
    let found = this.commits.get(oid)
    if (!found) {
      if (this.commits.size > 50_000) this.commits.clear()
      found = this.readObject(oid).then(({object, type}) => {
        if (type !== 'commit') throw new AirlockError('INVALID_INPUT', `${oid.slice(0, 12)} is a ${type}, not a commit`, {oid, type})
        return parseCommit(oid, object.toString('utf8'))
      })
      this.commits.set(oid, found)
    }
    const commit = await found
    // In a shallow clone the boundary commits' parents are absent: history ends there.
    return this.shallow.has(oid) ? {...commit, parents: []} : commit
  }

  /**
   * Writes the blobs, trees and commit for `changes` on top of `base`, without touching the
   * branch, the index or the work tree. Returns the new commit id.
   */
  async createCommit(req: CommitRequest): Promise<string> {
    const baseTree = req.base ? (await this.readCommit(req.base)).tree : null
    const byDir = new Map<string, Map<string, string | null>>()
    for (const change of req.changes) {
      const path = repoPath(change.path)
      const oid = change.content === null ? null : await git.writeBlob({fs: this.fs, dir: this.dir, blob: Buffer.from(change.content, 'utf8')})
      const slash = path.lastIndexOf('/')
      const folder = slash < 0 ? '' : path.slice(0, slash)
      if (!byDir.has(folder)) byDir.set(folder, new Map())
      byDir.get(folder)!.set(path.slice(slash + 1), oid)
    }
    const tree = await this.writeTreeWith(baseTree, '', byDir)
    const at = {timestamp: req.time, timezoneOffset: 0}
    return git.commit({
      fs: this.fs,
      dir: this.dir,
      message: req.message,
      author: {...req.author, ...at},
      committer: {...(req.committer ?? req.author), ...at},
      tree: tree ?? (await git.writeTree({fs: this.fs, dir: this.dir, tree: []})),
      parent: req.base ? [req.base] : [],
      noUpdateBranch: true,
      cache: this.cache,
      ...(req.sign ? {signingKey: 'airlock', onSign: ({payload}: {payload: string}) => ({signature: req.sign!(payload)})} : {}),
    })
  }

  /** Rebuilds the tree at `prefix` with the changed files of `byDir`; null when it ends up empty. */
  private async writeTreeWith(treeOid: string | null, prefix: string, byDir: Map<string, Map<string, string | null>>): Promise<string | null> {
    const entries = new Map<string, {mode: string; path: string; oid: string; type: 'blob' | 'tree' | 'commit'}>()
    if (treeOid) {
      const {tree} = await git.readTree({fs: this.fs, dir: this.dir, oid: treeOid, cache: this.cache})
      for (const e of tree) entries.set(e.path, e)
    }
    const childDirs = new Set<string>()
    for (const folder of byDir.keys()) {
      if (prefix === '' ? folder !== '' : folder.startsWith(`${prefix}/`)) {
        const rest = prefix === '' ? folder : folder.slice(prefix.length + 1)
        childDirs.add(rest.split('/')[0]!)
      }
    }
    for (const name of childDirs) {
      const existing = entries.get(name)
      const sub = await this.writeTreeWith(existing?.type === 'tree' ? existing.oid : null, prefix === '' ? name : `${prefix}/${name}`, byDir)
      if (sub) entries.set(name, {mode: '040000', path: name, oid: sub, type: 'tree'})
      else entries.delete(name)
    }
    for (const [name, oid] of byDir.get(prefix) ?? []) {
      if (oid === null) entries.delete(name)
      else entries.set(name, {mode: '100644', path: name, oid, type: 'blob'})
    }
    if (entries.size === 0) return null
    return git.writeTree({fs: this.fs, dir: this.dir, tree: [...entries.values()]})
  }

  /**
   * Moves `ref` from `expected` to `next` only if it still points at `expected`
   * (compare-and-swap under git's `<ref>.lock`). Anything else is a CONFLICT: never a lost update.
   */
  async updateRef(ref: string, expected: string | null, next: string, who: Person, time: number, note: string): Promise<void> {
    const refFile = join(this.gitdir, ref)
    const lockFile = `${refFile}.lock`
    await mkdir(dirname(refFile), {recursive: true})
    // The lock appears whole (its content written and flushed first, then hard-linked into
    // place), so a crash never leaves an empty ref lock: `airlock repair` knows it as airlock's.
    const tmp = tempName(lockFile)
    await writeFile(tmp, `${next}\n`, {flag: 'wx', flush: true})
    try {
      await link(tmp, lockFile)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new AirlockError('CONFLICT', `${ref} is being updated by another writer, or a crash left ${lockFile} behind (\`airlock repair\` tells which and clears airlock's own)`, {ref, lockFile})
      }
      throw error
    } finally {
      await unlink(tmp).catch(() => {})
    }
    let renamed = false
    try {
      const current = await this.resolve(ref)
      if (current !== expected) {
        throw new AirlockError('CONFLICT', `${ref} moved from ${expected ?? '(none)'} to ${current ?? '(none)'} while this change was prepared; plan again`, {
          ref,
          expected,
          actual: current,
        })
      }
      await rename(lockFile, refFile)
      renamed = true
    } finally {
      if (!renamed) await unlink(lockFile).catch(() => {})
    }
    const line = `${expected ?? '0'.repeat(40)} ${next} ${who.name} <${who.email}> ${time} +0000\t${note.split('\n')[0]}\n`
    for (const log of [join(this.gitdir, 'logs', ref), join(this.gitdir, 'logs', 'HEAD')]) {
      await mkdir(dirname(log), {recursive: true})
      await appendFile(log, line)
    }
  }

  /**
   * Files under `folders` whose work-tree content differs from HEAD: changed or new files, and
   * (deleted: true) files HEAD has that the work tree does not.
   */
  async workTreeChanges(folders: string[]): Promise<Array<{path: string; deleted: boolean}>> {
    const rows = await git.statusMatrix({fs: this.fs, dir: this.dir, filepaths: folders.map((f) => repoPath(f)), cache: this.cache})
    return rows.filter(([, head, work]) => !(head === 1 && work === 1) && !(head === 0 && work === 0)).map(([path, , work]) => ({path, deleted: work === 0}))
  }

  /** Paths among `paths` whose work-tree or index state differs from HEAD (uncommitted changes). */
  async uncommitted(paths: string[]): Promise<string[]> {
    if (paths.length === 0) return []
    const filepaths = paths.map((p) => repoPath(p))
    const rows = await git.statusMatrix({fs: this.fs, dir: this.dir, filepaths, cache: this.cache})
    const wanted = new Set(filepaths)
    return rows.filter(([path, head, work, stage]) => wanted.has(path) && !(head === 1 && work === 1 && stage === 1)).map(([path]) => path)
  }

  /** A work-tree file's text, or null when it is absent (or not a regular file). */
  async workTreeText(path: string): Promise<string | null> {
    const abs = join(this.dir, repoPath(path))
    const st = await lstat(abs).catch(() => null)
    return st?.isFile() ? readFile(abs, 'utf8') : null
  }

  /** Brings the work tree and index in line with a commit just made (only the changed paths). */
  async syncWorkTree(changes: FileChange[]): Promise<void> {
    for (const change of changes) {
      const filepath = repoPath(change.path)
      const abs = join(this.dir, filepath)
      await checkInside(this.dir, abs)
      if (change.content === null) {
        await unlink(abs).catch(() => {})
        await git.remove({fs: this.fs, dir: this.dir, filepath, cache: this.cache})
      } else {
        await writeFileAtomic(abs, change.content, 0o644, this.dir)
        await git.add({fs: this.fs, dir: this.dir, filepath, cache: this.cache})
      }
    }
  }
}

/** One entry of a raw tree object: `<mode> <name>\0<20-byte id>`, starting at `at`. */
function treeEntry(buf: Buffer, at: number): {mode: string; name: string; oid: string; end: number} | null {
  if (at >= buf.length) return null
  const space = buf.indexOf(0x20, at)
  const nul = space < 0 ? -1 : buf.indexOf(0, space)
  if (space < 0 || nul < 0 || nul + 21 > buf.length) return null
  return {mode: buf.toString('latin1', at, space), name: buf.toString('utf8', space + 1, nul), oid: buf.toString('hex', nul + 1, nul + 21), end: nul + 21}
}

/** An entry present in only one of two trees, or in both with other bytes. */
export interface TreeDifference {
  name: string
  /** Its object id in the first tree, null when absent there. */
  a: string | null
  b: string | null
}

/** Entries present in only one of two raw trees, or present in both with other bytes. */
export function diffRawTrees(a: Buffer, b: Buffer): TreeDifference[] {
  const out: TreeDifference[] = []
  let i = 0
  let j = 0
  for (;;) {
    const ea = treeEntry(a, i)
    const eb = treeEntry(b, j)
    if ((!ea && i < a.length) || (!eb && j < b.length)) throw new AirlockError('BROKEN_OBJECT', 'a folder object is malformed (a truncated entry)', {})
    if (!ea && !eb) return out
    if (ea && eb && ea.end - i === eb.end - j && a.compare(b, j, eb.end, i, ea.end) === 0) {
      i = ea.end
      j = eb.end
      continue
    }
    // git sorts tree entries by name bytes (folders as if suffixed with '/'; images are files).
    const order = !ea ? 1 : !eb ? -1 : Buffer.compare(Buffer.from(ea.name), Buffer.from(eb.name))
    if (order === 0) out.push({name: ea!.name, a: ea!.oid, b: eb!.oid})
    else if (order < 0) out.push({name: ea!.name, a: ea!.oid, b: null})
    else out.push({name: eb!.name, a: null, b: eb!.oid})
    if (order <= 0) i = ea!.end
    if (order >= 0) j = eb!.end
  }
}

const PERSON = /^([^<>\n]*) <([^<>\n]*)> (\d{1,15}) ([+-]\d{4})$/

/**
 * Parses a raw commit object (headers, a blank line, the message) and checks it as
 * `git fsck --strict` would: a tree, parents, author and committer, in that order and well
 * formed. A commit that is not is BROKEN_OBJECT naming the commit and the field.
 */
export function parseCommit(oid: string, raw: string): CommitInfo {
  const split = raw.indexOf('\n\n')
  const head = split < 0 ? raw : raw.slice(0, split)
  const message = split < 0 ? '' : raw.slice(split + 2)
  const headers: Array<[string, string]> = []
  for (const line of head.split('\n')) {
    if (line.startsWith(' ') && headers.length > 0) headers[headers.length - 1]![1] += `\n${line.slice(1)}`
    else {
      const space = line.indexOf(' ')
      headers.push(space < 0 ? [line, ''] : [line.slice(0, space), line.slice(space + 1)])
    }
  }
  const bad = (field: string, problem: string) => brokenObject(oid, `is a malformed commit: ${field} ${problem}`, {field})
  const names = headers.map(([k]) => k)
  const tree = headers[0]?.[0] === 'tree' ? headers[0][1] : undefined
  if (tree === undefined || !/^[0-9a-f]{40}$/.test(tree)) throw bad('tree', tree === undefined ? 'is missing (it must come first)' : 'is not an object id')
  const parents: string[] = []
  let i = 1
  for (; headers[i]?.[0] === 'parent'; i++) {
    if (!/^[0-9a-f]{40}$/.test(headers[i]![1])) throw bad('parent', 'is not an object id')
    parents.push(headers[i]![1])
  }
  if (names.slice(i).includes('parent')) throw bad('parent', 'comes after the author')
  const person = (field: 'author' | 'committer', at: number) => {
    if (headers[at]?.[0] !== field) throw bad(field, 'is missing or out of order')
    const m = PERSON.exec(headers[at]![1])
    if (!m) throw bad(field, 'is not "name <email> seconds +zone"')
    return {name: m[1]!.trim(), email: m[2]!, time: Number(m[3])}
  }
  const author = person('author', i)
  const committer = person('committer', i + 1)
  const signature = headers.find(([k]) => k === 'gpgsig')?.[1]
  const kept = headers.filter(([k]) => k !== 'gpgsig').map(([k, v]) => `${k} ${v.replaceAll('\n', '\n ')}`)
  return {
    oid,
    parents,
    message,
    time: committer.time,
    author: {name: author.name, email: author.email},
    payload: `${kept.join('\n')}\n\n${message}`,
    ...(signature === undefined ? {} : {signature}),
    tree,
  }
}

/** Parses a raw tree object strictly: `<mode> <name>\0<20-byte id>` entries, nothing else. */
function parseTree(oid: string, buf: Buffer): Map<string, TreeItem> {
  const out = new Map<string, TreeItem>()
  for (let at = 0; at < buf.length; ) {
    const e = treeEntry(buf, at)
    if (!e) throw brokenObject(oid, 'is a malformed folder (a truncated entry)')
    const mode = e.mode.padStart(6, '0')
    const type = mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : /^10(0644|0755|0664)$|^120000$/.test(mode) ? 'blob' : null
    if (!type || e.name === '' || e.name.includes('/') || e.name === '.' || e.name === '..' || e.name.toLowerCase() === '.git') {
      throw brokenObject(oid, `is a malformed folder (entry ${JSON.stringify(e.name)} with mode ${e.mode})`)
    }
    out.set(e.name, {oid: e.oid, type, mode})
    at = e.end
  }
  return out
}

/** What a git file mode is, in words. */
export function describeMode(mode: string): string {
  return mode === '120000' ? 'a symbolic link' : mode === '040000' ? 'a folder' : mode === '160000' ? 'a submodule' : `mode ${mode}`
}

/** A missing, unreadable or malformed git object: the repository is damaged, a check fails. */
export function brokenObject(oid: string, problem: string, extra: Record<string, unknown> = {}): AirlockError {
  return new AirlockError('BROKEN_OBJECT', `object ${oid.slice(0, 12)} ${problem}`, {oid, ...extra})
}

/** `git init` with branch main, for `airlock init` and tests. */
export async function initRepository(dir: string): Promise<void> {
  await git.init({fs: nodeFs, dir, defaultBranch: 'main'})
  // isomorphic-git writes core.filemode=false, core.symlinks=false and core.ignorecase=true
  // whatever the file system; git init probes it. Probe as git does, and write what git writes.
  const gitdir = join(dir, '.git')
  const probe = join(gitdir, `probe.${process.pid}`)
  await writeFile(probe, '', {mode: 0o644})
  await chmod(probe, 0o755)
  const filemode = ((await stat(probe)).mode & 0o100) !== 0
  await unlink(probe)
  const symlinks = await symlink('config', probe).then(() => unlink(probe).then(() => true), () => false)
  const ignorecase = await lstat(join(gitdir, 'CoNfIg')).then(() => true, () => false)
  const set = (path: string, value: string | undefined) => git.setConfig({fs: nodeFs, dir, path, value})
  await set('core.filemode', String(filemode))
  await set('core.symlinks', symlinks ? undefined : 'false')
  await set('core.ignorecase', ignorecase ? 'true' : undefined)
}

/**
 * Who git says makes a commit in `dir`: `git var GIT_AUTHOR_IDENT` / `GIT_COMMITTER_IDENT`
 * (GIT_AUTHOR_* and GIT_COMMITTER_* first, then user.name and user.email from the repository,
 * global and system configuration). Where git is not installed, the environment and the
 * repository's configuration. No identity is git's own refusal (exit 2), never a made-up one.
 */
export async function gitIdent(dir: string, kind: 'author' | 'committer', env: NodeJS.ProcessEnv = process.env): Promise<Person> {
  const r = await execa('git', ['var', `GIT_${kind.toUpperCase()}_IDENT`], {cwd: dir, env, extendEnv: false, reject: false})
  const source = `the git ${kind} identity`
  if ((r as {code?: string}).code === 'ENOENT') {
    const k = kind.toUpperCase()
    const config = async (path: string) => {
      const v = await git.getConfig({fs: nodeFs, dir, path}).catch(() => undefined)
      return typeof v === 'string' ? v : undefined
    }
    const name = env[`GIT_${k}_NAME`] ?? (await config('user.name'))
    const email = env[`GIT_${k}_EMAIL`] ?? (await config('user.email'))
    if (!name || !email) throw new AirlockError('INVALID_INPUT', `${kind} identity unknown: set user.name and user.email (git config user.email "you@example.com"), or GIT_${k}_NAME and GIT_${k}_EMAIL`, {field: source})
    return {name: identityText(name, source), email: identityText(email, source)}
  }
  if (r.exitCode !== 0) {
    const said = String(r.stderr).trim() || `git var exited ${r.exitCode}`
    throw new AirlockError('INVALID_INPUT', `${kind} identity unknown; git says:\n${said}`, {field: source})
  }
  const m = /^(.*) <(.*)> \d+ [+-]\d{4}$/.exec(String(r.stdout).trim())
  if (!m) throw new AirlockError('INVALID_INPUT', `git var GIT_${kind.toUpperCase()}_IDENT printed something that is not an identity`, {field: source})
  return {name: identityText(m[1], source), email: identityText(m[2], source)}
}
