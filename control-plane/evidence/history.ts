/**
 * Anchored history verification: which commits of a repository may be built on. Trust starts
 * at one commit, the trust anchor (`--trust-anchor`, `airlock.trustAnchor`), or, when none is
 * pinned, at the repository's one root. From there every commit reachable from HEAD, through
 * every parent, must be either the clean merge of its parents (what a forge's merge button
 * makes) or a change signed by an evidence key of its parents' trust policy. Written as ordered
 * steps; each comment names the attack the step stops.
 */
import {AirlockError} from '../errors.js'
import {checkEnvelopeSignatures} from '../crypto/dsse.js'
import {keyIdOf} from '../crypto/keys.js'
import {sshVerify} from '../crypto/sshsig.js'
import type {Limits} from '../limits.js'
import {emptyTrust, keysFor, parseTrust} from '../manifests/load.js'
import {LAYOUT_FOLDERS, SIGNED_FOLDERS} from '../manifests/kinds.js'
import {EVIDENCE_DIR, TRUST_FILE, type TrustPolicy} from '../manifests/models.js'
import {describeMode, type CommitInfo, type Repository} from '../repo/repository.js'
import {parseReceipt, type ParsedReceipt} from './ledger.js'


export type EvidenceProblemCode =
  | 'MALFORMED'
  | 'UNKNOWN_KEY'
  | 'BAD_SIGNATURE'
  | 'KEY_NOT_VALID_AT_SIGNING'
  | 'THRESHOLD_NOT_MET'
  | 'RECEIPT_MODIFIED'
  | 'RECEIPT_DELETED'
  | 'BASE_MISMATCH'
  | 'UNSIGNED_COMMIT'
  | 'BAD_COMMIT_SIGNATURE'
  | 'UNTRUSTED_COMMIT_SIGNER'
  | 'HISTORY_INCOMPLETE'
  | 'MULTIPLE_ROOTS'
  | 'ANCHOR_NOT_IN_HISTORY'
  | 'UNANCHORED_PARENT'
  | 'BROKEN_OBJECT'
  | 'NOT_A_FOLDER'

export interface EvidenceProblem {
  code: EvidenceProblemCode
  message: string
  receipt?: string
  commit?: string
}

export interface HistoryOptions {
  /** The pinned trust anchor; null: the repository's one root is the anchor (not pinned). */
  anchor: string | null
  /** Commits verified before under this anchor: each vouches for all of its ancestors. */
  verified?: ReadonlySet<string>
  /** Not pinned: the root the verified commits descend from. */
  verifiedRoot?: string | null
  limits: Limits
  /** The verifier's reference time (the command's `now`): nothing may be dated after it plus the skew. */
  now: Date
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
  /** Receipt path → the commit that added it (for receipts added in the commits walked). */
  addedIn: Map<string, string>
  problems: EvidenceProblem[]
}

/**
 * Forged or stripped receipts: a receipt needs `threshold` distinct valid signatures by keys
 * that hold the evidence role at the time the receipt says it was signed.
 */
export function checkReceiptSignatures(receipt: ParsedReceipt, trust: TrustPolicy): {signers: string[]; problem?: EvidenceProblem} {
  const valid = new Map(keysFor(trust, 'evidence', receipt.appliedAt).map((k) => [k.id, k.publicKey]))
  const known = new Set(trust.keys.map((k) => k.id))
  const checks = checkEnvelopeSignatures(receipt.envelope, (id) => valid.get(id))
  const signers = checks.filter((c) => c.valid).map((c) => c.keyid)
  const threshold = trust.thresholds.evidence
  if (signers.length >= threshold) return {signers}
  const failed = checks.find((c) => !c.valid)
  const at = receipt.appliedAt.toISOString()
  let code: EvidenceProblemCode = 'THRESHOLD_NOT_MET'
  let why = `${signers.length} valid signature(s), ${threshold} needed`
  if (failed?.reason === 'BAD_SIGNATURE') [code, why] = ['BAD_SIGNATURE', `signature by ${failed.keyid.slice(0, 16)}… does not match the receipt (edited after signing?)`]
  else if (failed?.reason === 'UNKNOWN_KEY' && known.has(failed.keyid)) [code, why] = ['KEY_NOT_VALID_AT_SIGNING', `key ${failed.keyid.slice(0, 16)}… is not an evidence key valid at ${at}`]
  else if (failed?.reason === 'UNKNOWN_KEY') [code, why] = ['UNKNOWN_KEY', `signed by ${failed.keyid.slice(0, 16)}…, which is not in ${TRUST_FILE}`]
  else if (checks.length === 0) why = 'the receipt carries no signature'
  return {signers, problem: {code, receipt: receipt.path, message: `${receipt.path}: ${why}`}}
}

