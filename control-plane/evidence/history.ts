/**
 * Anchored history verification: which commits of a repository may be built on. Trust starts
 * at one commit pinned from outside the repository, the trust anchor (`--trust-anchor`,
 * AIRLOCK_TRUST_ANCHOR, `airlock.trustAnchor`). From there every commit reachable from HEAD,
 * through every parent, must be either the clean merge of its parents (what a forge's merge
 * button makes), bringing in only commits the first parent's evidence keys vouch for, or a change
 * signed by an evidence key of its parents' trust policy, dated no earlier than its history and
 * judged at that time; receipts are only ever added, each on the base it names. Written as
 * ordered steps over a narrow commit reader; each comment names the attack the step stops.
 */
import {AirlockError} from '../errors.js'
import {keyIdOf} from '../crypto/keys.js'
import {sshVerify} from '../crypto/sshsig.js'
import type {Limits} from '../limits.js'
import {emptyTrust, keysFor, parseTrust} from '../manifests/load.js'
import {LAYOUT_FOLDERS, SIGNED_PATHS} from '../manifests/kinds.js'
import {EVIDENCE_DIR, TRUST_FILE, type TrustPolicy} from '../manifests/models.js'
import {describeMode, type CommitInfo, type TreeDifference, type TreeItem} from '../repo/repository.js'
import {checkReceiptSignatures, parseReceipt, type ParsedReceipt} from './ledger.js'
import {broughtIn} from './merges.js'
import type {EvidenceProblem} from './problems.js'

export type {EvidenceProblem, EvidenceProblemCode} from './problems.js'
export {checkReceiptSignatures} from './ledger.js'

/** The handful of reads history verification makes; `Repository` is one. */
export interface CommitReader {
  readCommit(oid: string): Promise<CommitInfo>
  treeEntries(tree: string): Promise<Map<string, TreeItem>>
  entryAt(tree: string, path: string): Promise<TreeItem | null>
  oidInTree(tree: string, path: string): Promise<string | null>
  changedTreeEntries(a: string | null, b: string | null): Promise<TreeDifference[]>
  /** The tree of the clean three-way merge of the parents, null when there is none. */
  cleanMergeTree(parents: string[]): Promise<string | null>
  readBlob(oid: string): Promise<string>
  /** Commits whose parents a shallow clone does not have. */
  readonly shallow: ReadonlySet<string>
}

export interface HistoryOptions {
  /** The trust anchor pinned from outside the repository; null: none (nothing verifies). */
  anchor: string | null
  /** Commits verified before under this anchor: each vouches for all of its ancestors. */
  verified?: ReadonlySet<string>
  /** Effective times of verified commits (`effectiveTime` of their reports); others are recomputed. */
  verifiedTimes?: ReadonlyMap<string, number>
  limits: Limits
  /** The verifier's reference time (the command's `now`): nothing may be dated after it plus the skew. */
  now: Date
  /**
   * Inside a rollback drill's throwaway clone: the drill's own id. A commit carrying the
   * `Airlock-Drill` trailer verifies only where this equals it, so a drill's commits, signed by
   * the real evidence key, never verify in a fleet (the signature covers the trailer).
   */
  drill?: string
}

export interface HistoryReport {
  ok: boolean
  head: string
  anchor: {commit: string | null; pinned: boolean}
  /** Commits checked in this run (not counting those verified before). */
  walked: number
  /** Of those, the ones that needed an evidence signature. */
  signed: number
  /** Commits that do not verify or build on one that does not. */
  unverified: Set<string>
  /** Receipt path → the commit that added it. */
  addedIn: Map<string, string>
  /**
   * The signature check of each receipt the walk saw added, by path: which blob, under which
   * trust.yaml (blob id; null: none), with what result — so `evidence verify` does not verify the
   * same bytes under the same policy twice.
   */
  receiptChecks: Map<string, ReceiptCheck>
  problems: EvidenceProblem[]
  /**
   * HEAD's effective time (seconds): the latest date in its history, which nothing signed on it
   * may precede; null when HEAD does not verify or was verified before without one. A cache of
   * verified tips keeps it and hands it back in `verifiedTimes`.
   */
  effectiveTime: number | null
}

/** One receipt's signatures as the walk checked them where it was added. */
export interface ReceiptCheck {
  blob: string
  commit: string
  trust: string | null
  signers: string[]
  problem?: EvidenceProblem
  /** What its kind calls the operation, and the time its signatures were judged at (ISO). */
  operation: string
  appliedAt: string
}

const short = (oid: string) => oid.slice(0, 12)
const describe = (c: CommitInfo) => `commit ${short(c.oid)} (${c.message.split('\n')[0]})`
const iso = (seconds: number) => new Date(seconds * 1000).toISOString()
const isBroken = (error: unknown) => error instanceof AirlockError && error.code === 'BROKEN_OBJECT'

