/**
 * git as the source of truth, on isomorphic-git. Reads happen at a commit (never from the
 * work tree); writes create objects first, then move the branch with a compare-and-swap under
 * git's own `<ref>.lock` protocol, so native git and airlock exclude each other.
 */
import {randomBytes} from 'node:crypto'
import * as nodeFs from 'node:fs'
import {appendFile, lstat, mkdir, open, readFile, rename, stat, unlink, writeFile} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'
import git from 'isomorphic-git'
import {AirlockError} from '../errors.js'
import {gitFs} from './git-fs.js'
import {repoPath} from './paths.js'

export interface TreeEntry {
  name: string
  path: string
  oid: string
  type: 'blob' | 'tree' | 'commit'
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
  private readonly trees = new Map<string, Promise<Map<string, {oid: string; type: 'blob' | 'tree' | 'commit'}>>>()
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

  /** Text of `path` at `commit`, with its blob id, or undefined when absent. */
  async readFile(commit: string, path: string): Promise<{oid: string; text: string} | undefined> {
    const filepath = repoPath(path)
    try {
      const {oid, blob} = await git.readBlob({fs: this.fs, dir: this.dir, oid: commit, filepath, cache: this.cache})
      return {oid, text: Buffer.from(blob).toString('utf8')}
    } catch (error) {
      if ((error as {code?: string}).code === 'NotFoundError') return undefined
      throw error
    }
  }

  async readBlob(oid: string): Promise<string> {
    const {blob} = await git.readBlob({fs: this.fs, dir: this.dir, oid, cache: this.cache})
    return Buffer.from(blob).toString('utf8')
  }

  /** Entries of the folder `path` at `commit` (empty when the folder is absent). */
  async listDir(commit: string, path: string): Promise<TreeEntry[]> {
    const filepath = path === '' ? undefined : repoPath(path)
    try {
      const {tree} = await git.readTree({fs: this.fs, dir: this.dir, oid: commit, filepath, cache: this.cache})
      return tree.map((e) => ({name: e.path, path: filepath ? `${filepath}/${e.path}` : e.path, oid: e.oid, type: e.type}))
    } catch (error) {
      const code = (error as {code?: string}).code
      if (code === 'NotFoundError' || code === 'ObjectTypeError') return []
      throw error
    }
  }

  /** The object id of the tree (or blob) at `path` in `commit`, or null when absent. */
  async oidAt(commit: string, path: string): Promise<string | null> {
    return this.oidInTree((await this.readCommit(commit)).tree, repoPath(path))
  }

  /** The object id at `path` below the tree `tree`, or null when absent. */
  async oidInTree(tree: string, path: string): Promise<string | null> {
    const parts = path.split('/')
    let at = tree
    for (const [i, part] of parts.entries()) {
      const entry = (await this.treeEntries(at)).get(part)
      if (!entry) return null
      if (i === parts.length - 1) return entry.oid
      if (entry.type !== 'tree') return null
      at = entry.oid
    }
    return at
  }

  /** A tree's entries by name; trees never change, so each is read once for the command. */
  async treeEntries(oid: string): Promise<Map<string, {oid: string; type: 'blob' | 'tree' | 'commit'}>> {
    let found = this.trees.get(oid)
    if (!found) {
      if (this.trees.size > 50_000) this.trees.clear()
      found = git.readTree({fs: this.fs, dir: this.dir, oid, cache: this.cache}).then(({tree}) => new Map(tree.map((e) => [e.path, {oid: e.oid, type: e.type}])))
      this.trees.set(oid, found)
    }
    return found
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
    const raw = async (oid: string | null) =>
      oid ? Buffer.from((await git.readObject({fs: this.fs, dir: this.dir, oid, format: 'content', cache: this.cache})).object as Uint8Array) : Buffer.alloc(0)
    return diffRawTrees(await raw(a), await raw(b))
  }

