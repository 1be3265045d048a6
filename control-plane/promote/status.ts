import type {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {loadImage, loadImages} from '../manifests/load.js'
import {SIGNED_PATHS} from '../manifests/kinds.js'
import {EVIDENCE_DIR, IMAGES_DIR, type GoldenImage} from '../manifests/models.js'
import type {CommitInfo, Repository} from '../repo/repository.js'
import {parseTrailers} from '../repo/trailers.js'

export interface LastChange {
  commit: string
  time: string
  /** Who asked for the change: the requester its receipt records (null: no receipt of its own). */
  requestedBy: string | null
  /** Who made the commit, as git records it. */
  author: string
  operation: string | null
  /** The commit's receipt: named by its trailers and among HEAD's receipts, in a history that verifies (else null). */
  receipt: string | null
  /** True when the commit has such a receipt: a change airlock made, with its evidence. */
  viaAirlock: boolean
  /** False when the commit's history does not verify back to the trust anchor. */
  verified: boolean
}

export interface ChannelStatus {
  channel: string
  digest: string
  reference: string
  rollbackTarget: string | null
  lastChange: LastChange | null
}

export interface ImageStatus {
  name: string
  file: string
  repository: string
  tier: number
  channels: ChannelStatus[]
}

export interface StatusReport {
  branch: string
  head: string
  images: ImageStatus[]
}

/** Is `commit` a single-parent change of a signed folder (so, in a verified history, a signed one)? Root tree reads only. */
async function signedChange(repo: Repository, commit: CommitInfo): Promise<boolean> {
  if (commit.parents.length !== 1) return commit.parents.length === 0
  const [here, there] = await Promise.all([repo.treeEntries(commit.tree), repo.readCommit(commit.parents[0]!).then((p) => repo.treeEntries(p.tree))])
  if (SIGNED_PATHS.some((f) => here.get(f)?.oid !== there.get(f)?.oid)) return true
  return (await repo.oidInTree(commit.tree, EVIDENCE_DIR)) !== (await repo.oidInTree((await repo.readCommit(commit.parents[0]!)).tree, EVIDENCE_DIR))
}

/**
 * Per image and channel: the pinned digest, the rollback target, and the commit that last
 * changed it. Walks first-parent history once, newest first, and stops as soon as every
 * channel asked about is accounted for. airlock's own commits name their image and channel in
 * trailers; for other commits the image's manifest is compared with the parent's.
 */
export async function status(repo: Repository, opts: {image?: string; limits: Limits; verified: boolean; unverified?: ReadonlySet<string>}): Promise<StatusReport> {
  const base = await repo.base()
  const images: GoldenImage[] = opts.image ? [await loadImage(repo, base.commit, opts.image, opts.limits)] : await loadImages(repo, base.commit, opts.limits)
  const receipts = new Set(opts.verified ? (await repo.listDir(base.commit, EVIDENCE_DIR)).map((e) => e.path) : [])
  const found = new Map<string, LastChange>()
  const open = new Map<string, Set<string>>()
  /** Image name by manifest file name in the images folder. */
  const imageOf = new Map<string, string>()
  for (const img of images) {
    open.set(img.name, new Set(Object.keys(img.channels)))
    imageOf.set(img.file.slice(IMAGES_DIR.length + 1), img.name)
  }
  const settle = (image: string, channels: Iterable<string>, change: LastChange) => {
    const waiting = open.get(image)
    if (!waiting) return
    for (const ch of [...channels]) {
      if (waiting.delete(ch)) found.set(`${image}\u0000${ch}`, change)
    }
    if (waiting.size === 0) open.delete(image)
  }

  let oid: string | undefined = base.commit
  let here: string | null | undefined
  while (oid && open.size > 0) {
    // A malformed commit someone else made ends the walk: history verification names it.
    const commit: CommitInfo | null = await repo.readCommit(oid).catch((error: AirlockError) => {
      if (error.code === 'BROKEN_OBJECT' && oid !== base.commit) return null
      throw error
    })
    if (!commit) break
    const parent: string | undefined = commit.parents[0]
    const trailers = parseTrailers(commit.message)
    const verified = opts.verified && !opts.unverified?.has(oid!)
    // A commit is airlock's when, in a history that verifies, it is a single-parent change of a
    // signed folder — so it is signed by an evidence key (unsigned, it would not verify) — and
    // the receipt its trailers name is among HEAD's (receipts are only ever added, each checked
    // when it was). Trailers alone are text anyone can write, on a commit that changes nothing
    // or on a merge, which needs no signature.
    const named = trailers['Airlock-Receipt']
    const receipt = named && verified && receipts.has(named) && (await signedChange(repo, commit)) ? named : null
    const change = (): LastChange => ({
      commit: oid!,
      time: new Date(commit.time * 1000).toISOString(),
      requestedBy: receipt ? (trailers['Airlock-Requested-By'] ?? null) : null,
      author: `${commit.author.name} <${commit.author.email}>`,
      operation: receipt ? (trailers['Airlock-Operation'] ?? null) : null,
      receipt,
      viaAirlock: receipt !== null,
      verified,
    })
    // Which channel a commit moved is read from its trailers only when they are airlock's own.
    const image = receipt ? trailers['Airlock-Image'] : undefined
    // The images folder's tree id of the parent; it is the next step's `here`.
    let there: string | null | undefined
    if (image && trailers['Airlock-Operation']) {
      if (trailers['Airlock-Channel']) settle(image, [trailers['Airlock-Channel']], change())
    } else {
      here ??= await repo.oidAt(oid, IMAGES_DIR)
      // A parent that cannot be read (a malformed commit someone else made) ends the walk.
      const readable = parent ? await repo.readCommit(parent).then(() => true, (error: AirlockError) => (error.code === 'BROKEN_OBJECT' ? false : Promise.reject(error))) : true
      if (!readable) break
      there = parent ? await repo.oidAt(parent, IMAGES_DIR) : null
      const c = change()
      for (const file of await repo.changedEntries(here, there)) {
        const name = imageOf.get(file)
        if (name) settle(name, [...(open.get(name) ?? [])], c)
      }
    }
    here = there
    oid = parent
  }

  return {
    branch: base.branch,
    head: base.commit,
    images: images.map((img) => ({
      name: img.name,
      file: img.file,
      repository: img.repository,
      tier: img.tier,
      channels: Object.entries(img.channels).map(([channel, ch]) => ({
        channel,
        digest: ch.digest,
        reference: `${img.repository}@${ch.digest}`,
        rollbackTarget: ch.previous,
        lastChange: found.get(`${img.name}\u0000${channel}`) ?? null,
      })),
    })),
  }
}
