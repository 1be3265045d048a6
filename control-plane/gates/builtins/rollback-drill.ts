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
  }
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
    return {status: d.status, reason: d.reason, evidence: drillEvidence(d)}
  },
}

export default rollbackDrill
