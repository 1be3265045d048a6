import {join} from 'node:path'
import {Args} from '@oclif/core'
import {AirlockCommand, planFlags, type PlanOutcome} from './_base.js'
import {forTerminal as t} from '../control-plane/terminal.js'

export default class Init extends AirlockCommand {
  static override summary = 'Scaffold a new GitOps repository: git init, a signed example image, trust.yaml with fresh evidence and image keys.'
  static override examples = ['<%= config.bin %> init ./fleet', '<%= config.bin %> init ./fleet --apply']
  static override args = {dir: Args.string({description: 'directory to create (must be absent or empty)', required: true})}
  static override flags = {apply: planFlags.apply, actor: planFlags.actor}

  async run(): Promise<PlanOutcome & {dir: string; keyFile: string | null; imageKeyFile: string | null}> {
    const {args, flags} = await this.parse(Init)
    const [{scaffold}, {signImageBundle}] = await Promise.all([import('../control-plane/init/scaffold.js'), import('../platform/images/sign.js')])
    const result = await scaffold(args.dir, {
      apply: flags.apply,
      now: this.now,
      requestedBy: await this.requester(flags.actor),
      limits: this.limits,
      toolVersion: this.config.version,
      examplePolicies: join(this.config.root, 'policies'),
      // The public-good Sigstore trusted root airlock ships (from @sigstore/tuf's seeds).
      trustedRoot: join(this.config.root, 'manifests', 'sigstore', 'trusted_root.json'),
      signBundle: signImageBundle,
    })
    const rendered = await this.render(result.outcome)
    if (!this.jsonEnabled()) {
      if (rendered.applied) {
        this.log(`\nNext:\n  cd ${t(args.dir)}\n  export AIRLOCK_EVIDENCE_KEY=keys/evidence.key\n  airlock status\n  airlock image sign agent-runner@sha256:<64 hex> --key keys/image.key --apply
  airlock promote agent-runner --digest sha256:<64 hex> --to canary --reason "try it" --apply\n  airlock rollback agent-runner --channel canary --reason "undo" --apply\n  airlock evidence verify\n(the trust anchor is pinned to the first commit in this clone's git config; other clones pin it with airlock trust pin ${t(rendered.applied.commit)})\n(stable takes a verified release manager: --jwt)`)
      } else {
        this.log('(On --apply new keys are generated into keys/evidence.key and keys/image.key; the key ids shown here are a preview.)')
      }
    }
    return {...rendered, dir: result.dir, keyFile: result.keyFile, imageKeyFile: result.imageKeyFile}
  }
}