/** What the per-commit checks read, and learn as the walk goes, in one verification. */
interface Walk {
  reader: CommitReader
  limits: Limits
  now: Date
  /** Where trust starts (pinned, or the provisional root); `preAnchor` holds its ancestors. */
  anchor: string | null
  preAnchor: ReadonlySet<string>
  /** Effective times (seconds): a commit's own date or its parents', whichever is later. */
  times: Map<string, number>
  verifiedTimes: ReadonlyMap<string, number>
  /** The evidence key that signed each commit checked here that needed a signature. */
  signers: Map<string, string>
  trust: (tree: string) => Promise<TrustPolicy>
  /** How many commits checked needed a signature. */
  signed: number
  drill: string | null
  receiptChecks: Map<string, ReceiptCheck>
}

/** The `Airlock-Drill` trailer of a commit message, or null. */
export function drillOf(message: string): string | null {
  // Trailers are the message's last paragraph (a reason in the body cannot make one).
  const last = message.trimEnd().split(/\n[ \t]*\n/).pop() ?? ''
  return /^Airlock-Drill: (\S+)$/m.exec(last)?.[1] ?? null
}

function newWalk(reader: CommitReader, opts: Pick<HistoryOptions, 'limits' | 'now' | 'verifiedTimes' | 'drill'>, anchor: string | null, preAnchor: ReadonlySet<string>): Walk {
  const byOid = new Map<string, TrustPolicy>()
  const empty = emptyTrust()
  // Each distinct trust.yaml is parsed once.
  const trust = async (tree: string) => {
    const oid = await reader.oidInTree(tree, TRUST_FILE)
    if (!oid) return empty
    let t = byOid.get(oid)
    if (!t) byOid.set(oid, (t = parseTrust(await reader.readBlob(oid), TRUST_FILE, oid, opts.limits)))
    return t
  }
  return {reader, limits: opts.limits, now: opts.now, anchor, preAnchor, times: new Map(), verifiedTimes: opts.verifiedTimes ?? new Map(), signers: new Map(), trust, signed: 0, drill: opts.drill ?? null, receiptChecks: new Map()}
}

/** The trust policies of `commits`; one that does not parse is a MALFORMED finding and trusts no key. */
async function trustsOf(w: Walk, commits: CommitInfo[], out: EvidenceProblem[]): Promise<TrustPolicy[]> {
  const trusts: TrustPolicy[] = []
  for (const c of commits) {
    try {
      trusts.push(await w.trust(c.tree))
    } catch (error) {
      if (!(error instanceof AirlockError) || error.code === 'BROKEN_OBJECT') throw error
      out.push({code: 'MALFORMED', commit: c.oid, message: `commit ${short(c.oid)}: ${error.message}`})
      trusts.push(emptyTrust())
    }
  }
  return trusts
}

/** Does `c` change, relative to one of its parents, a folder (or root file) whose changes must be signed? */
async function changesSignedFolders(reader: CommitReader, c: CommitInfo, parents: CommitInfo[]): Promise<boolean> {
  const after = await reader.treeEntries(c.tree)
  const evidence = await reader.oidInTree(c.tree, EVIDENCE_DIR)
  for (const p of parents.length > 0 ? parents : [null]) {
    const before = p ? await reader.treeEntries(p.tree) : new Map<string, TreeItem>()
    if (SIGNED_PATHS.some((f) => before.get(f)?.oid !== after.get(f)?.oid)) return true
    if ((p ? await reader.oidInTree(p.tree, EVIDENCE_DIR) : null) !== evidence) return true
  }
  return false
}

/** The first of LAYOUT_FOLDERS that is present in `tree` as something other than a folder. */
export async function layoutProblem(reader: Pick<CommitReader, 'entryAt'>, tree: string): Promise<string | null> {
  for (const folder of LAYOUT_FOLDERS) {
    const e = await reader.entryAt(tree, folder)
    if (e && e.mode !== '040000') return `${folder} is ${describeMode(e.mode)}, not a folder; airlock reads and writes desired state and evidence only in real folders`
  }
  return null
}

/**
 * The effective time of a commit verified before (or the anchor): its date when it had to keep
 * time (it changed a signed folder), else the latest of its own and its parents', read back
 * through commits that did not have to, so an unsigned backdated commit at a cache boundary
 * launders nothing. Memoized in `w.times`.
 */
