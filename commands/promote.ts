import {Args, Flags} from '@oclif/core'
import {AirlockCommand, planFlags, type PlanOutcome} from './_base.js'

export default class Promote extends AirlockCommand {
  static override summary = 'Move a channel of a golden image to a pinned digest, recording the rollback target.'
  static override examples = [
    '<%= config.bin %> promote agent-runner --digest sha256:… --to canary',
    '<%= config.bin %> promote agent-runner --from canary --to stable --reason "canary soaked 24h" --apply',
  ]
  static override args = {image: Args.string({description: 'image name (manifests/images/NAME.yaml)', required: true})}
  static override flags = {
    ...planFlags,
    digest: Flags.string({description: 'digest to promote: sha256:<64 hex> or repo@sha256:<64 hex>', exactlyOne: ['digest', 'from']}),
    from: Flags.string({description: 'promote the digest this channel holds', exactlyOne: ['digest', 'from']}),
    to: Flags.string({description: 'channel to change', required: true}),
  }

  async run(): Promise<PlanOutcome> {
    const {args, flags} = await this.parse(Promote)
    const repo = await this.repository(flags.repo)
    const request = {kind: 'promote' as const, image: args.image, to: flags.to, ...(flags.from !== undefined ? {from: flags.from} : {digest: flags.digest!})}
    return this.runChange(repo, request, flags)
  }
}
