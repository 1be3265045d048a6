import {Flags} from '@oclif/core'
import type {EvidenceReport} from '../../control-plane/evidence/verify.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {anchorInput} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class EvidenceVerify extends AirlockCommand {
  static override summary = 'Verify every receipt, that receipts were only ever added, and the signatures of the commits that changed manifests or evidence.'
  static override flags = {
    ...anchorFlag,
    since: Flags.string({description: 'the same as --trust-anchor (for repositories that adopted airlock later)'}),
  }

  async run(): Promise<EvidenceReport & {anchorFrom: string | null}> {
    const {flags} = await this.parse(EvidenceVerify)
    const repo = await this.repository(flags.repo)
    const [{verifyEvidence}, {resolveAnchor, HOW_TO_PIN}] = await Promise.all([import('../../control-plane/evidence/verify.js'), import('../../control-plane/pipeline/base.js')])
    const anchor = await resolveAnchor(repo, anchorInput({'trust-anchor': flags['trust-anchor'] ?? flags.since}))
    const report = await verifyEvidence(repo, {limits: this.limits, anchor: anchor.commit, now: this.now})
    if (!report.ok) this.failCheck()
    if (!this.jsonEnabled()) {
      const lines = report.problems.map((p) => `FAIL ${p.code.padEnd(24)} ${t(p.message)}`)
      const a = report.anchor
      lines.push(a.pinned ? `trust anchor ${t(String(a.commit))} (pinned by ${t(String(anchor.from))})` : `trust anchor NOT PINNED: history walked from its root ${a.commit ? t(a.commit.slice(0, 12)) : '(none)'} only to name other problems; ${HOW_TO_PIN}`)
      lines.push(
        `${report.ok ? 'OK' : 'FAILED'}: ${report.receipts.filter((r) => r.ok).length}/${report.receipts.length} receipts verified; ` +
          `${report.commitsWalked} commits walked, ${report.commitsSigned} signed commits checked; ${report.problems.length} problem(s).`,
      )
      this.log(lines.join('\n'))
    }
    return {...report, anchorFrom: anchor.from}
  }
}