async function effectiveTime(w: Walk, oid: string): Promise<number> {
  const stack = [oid]
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!
    if (w.times.has(top)) {
      stack.pop()
      continue
    }
    const known = w.verifiedTimes.get(top)
    const c = await w.reader.readCommit(top)
    const floor = top === w.anchor || w.preAnchor.has(top) || c.parents.length === 0
    const parents = floor || known !== undefined ? [] : await Promise.all(c.parents.map((p) => w.reader.readCommit(p)))
    if (known !== undefined || floor || (await changesSignedFolders(w.reader, c, parents))) {
      w.times.set(top, known ?? c.time)
      continue
    }
    const missing = c.parents.filter((p) => !w.times.has(p))
    if (missing.length > 0) stack.push(...missing)
    else w.times.set(top, Math.max(c.time, ...c.parents.map((p) => w.times.get(p)!)))
  }
  return w.times.get(oid)!
}

/** The evidence key that made a commit's signature, or the finding why there is none. */
function commitSigner(commit: CommitInfo): {keyid: string} | EvidenceProblem {
  if (!commit.signature) return {code: 'UNSIGNED_COMMIT', commit: commit.oid, message: `${describe(commit)} changes manifests/, bundles/, policies/, docs/evidence/ or .airlock-secrets-baseline but is not signed`}
  const result = sshVerify(commit.signature, Buffer.from(commit.payload))
  if (!result.valid) return {code: 'BAD_COMMIT_SIGNATURE', commit: commit.oid, message: `${describe(commit)}: ${result.reason}`}
  return {keyid: keyIdOf(result.publicKey)}
}

/** The finding when `keyid` is not an evidence key valid at `at` in every one of `trusts`, else null. */
function untrustedSigner(commit: CommitInfo, keyid: string, trusts: TrustPolicy[], at: Date): EvidenceProblem | null {
  if (trusts.every((t) => keysFor(t, 'evidence', at).some((k) => k.id === keyid))) return null
  return {code: 'UNTRUSTED_COMMIT_SIGNER', commit: commit.oid, message: `${describe(commit)} is signed by ${keyid.slice(0, 16)}…, not an evidence key valid at ${at.toISOString()} in the parent's ${TRUST_FILE}`}
}

/**
 * A commit's signature: a valid SSH signature by a key holding the evidence role, at `at` (the
 * commit's effective time; default its date), in every one of the given trust policies (its
 * parents').
 */
export function checkCommitSignature(commit: CommitInfo, trusts: TrustPolicy[], at: Date = new Date(commit.time * 1000)): EvidenceProblem | null {
  const signer = commitSigner(commit)
  return 'code' in signer ? signer : untrustedSigner(commit, signer.keyid, trusts, at)
}

/**
 * Time (every commit). A signer cannot move its signature back into a revoked key's validity: a
 * commit that changes a signed folder may not be dated before any commit in its history (its
 * parents' effective time: BACKDATED), and nothing may be dated beyond the verifier's clock plus
 * the skew (FUTURE_DATED). A commit that changes no signed folder may be dated back (an honest
 * clock that is off); its effective time stays its parents', so it launders nothing.
 */
function checkTime(w: Walk, c: CommitInfo, since: number, keepsTime: boolean): EvidenceProblem[] {
  const out: EvidenceProblem[] = []
  if (c.time * 1000 > w.now.getTime() + w.limits.clockSkewMs) {
    out.push({code: 'FUTURE_DATED', commit: c.oid, message: `${describe(c)} is dated ${iso(c.time)}, after the verifier's clock (${w.now.toISOString()}) plus ${w.limits.clockSkewMs / 1000} s`})
  }
  if (keepsTime && c.time < since) {
    out.push({code: 'BACKDATED', commit: c.oid, message: `${describe(c)} is dated ${iso(c.time)}, before ${iso(since)} in its history; a signed change is never dated back`})
  }
  return out
}

/**
 * Step 3 — merges. A merge whose tree is exactly the clean three-way merge of its parents
 * (recomputed here, never taken from the commit) adds no change of its own: that is how a
 * reviewed pull request arrives from a forge. But it brings commits into each of its parents:
 * each one that needed a signature must also be signed by an evidence key of the trust policy of
 * the parent it is brought into, at the merge's time, so a key removed or retired there cannot
 * branch off an old commit where it was valid, sign a change dated there, and have it merged in —
 * whichever parent the merge lists first (the order is the merger's choice, so both are checked).
 */