/**
 * A commit's signature: a valid SSH signature by a key holding the evidence role, at the
 * commit's time, in every one of the given trust policies (its parents').
 */
export function checkCommitSignature(commit: CommitInfo, trusts: TrustPolicy[]): EvidenceProblem | null {
  const where = `commit ${commit.oid.slice(0, 12)} (${commit.message.split('\n')[0]})`
  if (!commit.signature) return {code: 'UNSIGNED_COMMIT', commit: commit.oid, message: `${where} changes manifests/, bundles/, policies/ or docs/evidence/ but is not signed`}
  const result = sshVerify(commit.signature, Buffer.from(commit.payload))
  if (!result.valid) return {code: 'BAD_COMMIT_SIGNATURE', commit: commit.oid, message: `${where}: ${result.reason}`}
  const keyid = keyIdOf(result.publicKey)
  const at = new Date(commit.time * 1000)
  if (trusts.some((t) => !keysFor(t, 'evidence', at).some((k) => k.id === keyid))) {
    return {code: 'UNTRUSTED_COMMIT_SIGNER', commit: commit.oid, message: `${where} is signed by ${keyid.slice(0, 16)}…, not an evidence key in the parent's ${TRUST_FILE}`}
  }
  return null
}

/** Reads trust.yaml in a tree, parsing each distinct version once. */
function trustReader(repo: Repository, limits: Limits) {
  const byOid = new Map<string, TrustPolicy>()
  const empty = emptyTrust()
  return async (tree: string): Promise<TrustPolicy> => {
    const oid = await repo.oidInTree(tree, TRUST_FILE)
    if (!oid) return empty
    let trust = byOid.get(oid)
    if (!trust) {
      trust = parseTrust(await repo.readBlob(oid), TRUST_FILE, oid, limits)
      byOid.set(oid, trust)
    }
    return trust
  }
}

/** Does the tree `after` differ from `before` in a folder whose changes must be signed? */
async function touchesSignedFolders(repo: Repository, before: string | null, after: string): Promise<boolean> {
  const b = before ? await repo.treeEntries(before) : new Map()
  const a = await repo.treeEntries(after)
  if (SIGNED_FOLDERS.some((f) => b.get(f)?.oid !== a.get(f)?.oid)) return true
  return (before ? await repo.oidInTree(before, EVIDENCE_DIR) : null) !== (await repo.oidInTree(after, EVIDENCE_DIR))
}


/** The first of LAYOUT_FOLDERS that is present in `tree` as something other than a folder. */
export async function layoutProblem(repo: Repository, tree: string): Promise<string | null> {
  for (const folder of LAYOUT_FOLDERS) {
    const e = await repo.entryAt(tree, folder)
    if (e && e.mode !== '040000') return `${folder} is ${describeMode(e.mode)}, not a folder; airlock reads and writes desired state and evidence only in real folders`
  }
  return null
}

/** Every ancestor of `starts` (inclusive). */
async function ancestors(repo: Repository, starts: string[]): Promise<Set<string>> {
  const seen = new Set<string>()
  const stack = [...starts]
  while (stack.length > 0) {
    const oid = stack.pop()!
    if (seen.has(oid)) continue
    seen.add(oid)
    stack.push(...(await repo.readCommit(oid)).parents)
  }
  return seen
}

/** Parents before children: an iterative post-order walk of the collected commits. */
function parentsFirst(commits: Map<string, CommitInfo>, head: string): CommitInfo[] {
  const out: CommitInfo[] = []
  const done = new Set<string>()
  const stack: Array<[string, boolean]> = [[head, false]]
  while (stack.length > 0) {
    const [oid, expanded] = stack.pop()!
    const c = commits.get(oid)
    if (!c || done.has(oid)) continue
    if (expanded) {
      done.add(oid)
      out.push(c)
      continue
    }
    stack.push([oid, true])
    for (const p of c.parents) if (!done.has(p)) stack.push([p, false])
  }
  return out
}

