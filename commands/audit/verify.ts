import {Flags} from '@oclif/core'
import {AirlockCommand} from '../_base.js'
import {auditDir, auditDirFlag, auditKeysOf, auditTrust, auditTrustFlags, inRepository, verifierKeysFrom} from '../_audit.js'
import {readInput} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import type {AuditProblem, AuditVerifyReport} from '../../control-plane/audit/verify.js'
import type {ErrorCode} from '../../control-plane/errors.js'

export default class AuditVerify extends AirlockCommand {
  static override summary = 'Verify the audit log: every fingerprint, the hash chain, the Merkle tree, and every signed checkpoint.'
  static override description =
    'Checkpoints are checked with --key verifier keys, else with the role-audit keys of trust.yaml at the verified HEAD (or --trust FILE). ' +
    '--from-checkpoint FILE names a checkpoint you trust (the last one you verified): the log must extend it. In a repository (without --key or --trust), every checkpoint of this log published under docs/evidence/audit/ at the verified HEAD must be one the log extends: a log rewritten after publishing is caught. Exit 1 names the first bad entry or checkpoint.'
  static override flags = {
    ...auditDirFlag,
    ...auditTrustFlags,
    'from-checkpoint': Flags.string({description: 'a signed checkpoint you trust: a smaller or different log is rolled back or forked'}),
    key: Flags.string({description: 'a C2SP verifier key (<origin>+<key id>+<key>) or a file holding one; repeat for each', multiple: true}),
  }

  async run(): Promise<AuditVerifyReport> {
    const {flags} = await this.parse(AuditVerify)
    const dir = await auditDir(flags)
    const [{verifyLog, readOrigin}, {AirlockError}] = await Promise.all([import('../../control-plane/audit/log.js'), import('../../control-plane/errors.js')])
    const origin = await readOrigin(dir)
    // Outside a repository with no --key or --trust, no key is known: the entries are still
    // verified, and every checkpoint is reported as signed by an unknown key.
    // The audit threshold comes with trust.yaml's keys; --key names keys one by one (each counts).
    let threshold = 1
    const keys = flags.key?.length
      ? await verifierKeysFrom(flags.key)
      : flags.trust || (await inRepository(flags.repo))
        ? await (async () => {
            const {trust} = await auditTrust(flags, this)
            threshold = trust.thresholds.audit
            return auditKeysOf(trust, origin, this.now)
          })()
        : []
    const fromCheckpoint = flags['from-checkpoint'] ? await readInput(flags['from-checkpoint']) : undefined
    // Git is the witness: in a repository (keys from its trust.yaml), every checkpoint of this log
    // published at the verified HEAD must be one the log still extends.
    let witnessed: Array<{path: string; text: string}> = []
    if (!flags.key?.length && !flags.trust && (await inRepository(flags.repo))) {
      const [{verifiedHead}, {witnessFor, replacedMessage}, {hostname}] = await Promise.all([import('../_policy.js'), import('../../control-plane/audit/published.js'), import('node:os')])
      const head = await verifiedHead(flags, this)
      const witness = await witnessFor(head.repo, head.commit, origin, hostname(), this.limits)
      if (witness.replaced.length) throw new AirlockError('AUDIT_CHECKPOINT_INVALID', replacedMessage(origin, witness.replaced), {problem: 'ORIGIN_REPLACED', origin, replaced: witness.replaced})
      witnessed = witness.witnessed.map((p) => ({path: p.path, text: p.text}))
    }
    const report = await verifyLog(dir, {keys, threshold, now: this.now, witnessed, ...(fromCheckpoint !== undefined ? {fromCheckpoint} : {})})
    if (!this.jsonEnabled()) this.log(renderReport(report))
    if (!report.ok) {
      const p = report.problems[0]!
      throw new AirlockError(errorCodeOf(p), p.message, {...report, problem: p.code})
    }
    return report
  }
}

/** The error a failed verification ends with: the torn tail, a checkpoint, or an entry. */
function errorCodeOf(p: AuditProblem): ErrorCode {
  if (p.code === 'TORN_TAIL') return 'AUDIT_TORN_TAIL'
  if (p.path !== undefined) return 'AUDIT_CHECKPOINT_INVALID'
  return 'AUDIT_TAMPERED'
}

function renderReport(r: AuditVerifyReport): string {
  const checked = r.checkpoints.filter((c) => !c.unchecked)
  const lines = [
    `audit log ${t(r.dir)} (origin ${t(r.origin)})`,
    `entries: ${r.size} (${r.bytes} bytes${r.pruned ? `, ${r.pruned} pruned` : ''}), root ${Buffer.from(r.root, 'hex').toString('base64')}`,
    `checkpoints: ${checked.filter((c) => c.ok).length}/${checked.length} verified; the latest covers ${r.checkpointed}; ${r.uncheckpointed} entries not yet under any checkpoint`,
    ...r.recoveries.map((x) => `recovery: entry ${x.index} records a torn tail of ${x.length} bytes at byte ${x.offset}, moved to ${t(x.path)} (sha256 ${t(x.sha256)})`),
    ...r.problems.map((p) => `FAIL ${p.code.padEnd(24)} ${t(p.message)}`),
    r.ok ? 'OK' : 'FAILED',
  ]
  return lines.join('\n')
}