async function checkCleanMerge(w: Walk, c: CommitInfo, parents: CommitInfo[]): Promise<EvidenceProblem[]> {
  const out: EvidenceProblem[] = []
  const trusts = await trustsOf(w, parents, out)
  const at = new Date(w.times.get(c.oid)! * 1000)
  const graph = {parents: async (oid: string) => (await w.reader.readCommit(oid)).parents, time: (oid: string) => effectiveTime(w, oid), isFloor: (oid: string) => oid === w.anchor || w.preAnchor.has(oid)}
  for (const [i, into] of parents.entries()) {
    const trusted = new Set(keysFor(trusts[i]!, 'evidence', at).map((k) => k.id))
    for (const from of parents.filter((_, j) => j !== i)) {
      for (const oid of await broughtIn(into.oid, from.oid, graph)) {
        const signer = w.signers.get(oid) ?? (await signerIfNeeded(w, oid))
        if (signer === null || trusted.has(signer)) continue
        out.push({
          code: 'UNTRUSTED_COMMIT_SIGNER',
          commit: c.oid,
          message: `merge ${short(c.oid)} brings commit ${short(oid)}, signed by ${signer.slice(0, 16)}…, into parent ${short(into.oid)}, whose ${TRUST_FILE} holds no such evidence key valid at ${at.toISOString()}`,
        })
      }
    }
  }
  return out
}

/** For a commit outside this walk: its signer when it needed a signature, else null. */
async function signerIfNeeded(w: Walk, oid: string): Promise<string | null> {
  const c = await w.reader.readCommit(oid)
  if (c.parents.length > 1 && (await w.reader.cleanMergeTree(c.parents)) === c.tree) return null
  if (!(await changesSignedFolders(w.reader, c, await Promise.all(c.parents.map((p) => w.reader.readCommit(p)))))) return null
  const signer = commitSigner(c)
  return 'keyid' in signer ? signer.keyid : ''
}

/**
 * Step 4 — signed changes. Any other commit that changes manifests/, bundles/, policies/ or
 * docs/evidence/ must be laid out in real folders, built on anchored parents, and signed by an
 * evidence key valid at its effective time in the trust policy of every parent: a commit slipped
 * in without the key, one adding its own key, one on history before the anchor, is named.
 */
async function checkSignedChange(w: Walk, c: CommitInfo, parents: CommitInfo[]): Promise<EvidenceProblem[]> {
  const out: EvidenceProblem[] = []
  w.signed++
  const layout = await layoutProblem(w.reader, c.tree)
  if (layout) out.push({code: 'NOT_A_FOLDER', commit: c.oid, message: `commit ${short(c.oid)}: ${layout}`})
  const unanchored = c.parents.find((p) => w.preAnchor.has(p))
  if (unanchored) {
    out.push({code: 'UNANCHORED_PARENT', commit: c.oid, message: `commit ${short(c.oid)} changes signed folders on top of ${short(unanchored)}, which is before the trust anchor; no trust policy vouches for it`})
    return out
  }
  // The first commit of all (apply's init) is vouched for by the trust policy it creates.
  const trusts = await trustsOf(w, parents.length > 0 ? parents : [c], out)
  const signer = commitSigner(c)
  const problem = 'code' in signer ? signer : untrustedSigner(c, signer.keyid, trusts, new Date(w.times.get(c.oid)! * 1000))
  if (problem) out.push(problem)
  if ('keyid' in signer) w.signers.set(c.oid, signer.keyid)
  return out
}

/**
 * Step 5 — receipts are append-only (none modified or deleted), and one added names the base it
 * was added on (no replay from another history), is dated neither before that base (BACKDATED)
 * nor beyond the verifier's clock (FUTURE_DATED), and is signed by evidence keys valid at its
 * time in the trust policy it was committed with.
 */
async function checkReceipts(w: Walk, c: CommitInfo, parents: CommitInfo[], addedIn: Map<string, string>): Promise<EvidenceProblem[]> {
  const out: EvidenceProblem[] = []
  const evidence = await w.reader.oidInTree(c.tree, EVIDENCE_DIR)
  const parentEvidence = await Promise.all(parents.map((p) => w.reader.oidInTree(p.tree, EVIDENCE_DIR)))
  /** A receipt a merge brings from another parent, unchanged, is not one it adds. */
  const fromAnotherParent = async (i: number, name: string, oid: string) => {
    for (const [j, e] of parentEvidence.entries()) if (j !== i && e && (await w.reader.treeEntries(e)).get(name)?.oid === oid) return true
    return false
  }
  for (const [i, p] of (parents.length > 0 ? parents : [null]).entries()) {
    const there = parentEvidence[i] ?? null
    if (there === evidence) continue
    // The raw trees' diff names each changed entry with its ids: no full listing per commit.
    for (const {name, a: before, b: now} of await w.reader.changedTreeEntries(there, evidence)) {
      if (!name.endsWith('.json')) continue
      const path = `${EVIDENCE_DIR}/${name}`
      if (before && !now) out.push({code: 'RECEIPT_DELETED', receipt: path, commit: c.oid, message: `${path}: deleted in commit ${short(c.oid)}; receipts are append-only`})
      else if (before && now) out.push({code: 'RECEIPT_MODIFIED', receipt: path, commit: c.oid, message: `${path}: changed in commit ${short(c.oid)}; receipts are append-only`})
      else if (now && !(await fromAnotherParent(i, name, now))) {
        addedIn.set(path, c.oid)
        out.push(...(await checkAddedReceipt(w, c, p, path, now)))
      }
    }
  }
  out.push(...(await checkPublishedAppendOnly(w, c, parents)))
  return out
}

