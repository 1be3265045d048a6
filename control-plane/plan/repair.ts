/**
 * `airlock repair`: what an apply killed at any point can leave behind, named, and (with
 * --apply) put right. An apply writes objects first (each under a temporary name, renamed after
 * fsync), then moves the branch under git's ref lock, then brings the work tree and index along;
 * so after a crash the repository is before the change, after it, or in one of these states:
 *
 * - apply-lock          `.git/airlock.lock` of a process that is gone, or empty/torn and old
 * - ref-lock            `<ref>.lock` airlock took and never renamed (the branch did not move)
 * - unfinished-checkout the branch moved to airlock's commit; the work tree and index did not
 * - temp-file           a temporary file of a writer that is gone
 * - pending-key         a new private key `keys generate --apply` had not yet put in place: it
 *                       is put in place when HEAD's trust.yaml holds it, removed otherwise
 * - empty-object        a zero-byte loose object (written by a tool without fsync + rename)
 *
 * Anything else — a lock held by a live process, an edit that is nobody's crash — is reported
 * and left alone.
 */
import {link, lstat, readdir, readFile, unlink} from 'node:fs/promises'
import {join, relative, sep} from 'node:path'
import {AirlockError} from '../errors.js'
import {LAYOUT_FOLDERS} from '../manifests/kinds.js'
import {loadImageKey} from '../crypto/keys.js'
import {DEFAULT_LIMITS} from '../limits.js'
import {loadTrust} from '../manifests/load.js'
import {resolveAnchor, verifyBase} from '../pipeline/base.js'
import {TEMP_SUFFIX, tempWriter} from '../repo/files.js'
import type {Repository} from '../repo/repository.js'
import {parseTrailers} from '../repo/trailers.js'
import {acquireApplyLock, APPLY_LOCK, lockMessage, lockState, running, TORN_LOCK_AGE_MS} from './lock.js'

export type FindingKind = 'apply-lock' | 'ref-lock' | 'unfinished-checkout' | 'temp-file' | 'pending-key' | 'empty-object'

export interface RepairFinding {
  kind: FindingKind
  /** Repository-relative path (`.git/…` for git's own files). */
  path: string
  problem: string
  /** What `--apply` does; null when it is left to a person (`problem` says why and how). */
  fix: string | null
}

export interface RepairReport {
  findings: RepairFinding[]
  /** With --apply: the findings that were fixed. */
  fixed: RepairFinding[]
}

const OLD_MS = TORN_LOCK_AGE_MS
/** Where `keys generate` keeps private keys (git-ignored). */
const KEYS_DIR = 'keys'

/** Files below `dir` (recursively, not following links), as absolute paths; absent: none. */
async function walk(dir: string, depth = 8): Promise<string[]> {
  const entries = await readdir(dir, {withFileTypes: true}).catch(() => [])
  const out: string[] = []
  for (const e of entries) {
    const abs = join(dir, e.name)
    if (e.isDirectory() && depth > 0) out.push(...(await walk(abs, depth - 1)))
    else if (e.isFile()) out.push(abs)
  }
  return out
}

