import {Flags} from '@oclif/core'
import type {RepairReport} from '../control-plane/plan/repair.js'
import {AirlockCommand} from './_base.js'
import {forTerminal as t} from '../control-plane/terminal.js'

export default class Repair extends AirlockCommand {
  static override summary = 'Find what an interrupted apply left behind (locks, a half-finished checkout, temporary files, empty objects); fix it with --apply.'
  static override description =
    'After a crash or kill -9 during an apply, the repository is before the change, after it, or in a state this command names: an airlock.lock whose process is gone, an empty or torn lock file older than a minute, a ref lock airlock took and never renamed, a branch that moved while the work tree and index did not, temporary files of a writer that is gone, empty loose objects. By default it only prints what it found and what --apply would do. Locks held by a running process and edits that are nobody\'s crash are reported and never touched. Exit 0 when nothing is left to a person, 1 when something is, 3 when an apply is running.'
  static override examples = ['<%= config.bin %> repair', '<%= config.bin %> repair --apply']
  static override flags = {
    apply: Flags.boolean({description: 'fix what was found (default: print it only)', default: false}),
  }

  async run(): Promise<RepairReport & {applied: boolean}> {
    const {flags} = await this.parse(Repair)
    const repo = await this.repository(flags.repo)
    const {findRepairs, applyRepairs} = await import('../control-plane/plan/repair.js')
    const report = flags.apply ? await applyRepairs(repo, this.now) : {findings: await findRepairs(repo, this.now), fixed: []}
    const left = report.findings.filter((f) => !f.fix)
    if (left.length > 0) this.failCheck()
    if (!this.jsonEnabled()) {
      const lines = report.findings.map((f) => `${f.fix ? (flags.apply ? 'FIXED' : 'FIX  ') : 'LEFT '} ${t(f.kind).padEnd(20)} ${t(f.problem)}${f.fix ? `\n      ${flags.apply ? '' : 'with --apply: '}${t(f.fix)}` : ''}`)
      const fixable = report.findings.length - left.length
      lines.push(
        report.findings.length === 0
          ? 'Nothing to repair: no interrupted apply left anything behind.'
          : flags.apply
            ? `${report.fixed.length} fixed, ${left.length} left to a person.`
            : `${fixable} to fix with \`airlock repair --apply\`, ${left.length} left to a person.`,
      )
      this.log(lines.join('\n'))
    }
    return {...report, applied: flags.apply}
  }
}