/**
 * Published audit checkpoints (docs/evidence/audit/<origin>/…) are append-only as receipts are:
 * a signed commit that deletes or changes one would let a host that rewrote its log drop the
 * root that convicts it. A merge bringing one unchanged from another parent changes nothing.
 */
async function checkPublishedAppendOnly(w: Walk, c: CommitInfo, parents: CommitInfo[]): Promise<EvidenceProblem[]> {
  const out: EvidenceProblem[] = []
  const folder = `${EVIDENCE_DIR}/audit`
  const audit = await w.reader.oidInTree(c.tree, folder)
  for (const p of parents) {
    const there = await w.reader.oidInTree(p.tree, folder)
    if (!there || there === audit) continue
    const [was, is] = await Promise.all([w.reader.treeEntries(there), audit ? w.reader.treeEntries(audit) : new Map<string, TreeItem>()])
    const gone = (path: string, changed: boolean) =>
      out.push({code: changed ? 'RECEIPT_MODIFIED' : 'RECEIPT_DELETED', receipt: path, commit: c.oid, message: `${path}: ${changed ? 'changed' : 'deleted'} in commit ${short(c.oid)}; published checkpoints are append-only`})
    for (const {name: origin, a: before, b: now} of await w.reader.changedTreeEntries(there, audit)) {
      if (!before) continue
      if (was.get(origin)?.type !== 'tree') {
        gone(`${folder}/${origin}`, now !== null)
        continue
      }
      const into = is.get(origin)?.type === 'tree' ? now : null
      for (const {name, a, b} of await w.reader.changedTreeEntries(before, into)) if (a) gone(`${folder}/${origin}/${name}`, b !== null)
    }
  }
  return out
}

/** One receipt added on top of `base` (null: the first commit): its shape, base, time and signatures. */
async function checkAddedReceipt(w: Walk, c: CommitInfo, base: CommitInfo | null, path: string, blob: string): Promise<EvidenceProblem[]> {
  let receipt: ParsedReceipt
  try {
    receipt = parseReceipt(await w.reader.readBlob(blob), path, w.limits)
  } catch (error) {
    if (!(error instanceof AirlockError) || error.code === 'BROKEN_OBJECT') throw error
    return [{code: 'MALFORMED', receipt: path, commit: c.oid, message: error.message}]
  }
  const out: EvidenceProblem[] = []
  const at = (code: 'BASE_MISMATCH' | 'BACKDATED' | 'FUTURE_DATED', message: string) => out.push({code, receipt: path, commit: c.oid, message: `${path}: ${message}`})
  if (receipt.baseCommit !== (base?.oid ?? null)) at('BASE_MISMATCH', `names base commit ${short(String(receipt.baseCommit))} but was added on top of ${base ? short(base.oid) : 'nothing (the first commit)'}`)
  const since = base ? await effectiveTime(w, base.oid) : -Infinity
  if (receipt.time.getTime() < since * 1000) at('BACKDATED', `${receipt.kind.timeField} ${receipt.time.toISOString()} is before ${iso(since)}, the time of the commit it was added on`)
  if (receipt.time.getTime() > w.now.getTime() + w.limits.clockSkewMs) at('FUTURE_DATED', `${receipt.kind.timeField} ${receipt.time.toISOString()} is after the verifier's clock (${w.now.toISOString()}) plus the skew`)
  // Judged under the trust policy it was added on (the first commit: its own), as the commit's
  // signature is: a change cannot lower the evidence threshold and meet only the lowered one.
  const [trust] = await trustsOf(w, [base ?? c], out)
  const {signers, problem} = checkReceiptSignatures(receipt, trust!)
  w.receiptChecks.set(path, {blob, commit: c.oid, trust: trust!.oid, signers, ...(problem ? {problem} : {}), operation: receipt.kind.label(receipt.statement), appliedAt: receipt.time.toISOString()})
  if (problem) out.push({...problem, commit: c.oid})
  return out
}

/**
 * Steps 3–5 for one commit whose parents verify: time, then merge or signed change, then
 * receipts. What `verifyHistory` runs on every commit it walks, and `checkNewCommit` on one.
 */
