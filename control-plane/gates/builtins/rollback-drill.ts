/**
 * `uses: builtin/rollback-drill` (post-session): the rollback drill (../drill.ts) on a throwaway
 * clone of the suite's commit, timed against `with.recovery_target`.
 *
 *   with:
 *     image: agent-runner        # default: the first image in manifests/images/
 *     channel: canary            # default: canary
 *     recovery_target: 60s       # default: 60s (a duration: 90s, 5m, …)
 *     image_key: keys/image.key  # optional, relative to the repository; default: throwaway keys
 *
 * The evidence from the drill (steps with their command-equivalents and elapsed ms, the total,
 * the target, the digests, the clone's final commit) goes into the suite's receipt.
 */
import {isAbsolute, join} from 'node:path'
import {parseDuration} from '../../duration.js'
import {inputError} from '../../errors.js'
import type {RollbackDrill} from '../drill.js'
import type {BuiltinGate, GateContext, GateResult} from '../types.js'

const FIELDS = ['image', 'channel', 'recovery_target', 'image_key'] as const

/** The receipt's facts: everything but the reason and status the result carries itself. */
export function drillEvidence(d: RollbackDrill): Record<string, unknown> {
  return {
    image: d.image,
    channel: d.channel,
    recoveryTarget: d.recoveryTarget,
    targetMs: d.targetMs,
    totalMs: d.totalMs,
    setupMs: d.setupMs,
    steps: d.steps,
    digests: d.digests,
    imageKey: d.imageKey,
    anchor: d.anchor,
    id: d.id,
    sourceCommit: d.sourceCommit,
    finalCommit: d.finalCommit,
    receipts: d.receipts,
    verification: d.verification,
    audit: d.audit,
  }
}

/**
 * What is wrong with the drill's audit trail (null: nothing): with a record step, every applied
 * step has an event, and each event is in the log at the index given, with the fingerprint given,
 * marked with the drill's id and the step's commit.
 */
async function checkLogged(d: RollbackDrill, ctx: GateContext): Promise<string | null> {
  if (!ctx.pipeline?.context.record) return null
  const applied = d.steps.filter((s) => s.commit && s.receipt)
  const missing = applied.filter((s) => !d.audit.some((a) => a.commit === s.commit))
  if (missing.length) return `the audit log did not record the drill's ${missing.map((s) => s.step).join(', ')}`
  if (!ctx.auditDir || d.audit.length === 0) return null
  const {readEntries} = await import('../../audit/log.js')
  const want = new Map(d.audit.map((a) => [a.index, a]))
  const first = Math.min(...want.keys())
  for await (const e of readEntries(ctx.auditDir, {from: first})) {
    const a = want.get(e.index)
    if (!a) continue
    if (e.fingerprint !== a.fingerprint) return `audit-log entry ${e.index} is not the drill's event (fingerprint ${e.fingerprint.slice(0, 12)}, recorded ${a.fingerprint.slice(0, 12)})`
    const event = JSON.parse(e.line.toString('utf8')) as {unmapped?: {airlock?: {drill?: string; commit?: string}}}
    if (event.unmapped?.airlock?.drill !== d.id || (a.commit && event.unmapped.airlock.commit !== a.commit)) return `audit-log entry ${e.index} does not name the drill ${d.id}`
    want.delete(e.index)
    if (want.size === 0) break
  }
  return want.size ? `audit-log entries ${[...want.keys()].join(', ')} are missing from ${ctx.auditDir}` : null
}

export const rollbackDrill: BuiltinGate = {
  name: 'rollback-drill',
  description: 'On a throwaway clone: sign and promote a test digest, roll the channel back, verify the channel and the evidence, timed against with.recovery_target',
  checkWith(value, where) {
    for (const key of Object.keys(value)) {
      if (!(FIELDS as readonly string[]).includes(key)) throw inputError('SCHEMA_VIOLATION', {...where, field: `${where.field}.${key}`}, `unknown field (known: ${FIELDS.join(', ')})`)
    }
    for (const key of FIELDS) {
      const v = value[key]
      if (v !== undefined && (typeof v !== 'string' || v.trim() === '')) throw inputError('SCHEMA_VIOLATION', {...where, field: `${where.field}.${key}`}, 'must be a non-empty string')
    }
    if (typeof value.recovery_target === 'string') parseDuration(value.recovery_target, `${where.file}${where.line ? `:${where.line}` : ''}: ${where.field}.recovery_target`)
  },
  async run(ctx: GateContext): Promise<GateResult> {
    const w = ctx.with as Partial<Record<(typeof FIELDS)[number], string>>
    const imageKey = w.image_key === undefined ? undefined : isAbsolute(w.image_key) ? w.image_key : join(ctx.dir, w.image_key)
    // The drill (the pipeline, git, signing) loads only when it runs.
    const {runRollbackDrill} = await import('../drill.js')
    const d = await runRollbackDrill({
      source: ctx.repo,
      commit: ctx.commit,
      image: w.image,
      channel: w.channel,
      recoveryTarget: w.recovery_target,
      pipeline: ctx.pipeline,
      imageKey,
      now: ctx.now,
      limits: ctx.limits,
      signal: ctx.signal,
    })
    if (d.status !== 'pass') return {status: d.status, reason: d.reason, evidence: drillEvidence(d)}
    // The drill's steps went into this host's audit log: each must be there as the record step said.
    const logged = await checkLogged(d, ctx)
    if (logged) return {status: 'fail', reason: `${d.reason}; but ${logged}`, evidence: drillEvidence(d)}
    const where = d.audit.length ? `; its ${d.audit.length} steps are audit-log entries ${d.audit.map((a) => a.index).join(', ')}` : '; no audit log recorded its steps'
    return {status: d.status, reason: `${d.reason}${where}`, evidence: drillEvidence(d)}
  },
}

export default rollbackDrill