/** Everything a crash may have left, without changing anything. */
export async function findRepairs(repo: Repository, now: Date): Promise<RepairFinding[]> {
  const findings: RepairFinding[] = []
  const rel = (abs: string) => relative(repo.dir, abs).split(sep).join('/')
  const lock = await lockState(repo.gitdir, now)
  const lockPath = join(repo.gitdir, APPLY_LOCK)
  if (lock.state === 'dead' || lock.state === 'torn') findings.push({kind: 'apply-lock', path: rel(lockPath), problem: lockMessage(rel(lockPath), lock), fix: 'remove the lock file'})
  else if (lock.state !== 'free' && !(lock.state === 'running' && lock.holder.pid === process.pid)) findings.push({kind: 'apply-lock', path: rel(lockPath), problem: lockMessage(rel(lockPath), lock), fix: null})
  // While an apply runs, its ref lock and temporary files are its own: nothing else is judged
  // (unless the one holding the lock is this repair).
  const mine = lock.state === 'running' && lock.holder.pid === process.pid
  if (!mine && (lock.state === 'running' || lock.state === 'fresh-torn' || lock.state === 'other-host')) return findings

  // Ref locks under refs/: airlock's holds the id of a commit airlock made.
  for (const abs of await walk(join(repo.gitdir, 'refs'))) {
    if (!abs.endsWith('.lock')) continue
    const st = await lstat(abs)
    const text = (await readFile(abs, 'utf8').catch(() => '')).trim()
    const ours = /^[0-9a-f]{40}$/.test(text) && (await repo.readCommit(text).then((c) => 'Airlock-Operation' in parseTrailers(c.message), () => false))
    if (ours) findings.push({kind: 'ref-lock', path: rel(abs), problem: `${rel(abs)} was left by an interrupted apply: the branch never moved to ${text.slice(0, 12)}`, fix: 'remove the ref lock (the change did not happen; run it again)'})
    else if (now.getTime() - st.mtimeMs >= OLD_MS) {
      findings.push({kind: 'ref-lock', path: rel(abs), problem: `${rel(abs)} is not airlock's (it names ${text ? text.slice(0, 12) : 'nothing'}); if no git command is running, remove it with \`rm ${rel(abs)}\``, fix: null})
    }
  }

  // Temporary files of writers that are gone (or, without a pid in the name, older than a minute).
  const roots = [repo.gitdir, KEYS_DIR, ...LAYOUT_FOLDERS.filter((f) => !f.includes('/'))].map((f) => (f === repo.gitdir ? f : join(repo.dir, f)))
  for (const root of roots) {
    for (const abs of await walk(root)) {
      if (!abs.endsWith(TEMP_SUFFIX) && !/[/\\]tmp_obj_[^/\\]*$/.test(abs)) continue
      const pid = tempWriter(abs)
      const st = await lstat(abs)
      if (pid !== null ? pid === process.pid || running(pid) : now.getTime() - st.mtimeMs < OLD_MS) continue
      if (root === join(repo.dir, KEYS_DIR) && /\.key\.\d+-[0-9a-f]+\.airlock-tmp$/.test(abs)) findings.push(await pendingKey(repo, abs, rel, now))
      else findings.push({kind: 'temp-file', path: rel(abs), problem: `${rel(abs)} is a temporary file of an interrupted write`, fix: 'remove it'})
    }
  }

  // Zero-byte loose objects.
  const objects = join(repo.gitdir, 'objects')
  for (const folder of await readdir(objects).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{2}$/.test(folder)) continue
    for (const name of await readdir(join(objects, folder)).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{38}$/.test(name)) continue
      const st = await lstat(join(objects, folder, name)).catch(() => null)
      if (st?.isFile() && st.size === 0) findings.push({kind: 'empty-object', path: rel(join(objects, folder, name)), problem: `object ${folder}${name} is an empty file (an interrupted write)`, fix: 'remove it (git then sees it as missing, not corrupt)'})
    }
  }

  findings.push(...(await unfinishedCheckout(repo)))
  return findings
}

/**
 * A new private key left under its temporary name by an interrupted `keys generate --apply`:
 * whether HEAD's trust.yaml holds it says whether its trust change was committed.
 */
async function pendingKey(repo: Repository, abs: string, rel: (abs: string) => string, now: Date): Promise<RepairFinding> {
  const final = abs.replace(/\.\d+-[0-9a-f]+\.airlock-tmp$/, '')
  const keyid = await loadImageKey(abs).then((k) => k.keyid, () => null)
  const head = await repo.head().catch(() => null)
  // Only a HEAD whose history verifies says the trust change landed: anyone can push a trust.yaml.
  const verified = head?.oid ? (await verifyBase(repo, head.oid, {anchor: (await resolveAnchor(repo, {env: process.env.AIRLOCK_TRUST_ANCHOR})).commit, limits: DEFAULT_LIMITS, now}).catch(() => null))?.verified : false
  const trust = head?.oid && verified ? await loadTrust(repo, head.oid, DEFAULT_LIMITS).catch(() => null) : null
  const trusted = keyid !== null && Boolean(trust?.keys.some((k) => k.id === keyid))
  const taken = await lstat(final).then(() => true, () => false)
  if (trusted && !taken) return {kind: 'pending-key', path: rel(abs), problem: `${rel(abs)} is the private key of ${keyid!.slice(0, 16)}…, which trust.yaml at HEAD holds: keys generate was interrupted after its commit`, fix: `put it in place as ${rel(final)}`}
  return {kind: 'pending-key', path: rel(abs), problem: `${rel(abs)} is a private key whose trust change is not in the verified history${taken ? ` (and ${rel(final)} exists)` : ''}`, fix: 'remove it'}
}

