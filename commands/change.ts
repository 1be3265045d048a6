import {AirlockCommand, planFlags, type PlanOutcome} from './_base.js'

export default class Change extends AirlockCommand {
  static override summary = 'Commit your uncommitted edits under manifests/, policies/ and bundles/ through the pipeline: validated, authorized, signed.'
  static override description =
    'Takes the work tree\'s uncommitted edits of desired state (a new image manifest, a spec.verification change, a threshold in trust.yaml, a policy), validates them as their loaders do (schemas, Cedar validation, the signature of every digest a channel would newly pin, under the trust policy before the change), authorizes you for ChangeDesiredState on the kinds of file touched with the repository\'s own policies, and prints the diff as a plan. With --apply the edits are committed exactly, with a signed receipt.'
  static override examples = ['<%= config.bin %> change --reason "add the builder image"', '<%= config.bin %> change --reason "add the builder image" --apply']
  static override flags = {...planFlags}

  async run(): Promise<PlanOutcome> {
    const {flags} = await this.parse(Change)
    const repo = await this.repository(flags.repo)
    const {collectEdits} = await import('../control-plane/changes/desired-state.js')
    return this.runChange(repo, {kind: 'change', files: await collectEdits(repo, this.limits)}, flags)
  }
}
