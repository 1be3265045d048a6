import {Args} from '@oclif/core'
import type {StatusReport} from '../control-plane/promote/status.js'
import type {TrustSource} from '../control-plane/pipeline/base.js'
import {AirlockCommand, anchorFlag} from './_base.js'

export default class Status extends AirlockCommand {
  static override summary = 'Show each image channel: pinned digest, rollback target, last change and its receipt.'
  static override args = {image: Args.string({description: 'only this image'})}
  static override flags = {...anchorFlag}

  async run(): Promise<StatusReport & {history: {verified: boolean; anchor: {commit: string | null; pinned: boolean}; problems: unknown[]}; trustSource: TrustSource}> {
    const {args, flags} = await this.parse(Status)
    const repo = await this.repository(flags.repo)
    const [{status}, {inspectHead, HOW_TO_PIN}, {anchorInput}] = await Promise.all([import('../control-plane/promote/status.js'), import('../control-plane/pipeline/base.js'), import('./_policy.js')])
    // A read-only view: it shows HEAD whatever its history, and says what that history is.
    const head = await inspectHead(repo, {anchor: anchorInput(flags), limits: this.limits, now: this.now})
    const history = head.verification
    const report = {
      ...(await status(repo, {image: args.image, limits: this.limits, verified: history.verified, unverified: history.unverified})),
      history: {verified: history.verified, anchor: history.anchor, problems: history.problems},
      trustSource: head.source,
    }
    if (!this.jsonEnabled()) {
      const {forTerminal} = await import('../control-plane/terminal.js')
      const a = report.history.anchor
      const anchor = a.pinned ? `from trust anchor ${a.commit?.slice(0, 12)} (pinned by ${head.source.anchor.from})` : `UNPINNED: no trust anchor is pinned for this clone; ${HOW_TO_PIN}`
      const lines = [
        `${report.branch.replace('refs/heads/', '')} @ ${report.head.slice(0, 12)}`,
        `history ${report.history.verified ? 'VERIFIED' : `UNVERIFIED (${report.history.problems.length} problem(s); airlock evidence verify lists them)`} ${anchor}`,
      ]
      for (const img of report.images) {
        lines.push('', `${img.name}  ${img.repository}  tier ${img.tier}`)
        for (const ch of img.channels) {
          const last = ch.lastChange
          lines.push(`  ${ch.channel.padEnd(8)} ${ch.digest}`)
          lines.push(`  ${''.padEnd(8)} rollback target ${ch.rollbackTarget ?? 'none'}`)
          if (last) {
            const what = last.receipt ? `${forTerminal(last.operation ?? 'change')}, receipt ${forTerminal(last.receipt)}` : 'changed outside airlock (no receipt of its own)'
            lines.push(`  ${''.padEnd(8)} last change ${last.commit.slice(0, 12)}${last.verified ? '' : ' UNVERIFIED'} ${last.time} ${what}`)
            if (last.requestedBy) lines.push(`  ${''.padEnd(8)}   requested by ${forTerminal(last.requestedBy)}`)
            lines.push(`  ${''.padEnd(8)}   authored by  ${forTerminal(last.author)}`)
          }
        }
      }
      this.log(lines.join('\n'))
    }
    return report
  }
}
