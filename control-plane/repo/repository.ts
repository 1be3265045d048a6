/**
 * git as the source of truth, on isomorphic-git. Reads happen at a commit (never from the
 * work tree); writes create objects first, then move the branch with a compare-and-swap under
 * git's own `<ref>.lock` protocol, so native git and airlock exclude each other.
 */
import * as nodeFs from 'node:fs'
import {appendFile, chmod, link, lstat, mkdir, readFile, rename, stat, symlink, unlink, writeFile} from 'node:fs/promises'
import {isUtf8} from 'node:buffer'
import {dirname, join, resolve} from 'node:path'
import {spawn} from 'node:child_process'
import {createRequire} from 'node:module'
import type IsomorphicGit from 'isomorphic-git'
import {AirlockError} from '../errors.js'
import {identityText} from '../identity/text.js'
import {checkInside, tempName, writeFileAtomic} from './files.js'
import {gitFs} from './git-fs.js'
import {Lru} from '../lru.js'
import {ObjectStore, objectId} from './objects.js'
import {repoPath} from './paths.js'

/**
 * isomorphic-git through require: the same module an `import` gives, without Node scanning its
 * 575 kB CommonJS source for export names first (a few tens of ms of every command's start).
 */
const git = createRequire(import.meta.url)('isomorphic-git') as typeof IsomorphicGit

