import {Args} from '@oclif/core'
import type {StatusReport} from '../control-plane/promote/status.js'
import {AirlockCommand, anchorFlag} from './_base.js'

export default class Status extends AirlockCommand {
  static override summary = 'Show each image channel: pinned digest, rollback target, last change and its receipt.'
  static override args = {image: Args.string({description: 'only this image'})}
  static override flags = {...anchorFlag}

  async run(): Promise<StatusReport & {history: {verified: boolean; anchor: {commit: string | null; pinned: boolean}; problems: unknown[]}}> {
    const {args, flags} = await this.parse(Status)
    const repo = await this.repository(flags.repo)
    const [{status}, {inspectHead}, {anchorInput}] = await Promise.all([import('../control-plane/promote/status.js'), import('../control-plane/pipeline/base.js'), import('./_policy.js')])
    const head = await inspectHead(repo, {anchor: anchorInput(flags), limits: this.limits, now: this.now})
    const history = head.verification
    const report = {...(await status(repo, {image: args.image, limits: this.limits, unverified: history.unverified})), history: {verified: history.verified, anchor: history.anchor, problems: history.problems}}
    if (!this.jsonEnabled()) {
      const a = report.history.anchor
      const lines = [
        `${report.branch.replace('refs/heads/', '')} @ ${report.head.slice(0, 12)}`,
        `history ${report.history.verified ? 'VERIFIED' : `UNVERIFIED (${report.history.problems.length} problem(s); airlock evidence verify lists them)`} from trust anchor ${a.commit?.slice(0, 12) ?? 'none'}${a.pinned ? ' (pinned)' : ' (the root, not pinned)'}`,
      ]
      for (const img of report.images) {
        lines.push('', `${img.name}  ${img.repository}  tier ${img.tier}`)
        for (const ch of img.channels) {
          const last = ch.lastChange
          lines.push(`  ${ch.channel.padEnd(8)} ${ch.digest}`)
          lines.push(`  ${''.padEnd(8)} rollback target ${ch.rollbackTarget ?? 'none'}`)
          if (last) {
            const how = last.viaAirlock ? `${last.operation} by ${last.by}` : `changed outside airlock by ${last.by}`
            lines.push(`  ${''.padEnd(8)} last change ${last.commit.slice(0, 12)}${last.verified ? '' : ' UNVERIFIED'} ${last.time} ${how}${last.receipt ? `, receipt ${last.receipt}` : ', no receipt'}`)
          }
        }
      }
      this.log(lines.join('\n'))
    }
    return report
  }
}
