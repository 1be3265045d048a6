import {AirlockError} from '../errors.js'
import {checkEnvelopeSignatures} from '../crypto/dsse.js'
import {keyIdOf} from '../crypto/keys.js'
import {sshVerify} from '../crypto/sshsig.js'
import type {Limits} from '../limits.js'
import {emptyTrust, keysFor, parseTrust} from '../manifests/load.js'
import {EVIDENCE_DIR, TRUST_FILE, type TrustPolicy} from '../manifests/models.js'
import type {Repository} from '../repo/repository.js'
import {listReceipts, parseReceipt, type ParsedReceipt} from './ledger.js'

/** Folders whose every change must be a commit signed by a trusted evidence key (besides docs/evidence/). */
export const SIGNED_FOLDERS = ['manifests', 'bundles', 'policies'] as const

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

export interface EvidenceProblem {
  code: EvidenceProblemCode
  message: string
  receipt?: string
  commit?: string
}

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
  receipts: ReceiptResult[]
  commitsWalked: number
  commitsSigned: number
  problems: EvidenceProblem[]
}

/**
 * Step 1 (forged or stripped receipts): each receipt needs `threshold` distinct valid
 * signatures by keys that hold the evidence role at the time the receipt says it was signed.
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

/** Reads trust.yaml at a commit, parsing each distinct version once. */
function trustReader(repo: Repository, limits: Limits) {
  const byOid = new Map<string, TrustPolicy>()
  const empty = emptyTrust()
  return async (commit: string): Promise<TrustPolicy> => {
    const oid = await repo.oidAt(commit, TRUST_FILE)
    if (!oid) return empty
    let trust = byOid.get(oid)
    if (!trust) {
      trust = parseTrust(await repo.readBlob(oid), TRUST_FILE, oid, limits)
      byOid.set(oid, trust)
    }
    return trust
  }
}

/**
 * Verifies the evidence of a repository, in order:
 * 1. every receipt at HEAD is signed by enough evidence keys valid when it was signed;
 * 2. history shows receipts were only ever added: none modified, none deleted (tampering);
 * 3. each receipt was added on top of the base commit it names (replay into another history);
 * 4. every commit that changes manifests/, bundles/, policies/ or docs/evidence/ carries a valid SSH signature by a
 *    key that the *parent's* trust.yaml gives the evidence role (a commit slipped in without
 *    the key, or one that adds its own key to trust.yaml, is named).
 * `since` stops the history walk at a commit (for repositories that adopted airlock later).
 */