async function checkCommit(w: Walk, c: CommitInfo, addedIn: Map<string, string>): Promise<EvidenceProblem[]> {
  const parents = await Promise.all(c.parents.map((p) => w.reader.readCommit(p)))
  let since = -Infinity
  for (const p of c.parents) since = Math.max(since, await effectiveTime(w, p))
  w.times.set(c.oid, Math.max(c.time, since))
  const clean = parents.length > 1 && (await w.reader.cleanMergeTree(c.parents)) === c.tree
  const touched = await changesSignedFolders(w.reader, c, parents)
  const out = checkTime(w, c, since, touched)
  const drill = drillOf(c.message)
  if (drill !== null && drill !== w.drill) out.push({code: 'DRILL_COMMIT', commit: c.oid, message: `commit ${short(c.oid)} was made by a rollback drill (Airlock-Drill: ${drill}) in a throwaway clone; it verifies nowhere else`})
  if (clean) return [...out, ...(await checkCleanMerge(w, c, parents))]
  if (touched) out.push(...(await checkSignedChange(w, c, parents)))
  out.push(...(await checkReceipts(w, c, parents, addedIn)))
  return out
}

/**
 * The per-commit checks (signed change or clean merge, time, receipts) of one new commit whose
 * parents are trusted, judged at `now`: what apply runs on the commit it is about to publish, so
 * it never publishes what `evidence verify` would refuse. Empty: the commit verifies.
 */
export async function checkNewCommit(reader: CommitReader, commitOid: string, opts: {limits: Limits; now: Date; drill?: string}): Promise<EvidenceProblem[]> {
  const w = newWalk(reader, opts, null, new Set())
  try {
    return await checkCommit(w, await reader.readCommit(commitOid), new Map())
  } catch (error) {
    if (!isBroken(error)) throw error
    return [{code: 'BROKEN_OBJECT', commit: commitOid, message: `commit ${short(commitOid)}: ${(error as Error).message}`}]
  }
}

/** What step 1 collects: the commits not yet known to verify, and what the walk ran into. */
interface Collected {
  /** Each commit's parents: the graph. */
  commits: Map<string, readonly string[]>
  /**
   * The commits read, as read, while they fit in KEPT_COMMIT_CHARS: checking them then reads
   * none twice. Past that, commits are read again when checked (the reader keeps a bounded few).
   */
  kept: Map<string, CommitInfo>
  roots: string[]
  /** The walk reached the anchor, or a commit verified before. */
  reachedKnown: boolean
  reachedAnchor: boolean
  preAnchor: Set<string>
}

/** Every ancestor of `starts` (inclusive). */
async function ancestors(reader: CommitReader, starts: string[]): Promise<Set<string>> {
  const seen = new Set<string>()
  const stack = [...starts]
  while (stack.length > 0) {
    const oid = stack.pop()!
    if (seen.has(oid)) continue
    seen.add(oid)
    stack.push(...(await reader.readCommit(oid)).parents)
  }
  return seen
}

/**
 * Step 1 — collect what is not yet known to verify: every commit reachable from HEAD through
 * every parent (a walk of first parents only would miss a side branch merged in), stopping at
 * the anchor, at commits before it, and at commits verified before under the same anchor. A
 * commit git itself would refuse is named (BROKEN_OBJECT), never a crash; the history behind a
 * shallow boundary is absent, and a check that could not run is not a pass (HISTORY_INCOMPLETE).
 */
/** Characters of commit text (payload, message, signature) a walk keeps read (Collected.kept): some 64 MiB at most. */
const KEPT_COMMIT_CHARS = 32 * 1024 * 1024

/** `reader`, with the commits a walk kept answered from memory (the same values it read). */
function keeping(reader: CommitReader, kept: ReadonlyMap<string, CommitInfo>): CommitReader {
  return {
    readCommit: (oid) => {
      const c = kept.get(oid)
      return c ? Promise.resolve(c) : reader.readCommit(oid)
    },
    treeEntries: (tree) => reader.treeEntries(tree),
    entryAt: (tree, path) => reader.entryAt(tree, path),
    oidInTree: (tree, path) => reader.oidInTree(tree, path),
    changedTreeEntries: (a, b) => reader.changedTreeEntries(a, b),
    cleanMergeTree: (parents) => reader.cleanMergeTree(parents),
    readBlob: (oid) => reader.readBlob(oid),
    get shallow() {
      return reader.shallow
    },
  }
}

