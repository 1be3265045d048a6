import {Args, Flags} from '@oclif/core'
import {AirlockCommand, planFlags, type PlanOutcome} from './_base.js'

export default class Rollback extends AirlockCommand {
  static override summary = 'Restore a channel to its rollback target (or a given digest) as a new forward commit.'
  static override examples = ['<%= config.bin %> rollback agent-runner --channel canary --reason "boot failures on canary" --apply']
  static override args = {image: Args.string({description: 'image name', required: true})}
  static override flags = {
    ...planFlags,
    channel: Flags.string({description: 'channel to roll back', required: true}),
    to: Flags.string({description: 'previous (the recorded rollback target) or sha256:<64 hex>', default: 'previous'}),
    reason: Flags.string({description: 'why (required): recorded in the commit and the receipt', required: true}),
  }

  async run(): Promise<PlanOutcome> {
    const {args, flags} = await this.parse(Rollback)
    const repo = await this.repository(flags.repo)
    return this.runChange(repo, {kind: 'rollback', image: args.image, channel: flags.channel, to: flags.to}, flags)
  }
}