export async function verifyEvidence(repo: Repository, opts: {limits: Limits; since?: string}): Promise<EvidenceReport> {
  const head = await repo.head()
  if (!head.oid) throw new AirlockError('INVALID_INPUT', `${head.ref} has no commit yet`)
  const trustAt = trustReader(repo, opts.limits)
  const trust = await trustAt(head.oid)
  const problems: EvidenceProblem[] = []
  const receipts = new Map<string, ReceiptResult & {parsed?: ParsedReceipt}>()

  for (const file of await listReceipts(repo, head.oid)) {
    const result: ReceiptResult & {parsed?: ParsedReceipt} = {path: file.path, ok: false, signers: []}
    receipts.set(file.path, result)
    let parsed: ParsedReceipt
    try {
      parsed = parseReceipt(await repo.readBlob(file.oid), file.path, opts.limits)
    } catch (error) {
      problems.push({code: 'MALFORMED', receipt: file.path, message: (error as Error).message})
      continue
    }
    const {signers, problem} = checkReceiptSignatures(parsed, trust)
    Object.assign(result, {ok: !problem, signers, operation: parsed.statement.predicate.operation, appliedAt: parsed.appliedAt.toISOString(), parsed})
    if (problem) problems.push(problem)
  }

  let since: string | undefined
  if (opts.since) {
    since = (await repo.resolveRevision(opts.since)) ?? undefined
    if (!since) throw new AirlockError('INVALID_INPUT', `--since: ${opts.since} is not a commit or ref`, {field: '--since'})
  }
  const seen = new Set<string>()
  const queue = [head.oid]
  let signed = 0
  while (queue.length > 0) {
    const oid = queue.pop()!
    if (seen.has(oid) || oid === since) continue
    seen.add(oid)
    const commit = await repo.readCommit(oid)
    queue.push(...commit.parents)
    if (repo.shallow.has(oid)) {
      // A check that could not run is not a pass: the history before a shallow boundary is absent.
      problems.push({code: 'HISTORY_INCOMPLETE', commit: oid, message: `history ends at shallow commit ${oid.slice(0, 12)}; fetch the full history (git fetch --unshallow) or pass --since ${oid.slice(0, 12)}`})
      continue
    }
    const evidenceHere = await repo.oidAt(oid, EVIDENCE_DIR)
    const entriesHere = new Map<string, string>()
    const loadHere = async () => {
      if (entriesHere.size === 0 && evidenceHere) for (const e of await repo.listDir(oid, EVIDENCE_DIR)) entriesHere.set(e.path, e.oid)
      return entriesHere
    }
    const evidenceParents = await Promise.all(commit.parents.map((p) => repo.oidAt(p, EVIDENCE_DIR)))
    for (const [i, parent] of commit.parents.entries()) {
      if (evidenceParents[i] === evidenceHere) continue
      const here = await loadHere()
      const there = evidenceParents[i] ? await repo.listDir(parent, EVIDENCE_DIR) : []
      for (const e of there) {
        const now = here.get(e.path)
        if (now === undefined) problems.push({code: 'RECEIPT_DELETED', receipt: e.path, commit: oid, message: `${e.path}: deleted in commit ${oid.slice(0, 12)}; receipts are append-only`})
        else if (now !== e.oid) problems.push({code: 'RECEIPT_MODIFIED', receipt: e.path, commit: oid, message: `${e.path}: changed in commit ${oid.slice(0, 12)}; receipts are append-only`})
      }
      if (i > 0) continue
      const before = new Set(there.map((e) => e.path))
      for (const path of here.keys()) {
        const r = before.has(path) ? undefined : receipts.get(path)
        if (!r) continue
        r.addedIn = oid
        const base = r.parsed?.statement.predicate.baseCommit
        if (r.parsed && base !== parent) {
          problems.push({code: 'BASE_MISMATCH', receipt: path, commit: oid, message: `${path}: names base commit ${String(base).slice(0, 12)} but was added on top of ${parent.slice(0, 12)}`})
        }
      }
    }
    const first = commit.parents[0]
    if (!first) for (const path of (await loadHere()).keys()) if (receipts.has(path)) receipts.get(path)!.addedIn = oid
    let touched = first ? evidenceParents[0] !== evidenceHere : evidenceHere !== null
    for (const folder of SIGNED_FOLDERS) {
      if (touched) break
      touched = (await repo.oidAt(oid, folder)) !== (first ? await repo.oidAt(first, folder) : null)
    }
    if (!touched) continue
    signed++
    const signerTrust = await trustAt(commit.parents[0] ?? oid)
    const where = `commit ${oid.slice(0, 12)} (${commit.message.split('\n')[0]})`
    if (!commit.signature) {
      problems.push({code: 'UNSIGNED_COMMIT', commit: oid, message: `${where} changes manifests/, bundles/, policies/ or docs/evidence/ but is not signed`})
      continue
    }
    const result = sshVerify(commit.signature, Buffer.from(commit.payload))
    if (!result.valid) {
      problems.push({code: 'BAD_COMMIT_SIGNATURE', commit: oid, message: `${where}: ${result.reason}`})
      continue
    }
    const keyid = keyIdOf(result.publicKey)
    if (!keysFor(signerTrust, 'evidence', new Date(commit.time * 1000)).some((k) => k.id === keyid)) {
      problems.push({code: 'UNTRUSTED_COMMIT_SIGNER', commit: oid, message: `${where} is signed by ${keyid.slice(0, 16)}…, not an evidence key in the parent's ${TRUST_FILE}`})
    }
  }

  for (const p of problems) {
    const r = p.receipt ? receipts.get(p.receipt) : undefined
    if (r) r.ok = false
  }
  return {
    ok: problems.length === 0,
    head: head.oid,
    receipts: [...receipts.values()].map(({parsed: _parsed, ...r}) => r),
    commitsWalked: seen.size,
    commitsSigned: signed,
    problems,
  }
}
