/**
 * Where trust comes from, for every command: the pinned trust anchor (from outside the
 * repository), HEAD's history verified back to it, and the trust policy, policies and manifests
 * read at that verified HEAD, or from a file the caller names. This is the first step of the
 * change pipeline and the one resolver every read of trust, policy or desired state goes through.
 * Verified commits are remembered under .git/airlock/ (local state a push never carries), so a
 * later run walks only what is new.
 */
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {anchorProblem, verifyHistory, type EvidenceProblem} from '../evidence/history.js'
import type {Limits} from '../limits.js'
import {loadTrust, parseTrust} from '../manifests/load.js'
import {sha256Hex} from '../crypto/digest.js'
import {TRUST_FILE, type TrustPolicy} from '../manifests/models.js'
import {fingerprints, type KeyFingerprint} from '../manifests/trust.js'
import {CACHE_DIR, isOid, isRecord, readCache, writeCache} from '../repo/cache.js'
import type {Repository} from '../repo/repository.js'

export const ANCHOR_CONFIG = 'airlock.trustAnchor'
export const ANCHOR_ENV = 'AIRLOCK_TRUST_ANCHOR'
const CACHE_NAME = 'verified.json'
const CACHE_FILE = join(CACHE_DIR, CACHE_NAME)
const CACHE_VERSION = 'verified-2'
/** Verified tips kept per anchor: each vouches for its whole history. */
const CACHE_TIPS = 32
/**
 * The verifier's rules, part of every cache key: tips verified under older, looser rules (a
 * malformed commit an older parser accepted, a backdated one) vouch for nothing once the rules
 * change.
 */
const RULES = 'rules-5'

/** Where an anchor may come from: never the repository itself (a clone carries no git config). */
export interface AnchorInput {
  /** --trust-anchor */
  flag?: string
  /** $AIRLOCK_TRUST_ANCHOR, e.g. a CI variable kept outside the repository. */
  env?: string
}

export interface Anchor {
  /** The pinned commit; null when nothing outside the repository pins one. */
  commit: string | null
  /** Which of --trust-anchor, AIRLOCK_TRUST_ANCHOR, git config airlock.trustAnchor pinned it. */
  from: '--trust-anchor' | typeof ANCHOR_ENV | typeof ANCHOR_CONFIG | null
}

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

/** How to pin an anchor, for every message that needs one. */
export const HOW_TO_PIN = `pin the trust anchor from outside the repository: \`airlock trust pin COMMIT\` (git config ${ANCHOR_CONFIG}, after comparing its key fingerprints with what you were given), --trust-anchor COMMIT, or ${ANCHOR_ENV}=COMMIT in CI`

/**
 * Where trust starts: --trust-anchor, else $AIRLOCK_TRUST_ANCHOR, else `airlock.trustAnchor`
 * from the local git config; else none (not pinned). A writer of the repository controls its
 * refs and could make an abbreviated id ambiguous, so an anchor is a full commit id, and it must
 * be a commit of this repository.
 */
export async function resolveAnchor(repo: Repository, input: AnchorInput): Promise<Anchor> {
  const config = input.flag === undefined && !input.env ? await repo.config(ANCHOR_CONFIG) : undefined
  const [given, from]: [string | undefined, Anchor['from']] =
    input.flag !== undefined ? [input.flag, '--trust-anchor'] : input.env ? [input.env, ANCHOR_ENV] : config ? [config, ANCHOR_CONFIG] : [undefined, null]
  if (given === undefined || from === null) return {commit: null, from: null}
  const oid = given.trim()
  if (!/^[0-9a-f]{40}$/.test(oid)) {
    throw new AirlockError('INVALID_INPUT', `${from}: "${given}" is not a full commit id (40 hex digits); a branch, tag or abbreviated id is something a writer of the repository can move (airlock trust pin REV resolves one for you)`, {field: from})
  }
  await repo.readCommit(oid).catch((error: Error) => {
    throw new AirlockError('INVALID_INPUT', `${from}: ${oid} is not a commit of this repository (${error.message})`, {field: from})
  })
  return {commit: oid, from}
}

/**
 * Per anchor: verified tips, newest first, each with its effective (monotonic) time in seconds;
 * and per branch the commit last verified on it, which the branch may only move on from.
 */
type Cache = Record<string, {tips: string[]; times?: Record<string, number>; branches?: Record<string, string>}>

/** Every entry: verified tips (commit ids), their times (whole seconds), branches → commit ids. */
function validCache(body: unknown): body is Cache {
  if (!isRecord(body)) return false
  for (const entry of Object.values(body)) {
    if (!isRecord(entry) || !Array.isArray(entry.tips) || !entry.tips.every(isOid)) return false
    if (entry.times !== undefined && !(isRecord(entry.times) && Object.entries(entry.times).every(([t, v]) => isOid(t) && Number.isSafeInteger(v)))) return false
    if (entry.branches !== undefined && !(isRecord(entry.branches) && Object.values(entry.branches).every(isOid))) return false
  }
  return true
}

