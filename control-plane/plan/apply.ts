import {AirlockError} from '../errors.js'
import {messageBody} from '../identity/text.js'
import {sshSign} from '../crypto/sshsig.js'
import type {Signer} from '../crypto/keys.js'
import {receiptStatement, receiptText, signReceipt} from '../evidence/receipt.js'
import {checkNewCommit} from '../evidence/history.js'
import {TRUST_FILE} from '../manifests/models.js'
import type {Limits} from '../limits.js'
import {gitIdent, type Repository} from '../repo/repository.js'
import {join} from 'node:path'
import {checkInside} from '../repo/files.js'
import {acquireApplyLock} from './lock.js'
import type {Plan} from './plan.js'

export interface ApplyContext {
  signer: Signer
  now: Date
  toolVersion: string
  limits: Limits
  /** A rollback drill's id: the commit carries it as a trailer (and so verifies only in that drill). */
  drill?: string
}

export interface ApplyResult {
  commit: string
  receipt: string
  planDigest: string
}

/**
 * Git trailers a machine can parse (`git interpret-trailers --parse`). Channel, digest and
 * rollback target are written only for the operations that move a channel, from what the
 * builder computed; a value that is not one line of text is never written.
 */
export function commitMessage(plan: Plan, drill?: string): string {
  const d = plan.details
  const moves = plan.operation === 'promote' || plan.operation === 'rollback'
  const trailers: Array<[string, unknown]> = [
    ['Airlock-Operation', plan.operation],
    ['Airlock-Plan-Digest', plan.digest],
    ['Airlock-Image', d.image],
    ['Airlock-Channel', moves ? d.channel : undefined],
    ['Airlock-Digest', moves ? d.to : undefined],
    ['Airlock-Rollback-Target', !moves || d.rollbackTarget === undefined ? undefined : (d.rollbackTarget ?? 'none')],
    ['Airlock-Receipt', plan.receiptPath],
    ['Airlock-Requested-By', plan.requestedBy.actor],
    ['Airlock-Drill', drill],
  ]
  const oneLine = (v: unknown) => (typeof v === 'string' || typeof v === 'number') && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(String(v))
  const lines = trailers.filter(([, v]) => v !== undefined && v !== null && oneLine(v)).map(([k, v]) => `${k}: ${String(v)}`)
  const body = plan.reason ? `\n${messageBody(plan.reason)}\n` : ''
  return `airlock: ${plan.summary}\n${body}\n${lines.join('\n')}\n`
}

/**
 * The commit about to be published, checked by `evidence verify`'s own per-commit steps before
 * the ref moves — its time, its signature by an evidence key of the base's trust policy (for the
 * first commit, the trust policy it creates), its receipt under the trust policy it commits. A key
 * that is not trusted or not valid now, or a trust policy the change breaks, is refused here,
 * never found later.
 */
async function checkOwnCommit(repo: Repository, commit: string, ctx: ApplyContext): Promise<void> {
  const [problem] = await checkNewCommit(repo, commit, {limits: ctx.limits, now: ctx.now, ...(ctx.drill ? {drill: ctx.drill} : {})})
  if (problem) {
    throw new AirlockError('KEY_INVALID', `evidence verify would refuse this change, so it is not made: ${problem.code} ${problem.message} (is ${ctx.signer.keyid.slice(0, 16)}… an evidence key valid now in ${TRUST_FILE}?)`, {keyid: ctx.signer.keyid, problem})
  }
}

/**
 * Applies a sealed plan as ONE signed commit holding the changes and their receipt, in a fixed
 * order: lock → base unchanged → inputs unchanged → touched paths clean → receipt → commit →
 * our own verifier on both → compare-and-swap the branch → work tree. Any failure before the swap
 * leaves the repository as it was (unreferenced objects only).
 */