/**
 * The branch points at airlock's commit but the work tree and index still hold its parent's
 * version of the files it changed (or some of them): the checkout after the ref moved was cut
 * short. Fixable only when every such file holds exactly the parent's or the commit's content.
 */
export async function unfinishedCheckout(repo: Repository): Promise<RepairFinding[]> {
  const head = await repo.head().catch(() => null)
  if (!head?.oid) return []
  const commit = await repo.readCommit(head.oid).catch(() => null)
  if (!commit || commit.parents.length !== 1 || !('Airlock-Operation' in parseTrailers(commit.message))) return []
  const parent = await repo.readCommit(commit.parents[0]!)
  const paths = await repo.changedPaths(parent.tree, commit.tree)
  if (paths.length === 0) return []
  const index = await repo.indexOids(paths)
  const behind: string[] = []
  const foreign: string[] = []
  for (const path of paths) {
    const [before, after] = await Promise.all([repo.readFile(parent.oid, path), repo.readFile(commit.oid, path)])
    const work = await repo.workTreeText(path)
    const staged = index.get(path) ?? null
    const done = work === (after?.text ?? null) && staged === (after?.oid ?? null)
    if (done) continue
    const known = (work === (before?.text ?? null) || work === (after?.text ?? null)) && (staged === (before?.oid ?? null) || staged === (after?.oid ?? null))
    ;(known ? behind : foreign).push(path)
  }
  if (behind.length === 0 && foreign.length === 0) return []
  const at = `${head.ref.replace('refs/heads/', '')} @ ${head.oid.slice(0, 12)}`
  if (foreign.length > 0) {
    return [{kind: 'unfinished-checkout', path: foreign[0]!, problem: `${at} was applied but the work tree holds other edits of ${foreign.join(', ')}; commit or discard them, then run \`airlock repair --apply\` again`, fix: null}]
  }
  return [{kind: 'unfinished-checkout', path: behind[0]!, problem: `${at} moved, but the work tree and index of ${behind.join(', ')} are still those of ${parent.oid.slice(0, 12)} (an apply was interrupted after its commit)`, fix: `finish the checkout of ${head.oid.slice(0, 12)}`}]
}

/**
 * Fixes what `findRepairs` marked fixable, under the apply lock (taken once a dead or torn one is
 * cleared), and returns what it fixed. A live apply is LOCK_HELD (exit 3).
 */
export async function applyRepairs(repo: Repository, now: Date): Promise<RepairReport> {
  let findings = await findRepairs(repo, now)
  const fixed: RepairFinding[] = []
  const stale = findings.find((f) => f.kind === 'apply-lock' && f.fix)
  if (stale) {
    await unlink(join(repo.dir, stale.path)).catch(() => {})
    fixed.push(stale)
  }
  const lock = await acquireApplyLock(repo.gitdir, now)
  try {
    // Looked at again under the lock: nothing can start meanwhile.
    findings = (await findRepairs(repo, now)).filter((f) => f.kind !== 'apply-lock')
    for (const f of findings) {
      if (!f.fix) continue
      if (f.kind === 'pending-key' && f.fix?.startsWith('put it in place')) {
        const abs = join(repo.dir, f.path)
        await link(abs, abs.replace(/\.\d+-[0-9a-f]+\.airlock-tmp$/, ''))
        await unlink(abs)
      } else if (f.kind === 'unfinished-checkout') {
        const head = await repo.base()
        const commit = await repo.readCommit(head.commit)
        const paths = await repo.changedPaths((await repo.readCommit(commit.parents[0]!)).tree, commit.tree)
        const files = await Promise.all(paths.map(async (path) => ({path, content: (await repo.readFile(head.commit, path))?.text ?? null})))
        await repo.syncWorkTree(files)
      } else {
        await unlink(join(repo.dir, f.path)).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw new AirlockError('INVALID_INPUT', `${f.path}: cannot remove (${error.code})`, {path: f.path})
        })
      }
      fixed.push(f)
    }
  } finally {
    await lock.release()
  }
  return {findings: [...(stale ? [stale] : []), ...findings], fixed}
}
