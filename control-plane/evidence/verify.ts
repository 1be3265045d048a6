import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {loadTrust} from '../manifests/load.js'
import {TRUST_FILE, type TrustPolicy} from '../manifests/models.js'
import type {Repository} from '../repo/repository.js'
import {verifyHistory, type EvidenceProblem} from './history.js'
import {checkReceiptSignatures, listReceipts, parseReceipt, type ParsedReceipt} from './ledger.js'

export interface ReceiptResult {
  path: string
  ok: boolean
  operation?: string
  appliedAt?: string
  signers: string[]
  addedIn?: string
}

export interface EvidenceReport {
  ok: boolean
  head: string
  anchor: {commit: string | null; pinned: boolean}
  receipts: ReceiptResult[]
  commitsWalked: number
  commitsSigned: number
  problems: EvidenceProblem[]
}

/**
 * Verifies the evidence of a repository, in order:
 * 1. every receipt at HEAD is signed by enough evidence keys valid when it was signed, under the
 *    trust policy it was added on (one already at the anchor: the anchor's), so forged or
 *    stripped receipts are named and a key removed since leaves what it signed before valid;
 * 2. the history from the trust anchor to HEAD verifies (evidence/history.ts): one root, the
 *    anchor; every commit either the clean merge of its parents (bringing in only what the first
 *    parent's evidence keys vouch for) or, where it changes manifests/, bundles/, policies/ or
 *    docs/evidence/, signed by an evidence key of its parents' trust policy valid at its time,
 *    which never goes back along history nor lies past now; receipts only ever added, each on the
 *    base it names, dated between it and now.
 * `anchor` pins where trust starts (--trust-anchor, AIRLOCK_TRUST_ANCHOR, airlock.trustAnchor);
 * without one the history is walked from the repository's single root, so every problem is
 * still named, but the first problem is ANCHOR_NOT_PINNED and nothing verifies.
 */
export async function verifyEvidence(repo: Repository, opts: {limits: Limits; anchor?: string | null; now: Date; drill?: string}): Promise<EvidenceReport> {
  const head = await repo.head()
  if (!head.oid) throw new AirlockError('INVALID_INPUT', `${head.ref} has no commit yet`)
  const headTrust = await loadTrust(repo, head.oid, opts.limits)
  const problems: EvidenceProblem[] = []
  const receipts = new Map<string, ReceiptResult>()
  const history = await verifyHistory(repo, head.oid, {anchor: opts.anchor ?? null, limits: opts.limits, now: opts.now, ...(opts.drill ? {drill: opts.drill} : {})})
  // A receipt the walk saw added is judged under the trust policy it was added on (as the walk
  // judged it): a key removed from trust.yaml since (a leaked one) leaves what it signed before
  // valid, and signs nothing new. One already there at the anchor, under the anchor's.
  const trustByBlob = new Map<string | null, TrustPolicy>()
  const trustAt = async (commit: string) => {
    const oid = await repo.oidAt(commit, TRUST_FILE)
    let t = trustByBlob.get(oid)
    if (!t) trustByBlob.set(oid, (t = await loadTrust(repo, commit, opts.limits)))
    return t
  }

  for (const file of await listReceipts(repo, head.oid)) {
    const result: ReceiptResult = {path: file.path, ok: false, signers: []}
    receipts.set(file.path, result)
    const added = history.addedIn.get(file.path)
    // The trust policy it was added on (its adding commit's first parent; the first commit's own).
    const addedOn = added ? ((await repo.readCommit(added)).parents[0] ?? added) : history.anchor.commit
    // The walk checked these bytes where they were added, under this same trust.yaml: its result
    // stands (a pure function of the two), without reading or verifying them again.
    const prior = history.receiptChecks.get(file.path)
    if (prior && added && prior.blob === file.oid && prior.commit === added) {
      const trust = await trustAt(addedOn!)
      if (prior.trust === trust.oid) {
        Object.assign(result, {ok: !prior.problem, signers: prior.signers, operation: prior.operation, appliedAt: prior.appliedAt})
        if (prior.problem) problems.push(prior.problem)
        continue
      }
    }
    let parsed: ParsedReceipt
    try {
      parsed = parseReceipt(await repo.readBlob(file.oid), file.path, opts.limits)
    } catch (error) {
      problems.push({code: 'MALFORMED', receipt: file.path, message: (error as Error).message})
      continue
    }
    const trust = addedOn ? await trustAt(addedOn) : headTrust
    const {signers, problem} = checkReceiptSignatures(parsed, trust)
    Object.assign(result, {ok: !problem, signers, operation: parsed.kind.label(parsed.statement), appliedAt: parsed.time.toISOString()})
    if (problem) problems.push(problem)
  }

  const seen = new Set(problems.map((p) => `${p.code}\0${p.receipt ?? ''}`))
  for (const p of history.problems) if (!p.receipt || !seen.has(`${p.code}\0${p.receipt}`)) problems.push(p)
  // No pinned anchor: that comes first, whatever else is found.
  const unpinned = problems.findIndex((p) => p.code === 'ANCHOR_NOT_PINNED')
  if (unpinned > 0) problems.unshift(...problems.splice(unpinned, 1))
  for (const [path, commit] of history.addedIn) {
    const r = receipts.get(path)
    if (r) r.addedIn = commit
  }
  for (const p of problems) {
    const r = p.receipt ? receipts.get(p.receipt) : undefined
    if (r) r.ok = false
  }
  return {
    ok: problems.length === 0,
    head: head.oid,
    anchor: history.anchor,
    receipts: [...receipts.values()],
    commitsWalked: history.walked,
    commitsSigned: history.signed,
    problems,
  }
}

/**
 * The commit a receipt at `head` was added on: its adding commit's first parent (the first
 * commit's own), found by walking first parents back while the receipt is there (receipts are
 * only ever added). What `evidence show` judges a receipt under, as `evidence verify` does.
 */
export async function receiptAddedOn(repo: Repository, head: string, path: string): Promise<string> {
  let at = head
  for (;;) {
    const c = await repo.readCommit(at)
    const parent = c.parents[0]
    if (!parent || (await repo.oidAt(parent, path)) === null) return parent ?? at
    at = parent
  }
}