async function collect(reader: CommitReader, head: string, anchor: string | null, verified: ReadonlySet<string>, problems: EvidenceProblem[], bad: Set<string>): Promise<Collected> {
  const preAnchor = anchor ? await ancestors(reader, (await reader.readCommit(anchor)).parents) : new Set<string>()
  let budget = KEPT_COMMIT_CHARS
  const out: Collected = {commits: new Map(), kept: new Map(), roots: [], reachedKnown: head === anchor || verified.has(head), reachedAnchor: head === anchor, preAnchor}
  const stack = [head]
  while (stack.length > 0) {
    const oid = stack.pop()!
    if (oid === anchor || verified.has(oid)) {
      out.reachedKnown = true
      out.reachedAnchor ||= oid === anchor
      continue
    }
    if (out.commits.has(oid) || preAnchor.has(oid) || bad.has(oid)) continue
    let c: CommitInfo
    try {
      c = await reader.readCommit(oid)
    } catch (error) {
      if (!isBroken(error)) throw error
      bad.add(oid)
      problems.push({code: 'BROKEN_OBJECT', commit: oid, message: `commit ${short(oid)}: ${(error as Error).message}`})
      continue
    }
    out.commits.set(oid, c.parents)
    budget -= c.payload.length + c.message.length + (c.signature?.length ?? 0)
    if (budget >= 0) out.kept.set(oid, c)
    if (c.parents.length === 0 && reader.shallow.has(oid)) {
      bad.add(oid)
      problems.push({code: 'HISTORY_INCOMPLETE', commit: oid, message: `history ends at shallow commit ${short(oid)}; fetch the full history (git fetch --unshallow) or pin a trust anchor after it`})
    } else if (c.parents.length === 0) out.roots.push(oid)
    stack.push(...c.parents)
  }
  return out
}

/**
 * Step 2 — roots and anchor. One root, the anchor: stops laundering through a root commit made
 * by an attacker (with its own trust.yaml naming the attacker's keys) joined to the real history
 * by a merge, and a repository rewritten from another root, however consistent in itself. An
 * anchor the repository chose for itself is no anchor: without one pinned from outside, the
 * single root is walked from (so every other problem is still named) but nothing verifies.
 */
function rootsAndAnchor(pinned: string | null, head: string, found: Collected, problems: EvidenceProblem[], bad: Set<string>): string | null {
  if (!pinned) {
    problems.unshift({
      code: 'ANCHOR_NOT_PINNED',
      commit: found.roots[0] ?? head,
      message: 'no trust anchor is pinned, so nothing in this history is trusted: the anchor must come from outside the repository (--trust-anchor COMMIT, AIRLOCK_TRUST_ANCHOR, or git config airlock.trustAnchor; `airlock trust pin COMMIT` sets it after showing its keys)',
    })
    for (const r of found.roots.slice(1)) {
      bad.add(r)
      problems.push({code: 'MULTIPLE_ROOTS', commit: r, message: `commit ${short(r)} is a second root (history also starts at ${short(found.roots[0]!)}); unrelated histories cannot both be trusted`})
    }
    return found.roots[0] ?? null
  }
  for (const r of found.roots) {
    bad.add(r)
    problems.push({code: 'MULTIPLE_ROOTS', commit: r, message: `commit ${short(r)} is a root that is not the trust anchor ${short(pinned)}; its history is not anchored`})
  }
  if (!found.reachedKnown && found.roots.length === 0 && problems.length === 0) {
    problems.push({code: 'ANCHOR_NOT_IN_HISTORY', commit: pinned, message: `the trust anchor ${short(pinned)} is not in the history of ${short(head)}`})
  }
  if (!found.reachedKnown) bad.add(head)
  return pinned
}

/**
 * Step 2b — the anchor's own authority. The anchor is where trust starts, and it vouches for its
 * whole tree, not only its trust.yaml: it must be signed by an evidence key of its own trust
 * policy, valid at its date. A commit a writer without keys made — a new root, or a commit on
 * top, with the fleet's trust.yaml copied byte for byte beside their own policies and pins — is
 * never one, however its keys compare.
 */
export async function anchorProblem(reader: CommitReader, anchor: string, limits: Limits): Promise<EvidenceProblem | null> {
  const c = await reader.readCommit(anchor)
  const oid = await reader.oidInTree(c.tree, TRUST_FILE)
  let trust: TrustPolicy
  try {
    trust = oid ? parseTrust(await reader.readBlob(oid), TRUST_FILE, oid, limits) : emptyTrust()
  } catch (error) {
    if (!(error instanceof AirlockError) || error.code === 'BROKEN_OBJECT') throw error
    return {code: 'MALFORMED', commit: anchor, message: `the trust anchor ${short(anchor)}: ${error.message}`}
  }
  const problem = checkCommitSignature(c, [trust])
  if (!problem) return null
  const why = problem.code === 'UNSIGNED_COMMIT' ? 'is not signed' : problem.message
  return {...problem, message: `the trust anchor ${short(anchor)} ${why}; an anchor must be signed by an evidence key of its own ${TRUST_FILE} (as airlock init's first commit is)`}
}