/**
 * The cache of verified tips (repo/cache.ts: versioned, digest-checked, validated; anything else is
 * an empty cache, so the whole history is walked again). It is keyed by the anchor and the
 * verifier's rules, and each tip is a commit id: a commit id names its whole history, so nothing
 * a push or the work tree can carry makes another commit look verified.
 */
async function readVerified(repo: Repository): Promise<Cache> {
  return (await readCache(repo.gitdir, CACHE_NAME, CACHE_VERSION, validCache)) ?? {}
}

/**
 * Verifies the history of `head` from the anchor, walking only what was not verified before, and
 * remembers `head` when it verifies. Never throws for a history that does not verify: the result
 * says so, and the pipeline refuses to apply on it. Without a pinned anchor nothing verifies
 * (the history is still walked from its root, so the other problems are named).
 */
export async function verifyBase(repo: Repository, head: string, opts: {anchor: string | null; limits: Limits; now: Date; branch?: string; drill?: string}): Promise<BaseVerification> {
  // What verifies inside a drill is remembered apart from what verifies anywhere.
  const key = opts.anchor ? `${RULES}:${opts.anchor}${opts.drill ? `:drill:${opts.drill}` : ''}` : null
  const cache = Object.fromEntries(Object.entries(await readVerified(repo)).filter(([k]) => k.startsWith(`${RULES}:`)))
  const entry = key ? cache[key] : undefined
  const tips = new Set(Array.isArray(entry?.tips) ? entry.tips.filter((t) => typeof t === 'string') : [])
  const times = new Map(Object.entries(entry?.times ?? {}).filter(([t, s]) => tips.has(t) && Number.isSafeInteger(s)))
  const report = await verifyHistory(repo, head, {anchor: opts.anchor, verified: tips, verifiedTimes: times, limits: opts.limits, now: opts.now, ...(opts.drill ? {drill: opts.drill} : {})})
  // Rollback: a force-push that takes a branch back to an older verified commit (before a key
  // was removed, before a stricter policy) is what a writer without keys can do with signed
  // history. This clone remembers what it verified on each branch; the branch moves on from it.
  const branches = {...(entry?.branches ?? {})}
  const last = opts.branch ? branches[opts.branch] : undefined
  if (report.ok && last && last !== head && !(await repo.isAncestor(last, head).catch(() => false))) {
    report.ok = false
    report.unverified.add(head)
    report.problems.unshift({
      code: 'ROLLED_BACK',
      commit: head,
      message: `${opts.branch} is at ${head.slice(0, 12)}, which does not descend from ${last.slice(0, 12)}, verified on it before in this clone: the branch was rolled back or rewritten (if on purpose, remove .git/${CACHE_FILE})`,
    })
  }
  if (key && report.ok && (!tips.has(head) || (opts.branch && branches[opts.branch] !== head))) {
    const kept = tips.has(head) ? [...tips] : [head, ...tips].slice(0, CACHE_TIPS)
    if (report.effectiveTime !== null) times.set(head, report.effectiveTime)
    if (opts.branch) branches[opts.branch] = head
    cache[key] = {tips: kept, times: Object.fromEntries(kept.filter((t) => times.has(t)).map((t) => [t, times.get(t)!])), branches}
    // A cache that cannot be written only costs the next run a longer walk.
    await writeCache(repo.gitdir, CACHE_NAME, CACHE_VERSION, cache)
  }
  return {verified: report.ok, anchor: report.anchor, walked: report.walked, problems: report.problems.slice(0, 20), unverified: report.unverified}
}

/** Why nothing may be built on, signed on or believed from `commit`: no pinned anchor, or a history that does not verify. */
export function baseRefusal(commit: string, v: Pick<BaseVerification, 'verified' | 'anchor' | 'problems'>): AirlockError | null {
  if (!v.anchor.pinned) {
    return new AirlockError('ANCHOR_NOT_PINNED', `no trust anchor is pinned for this clone, so nothing in it is trusted yet; ${HOW_TO_PIN}`, {commit, anchor: v.anchor, problems: v.problems})
  }
  if (v.verified) return null
  const first = v.problems[0]
  return new AirlockError(
    'BASE_UNVERIFIED',
    `the base ${commit.slice(0, 12)} does not verify back to the trust anchor${first ? `: ${first.code} ${first.message}` : ''}; nothing is built on it (airlock evidence verify lists every problem)`,
    {commit, anchor: v.anchor, problems: v.problems},
  )
}

/** Where what a command trusts came from; `--json` prints it as `trustSource`. */
export type TrustSource =
  | {kind: 'head'; branch: string; commit: string; verified: boolean; anchor: {commit: string | null; pinned: boolean; from: Anchor['from']}}
  | {kind: 'file'; file: string}

