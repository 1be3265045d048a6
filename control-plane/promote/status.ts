import type {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {loadImage, loadImageSummaries, type ImageSummary} from '../manifests/load.js'
import {SIGNED_PATHS} from '../manifests/kinds.js'
import {EVIDENCE_DIR, IMAGES_DIR} from '../manifests/models.js'
import {isOid, isRecord, readCache, writeCache} from '../repo/cache.js'
import type {Repository} from '../repo/repository.js'
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

/** The trailers status reads (others are not kept). */
const TRAILERS = ['Airlock-Receipt', 'Airlock-Requested-By', 'Airlock-Operation', 'Airlock-Image', 'Airlock-Channel'] as const

/**
 * What status reads of one commit, all of it fixed by the commit's id (a commit, its tree and its
 * first parent never change): kept in `.git/airlock/status-commits.json` so a later run reads no
 * object of a commit it has seen. `signed` and `changed` are filled in when first needed.
 */
interface CommitFacts {
  /** First parent (null: a root). */
  parent: string | null
  /** How many parents. */
  parents: number
  time: number
  author: string
  trailers: Partial<Record<(typeof TRAILERS)[number], string>>
  /** A single-parent change of a signed folder (or a root): see signedChange. */
  signed?: boolean
  /** Names in the images folder that differ from the first parent's (all of them for a root). */
  changed?: string[]
}

const FACTS_CACHE = 'status-commits.json'
/** Bump when what a CommitFacts holds, or how it is computed, changes. */
const FACTS_VERSION = 'status-commits-1'
/** Commits remembered: beyond this, new ones are computed each run and not kept. */
const FACTS_MAX = 200_000

const isString = (v: unknown): v is string => typeof v === 'string'

/** Every field of a cached CommitFacts has its type; anything else and the whole file is ignored. */
function validFacts(body: unknown): body is Record<string, CommitFacts> {
  if (!isRecord(body)) return false
  for (const [oid, f] of Object.entries(body)) {
    if (!isOid(oid) || !isRecord(f)) return false
    if (!(f.parent === null || isOid(f.parent)) || !Number.isSafeInteger(f.parents) || (f.parents as number) < 0 || !Number.isSafeInteger(f.time) || !isString(f.author)) return false
    if ((f.parent === null) !== (f.parents === 0)) return false
    if (!isRecord(f.trailers) || !Object.entries(f.trailers).every(([k, v]) => (TRAILERS as readonly string[]).includes(k) && isString(v))) return false
    if (f.signed !== undefined && typeof f.signed !== 'boolean') return false
    if (f.changed !== undefined && !(Array.isArray(f.changed) && f.changed.every(isString))) return false
  }
  return true
}

/** Commit facts by id: from the cache, else read once and remembered. */
class FactsStore {
  private dirty = false
  private constructor(
    private readonly repo: Repository,
    private readonly facts: Map<string, CommitFacts>,
  ) {}

  static async open(repo: Repository): Promise<FactsStore> {
    const body = await readCache(repo.gitdir, FACTS_CACHE, FACTS_VERSION, validFacts)
    return new FactsStore(repo, new Map(body ? Object.entries(body) : []))
  }

  /** A commit's facts (reading it throws BROKEN_OBJECT as readCommit does). */
  async get(oid: string): Promise<CommitFacts> {
    const known = this.facts.get(oid)
    if (known) return known
    const c = await this.repo.readCommit(oid)
    const all = parseTrailers(c.message)
    const trailers: CommitFacts['trailers'] = {}
    for (const k of TRAILERS) if (all[k] !== undefined) trailers[k] = all[k]
    return this.remember(oid, {parent: c.parents[0] ?? null, parents: c.parents.length, time: c.time, author: `${c.author.name} <${c.author.email}>`, trailers})
  }

  private remember(oid: string, f: CommitFacts): CommitFacts {
    // A shallow clone's boundary commit reads as a root until its history is fetched: not kept.
    if (!this.repo.shallow.has(oid) && (this.facts.size < FACTS_MAX || this.facts.has(oid))) {
      this.facts.set(oid, f)
      this.dirty = true
    }
    return f
  }

  /** Is the commit a single-parent change of a signed folder (so, in a verified history, a signed one)? A root is. Root tree reads only. */
  async signed(oid: string): Promise<boolean> {
    const f = await this.get(oid)
    if (f.signed === undefined) {
      const commit = await this.repo.readCommit(oid)
      let signed = commit.parents.length === 0
      if (commit.parents.length === 1) {
        const parent = await this.repo.readCommit(commit.parents[0]!)
        const [here, there] = await Promise.all([this.repo.treeEntries(commit.tree), this.repo.treeEntries(parent.tree)])
        signed = SIGNED_PATHS.some((p) => here.get(p)?.oid !== there.get(p)?.oid) || (await this.repo.oidInTree(commit.tree, EVIDENCE_DIR)) !== (await this.repo.oidInTree(parent.tree, EVIDENCE_DIR))
      }
      this.remember(oid, {...f, signed})
      return signed
    }
    return f.signed
  }

  /** Names in the images folder that differ from the first parent's. */
  async changed(oid: string): Promise<string[]> {
    const f = await this.get(oid)
    if (f.changed === undefined) {
      const [here, there] = await Promise.all([this.repo.oidAt(oid, IMAGES_DIR), f.parent ? this.repo.oidAt(f.parent, IMAGES_DIR) : null])
      const changed = await this.repo.changedEntries(here, there)
      this.remember(oid, {...f, changed})
      return changed
    }
    return f.changed
  }

  async save(): Promise<void> {
    if (this.dirty) await writeCache(this.repo.gitdir, FACTS_CACHE, FACTS_VERSION, Object.fromEntries(this.facts))
  }
}

/**
 * Per image and channel: the pinned digest, the rollback target, and the commit that last
 * changed it. Walks first-parent history once for all images, newest first, and stops as soon as
 * every channel asked about is accounted for. airlock's own commits name their image and channel
 * in trailers; for other commits the images folder is compared with the parent's. What each
 * commit says is read once per clone (FactsStore); what it means — verified, airlock's own — is
 * judged in every run.
 */
export async function status(repo: Repository, opts: {image?: string; limits: Limits; verified: boolean; unverified?: ReadonlySet<string>}): Promise<StatusReport> {
  const base = await repo.base()
  const images: ImageSummary[] = opts.image ? [await loadImage(repo, base.commit, opts.image, opts.limits)] : await loadImageSummaries(repo, base.commit, opts.limits)
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
  // A malformed commit someone else made ends the walk (history verification names it).
  const broken = (error: AirlockError) => {
    if (error.code === 'BROKEN_OBJECT') return null
    throw error
  }

  const facts = await FactsStore.open(repo)
  let oid: string | null = base.commit
  while (oid && open.size > 0) {
    const commit: CommitFacts | null = oid === base.commit ? await facts.get(oid) : await facts.get(oid).catch(broken)
    if (!commit) break
    const trailers = commit.trailers
    const verified = opts.verified && !opts.unverified?.has(oid)
    // A commit is airlock's when, in a history that verifies, it is a single-parent change of a
    // signed folder — so it is signed by an evidence key (unsigned, it would not verify) — and
    // the receipt its trailers name is among HEAD's (receipts are only ever added, each checked
    // when it was). Trailers alone are text anyone can write, on a commit that changes nothing
    // or on a merge, which needs no signature.
    const named = trailers['Airlock-Receipt']
    const receipt = named && verified && receipts.has(named) && (await facts.signed(oid)) ? named : null
    const at: string = oid
    const change = (): LastChange => ({
      commit: at,
      time: new Date(commit.time * 1000).toISOString(),
      requestedBy: receipt ? (trailers['Airlock-Requested-By'] ?? null) : null,
      author: commit.author,
      operation: receipt ? (trailers['Airlock-Operation'] ?? null) : null,
      receipt,
      viaAirlock: receipt !== null,
      verified,
    })
    // Which channel a commit moved is read from its trailers only when they are airlock's own.
    const image = receipt ? trailers['Airlock-Image'] : undefined
    if (image && trailers['Airlock-Operation']) {
      if (trailers['Airlock-Channel']) settle(image, [trailers['Airlock-Channel']], change())
    } else {
      // A parent that cannot be read (a malformed commit someone else made) ends the walk.
      if (commit.parent && !(await facts.get(commit.parent).catch(broken))) break
      const changed = await facts.changed(oid).catch(broken)
      if (!changed) break
      const c = change()
      for (const file of changed) {
        const name = imageOf.get(file)
        if (name) settle(name, [...(open.get(name) ?? [])], c)
      }
    }
    oid = commit.parent
  }
  await facts.save()

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