/** Parents before children: an iterative post-order walk of the collected commits (ids). */
function parentsFirst(commits: Map<string, readonly string[]>, head: string): string[] {
  const out: string[] = []
  const done = new Set<string>()
  const stack: Array<[string, boolean]> = [[head, false]]
  while (stack.length > 0) {
    const [oid, expanded] = stack.pop()!
    const parents = commits.get(oid)
    if (!parents || done.has(oid)) continue
    if (expanded) {
      done.add(oid)
      out.push(oid)
      continue
    }
    stack.push([oid, true])
    for (const p of parents) if (!done.has(p)) stack.push([p, false])
  }
  return out
}

/** Steps 3–5 on each collected commit, parents first; a commit built on one that does not verify does not verify either. */
async function checkCollected(w: Walk, ordered: string[], bad: Set<string>, problems: EvidenceProblem[], addedIn: Map<string, string>): Promise<void> {
  for (const oid of ordered) {
    // As collect read it (kept), or read again where the history was too long to keep.
    const c = await w.reader.readCommit(oid)
    // The anchor is its own authority: its trust.yaml is where trust starts.
    if (c.oid === w.anchor) w.times.set(c.oid, c.time)
    if (bad.has(c.oid) || c.oid === w.anchor) continue
    if (c.parents.some((p) => bad.has(p))) {
      bad.add(c.oid)
      continue
    }
    let found: EvidenceProblem[]
    try {
      found = await checkCommit(w, c, addedIn)
    } catch (error) {
      if (!isBroken(error)) throw error
      found = [{code: 'BROKEN_OBJECT', commit: c.oid, message: `commit ${short(c.oid)}: ${(error as Error).message}`}]
    }
    if (found.length > 0) bad.add(c.oid)
    problems.push(...found)
  }
}

/** The head itself (and an anchor it may be) is laid out in folders, whatever its history. */
async function checkHeadLayout(reader: CommitReader, head: string, problems: EvidenceProblem[], bad: Set<string>): Promise<void> {
  try {
    const layout = await layoutProblem(reader, (await reader.readCommit(head)).tree)
    if (layout && !problems.some((p) => p.code === 'NOT_A_FOLDER' && p.commit === head)) {
      problems.push({code: 'NOT_A_FOLDER', commit: head, message: `commit ${short(head)}: ${layout}`})
      bad.add(head)
    }
  } catch (error) {
    if (!isBroken(error)) throw error
  }
}

export async function verifyHistory(reader: CommitReader, head: string, opts: HistoryOptions): Promise<HistoryReport> {
  const problems: EvidenceProblem[] = []
  const bad = new Set<string>()
  const verified = opts.anchor ? (opts.verified ?? new Set<string>()) : new Set<string>()
  const found = await collect(reader, head, opts.anchor, verified, problems, bad)
  const anchor = rootsAndAnchor(opts.anchor, head, found, problems, bad)
  // The anchor's own signature, unless the walk stopped only at tips verified before under this
  // anchor (it was checked when they were).
  if (opts.anchor && (found.reachedAnchor || head === opts.anchor || !found.reachedKnown)) {
    const problem = await anchorProblem(reader, opts.anchor, opts.limits).catch((error) => {
      if (!isBroken(error)) throw error
      return {code: 'BROKEN_OBJECT' as const, commit: opts.anchor!, message: `the trust anchor ${short(opts.anchor!)}: ${(error as Error).message}`}
    })
    if (problem) {
      problems.unshift(problem)
      bad.add(opts.anchor)
      bad.add(head)
    }
  }
  const w = newWalk(keeping(reader, found.kept), opts, anchor, found.preAnchor)
  const addedIn = new Map<string, string>()
  await checkCollected(w, parentsFirst(found.commits, head), bad, problems, addedIn)
  await checkHeadLayout(reader, head, problems, bad)
  // Receipts of a root anchor (init's) were added by it.
  const a = anchor ? await reader.readCommit(anchor).catch(() => null) : null
  const evidence = a && a.parents.length === 0 ? await reader.oidInTree(a.tree, EVIDENCE_DIR) : null
  if (a && evidence && (found.reachedAnchor || found.roots[0] === anchor)) {
    for (const name of (await reader.treeEntries(evidence)).keys()) if (name.endsWith('.json')) addedIn.set(`${EVIDENCE_DIR}/${name}`, a.oid)
  }
  // Without a pinned anchor nothing is trusted: every commit walked is unverified.
  if (!opts.anchor) for (const oid of [head, ...found.commits.keys()]) bad.add(oid)
  const effective = bad.has(head) ? null : (w.times.get(head) ?? opts.verifiedTimes?.get(head) ?? null)
  return {ok: problems.length === 0, head, anchor: {commit: anchor, pinned: opts.anchor !== null}, walked: found.commits.size, signed: w.signed, unverified: bad, addedIn, receiptChecks: w.receiptChecks, problems, effectiveTime: effective}
}