export interface ResolvedHead {
  repo: Repository
  branch: string
  commit: string
  verification: BaseVerification
  source: Extract<TrustSource, {kind: 'head'}>
}

/** HEAD and what its history verification says (for read-only views, which show it). */
export async function inspectHead(repo: Repository, opts: {anchor: AnchorInput; limits: Limits; now: Date; drill?: string}): Promise<ResolvedHead> {
  const {branch, commit} = await repo.base()
  const anchor = await resolveAnchor(repo, opts.anchor)
  const verification = await verifyBase(repo, commit, {anchor: anchor.commit, limits: opts.limits, now: opts.now, branch, ...(opts.drill ? {drill: opts.drill} : {})})
  return {repo, branch, commit, verification, source: {kind: 'head', branch, commit, verified: verification.verified, anchor: {...verification.anchor, from: anchor.from}}}
}

/**
 * HEAD, only when its history verifies back to the pinned anchor: trust.yaml, policies, bundles
 * and manifests are read nowhere else (a writer without keys could have put anything in an
 * unsigned commit, or in a root a fresh clone takes as its own).
 */
export async function verifiedHead(repo: Repository, opts: {anchor: AnchorInput; limits: Limits; now: Date; drill?: string}): Promise<ResolvedHead> {
  const head = await inspectHead(repo, opts)
  const refused = baseRefusal(head.commit, head.verification)
  if (refused) throw refused
  return head
}

/**
 * The trust policy a check uses: the caller's own file (`--trust FILE`, read by the command), or
 * trust.yaml at a verified HEAD. Nothing else: never the work tree, never an unverified commit.
 */
export async function resolveTrust(opts: {file?: {text: string; file: string}; repo: () => Promise<Repository>; anchor: AnchorInput; limits: Limits; now: Date}): Promise<{trust: TrustPolicy; source: TrustSource; head: ResolvedHead | null}> {
  if (opts.file) return {trust: parseTrust(opts.file.text, opts.file.file, null, opts.limits), source: {kind: 'file', file: opts.file.file}, head: null}
  const head = await verifiedHead(await opts.repo(), opts)
  return {trust: await loadTrust(head.repo, head.commit, opts.limits), source: head.source, head}
}

/** What an operator is shown before pinning an anchor: the commit, and the keys its trust.yaml holds. */
export interface AnchorCandidate {
  commit: string
  subject: string
  committedAt: string
  /** The anchor's trust.yaml as a whole: its SHA-256 (compare it, and every key, role, window and threshold is compared), and its thresholds. */
  trust: {digest: string; thresholds: TrustPolicy['thresholds']}
  keys: KeyFingerprint[]
  /** Null when the commit is signed by an evidence key of its own trust.yaml (an anchor must be), else why not. */
  unsigned: EvidenceProblem | null
  /** Whether HEAD's history verifies from this anchor, and the first problem when it does not. */
  head: {commit: string; verified: boolean; problem: EvidenceProblem | null}
}

/**
 * Reads the anchor `rev` would pin (any revision: the operator is looking at what it names)
 * and whether HEAD verifies from it. A commit without a trust.yaml holding an evidence key
 * cannot be where trust starts.
 */
export async function describeAnchor(repo: Repository, rev: string, opts: {limits: Limits; now: Date}): Promise<AnchorCandidate> {
  const commit = await repo.resolveRevision(rev)
  if (!commit) throw new AirlockError('INVALID_INPUT', `COMMIT: ${rev} names no commit of this repository`, {field: 'COMMIT'})
  const info = await repo.readCommit(commit).catch((error: Error) => {
    throw new AirlockError('INVALID_INPUT', `COMMIT: ${rev} is not a commit (${error.message})`, {field: 'COMMIT'})
  })
  const trust = await loadTrust(repo, commit, opts.limits)
  if (!trust.keys.some((k) => k.roles.includes('evidence'))) {
    throw new AirlockError('INVALID_INPUT', `COMMIT: ${commit.slice(0, 12)} has no ${trust.file} with an evidence key; trust cannot start there`, {field: 'COMMIT', commit})
  }
  const {commit: head} = await repo.base()
  const v = await verifyBase(repo, head, {anchor: commit, limits: opts.limits, now: opts.now})
  return {
    commit,
    subject: info.message.split('\n')[0] ?? '',
    committedAt: new Date(info.time * 1000).toISOString(),
    trust: {digest: `sha256:${sha256Hex((await repo.readFile(commit, TRUST_FILE))!.text)}`, thresholds: trust.thresholds},
    keys: fingerprints(trust),
    unsigned: await anchorProblem(repo, commit, opts.limits),
    head: {commit: head, verified: v.verified, problem: v.problems[0] ?? null},
  }
}

/** Pins the trust anchor in this clone's git config (local state a push never carries). */
export async function pinAnchor(repo: Repository, commit: string): Promise<void> {
  await repo.setConfig(ANCHOR_CONFIG, commit)
}
