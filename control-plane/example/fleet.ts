/**
 * The embedded example fleet: the project's top-level manifests/, policies/ and docs/evidence/,
 * whose signed history ships beside them as a git bundle (examples/fleet.bundle, made by
 * scripts/make-example-fleet.js with keys that were thrown away). Trust in it starts at the
 * anchor pinned in airlock's code (anchor.ts), as a TUF client ships its first root: the bundle
 * is cloned into a temporary folder, its one root must be that anchor, its history must verify
 * from it as `evidence verify` verifies, and the top-level folders must be byte for byte what its
 * tip holds. Commands (`preflight --example`) and tests then run in that clone.
 */
import {createHash} from 'node:crypto'
import {lstat, mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {EVIDENCE_DIR} from '../manifests/models.js'
import {baseRefusal, pinAnchor, verifyBase} from '../pipeline/base.js'
import {Repository} from '../repo/repository.js'
import {EXAMPLE_FLEET_ANCHOR} from './anchor.js'

/** Where the example's history ships, relative to the project root. */
export const EXAMPLE_BUNDLE = 'examples/fleet.bundle'
/** The top-level folders that are the example fleet, and must equal its verified tip. */
export const EXAMPLE_FOLDERS = ['manifests', 'policies', EVIDENCE_DIR] as const

export interface OpenedExampleFleet {
  /** The temporary clone, its git config pinning the anchor (airlock.trustAnchor). */
  dir: string
  /** The anchor pinned in the code; pass it on too (--trust-anchor, AIRLOCK_TRUST_ANCHOR, the pipeline's anchor input). */
  anchor: string
  /** The verified tip (main). */
  head: string
  /** Commits verified from the anchor, and files compared with the top-level folders. */
  commits: number
  files: number
  /** Removes the temporary clone. */
  cleanup: () => Promise<void>
}

const short = (oid: string) => oid.slice(0, 12)
const unanchored = (message: string, details: Record<string, unknown> = {}) => new AirlockError('EXAMPLE_UNANCHORED', `${EXAMPLE_BUNDLE}: ${message}`, {bundle: EXAMPLE_BUNDLE, ...details})

/** The git blob id of `bytes`: equal ids, equal bytes. */
function blobOid(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
}

/** Every file of the tree at `folder` in `commit`: path → blob id (a symbolic link or submodule is kept, to differ). */
async function treeFiles(repo: Repository, commit: string, folder: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const entry = await repo.entryAt((await repo.readCommit(commit)).tree, folder)
  if (!entry) return out
  const walk = async (oid: string, prefix: string): Promise<void> => {
    for (const [name, item] of await repo.treeEntries(oid)) {
      if (item.type === 'tree') await walk(item.oid, `${prefix}/${name}`)
      else out.set(`${prefix}/${name}`, item.mode === '100644' || item.mode === '100755' ? item.oid : `${item.mode}:${item.oid}`)
    }
  }
  if (entry.type === 'tree') await walk(entry.oid, folder)
  else out.set(folder, `${entry.mode}:${entry.oid}`)
  return out
}

/** Every file on disk under `root`/`folder`: path → blob id, or why it is not a regular file. */
async function diskFiles(root: string, folder: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const walk = async (rel: string): Promise<void> => {
    const st = await lstat(join(root, rel)).catch(() => null)
    if (!st) return
    if (st.isDirectory()) {
      for (const name of await readdir(join(root, rel))) await walk(`${rel}/${name}`)
    } else if (st.isFile()) out.set(rel, blobOid(await readFile(join(root, rel))))
    else out.set(rel, st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file')
  }
  await walk(folder)
  return out
}

/**
 * The first path (in sorted order) where the project's folders on disk and the tip differ, or
 * null. Files on disk, not the project's git index: what a reader of this checkout sees, also in
 * a copy with no .git (a downloaded archive).
 */
export async function firstDifference(projectRoot: string, repo: Repository, commit: string): Promise<{file: string; reason: 'differs' | 'missing' | 'extra' | 'not-a-file'} | null> {
  const tip = new Map<string, string>()
  const disk = new Map<string, string>()
  for (const folder of EXAMPLE_FOLDERS) {
    for (const [p, o] of await treeFiles(repo, commit, folder)) tip.set(p, o)
    for (const [p, o] of await diskFiles(projectRoot, folder)) disk.set(p, o)
  }
  for (const file of [...new Set([...tip.keys(), ...disk.keys()])].sort()) {
    const a = tip.get(file)
    const b = disk.get(file)
    if (a === b) continue
    if (b === undefined) return {file, reason: 'missing'}
    if (!/^[0-9a-f]{40}$/.test(b)) return {file, reason: 'not-a-file'}
    return {file, reason: a === undefined ? 'extra' : 'differs'}
  }
  return null
}

const WHY: Record<'differs' | 'missing' | 'extra' | 'not-a-file', string> = {
  differs: 'differs from',
  missing: 'is missing, but is in',
  extra: 'is not in',
  'not-a-file': 'is a symbolic link or special file, where only regular files and folders can match',
}

/**
 * Clones the example's bundle into a temporary folder and checks it: its one root is the anchor
 * pinned in the code (else EXAMPLE_UNANCHORED), its history verifies from it (else
 * BASE_UNVERIFIED with the problems), and the project's top-level manifests/, policies/ and
 * docs/evidence/ on disk are byte for byte its tip's (else EXAMPLE_MISMATCH naming the first
 * file that differs). The caller runs what it runs in `dir`, then calls `cleanup`.
 */
export async function openExampleFleet(projectRoot: string, limits: Limits, now: Date, opts: {anchor?: string} = {}): Promise<OpenedExampleFleet> {
  const anchor = opts.anchor ?? EXAMPLE_FLEET_ANCHOR
  const bundle = join(projectRoot, EXAMPLE_BUNDLE)
  const st = await stat(bundle).catch(() => null)
  if (!st?.isFile()) throw unanchored(`missing from ${projectRoot}; \`node scripts/make-example-fleet.js\` makes it`)
  const temp = await mkdtemp(join(tmpdir(), 'airlock-example-'))
  const cleanup = () => rm(temp, {recursive: true, force: true})
  try {
    const dir = join(temp, 'fleet')
    // Git's own environment (a hook's GIT_DIR) must not point the clone elsewhere.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_')))
    const cloned = await execa('git', ['clone', '--quiet', '--branch', 'main', '--', bundle, dir], {env, extendEnv: false, reject: false})
    if (cloned.exitCode !== 0) throw unanchored(`cannot be cloned (${String(cloned.stderr).split('\n')[0] ?? ''})`)
    const repo = await Repository.open(dir)
    const {branch, commit: head} = await repo.base()
    // Step 1 — the root: a bundle rebuilt from another first commit (other keys) is not the example.
    const roots = String((await execa('git', ['rev-list', '--max-parents=0', 'HEAD'], {cwd: dir, env, extendEnv: false})).stdout).split('\n').filter(Boolean)
    if (roots.length !== 1 || roots[0] !== anchor) {
      throw unanchored(`its history starts at ${roots.map(short).join(', ') || 'nothing'}, not at the anchor pinned in airlock's code (${short(anchor)}); it was rebuilt without updating control-plane/example/anchor.ts, or replaced`, {roots, anchor})
    }
    // Step 2 — the history, from the anchor, as `evidence verify` checks it.
    await pinAnchor(repo, anchor)
    const v = await verifyBase(repo, head, {anchor, limits, now, branch})
    const refused = baseRefusal(head, v)
    if (refused) throw refused
    // Step 3 — the folders a reader of this checkout sees are the verified tip's.
    const diff = await firstDifference(projectRoot, repo, head)
    if (diff) {
      throw new AirlockError('EXAMPLE_MISMATCH', `${diff.file}: ${WHY[diff.reason]} the example fleet's verified history (${EXAMPLE_BUNDLE} at ${short(head)}); restore it (git checkout -- ${diff.file}) or regenerate the example (scripts/make-example-fleet.js)`, {
        file: diff.file,
        reason: diff.reason,
        commit: head,
      })
    }
    let files = 0
    for (const folder of EXAMPLE_FOLDERS) files += (await treeFiles(repo, head, folder)).size
    return {dir, anchor, head, commits: v.walked + 1, files, cleanup}
  } catch (error) {
    await cleanup()
    throw error
  }
}
