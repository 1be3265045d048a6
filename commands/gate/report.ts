import {Flags} from '@oclif/core'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {exampleFlag, onExampleFleet} from '../_gates.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import type {ClaimLevel, ClaimReport} from '../../control-plane/gates/claims.js'

const LEVELS: ClaimLevel[] = ['none', 'implemented', 'static-validated', 'host-validated', 'production-ready']

export default class GateReport extends AirlockCommand {
  static override summary = 'Show, per control area, the highest claim level the signed suite receipts in the verified history support: implemented, static-validated, host-validated, production-ready.'
  static override description = `implemented: the area has gates in manifests/gates.yaml. static-validated: a passing preflight receipt in which the area's gates passed. host-validated: a passing run on a lab host (--host) in which every host gate passed. production-ready: host-validated, plus a rollback drill within target and a passing postsession run on a digest the host run covered. Only receipts whose signatures verify under the trust they were added on count, and a later failing receipt of the same suite outweighs an earlier pass.`
  static override examples = ['<%= config.bin %> gate report', '<%= config.bin %> gate report --require static-validated', '<%= config.bin %> gate report --example --json']
  static override flags = {
    ...anchorFlag,
    require: Flags.string({description: 'exit 1 unless every area with gates is at least this level', options: LEVELS.slice(1)}),
    example: exampleFlag('report on'),
  }

  async run(): Promise<ClaimReport & {required: string | null; met: boolean}> {
    const {flags} = await this.parse(GateReport)
    const report = flags.example ? await onExampleFleet(this, (fleet) => this.report({...flags, repo: fleet.dir, 'trust-anchor': fleet.anchor})) : await this.report(flags)
    const floor = flags.require ? LEVELS.indexOf(flags.require as ClaimLevel) : 0
    const below = report.areas.filter((a) => a.level !== 'none' && LEVELS.indexOf(a.level) < floor)
    if (!this.jsonEnabled()) {
      this.log(`Claim levels at ${report.commit.slice(0, 12)} (${report.receipts.trusted} trusted suite receipt(s)${report.receipts.untrusted.length ? `, ${report.receipts.untrusted.length} not counted` : ''}):`)
      for (const a of report.areas) {
        this.log(`  ${t(a.area).padEnd(20)} ${a.level.padEnd(17)} ${t(a.title)}`)
        if (a.receipts.length) this.log(`  ${''.padEnd(20)} ${''.padEnd(17)} on ${a.receipts.map((r) => t(r)).join(', ')}`)
        if (a.next) this.log(`  ${''.padEnd(20)} ${''.padEnd(17)} next: ${t(a.next)}`)
      }
      for (const u of report.receipts.untrusted) this.log(`Not counted: ${t(u.path)}: ${t(u.why)}`)
      if (flags.require) this.log(below.length ? `Below ${flags.require}: ${below.map((a) => a.area).join(', ')}` : `Every area with gates is at least ${flags.require}.`)
    }
    if (below.length) this.failCheck()
    return {...report, required: flags.require ?? null, met: below.length === 0}
  }

  private async report(flags: {repo?: string; 'trust-anchor'?: string}): Promise<ClaimReport> {
    const [{verifiedHead}, {claimReport}] = await Promise.all([import('../_policy.js'), import('../../control-plane/gates/claims.js')])
    const head = await verifiedHead(flags, this)
    return claimReport(head.repo, head.commit, {anchor: head.source.anchor.commit, limits: this.limits})
  }
}