/** Parsed commits kept for the life of a command, most recently used (each is re-read from its pack after). */
const COMMITS_KEPT = 2048
/** Parsed trees kept, most recently used: a walk re-reads the few it is comparing, not every one it saw. */
const TREES_KEPT = 4096

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
  private readonly trees = new Lru<string, Promise<Map<string, TreeItem>>>(TREES_KEPT)
  /** Trees that passed the strict parser (checkTree) in this command. */
  private readonly checkedTrees = new Set<string>()
  /** Trees that passed it with every tree below them. */
  private readonly checkedDeep = new Set<string>()
  private readonly commits = new Lru<string, Promise<CommitInfo>>(COMMITS_KEPT)
  private readonly fs: {promises: typeof nodeFs.promises}
  private readonly objects: ObjectStore

  private constructor(readonly dir: string) {
    this.gitdir = join(dir, '.git')
    this.fs = gitFs(this.gitdir)
    this.objects = new ObjectStore(this.gitdir)
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

  /** A blob's bytes, as stored. */
  async readBlobBytes(oid: string): Promise<Buffer> {
    const {object, type} = await this.readObject(oid)
    if (type !== 'blob') throw brokenObject(oid, `is a ${type}, not a file`)
    return Buffer.from(object)
  }

  /** Every blob of `commit`'s tree (links and submodules included, by mode): path → id and mode. */
  async treeFiles(commit: string): Promise<Map<string, {oid: string; mode: string}>> {
    const out = new Map<string, {oid: string; mode: string}>()
    const walk = async (tree: string, prefix: string): Promise<void> => {
      for (const [name, e] of await this.treeEntries(tree)) {
        if (e.type === 'tree') await walk(e.oid, `${prefix}${name}/`)
        else out.set(`${prefix}${name}`, {oid: e.oid, mode: e.mode})
      }
    }
    await walk((await this.readCommit(commit)).tree, '')
    return out
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

  /**
   * A tree's entries by name, parsed strictly (what `git fsck --strict` reports is
   * BROKEN_OBJECT); trees never change, so each is read once for the command.
   */
  async treeEntries(oid: string): Promise<Map<string, TreeItem>> {
    let found = this.trees.get(oid)
    if (!found) {
      found = this.readObject(oid).then(({object, type}) => {
        if (type !== 'tree') throw brokenObject(oid, `is a ${type}, not a folder`)
        const entries = parseTree(oid, object)
        this.checked(oid)
        return entries
      })
      this.trees.set(oid, found)
    }
    return found
  }

  /** A tree's raw object, once it has passed the strict parser (checked once per command). */
  private async rawTree(oid: string): Promise<Buffer> {
    const {object, type} = await this.readObject(oid)
    if (type !== 'tree') throw brokenObject(oid, `is a ${type}, not a folder`)
    if (!this.checkedTrees.has(oid)) {
      checkTree(oid, object)
      this.checked(oid)
    }
    return object
  }

  private checked(oid: string): void {
    if (this.checkedTrees.size > 200_000) this.checkedTrees.clear()
    this.checkedTrees.add(oid)
  }

  /** Parses `tree` and every tree below it strictly, each once per command (what isomorphic-git is about to walk). */
  private async checkTreeDeep(tree: string): Promise<void> {
    if (this.checkedDeep.has(tree)) return
    for (const entry of (await this.treeEntries(tree)).values()) if (entry.type === 'tree') await this.checkTreeDeep(entry.oid)
    if (this.checkedDeep.size > 200_000) this.checkedDeep.clear()
    this.checkedDeep.add(tree)
  }

  /**
   * Parses strictly the trees of HEAD that isomorphic-git's statusMatrix reads for `paths`:
   * those on the way down to each path, and everything below it.
   */
  private async checkHeadTrees(paths: string[]): Promise<void> {
    const head = await this.resolve('HEAD')
    if (!head) return
    const root = (await this.readCommit(head)).tree
    for (const path of paths) {
      const entry = await this.entryAt(root, path)
      if (entry?.type === 'tree') await this.checkTreeDeep(entry.oid)
    }
  }

  /** One object's raw content; a missing or unreadable object is BROKEN_OBJECT naming it. */
  private async readObject(oid: string): Promise<{object: Buffer; type: string}> {
    if (!/^[0-9a-f]{40}$/.test(oid)) throw brokenObject(oid, 'is not an object id')
    try {
      // git's own layout first (positional pack reads, node:zlib, a delta-base cache); what it
      // does not hold after a fresh listing (a version-1 index), isomorphic-git reads.
      const found = this.objects.read(oid) ?? (this.objects.refresh(), this.objects.read(oid))
      if (found) return found
      const r = await git.readObject({fs: this.fs, dir: this.dir, oid, format: 'content', cache: this.cache})
      const read = {object: Buffer.from(r.object as Uint8Array), type: r.type}
      // isomorphic-git does not check a packed object against its id: checked here, as objects.ts does.
      if (objectId(read) !== oid) throw new Error('its content is not its id')
      return read
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
    // isomorphic-git reads these commits and walks their trees with its own parser: each is
    // parsed strictly first, so it reads nothing git would not (the ancestors findMergeBase
    // walks are the ones history verification has read).
    const [ourTree, theirTree] = [(await this.readCommit(ours)).tree, (await this.readCommit(theirs)).tree]
    const bases = await git.findMergeBase({fs: this.fs, dir: this.dir, oids: [ours, theirs], cache: this.cache})
    if (bases.length !== 1) return null
    if (bases[0] === theirs) return ourTree
    if (bases[0] === ours) return theirTree
    const baseTree = (await this.readCommit(bases[0]!)).tree
    for (const tree of [ourTree, theirTree, baseTree]) await this.checkTreeDeep(tree)
    // isomorphic-git reads the blobs it merges from the packs itself, unchecked against their
    // ids; each is read here first (checked, from the same loose object or pack, in the same
    // order), so a pack index that lies is BROKEN_OBJECT, never a merge of other bytes.
    const [o, t, b] = await Promise.all([this.treeFiles(ours), this.treeFiles(theirs), this.treeFiles(bases[0]!)])
    for (const [path, mine] of o) {
      const other = t.get(path)
      if (other && other.oid !== mine.oid) for (const e of [mine, other, b.get(path)]) if (e) await this.readObject(e.oid)
    }
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
    const raw = (oid: string | null) => (oid ? this.rawTree(oid) : Buffer.alloc(0))
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
  /**
   * Is `ancestor` reachable from `descendant` (or the same commit)? A walk back from `descendant`
   * through every parent: short when it is a descendant a few commits on, the whole history
   * behind `descendant` when it is not.
   */
  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const seen = new Set<string>()
    const queue = [descendant]
    for (let i = 0; i < queue.length; i++) {
      const oid = queue[i]!
      if (oid === ancestor) return true
      if (seen.has(oid)) continue
      seen.add(oid)
      queue.push(...(await this.readCommit(oid)).parents)
    }
    return false
  }

  async readCommit(oid: string): Promise<CommitInfo> {
    // Least recently used goes first: a walk keeps the commits it is about to read again (a
    // child's parents), not the whole history.
    let found = this.commits.get(oid)
    if (!found) {
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
      for (const [name, e] of await this.treeEntries(treeOid)) entries.set(name, {mode: e.mode, path: name, oid: e.oid, type: e.type})
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
    const filepaths = folders.map((f) => repoPath(f))
    await this.checkHeadTrees(filepaths)
    const rows = await git.statusMatrix({fs: this.fs, dir: this.dir, filepaths, cache: this.cache})
    return rows.filter(([, head, work]) => !(head === 1 && work === 1) && !(head === 0 && work === 0)).map(([path, , work]) => ({path, deleted: work === 0}))
  }

  /**
   * Every work-tree file git would not ignore: tracked ones (in the index) and untracked ones its
   * ignore rules do not match (.gitignore files, .git/info/exclude, core.excludesFile), as
   * `git ls-files --cached --others --exclude-standard` lists them; where git is not installed,
   * isomorphic-git's reading of the same rules.
   */
  async unignoredFiles(): Promise<Array<{path: string; tracked: boolean}>> {
    const r = await runGit(['ls-files', '-z', '-t', '--cached', '--others', '--exclude-standard'], {cwd: this.dir})
    if (r.code === 'ENOENT') {
      const rows = await git.statusMatrix({fs: this.fs, dir: this.dir, cache: this.cache})
      return rows.filter(([, , work]) => work !== 0).map(([path, head, , stage]) => ({path, tracked: head === 1 || stage !== 0}))
    }
    if (r.exitCode !== 0) throw new AirlockError('INVALID_INPUT', `${this.dir}: git ls-files failed: ${String(r.stderr).trim() || `exit ${r.exitCode}`}`, {path: this.dir})
    const seen = new Map<string, boolean>()
    for (const entry of String(r.stdout).split('\0')) {
      if (entry.length < 3) continue
      const path = entry.slice(2)
      seen.set(path, (seen.get(path) ?? false) || entry[0] !== '?')
    }
    return [...seen].map(([path, tracked]) => ({path, tracked}))
  }

  /** Paths among `paths` whose work-tree or index state differs from HEAD (uncommitted changes). */
  /** Tracked files whose work-tree content differs from HEAD (git diff HEAD; isomorphic-git where git is missing). */
  async modifiedTracked(): Promise<string[]> {
    const r = await runGit(['diff', '--name-only', '-z', '--no-renames', 'HEAD', '--'], {cwd: this.dir})
    if (r.code === 'ENOENT') {
      const rows = await git.statusMatrix({fs: this.fs, dir: this.dir, cache: this.cache})
      return rows.filter(([, head, work]) => head === 1 && work !== 1).map(([path]) => path)
    }
    if (r.exitCode !== 0) throw new AirlockError('INVALID_INPUT', `${this.dir}: git diff failed: ${String(r.stderr).trim() || `exit ${r.exitCode}`}`, {path: this.dir})
    return String(r.stdout).split('\0').filter(Boolean)
  }

  async uncommitted(paths: string[]): Promise<string[]> {
    if (paths.length === 0) return []
    const filepaths = paths.map((p) => repoPath(p))
    await this.checkHeadTrees(filepaths)
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

/*
 * Git objects are read as git reads them, and refused (BROKEN_OBJECT) wherever `git fsck
 * --strict` reports something: a tree with a name twice makes git check out one entry while
 * a lenient reader reads the other, so a verification would pass over what the work tree does
 * not hold. The checks mirror git's fsck.c (fsck_tree, verify_ordered, fsck_commit,
 * fsck_ident), path.c (is_ntfs_dotgit) and utf8.c (is_hfs_dotgit); each refusal names the
 * fsck message id git reports for the same object. Trees are walked once, byte by byte, with
 * no regular expression and no allocation per entry.
 */

/** The entry modes fsck --strict accepts, as numbers, and how airlock spells each. */
const MODE_FILE = 0o100644
const MODE_EXECUTABLE = 0o100755
const MODE_SYMLINK = 0o120000
const MODE_FOLDER = 0o40000
const MODE_SUBMODULE = 0o160000
const MODE_TEXT = new Map<number, string>([[MODE_FILE, '100644'], [MODE_EXECUTABLE, '100755'], [MODE_SYMLINK, '120000'], [MODE_FOLDER, '040000'], [MODE_SUBMODULE, '160000']])
/** fsck.c max_tree_entry_len: a longer name is `largePathname` (git 2.43 and later). */
const MAX_NAME_BYTES = 4096

const SPACE = 0x20
const DOT = 0x2e
const SLASH = 0x2f
const COLON = 0x3a
const BACKSLASH = 0x5c
const TILDE = 0x7e

/**
 * Walks a raw tree object and refuses it, naming the fsck id, when `git fsck --strict` would
 * report anything about it; `each` then sees every entry (its mode and the offsets of its name
 * and of the NUL that ends it, the 20-byte id following). Also refused: a name that is not
 * UTF-8, which airlock could not tell apart from another name once decoded.
 */
function checkTree(oid: string, buf: Buffer, each?: (mode: number, name: number, nul: number) => void): void {
  const refuse = (id: string, problem: string): never => {
    throw brokenObject(oid, `is a malformed folder: ${problem} (git fsck: ${id})`, {fsck: id})
  }
  /** The current entry's name: the bytes [name, nul). */
  let name = 0
  let nul = 0
  const shown = () => showName(buf, name, nul)
  /** verify_ordered's candidates: [start, end] of file names a later folder entry may repeat. */
  const files: number[] = []
  let prevName = -1
  let prevNul = -1
  let prevFolder = false
  for (let at = 0; at < buf.length; ) {
    // decode_tree_entry (tree-walk.c): `<octal mode> <name>\0<20-byte id>`; anything else is badTree.
    let mode = 0
    let i = at
    for (; i < buf.length && buf[i] !== SPACE; i++) {
      const c = buf[i]!
      if (c < 0x30 || c > 0x37) refuse('badTree', `the entry at byte ${at} has a malformed mode`)
      mode = mode < 0 || i - at >= 7 ? -1 : mode * 8 + (c - 0x30)
    }
    if (i === at || i >= buf.length) refuse('badTree', `the entry at byte ${at} has a malformed mode`)
    name = i + 1
    nul = name
    let slash = false
    let backslash = false
    let nonAscii = false
    for (; nul < buf.length; nul++) {
      const c = buf[nul]!
      if (c === 0) break
      if (c === SLASH) slash = true
      else if (c === BACKSLASH) backslash = true
      else if (c >= 0x80) nonAscii = true
    }
    const end = nul + 21
    if (end > buf.length) refuse('badTree', `the entry at byte ${at} is truncated`)
    if (nul === name) refuse('badTree', `the entry at byte ${at} has an empty name`)
    const folder = mode === MODE_FOLDER
    // fsck_tree's findings for one entry.
    if (buf[at] === 0x30) refuse('zeroPaddedFilemode', `entry ${shown()} has the zero-padded mode ${buf.toString('latin1', at, i)}`)
    if (!MODE_TEXT.has(mode)) refuse('badFilemode', `entry ${shown()} has mode ${buf.toString('latin1', at, i)}`)
    if (slash) refuse('fullPathname', `entry ${shown()} has a "/" in its name`)
    if (buf[name] === DOT && (nul === name + 1 || (nul === name + 2 && buf[name + 1] === DOT))) refuse(nul === name + 1 ? 'hasDot' : 'hasDotdot', `an entry is named ${shown()}`)
    if (nul - name > MAX_NAME_BYTES) refuse('largePathname', `an entry's name is ${nul - name} bytes long (more than ${MAX_NAME_BYTES})`)
    if (isNullId(buf, nul + 1)) refuse('nullSha1', `entry ${shown()} points at the null object id`)
    if (nonAscii && !isUtf8(buf.subarray(name, nul))) {
      throw brokenObject(oid, `is a malformed folder: entry ${shown()} has a name that is not UTF-8 (airlock reads names as UTF-8 text)`, {reason: 'name-not-utf8'})
    }
    const first = buf[name]!
    // Only names starting so can be a spelling of .git, .gitmodules, .gitattributes, .gitignore
    // or .mailmap: HFS+ ignorable code points are 0xE2… and 0xEF…, NTFS short names g…~N, m…~N
    // and (is_ntfs_dot_generic's fall-back) ~N followed by digits.
    if (backslash || first === DOT || first === 0x67 || first === 0x47 || first === 0x6d || first === 0x4d || first === TILDE || first === 0xe2 || first === 0xef) {
      if (isHfsDot(buf, name, nul, 'git') || isNtfsDotgit(buf, name, nul)) refuse('hasDotgit', `entry ${shown()} is a spelling of .git`)
      let gitmodules = isHfsDot(buf, name, nul, 'gitmodules') || isNtfsDot(buf, name, nul, 'gitmodules', 'gi7eba')
      // fsck reads a backslash as a folder separator (as Windows does): each part is checked too.
      for (let k = backslash ? name : nul; k < nul; k++) {
        if (buf[k] !== BACKSLASH) continue
        if (isNtfsDotgit(buf, k + 1, nul)) refuse('hasDotgit', `entry ${shown()} holds a spelling of .git after a backslash`)
        gitmodules ||= isNtfsDot(buf, k + 1, nul, 'gitmodules', 'gi7eba')
      }
      const link = mode === MODE_SYMLINK
      const regular = mode === MODE_FILE || mode === MODE_EXECUTABLE
      if (gitmodules && link) refuse('gitmodulesSymlink', `entry ${shown()} is .gitmodules as a symbolic link`)
      if (gitmodules && !regular) refuse('gitmodulesBlob', `entry ${shown()} is .gitmodules as ${describeMode(MODE_TEXT.get(mode)!)}`)
      const gitattributes = isHfsDot(buf, name, nul, 'gitattributes') || isNtfsDot(buf, name, nul, 'gitattributes', 'gi7d29')
      if (gitattributes && link) refuse('gitattributesSymlink', `entry ${shown()} is .gitattributes as a symbolic link`)
      if (gitattributes && !regular) refuse('gitattributesBlob', `entry ${shown()} is .gitattributes as ${describeMode(MODE_TEXT.get(mode)!)}`)
      if (link && (isHfsDot(buf, name, nul, 'gitignore') || isNtfsDot(buf, name, nul, 'gitignore', 'gi250a'))) refuse('gitignoreSymlink', `entry ${shown()} is .gitignore as a symbolic link`)
      if (link && (isHfsDot(buf, name, nul, 'mailmap') || isNtfsDot(buf, name, nul, 'mailmap', 'maba30'))) refuse('mailmapSymlink', `entry ${shown()} is .mailmap as a symbolic link`)
    }
    if (prevName >= 0) {
      const order = verifyOrdered(buf, prevName, prevNul, prevFolder, name, nul, folder, files)
      if (order === TREE_HAS_DUPS) refuse('duplicateEntries', `duplicate entry ${shown()}`)
      if (order === TREE_UNORDERED) refuse('treeNotSorted', `entry ${shown()} comes after ${showName(buf, prevName, prevNul)}, out of git's order`)
    }
    each?.(mode, name, nul)
    prevName = name
    prevNul = nul
    prevFolder = folder
    at = end
  }
}

const TREE_ORDERED = 0
const TREE_UNORDERED = 1
const TREE_HAS_DUPS = 2

/**
 * fsck.c verify_ordered: entries sort by name bytes with a folder's name read as if followed
 * by "/". A file and a folder of the same name need not be neighbours ("a", "a.b", "a/"), so
 * files that a later folder could repeat wait on `files` until one does (a duplicate) or cannot.
 */
function verifyOrdered(buf: Buffer, s1: number, e1: number, folder1: boolean, s2: number, e2: number, folder2: boolean, files: number[]): number {
  const len1 = e1 - s1
  const len2 = e2 - s2
  const len = len1 < len2 ? len1 : len2
  const cmp = buf.compare(buf, s2, s2 + len, s1, s1 + len)
  if (cmp < 0) return TREE_ORDERED
  if (cmp > 0) return TREE_UNORDERED
  let c1 = len1 > len ? buf[s1 + len]! : 0
  let c2 = len2 > len ? buf[s2 + len]! : 0
  if (c1 === 0 && c2 === 0) return TREE_HAS_DUPS
  if (c1 === 0 && folder1) c1 = SLASH
  if (c2 === 0 && folder2) c2 = SLASH
  if (c1 === 0 && isLessThanSlash(c2)) {
    files.push(s1, e1)
  } else if (c2 === SLASH && isLessThanSlash(c1)) {
    while (files.length > 0) {
      const fe = files.pop()!
      const fs = files.pop()!
      const flen = fe - fs
      if (flen > len2 || buf.compare(buf, s2, s2 + flen, fs, fe) !== 0) continue
      if (flen === len2) return TREE_HAS_DUPS
      if (isLessThanSlash(buf[s2 + flen]!)) {
        files.push(fs, fe)
        break
      }
    }
  }
  return c1 < c2 ? TREE_ORDERED : TREE_UNORDERED
}

function isLessThanSlash(c: number): boolean {
  return c > 0 && c < SLASH
}

function isNullId(buf: Buffer, at: number): boolean {
  for (let i = at; i < at + 20; i++) if (buf[i] !== 0) return false
  return true
}

/** The byte at `i` of a name ending at `end`, 0 past it (git's names are NUL-terminated). */
function byteAt(buf: Buffer, i: number, end: number): number {
  return i < end ? buf[i]! : 0
}

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c
}

/** utf8.c next_hfs_char's cursor: the offset of the next byte to decode. */
let hfsAt = 0

/**
 * utf8.c next_hfs_char: the next code point of the name at `hfsAt`, skipping those HFS+
 * ignores when it compares names; 0 at the end or where the bytes are not UTF-8.
 */
function nextHfsChar(buf: Buffer, end: number): number {
  for (;;) {
    // pick_one_utf8_char: strict UTF-8 (no overlong forms, surrogates, U+FFFE/U+FFFF, > U+10FFFF).
    const s0 = byteAt(buf, hfsAt, end)
    const s1 = byteAt(buf, hfsAt + 1, end)
    const s2 = byteAt(buf, hfsAt + 2, end)
    const s3 = byteAt(buf, hfsAt + 3, end)
    let c: number
    if (s0 < 0x80) {
      c = s0
      hfsAt += 1
    } else if ((s0 & 0xe0) === 0xc0) {
      if ((s1 & 0xc0) !== 0x80 || (s0 & 0xfe) === 0xc0) return 0
      c = ((s0 & 0x1f) << 6) | (s1 & 0x3f)
      hfsAt += 2
    } else if ((s0 & 0xf0) === 0xe0) {
      if ((s1 & 0xc0) !== 0x80 || (s2 & 0xc0) !== 0x80 || (s0 === 0xe0 && (s1 & 0xe0) === 0x80) || (s0 === 0xed && (s1 & 0xe0) === 0xa0) || (s0 === 0xef && s1 === 0xbf && (s2 & 0xfe) === 0xbe)) return 0
      c = ((s0 & 0x0f) << 12) | ((s1 & 0x3f) << 6) | (s2 & 0x3f)
      hfsAt += 3
    } else if ((s0 & 0xf8) === 0xf0) {
      if ((s1 & 0xc0) !== 0x80 || (s2 & 0xc0) !== 0x80 || (s3 & 0xc0) !== 0x80 || (s0 === 0xf0 && (s1 & 0xf0) === 0x80) || (s0 === 0xf4 && s1 > 0x8f) || s0 > 0xf4) return 0
      c = ((s0 & 0x07) << 18) | ((s1 & 0x3f) << 12) | ((s2 & 0x3f) << 6) | (s3 & 0x3f)
      hfsAt += 4
    } else {
      return 0
    }
    // Zero-width joiners, direction marks and overrides, shaping controls, the byte-order mark.
    if ((c >= 0x200c && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x206a && c <= 0x206f) || c === 0xfeff) continue
    return c
  }
}

/** utf8.c is_hfs_dot_generic: the name is "." + `needle` as HFS+ compares names (case and ignorables aside). */
function isHfsDot(buf: Buffer, start: number, end: number, needle: string): boolean {
  hfsAt = start
  if (nextHfsChar(buf, end) !== DOT) return false
  for (let k = 0; k < needle.length; k++) {
    const c = nextHfsChar(buf, end)
    if (c > 127 || lower(c) !== needle.charCodeAt(k)) return false
  }
  const c = nextHfsChar(buf, end)
  return c === 0 || c === SLASH
}

/** path.c is_ntfs_dotgit: ".git" or its short name "git~1", then only spaces and dots, up to the end, a separator or a stream (":"). */
function isNtfsDotgit(buf: Buffer, start: number, end: number): boolean {
  let i = start
  const c0 = byteAt(buf, i++, end)
  if (c0 === DOT) {
    if (lower(byteAt(buf, i++, end)) !== 0x67 || lower(byteAt(buf, i++, end)) !== 0x69 || lower(byteAt(buf, i++, end)) !== 0x74) return false
  } else if (lower(c0) === 0x67) {
    if (lower(byteAt(buf, i++, end)) !== 0x69 || lower(byteAt(buf, i++, end)) !== 0x74 || byteAt(buf, i++, end) !== TILDE || byteAt(buf, i++, end) !== 0x31) return false
  } else {
    return false
  }
  for (;;) {
    const c = byteAt(buf, i++, end)
    if (c === 0 || c === SLASH || c === BACKSLASH || c === COLON) return true
    if (c !== DOT && c !== SPACE) return false
  }
}

/**
 * path.c is_ntfs_dot_generic: "." + `needle`, its short name (six letters of it, "~1" to "~4")
 * or its fall-back short name (`prefix`, then "~" and a digit), then only spaces and dots up to
 * the end or a stream (":").
 */
function isNtfsDot(buf: Buffer, start: number, end: number, needle: string, prefix: string): boolean {
  const onlySpacesAndDots = (i: number): boolean => {
    for (;;) {
      const c = byteAt(buf, start + i++, end)
      if (c === 0 || c === COLON) return true
      if (c !== SPACE && c !== DOT) return false
    }
  }
  const caseless = (at: number, n: number): boolean => {
    for (let k = 0; k < n; k++) if (lower(byteAt(buf, start + at + k, end)) !== needle.charCodeAt(k)) return false
    return true
  }
  if (byteAt(buf, start, end) === DOT && caseless(1, needle.length)) return onlySpacesAndDots(needle.length + 1)
  const n = byteAt(buf, start + 7, end)
  if (caseless(0, 6) && byteAt(buf, start + 6, end) === TILDE && n >= 0x31 && n <= 0x34) return onlySpacesAndDots(8)
  let sawTilde = false
  let i = 0
  for (; i < 8; i++) {
    const c = byteAt(buf, start + i, end)
    if (c === 0) return false
    if (sawTilde) {
      if (c < 0x30 || c > 0x39) return false
    } else if (c === TILDE) {
      const d = byteAt(buf, start + ++i, end)
      if (d < 0x31 || d > 0x39) return false
      sawTilde = true
    } else if (i >= 6 || c & 0x80 || lower(c) !== prefix.charCodeAt(i)) {
      return false
    }
  }
  return onlySpacesAndDots(i)
}

/** A name from a tree for a message: printable ASCII as is, any other byte as \xNN (nothing invisible). */
function showName(buf: Buffer, start: number, end: number): string {
  let out = '"'
  for (let i = start; i < end; i++) {
    const c = buf[i]!
    out += c >= 0x20 && c < 0x7f && c !== 0x22 && c !== BACKSLASH ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`
  }
  return `${out}"`
}

/** Parses a raw tree object strictly (checkTree): its entries by name. */
function parseTree(oid: string, buf: Buffer): Map<string, TreeItem> {
  const out = new Map<string, TreeItem>()
  checkTree(oid, buf, (mode, name, nul) => {
    const type = mode === MODE_FOLDER ? 'tree' : mode === MODE_SUBMODULE ? 'commit' : 'blob'
    out.set(buf.toString('utf8', name, nul), {oid: buf.toString('hex', nul + 1, nul + 21), type, mode: MODE_TEXT.get(mode)!})
  })
  return out
}

/** An entry present in only one of two trees, or in both with other bytes. */
export interface TreeDifference {
  name: string
  /** Its object id in the first tree, null when absent there. */
  a: string | null
  b: string | null
}

/**
 * Entries present in only one of two raw trees, or present in both with other bytes, by a
 * merge-scan in git's order (a folder's name read as if followed by "/"): equal entries are
 * compared as bytes and skipped without being decoded. A name that is a file on one side and
 * a folder on the other is two entries, one removed and one added (as `git diff-tree` shows it).
 * Both trees must have passed checkTree: this reads entries, it does not judge them.
 */
export function diffRawTrees(a: Buffer, b: Buffer): TreeDifference[] {
  const out: TreeDifference[] = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    const na = i < a.length ? a.indexOf(0, i) : -1
    const nb = j < b.length ? b.indexOf(0, j) : -1
    if ((i < a.length && (na < 0 || na + 21 > a.length)) || (j < b.length && (nb < 0 || nb + 21 > b.length))) {
      throw new AirlockError('BROKEN_OBJECT', 'a folder object is malformed (a truncated entry)', {})
    }
    if (i < a.length && j < b.length && na - i === nb - j && a.compare(b, j, nb + 21, i, na + 21) === 0) {
      i = na + 21
      j = nb + 21
      continue
    }
    const sa = i < a.length ? a.indexOf(SPACE, i) + 1 : -1
    const sb = j < b.length ? b.indexOf(SPACE, j) + 1 : -1
    const order = i >= a.length ? 1 : j >= b.length ? -1 : gitOrder(a, sa, na, sa - i === 6 && a[i] === 0x34, b, sb, nb, sb - j === 6 && b[j] === 0x34)
    if (order === 0) out.push({name: a.toString('utf8', sa, na), a: a.toString('hex', na + 1, na + 21), b: b.toString('hex', nb + 1, nb + 21)})
    else if (order < 0) out.push({name: a.toString('utf8', sa, na), a: a.toString('hex', na + 1, na + 21), b: null})
    else out.push({name: b.toString('utf8', sb, nb), a: null, b: b.toString('hex', nb + 1, nb + 21)})
    if (order <= 0) i = na + 21
    if (order >= 0) j = nb + 21
  }
  return out
}

/** git's base_name_compare: name bytes, a folder's name as if followed by "/". */
function gitOrder(a: Buffer, s1: number, e1: number, folder1: boolean, b: Buffer, s2: number, e2: number, folder2: boolean): number {
  const len1 = e1 - s1
  const len2 = e2 - s2
  const len = len1 < len2 ? len1 : len2
  const cmp = a.compare(b, s2, s2 + len, s1, s1 + len)
  if (cmp !== 0) return cmp
  const c1 = len1 > len ? a[s1 + len]! : folder1 ? SLASH : 0
  const c2 = len2 > len ? b[s2 + len]! : folder2 ? SLASH : 0
  return c1 - c2
}

/**
 * Parses a raw commit object (headers, a blank line, the message) and checks it as
 * `git fsck --strict` does (fsck.c fsck_commit, fsck_ident): a tree, parents, one author and a
 * committer, in that order and well formed, no NUL byte. Also refused, though fsck passes
 * them: a second tree, parent, author or committer header further down, which git ignores
 * and isomorphic-git (which airlock's merges use) would read. A commit that is not so is
 * BROKEN_OBJECT naming the commit, the field and the fsck id.
 */
export function parseCommit(oid: string, raw: string): CommitInfo {
  const bad = (id: string | null, field: string, problem: string) => brokenObject(oid, `is a malformed commit: ${field} ${problem}${id ? ` (git fsck: ${id})` : ''}`, {field, ...(id ? {fsck: id} : {})})
  // verify_headers: no NUL before the blank line; the header ends with a newline.
  const split = raw.indexOf('\n\n')
  const nul = raw.indexOf('\0')
  if (nul >= 0 && (split < 0 || nul < split)) throw bad('nulInHeader', 'header', 'holds a NUL byte')
  if (split < 0 && !raw.endsWith('\n')) throw bad('unterminatedHeader', 'header', 'does not end with a newline')
  const head = split < 0 ? raw : raw.slice(0, split)
  const message = split < 0 ? '' : raw.slice(split + 2)
  // fsck_commit, one line at a time: tree, parents, author, committer.
  const lines = (split < 0 ? raw.slice(0, -1) : head).split('\n')
  const hex = /^[0-9a-f]{40}$/
  if (!lines[0]!.startsWith('tree ')) throw bad('missingTree', 'tree', 'is missing (it must come first)')
  const tree = lines[0]!.slice(5)
  if (!hex.test(tree)) throw bad('badTreeSha1', 'tree', 'is not an object id')
  const parents: string[] = []
  let k = 1
  for (; lines[k]?.startsWith('parent '); k++) {
    const parent = lines[k]!.slice(7)
    if (!hex.test(parent)) throw bad('badParentSha1', 'parent', 'is not an object id')
    parents.push(parent)
  }
  const authorAt = k
  const identity = (field: string, text: string) => parseIdent(text, (id, problem) => bad(id, field, problem))
  for (; lines[k]?.startsWith('author '); k++) identity('author', lines[k]!.slice(7))
  if (k === authorAt) throw bad('missingAuthor', 'author', 'is missing after the tree and parents')
  if (k > authorAt + 1) throw bad('multipleAuthors', 'author', 'appears more than once')
  const author = identity('author', lines[authorAt]!.slice(7))
  if (!lines[k]?.startsWith('committer ')) throw bad('missingCommitter', 'committer', 'is missing after the author')
  const committer = identity('committer', lines[k]!.slice(10))
  if (nul >= 0) throw bad('nulInCommit', 'message', 'holds a NUL byte')
  for (const line of lines.slice(k + 1)) {
    const space = line.indexOf(' ')
    const key = space < 0 ? line : line.slice(0, space)
    if (key === 'tree' || key === 'parent' || key === 'author' || key === 'committer') throw bad(null, key, 'appears again after the committer (git ignores it; other readers would not)')
  }
  // The signed payload: the object without its gpgsig header (continuation lines included).
  const headers: Array<[string, string]> = []
  for (const line of head.split('\n')) {
    if (line.startsWith(' ') && headers.length > 0) headers[headers.length - 1]![1] += `\n${line.slice(1)}`
    else {
      const space = line.indexOf(' ')
      headers.push(space < 0 ? [line, ''] : [line.slice(0, space), line.slice(space + 1)])
    }
  }
  const signature = headers.find(([key]) => key === 'gpgsig')?.[1]
  const kept = headers.filter(([key]) => key !== 'gpgsig').map(([key, v]) => `${key} ${v.replaceAll('\n', '\n ')}`)
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

/**
 * fsck.c fsck_ident over one author or committer line (without its newline):
 * `name <email> seconds +hhmm`. git lets spaces and tabs run before the seconds; so does this.
 */
function parseIdent(line: string, bad: (id: string | null, problem: string) => AirlockError): {name: string; email: string; time: number} {
  const digit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9'
  if (line[0] === '<') throw bad('missingNameBeforeEmail', 'has no name before its email')
  let p = 0
  for (; ; p++) {
    if (p >= line.length) throw bad('missingEmail', 'has no email')
    if (line[p] === '>') throw bad('badName', 'has a ">" in its name')
    if (line[p] === '<') break
  }
  if (line[p - 1] !== ' ') throw bad('missingSpaceBeforeEmail', 'has no space before its email')
  const open = p
  for (p++; ; p++) {
    if (p >= line.length || line[p] === '<') throw bad('badEmail', 'has a malformed email')
    if (line[p] === '>') break
  }
  const close = p++
  if (line[p] !== ' ') throw bad('missingSpaceBeforeDate', 'has no space before its date')
  p++
  while (line[p] === ' ' || line[p] === '\t') p++
  if (!digit(line[p])) throw bad('badDate', 'has a malformed date')
  if (line[p] === '0' && line[p + 1] !== ' ') throw bad('zeroPaddedDate', 'has a zero-padded date')
  const from = p
  while (digit(line[p])) p++
  const seconds = line.slice(from, p)
  if (seconds.length > 15) {
    // git keeps dates below 2^63 seconds; airlock (a JavaScript number) below 10^15.
    if (seconds.length > 23 || BigInt(seconds) >= 2n ** 63n) throw bad('badDateOverflow', `has a date (${seconds}) that overflows`)
    throw bad(null, `has a date (${seconds}) beyond what airlock reads`)
  }
  if (line[p] !== ' ') throw bad('badDate', 'has a malformed date')
  p++
  if ((line[p] !== '+' && line[p] !== '-') || !digit(line[p + 1]) || !digit(line[p + 2]) || !digit(line[p + 3]) || !digit(line[p + 4]) || p + 5 !== line.length) {
    throw bad('badTimezone', 'has a malformed time zone')
  }
  return {name: line.slice(0, open).trim(), email: line.slice(open + 1, close), time: Number(seconds)}
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

/** Most output (per stream) a git run may give before it is stopped: what execa, used here before, allowed. */
const GIT_MAX_OUTPUT = 100_000_000

/**
 * Runs native git and collects what it prints; never throws. `code` is 'ENOENT' when git (or
 * `cwd`) is not there. Output beyond GIT_MAX_OUTPUT stops git: exit code null, said on stderr.
 * (node:child_process rather than execa: execa costs a CLI run ~0.1 s of module loading.)
 */
function runGit(args: string[], opts: {cwd: string; env?: NodeJS.ProcessEnv}): Promise<{exitCode: number | null; stdout: string; stderr: string; code?: string}> {
  return new Promise((done) => {
    // Replace refs (refs/replace/, which a fetch of every ref brings) would make git show another
    // object for an id; airlock reads objects by their ids, and so does every git it runs.
    const child = spawn('git', args, {cwd: opts.cwd, env: {...(opts.env ?? process.env), GIT_NO_REPLACE_OBJECTS: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    let over = false
    const collect = (into: Buffer[]) => {
      let size = 0
      return (chunk: Buffer) => {
        size += chunk.length
        if (size > GIT_MAX_OUTPUT) {
          if (!over) child.kill()
          over = true
          return
        }
        into.push(chunk)
      }
    }
    child.stdout.on('data', collect(out))
    child.stderr.on('data', collect(err))
    child.on('error', (e: NodeJS.ErrnoException) => done({exitCode: null, stdout: '', stderr: e.message, code: e.code}))
    child.on('close', (exitCode) => {
      const stderr = Buffer.concat(err).toString('utf8')
      done({exitCode: over ? null : exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: over ? `git printed more than ${GIT_MAX_OUTPUT} bytes` : stderr})
    })
  })
}

/**
 * Who git says makes a commit in `dir`: `git var GIT_AUTHOR_IDENT` / `GIT_COMMITTER_IDENT`
 * (GIT_AUTHOR_* and GIT_COMMITTER_* first, then user.name and user.email from the repository,
 * global and system configuration). Where git is not installed, the environment and the
 * repository's configuration. No identity is git's own refusal (exit 2), never a made-up one.
 */
export async function gitIdent(dir: string, kind: 'author' | 'committer', env: NodeJS.ProcessEnv = process.env): Promise<Person> {
  const r = await runGit(['var', `GIT_${kind.toUpperCase()}_IDENT`], {cwd: dir, env})
  const source = `the git ${kind} identity`
  if (r.code === 'ENOENT') {
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
