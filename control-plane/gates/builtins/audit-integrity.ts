/**
 * `uses: builtin/audit-integrity`: this host's audit log verifies — every entry's fingerprint,
 * the hash chain, the Merkle tree, every local checkpoint signed by a role-audit key of
 * trust.yaml at the suite's commit and consistent with the one before, and every checkpoint of
 * this log published under docs/evidence/audit/ at that commit (git as the witness) one the log
 * still extends. A host without a log yet is not_run (never a pass); a log whose checkpoints no
 * trusted key signed passes only for its entries and says so.
 *
 *   with:
 *     require_checkpoint: true   # default false: fail when no verified checkpoint covers the log
 */
import {lstat} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {inputError} from '../../errors.js'
import type {BuiltinGate, GateContext, GateResult} from '../types.js'

const FIELDS = ['require_checkpoint'] as const

export const auditIntegrity: BuiltinGate = {
  name: 'audit-integrity',
  description: "this host's audit log verifies (fingerprints, hash chain, Merkle tree, signed checkpoints, the checkpoints published in git)",
  checkWith(value, where) {
    for (const key of Object.keys(value)) {
      if (!(FIELDS as readonly string[]).includes(key)) throw inputError('SCHEMA_VIOLATION', {...where, field: `${where.field}.${key}`}, `unknown field (known: ${FIELDS.join(', ')})`)
    }
    if (value.require_checkpoint !== undefined && typeof value.require_checkpoint !== 'boolean') throw inputError('SCHEMA_VIOLATION', {...where, field: `${where.field}.require_checkpoint`}, 'must be true or false')
  },
  async run(ctx: GateContext): Promise<GateResult> {
    if (!ctx.auditDir) return {status: 'not_run', reason: 'no audit log folder was given to the run'}
    const events = await lstat(join(ctx.auditDir, 'events.jsonl')).catch(() => null)
    if (!events || events.size === 0) {
      // No log is a host that never recorded, unless git holds checkpoints this host published: then its log is gone.
      const [{readOrigin}, {witnessFor}] = await Promise.all([import('../../audit/log.js'), import('../../audit/published.js')])
      const origin = await readOrigin(ctx.auditDir).catch(() => null)
      const w = await witnessFor(ctx.repo, ctx.commit, origin ?? 'airlock.audit/-/none', hostname(), ctx.limits)
      const published = [...new Set([...w.witnessed.map((p) => p.origin), ...w.replaced])]
      if (published.length) return {status: 'fail', reason: `TRUNCATED: this host published checkpoints of ${published.join(', ')}, but its audit log (${ctx.auditDir}) is ${events ? 'empty' : 'gone'}`, evidence: {published}}
      return {status: 'not_run', reason: `no audit log on this host yet (${ctx.auditDir})`}
    }
    const [{verifyLog, readOrigin}, {loadTrust, keysFor}, {verifierKeyOf}, {witnessFor, replacedMessage}] = await Promise.all([
      import('../../audit/log.js'),
      import('../../manifests/load.js'),
      import('../../audit/note.js'),
      import('../../audit/published.js'),
    ])
    const origin = await readOrigin(ctx.auditDir)
    const trust = await loadTrust(ctx.repo, ctx.commit, ctx.limits)
    const keys = keysFor(trust, 'audit', ctx.now)
      .filter((k) => k.algorithm === 'ed25519')
      .map((k) => verifierKeyOf(origin, k.publicKey))
    const {witnessed: published, replaced} = await witnessFor(ctx.repo, ctx.commit, origin, hostname(), ctx.limits)
    if (replaced.length) return {status: 'fail', reason: `ORIGIN_REPLACED: ${replacedMessage(origin, replaced)}`, evidence: {origin, replaced}}
    const r = await verifyLog(ctx.auditDir, {keys, threshold: trust.thresholds.audit, now: ctx.now, witnessed: published.map((p) => ({path: p.path, text: p.text}))})
    const evidence = {origin, entries: r.size, root: r.root, pruned: r.pruned, checkpoints: r.checkpoints.filter((c) => c.ok).length, published: published.length, checkpointed: r.checkpointed, uncheckpointed: r.uncheckpointed, recoveries: r.recoveries.length}
    if (!r.ok) {
      const p = r.problems[0]!
      return {status: 'fail', reason: `${p.code}: ${p.message}`, evidence: {...evidence, problems: r.problems.slice(0, 20).map((x) => ({code: x.code, message: x.message}))}}
    }
    if ((ctx.with as {require_checkpoint?: boolean}).require_checkpoint === true && r.checkpointed === 0) {
      return {status: 'fail', reason: `${r.size} entries verify, but no checkpoint signed by a role-audit key of trust.yaml covers them`, evidence}
    }
    const keysNote = keys.length === 0 ? '; trust.yaml has no audit key, so no checkpoint could be checked' : ''
    return {
      status: 'pass',
      reason: `${r.size} entries verify; ${evidence.checkpoints} checkpoint(s) verified, ${published.length} published in git and consistent; ${r.uncheckpointed} not yet under a checkpoint${keysNote}`,
      evidence,
    }
  },
}

export default auditIntegrity