  /**
   * Reads a commit from its raw object. The signed payload is the object with its `gpgsig`
   * header removed, as git computes it (isomorphic-git's own payload only knows PGP armour).
   */
  async readCommit(oid: string): Promise<CommitInfo> {
    const {object, type} = await git.readObject({fs: this.fs, dir: this.dir, oid, format: 'content', cache: this.cache})
    if (type !== 'commit') throw new AirlockError('INVALID_INPUT', `${oid.slice(0, 12)} is a ${type}, not a commit`, {oid, type})
    const commit = parseCommit(oid, Buffer.from(object as Uint8Array).toString('utf8'))
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
    const person = {...req.author, timestamp: req.time, timezoneOffset: 0}
    return git.commit({
      fs: this.fs,
      dir: this.dir,
      message: req.message,
      author: person,
      committer: person,
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
    let handle
    try {
      handle = await open(lockFile, 'wx')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new AirlockError('CONFLICT', `${ref} is being updated by another writer (${lockFile} exists)`, {ref, lockFile})
      }
      throw error
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
      await handle.writeFile(`${next}\n`)
      await handle.sync()
      await handle.close()
      handle = undefined
      await rename(lockFile, refFile)
      renamed = true
    } finally {
      await handle?.close()
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
      if (change.content === null) {
        await unlink(abs).catch(() => {})
        await git.remove({fs: this.fs, dir: this.dir, filepath, cache: this.cache})
      } else {
        await writeFileAtomic(abs, change.content)
        await git.add({fs: this.fs, dir: this.dir, filepath, cache: this.cache})
      }
    }
  }
}

/** One entry of a raw tree object: `<mode> <name>\0<20-byte id>`, starting at `at`. */
function treeEntry(buf: Buffer, at: number): {name: string; oid: string; end: number} | null {
  if (at >= buf.length) return null
  const space = buf.indexOf(0x20, at)
  const nul = buf.indexOf(0, space)
  return {name: buf.toString('utf8', space + 1, nul), oid: buf.toString('hex', nul + 1, nul + 21), end: nul + 21}
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

/** Parses a raw commit object (headers, a blank line, the message). */
export function parseCommit(oid: string, raw: string): CommitInfo {
  const split = raw.indexOf('\n\n')
  const head = split < 0 ? raw : raw.slice(0, split)
  const message = split < 0 ? '' : raw.slice(split + 2)
  const headers: Array<[string, string]> = []
  for (const line of head.split('\n')) {
    if (line.startsWith(' ') && headers.length > 0) headers[headers.length - 1]![1] += `\n${line.slice(1)}`
    else {
      const space = line.indexOf(' ')
      headers.push([line.slice(0, space), line.slice(space + 1)])
    }
  }
  const get = (name: string) => headers.find(([k]) => k === name)?.[1]
  const person = (value = '') => {
    const m = /^(.*) <(.*)> (\d+) [+-]\d{4}$/.exec(value)
    return {name: m?.[1] ?? '', email: m?.[2] ?? '', time: Number(m?.[3] ?? 0)}
  }
  const committer = person(get('committer'))
  const author = person(get('author'))
  const signature = get('gpgsig')
  const kept = headers.filter(([k]) => k !== 'gpgsig').map(([k, v]) => `${k} ${v.replaceAll('\n', '\n ')}`)
  return {
    oid,
    parents: headers.filter(([k]) => k === 'parent').map(([, v]) => v),
    message,
    time: committer.time,
    author: {name: author.name, email: author.email},
    payload: `${kept.join('\n')}\n\n${message}`,
    ...(signature === undefined ? {} : {signature}),
    tree: get('tree') ?? '',
  }
}

/** Writes through a temporary file and a rename: a reader sees the old or the new file, never half. */
export async function writeFileAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), {recursive: true})
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, content, {mode, flush: true})
    await rename(tmp, path)
  } catch (error) {
    await unlink(tmp).catch(() => {})
    throw error
  }
}

/** `git init` with branch main, for `airlock init` and tests. */
export async function initRepository(dir: string): Promise<void> {
  await git.init({fs: nodeFs, dir, defaultBranch: 'main'})
}
