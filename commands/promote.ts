import {Args, Flags} from '@oclif/core'
import {AirlockError} from '../control-plane/errors.js'
import {AirlockCommand, planFlags, type PlanOutcome} from './_base.js'

export default class Promote extends AirlockCommand {
  static override summary = 'Move a channel of a golden image to a pinned digest, recording the rollback target.'
  static override examples = [
    '<%= config.bin %> promote agent-runner --digest sha256:… --to canary',
    '<%= config.bin %> promote agent-runner --from canary --to stable --reason "canary soaked 24h" --apply',
    '<%= config.bin %> promote agent-runner --from canary --to stable --override --reason "CVE hotfix; postsession rerun scheduled" --apply',
  ]
  static override args = {image: Args.string({description: 'image name (manifests/images/NAME.yaml)', required: true})}
  static override flags = {
    ...planFlags,
    digest: Flags.string({description: 'digest to promote: sha256:<64 hex> or repo@sha256:<64 hex>', exactlyOne: ['digest', 'from']}),
    from: Flags.string({description: 'promote the digest this channel holds', exactlyOne: ['digest', 'from']}),
    to: Flags.string({description: 'channel to change', required: true}),
    override: Flags.boolean({description: "pass the channel's missing evidence (suite receipts, soak) where Cedar permits Override; needs --reason; recorded in the plan and receipt", default: false}),
  }

  async run(): Promise<PlanOutcome> {
    const {args, flags} = await this.parse(Promote)
    if (flags.override && !flags.reason.trim()) throw new AirlockError('USAGE', '--override needs --reason: why the missing evidence is overridden goes into the commit and the receipt', {field: '--reason'})
    const repo = await this.repository(flags.repo)
    const request = {kind: 'promote' as const, image: args.image, to: flags.to, ...(flags.from !== undefined ? {from: flags.from} : {digest: flags.digest!}), ...(flags.override ? {override: true} : {})}
    return this.runChange(repo, request, flags)
  }
}