/** A plan made on another branch or commit than HEAD's is stale (exit 3): make a new one. */
export function staleness(plan: Pick<Plan, 'branch' | 'baseCommit'>, head: {ref: string; oid: string | null}): AirlockError | null {
  if (head.ref === plan.branch && head.oid === plan.baseCommit) return null
  return new AirlockError('STALE_PLAN', `the plan was made on ${plan.branch} @ ${plan.baseCommit?.slice(0, 12) ?? '(none)'}, but HEAD is ${head.ref} @ ${head.oid?.slice(0, 12) ?? '(none)'}; make a new plan`, {
    planned: {branch: plan.branch, commit: plan.baseCommit},
    actual: {branch: head.ref, commit: head.oid},
  })
}

/**
 * Applies a sealed plan the pipeline has already authorized and verified (only `execute` calls
 * this). Under the lock HEAD must still be the plan's base: another applier may have moved it
 * since the plan was made.
 */
export async function applyPlan(repo: Repository, plan: Plan, ctx: ApplyContext): Promise<ApplyResult> {
  if ((plan.changes.length === 0 && !plan.statement) || !plan.receiptPath) throw new AirlockError('PLAN_INVALID', 'the plan changes nothing; there is nothing to apply')
  const lock = await acquireApplyLock(repo.gitdir, ctx.now)
  try {
    const head = await repo.head()
    const stale = staleness(plan, head)
    if (stale) throw stale
    for (const input of plan.inputs) {
      const now = head.oid ? ((await repo.readFile(head.oid, input.path))?.oid ?? null) : null
      if (now !== input.oid) throw new AirlockError('STALE_PLAN', `${input.path} changed since the plan was made; make a new plan`, {path: input.path, planned: input.oid, actual: now})
    }
    const touched = [...plan.changes.map((c) => c.path), plan.receiptPath]
    // Nothing is written through a symbolic link in the work tree (before anything is committed).
    for (const path of touched) await checkInside(repo.dir, join(repo.dir, path))
    // An uncommitted edit is only in the way when the work tree does not already hold exactly
    // what the plan writes (`airlock change` commits the edits it was computed from).
    const after = new Map(plan.changes.map((c) => [c.path, c.after]))
    const dirty: string[] = []
    for (const path of await repo.uncommitted(touched)) {
      const want = after.get(path)
      if (want === undefined || (await repo.workTreeText(path)) !== want) dirty.push(path)
    }
    if (dirty.length > 0) {
      throw new AirlockError('UNCOMMITTED_CHANGES', `uncommitted changes in ${dirty.join(', ')}; commit or discard them first (if an apply was interrupted, \`airlock repair\` names what it left and finishes it)`, {paths: dirty})
    }
    // Never dated before the base: a parent from a clock a little ahead (within the skew) would
    // otherwise make this commit BACKDATED.
    const parentTime = plan.baseCommit ? (await repo.readCommit(plan.baseCommit)).time : 0
    const at = new Date(Math.max(ctx.now.getTime(), parentTime * 1000))
    // A gate-receipt plan's receipt is the suite run's own test-result statement; every other plan's, its change receipt.
    const statement = plan.statement ?? receiptStatement(plan, at, ctx.toolVersion)
    const receipt = receiptText(signReceipt(statement, [ctx.signer]))
    const files = [...plan.changes.map((c) => ({path: c.path, content: c.after})), {path: plan.receiptPath, content: receipt}]
    // Author and committer are who git says commits here; who asked is in the trailers and receipt.
    const author = await gitIdent(repo.dir, 'author')
    const committer = await gitIdent(repo.dir, 'committer')
    const time = Math.floor(at.getTime() / 1000)
    const commit = await repo.createCommit({
      base: plan.baseCommit,
      changes: files,
      message: commitMessage(plan, ctx.drill),
      author,
      committer,
      time,
      sign: (payload) => sshSign(Buffer.from(payload), ctx.signer),
    })
    await checkOwnCommit(repo, commit, ctx)
    await repo.updateRef(plan.branch, plan.baseCommit, commit, committer, time, `airlock: ${plan.summary}`)
    await repo.syncWorkTree(files)
    return {commit, receipt: plan.receiptPath, planDigest: plan.digest}
  } finally {
    await lock.release()
  }
}
