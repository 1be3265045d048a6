import {Args} from '@oclif/core'
import type {StatusReport} from '../control-plane/promote/status.js'
import {AirlockCommand} from './_base.js'

export default class Status extends AirlockCommand {
  static override summary = 'Show each image channel: pinned digest, rollback target, last change and its receipt.'
  static override args = {image: Args.string({description: 'only this image'})}

  async run(): Promise<StatusReport> {
    const {args, flags} = await this.parse(Status)
    const repo = await this.repository(flags.repo)
    const {status} = await import('../control-plane/promote/status.js')
    const report = await status(repo, {image: args.image, limits: this.limits})
    if (!this.jsonEnabled()) {
      const lines = [`${report.branch.replace('refs/heads/', '')} @ ${report.head.slice(0, 12)}`]
      for (const img of report.images) {
        lines.push('', `${img.name}  ${img.repository}  tier ${img.tier}`)
        for (const ch of img.channels) {
          const last = ch.lastChange
          lines.push(`  ${ch.channel.padEnd(8)} ${ch.digest}`)
          lines.push(`  ${''.padEnd(8)} rollback target ${ch.rollbackTarget ?? 'none'}`)
          if (last) {
            const how = last.viaAirlock ? `${last.operation} by ${last.by}` : `changed outside airlock by ${last.by}`
            lines.push(`  ${''.padEnd(8)} last change ${last.commit.slice(0, 12)} ${last.time} ${how}${last.receipt ? `, receipt ${last.receipt}` : ', no receipt'}`)
          }
        }
      }
      this.log(lines.join('\n'))
    }
    return report
  }
}
