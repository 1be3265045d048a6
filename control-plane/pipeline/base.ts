/**
 * The first step of the change pipeline: the base a change is built on, and whether its history
 * verifies back to the trust anchor. Verified commits are remembered under .git/airlock/ (local
 * state a push never carries), so a later run walks only what is new.
 */
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {verifyHistory, type EvidenceProblem} from '../evidence/history.js'
import type {Limits} from '../limits.js'
import {writeFileAtomic} from '../repo/files.js'
import type {Repository} from '../repo/repository.js'

export const ANCHOR_CONFIG = 'airlock.trustAnchor'
const CACHE_FILE = join('airlock', 'verified.json')
/** Verified tips kept per anchor: each vouches for its whole history. */
const CACHE_TIPS = 32
/**
 * The verifier's rules, part of every cache key: tips verified under older, looser rules (a
 * malformed commit an older parser accepted) vouch for nothing once the rules change.
 */
const RULES = 'rules-2'

export interface BaseVerification {
  verified: boolean
  anchor: {commit: string | null; pinned: boolean}
  /** Commits checked in this run (the rest were verified before). */
  walked: number
  /** The first problems found, each naming its commit. */
  problems: EvidenceProblem[]
  /** Commits that do not verify, or build on one that does not. */
  unverified: Set<string>
}

/**
 * Where trust starts: `--trust-anchor`, else `airlock.trustAnchor` from git config, else null
 * (the repository's single root). A given anchor must name a commit.
 */
export async function resolveAnchor(repo: Repository, flag: string | undefined): Promise<string | null> {
  const given = flag ?? (await repo.config(ANCHOR_CONFIG))
  if (given === undefined || given === '') return null
  const field = flag !== undefined ? '--trust-anchor' : ANCHOR_CONFIG
  const oid = await repo.resolveRevision(given)
  if (!oid) throw new AirlockError('INVALID_INPUT', `${field}: ${given} is not a commit of this repository`, {field})
  await repo.readCommit(oid).catch((error: Error) => {
    throw new AirlockError('INVALID_INPUT', `${field}: ${given}: ${error.message}`, {field})
  })
  return oid
}

type Cache = Record<string, {root?: string | null; tips: string[]}>

async function readCache(repo: Repository): Promise<Cache> {
  try {
    const value = JSON.parse(await readFile(join(repo.gitdir, CACHE_FILE), 'utf8')) as Cache
    return value && typeof value === 'object' ? value : {}
  } catch {
    return {}
  }
}

/**
 * Verifies the history of `head` from the anchor, walking only what was not verified before, and
 * remembers `head` when it verifies. Never throws for a history that does not verify: the result
 * says so, and the pipeline refuses to apply on it.
 */
export async function verifyBase(repo: Repository, head: string, opts: {anchor: string | null; limits: Limits; now: Date}): Promise<BaseVerification> {
  const key = `${RULES}:${opts.anchor ?? 'root'}`
  const cache = Object.fromEntries(Object.entries(await readCache(repo)).filter(([k]) => k.startsWith(`${RULES}:`)))
  const entry = cache[key]
  const tips = new Set(Array.isArray(entry?.tips) ? entry.tips.filter((t) => typeof t === 'string') : [])
  const report = await verifyHistory(repo, head, {anchor: opts.anchor, verified: tips, verifiedRoot: typeof entry?.root === 'string' ? entry.root : null, limits: opts.limits, now: opts.now})
  if (report.ok && !tips.has(head)) {
    cache[key] = {...(opts.anchor ? {} : {root: report.anchor.commit}), tips: [head, ...tips].slice(0, CACHE_TIPS)}
    // A cache that cannot be written only costs the next run a longer walk.
    await writeFileAtomic(join(repo.gitdir, CACHE_FILE), `${JSON.stringify(cache)}\n`).catch(() => {})
  }
  return {verified: report.ok, anchor: report.anchor, walked: report.walked, problems: report.problems.slice(0, 20), unverified: report.unverified}
}

/** The refusal for an unverified base, naming the first commit that does not verify. */
export function unverifiedBase(commit: string, v: BaseVerification): AirlockError {
  const first = v.problems[0]
  return new AirlockError(
    'BASE_UNVERIFIED',
    `the base ${commit.slice(0, 12)} does not verify back to the trust anchor${first ? `: ${first.code} ${first.message}` : ''}; nothing is built on it (airlock evidence verify lists every problem)`,
    {commit, anchor: v.anchor, problems: v.problems},
  )
}

/**
 * HEAD's commit, for checks that read desired state (egress, tool and sandbox checks): only when
 * its history verifies back to the trust anchor, since a writer without keys could have put
 * anything in an unsigned commit.
 */
export async function verifiedHead(repo: Repository, opts: {anchor?: string; limits: Limits; now: Date}): Promise<string> {
  const {commit} = await repo.base()
  const v = await verifyBase(repo, commit, {anchor: await resolveAnchor(repo, opts.anchor), limits: opts.limits, now: opts.now})
  if (!v.verified) throw unverifiedBase(commit, v)
  return commit
}