export async function verifyHistory(repo: Repository, head: string, opts: HistoryOptions): Promise<HistoryReport> {
  const problems: EvidenceProblem[] = []
  const cached = opts.verified ?? new Set<string>()
  const trustOf = trustReader(repo, opts.limits)
  const trustAt = async (commit: CommitInfo): Promise<TrustPolicy> => {
    try {
      return await trustOf(commit.tree)
    } catch (error) {
      if (!(error instanceof AirlockError)) throw error
      problems.push({code: 'MALFORMED', commit: commit.oid, message: `commit ${commit.oid.slice(0, 12)}: ${error.message}`})
      return emptyTrust()
    }
  }

  // Step 1 — collect what is not yet known to verify: every commit reachable from HEAD through
  // every parent (a walk of first parents only would miss a side branch merged in), stopping at
  // the anchor, at commits before it, and at commits verified before under the same anchor.
  let preAnchor = new Set<string>()
  if (opts.anchor) {
    const a = await repo.readCommit(opts.anchor)
    if (a.parents.length > 0) preAnchor = await ancestors(repo, a.parents)
  }
  const commits = new Map<string, CommitInfo>()
  const bad = new Set<string>()
  const roots: string[] = []
  let reachedKnown = head === opts.anchor || cached.has(head)
  let reachedAnchor = head === opts.anchor
  const stack = [head]
  while (stack.length > 0) {
    const oid = stack.pop()!
    if (oid === opts.anchor || cached.has(oid)) {
      reachedKnown = true
      reachedAnchor ||= oid === opts.anchor
      continue
    }
    if (commits.has(oid) || preAnchor.has(oid) || bad.has(oid)) continue
    let c: CommitInfo
    try {
      c = await repo.readCommit(oid)
    } catch (error) {
      // A commit someone else made that git itself would refuse: named, never a crash.
      if ((error as AirlockError).code !== 'BROKEN_OBJECT') throw error
      bad.add(oid)
      problems.push({code: 'BROKEN_OBJECT', commit: oid, message: `commit ${oid.slice(0, 12)}: ${(error as Error).message}`})
      continue
    }
    commits.set(oid, c)
    if (c.parents.length === 0) {
      if (repo.shallow.has(oid)) {
        // A check that could not run is not a pass: the history before a shallow boundary is absent.
        problems.push({code: 'HISTORY_INCOMPLETE', commit: oid, message: `history ends at shallow commit ${oid.slice(0, 12)}; fetch the full history (git fetch --unshallow) or pass --trust-anchor ${oid.slice(0, 12)}`})
      } else roots.push(oid)
    }
    stack.push(...c.parents)
  }

  // Step 2 — one root, the anchor. Stops laundering: a root commit made by an attacker (with its
  // own trust.yaml naming the attacker's keys) joined to the real history by a merge, and a
  // repository rewritten from another root, however consistent in itself.
  let anchor = opts.anchor
  if (!anchor) {
    const known = opts.verifiedRoot ?? null
    const all = [...new Set([...(known ? [known] : []), ...roots])]
    anchor = all[0] ?? null
    if (all.length > 1) {
      for (const r of all.slice(1)) {
        bad.add(r)
        problems.push({code: 'MULTIPLE_ROOTS', commit: r, message: `commit ${r.slice(0, 12)} is a second root (history also starts at ${all[0]!.slice(0, 12)}); unrelated histories cannot both be trusted`})
      }
    }
  } else {
    for (const r of roots) {
      bad.add(r)
      problems.push({code: 'MULTIPLE_ROOTS', commit: r, message: `commit ${r.slice(0, 12)} is a root that is not the trust anchor ${anchor.slice(0, 12)}; its history is not anchored`})
    }
    if (!reachedKnown && roots.length === 0 && problems.length === 0) {
      problems.push({code: 'ANCHOR_NOT_IN_HISTORY', commit: anchor, message: `the trust anchor ${anchor.slice(0, 12)} is not in the history of ${head.slice(0, 12)}`})
    }
    if (!reachedKnown) bad.add(head)
  }

  // Step 3 — each commit, parents first, against its parents' trust policies.
  const ordered = parentsFirst(commits, head)
  const addedIn = new Map<string, string>()
  let signed = 0
  const isBad = (oid: string) => bad.has(oid)
  /** 3a–3c for one commit whose parents verify; each problem goes to `fail`. */
  const checkCommit = async (c: CommitInfo, fail: (p: EvidenceProblem) => void): Promise<void> => {
    const unanchored = c.parents.filter((p) => preAnchor.has(p))
    if (c.parents.length > 1) {
      // 3a — a merge whose tree is exactly the clean three-way merge of its parents (recomputed
      // here, never taken from the commit) adds no change of its own: that is how a reviewed
      // pull request arrives from a forge. Its parents were checked like any other commit.
      if ((await repo.cleanMergeTree(c.parents)) === c.tree) return
    }
    const parents = await Promise.all(c.parents.map((p) => commits.get(p) ?? repo.readCommit(p)))
    // 3b — anything else is a change relative to each parent. A change to manifests/, bundles/,
    // policies/ or docs/evidence/ must be signed by an evidence key in the trust policy of
    // every parent: a commit slipped in without the key, or one adding its own key, is named.
    let touched = false
    for (const p of parents) touched ||= await touchesSignedFolders(repo, p.tree, c.tree)
    if (touched) {
      signed++
      const layout = await layoutProblem(repo, c.tree)
      if (layout) fail({code: 'NOT_A_FOLDER', commit: c.oid, message: `commit ${c.oid.slice(0, 12)}: ${layout}`})
      if (unanchored.length > 0) {
        fail({code: 'UNANCHORED_PARENT', commit: c.oid, message: `commit ${c.oid.slice(0, 12)} changes signed folders on top of ${unanchored[0]!.slice(0, 12)}, which is before the trust anchor; no trust policy vouches for it`})
        return
      }
      const problem = checkCommitSignature(c, await Promise.all(parents.map(trustAt)))
      if (problem) fail(problem)
    }
    // 3c — receipts are append-only (none modified or deleted), and one added names the base it
    // was added on (no replay from another history) and is signed by an evidence key of the
    // trust policy it was committed with.
    const evidence = await repo.oidInTree(c.tree, EVIDENCE_DIR)
    const parentEvidence = await Promise.all(parents.map((p) => repo.oidInTree(p.tree, EVIDENCE_DIR)))
    /** A receipt a merge brings from another parent, unchanged, is not one it adds. */
    const fromAnotherParent = async (i: number, name: string, oid: string) => {
      for (const [j, e] of parentEvidence.entries()) if (j !== i && e && (await repo.treeEntries(e)).get(name)?.oid === oid) return true
      return false
    }
    for (const [i, p] of parents.entries()) {
      const there = parentEvidence[i]!
      if (there === evidence) continue
      // The raw trees' diff names each changed entry with its ids: no full listing per commit.
      for (const {name, a: before, b: now} of await repo.changedTreeEntries(there, evidence)) {
        if (!name.endsWith('.json')) continue
        const path = `${EVIDENCE_DIR}/${name}`
        if (before && !now) fail({code: 'RECEIPT_DELETED', receipt: path, commit: c.oid, message: `${path}: deleted in commit ${c.oid.slice(0, 12)}; receipts are append-only`})
        else if (before && now) fail({code: 'RECEIPT_MODIFIED', receipt: path, commit: c.oid, message: `${path}: changed in commit ${c.oid.slice(0, 12)}; receipts are append-only`})
        else if (now && !(await fromAnotherParent(i, name, now))) {
          addedIn.set(path, c.oid)
          let parsed: ParsedReceipt
          try {
            parsed = parseReceipt(await repo.readBlob(now), path, opts.limits)
          } catch (error) {
            fail({code: 'MALFORMED', receipt: path, commit: c.oid, message: (error as Error).message})
            continue
          }
          const base = parsed.statement.predicate.baseCommit
          if (base !== p.oid) fail({code: 'BASE_MISMATCH', receipt: path, commit: c.oid, message: `${path}: names base commit ${String(base).slice(0, 12)} but was added on top of ${p.oid.slice(0, 12)}`})
          const {problem} = checkReceiptSignatures(parsed, await trustAt(c))
          if (problem) fail({...problem, commit: c.oid})
        }
      }
    }
  }
  for (const c of ordered) {
    if (bad.has(c.oid)) continue
    // The unpinned anchor is its own authority: its trust.yaml is where trust starts.
    if (c.oid === anchor) continue
    // A commit built on one that does not verify does not verify either (reported there).
    if (c.parents.some(isBad)) {
      bad.add(c.oid)
      continue
    }
    const fail = (p: EvidenceProblem) => {
      problems.push(p)
      bad.add(c.oid)
    }
    try {
      await checkCommit(c, fail)
    } catch (error) {
      if ((error as AirlockError).code !== 'BROKEN_OBJECT') throw error
      fail({code: 'BROKEN_OBJECT', commit: c.oid, message: `commit ${c.oid.slice(0, 12)}: ${(error as Error).message}`})
    }
  }
  // The head itself (and an anchor it may be) is laid out in folders, whatever its history.
  try {
    const layout = await layoutProblem(repo, (commits.get(head) ?? (await repo.readCommit(head))).tree)
    if (layout && !problems.some((p) => p.code === 'NOT_A_FOLDER' && p.commit === head)) {
      problems.push({code: 'NOT_A_FOLDER', commit: head, message: `commit ${head.slice(0, 12)}: ${layout}`})
      bad.add(head)
    }
  } catch (error) {
    if ((error as AirlockError).code !== 'BROKEN_OBJECT') throw error
  }
  // Receipts of a root anchor (init's) were added by it.
  if (anchor && (reachedAnchor || roots[0] === anchor) && (commits.get(anchor) ?? (await repo.readCommit(anchor))).parents.length === 0) {
    for (const e of await repo.listDir(anchor, EVIDENCE_DIR)) if (e.name.endsWith('.json')) addedIn.set(e.path, anchor)
  }
  return {
    ok: problems.length === 0,
    head,
    anchor: {commit: anchor, pinned: opts.anchor !== null},
    walked: commits.size,
    signed,
    unverified: bad,
    addedIn,
    problems,
  }
}
