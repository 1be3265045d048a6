import {Flags} from '@oclif/core'
import type {EvidenceReport} from '../../control-plane/evidence/verify.js'
import {AirlockCommand} from '../_base.js'

export default class EvidenceVerify extends AirlockCommand {
  static override summary = 'Verify every receipt, that receipts were only ever added, and the signatures of the commits that changed manifests or evidence.'
  static override flags = {
    since: Flags.string({description: 'start the history check after this commit (for repositories that adopted airlock later)'}),
  }

  async run(): Promise<EvidenceReport> {
    const {flags} = await this.parse(EvidenceVerify)
    const repo = await this.repository(flags.repo)
    const {verifyEvidence} = await import('../../control-plane/evidence/verify.js')
    const report = await verifyEvidence(repo, {limits: this.limits, since: flags.since})
    if (!report.ok) this.failCheck()
    if (!this.jsonEnabled()) {
      const lines = report.problems.map((p) => `FAIL ${p.code.padEnd(24)} ${p.message}`)
      lines.push(
        `${report.ok ? 'OK' : 'FAILED'}: ${report.receipts.filter((r) => r.ok).length}/${report.receipts.length} receipts verified; ` +
          `${report.commitsWalked} commits walked, ${report.commitsSigned} signed commits checked; ${report.problems.length} problem(s).`,
      )
      this.log(lines.join('\n'))
    }
    return report
  }
}
