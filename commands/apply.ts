import {Args, Flags} from '@oclif/core'
import {AirlockCommand, anchorFlag, type PlanOutcome} from './_base.js'
import {identityFlags} from './_identity.js'

export default class Apply extends AirlockCommand {
  static override summary = 'Apply a saved plan: the pipeline runs again on its request, and only an identical result is applied.'
  static override description =
    'A saved plan is a proposal, not a credential. The change is computed again from the plan\'s request on the current HEAD: the base must still be the one planned on (else exit 3 STALE_PLAN) and verify back to the pinned trust anchor, whoever applies now is authorized now, and the pinned signatures are verified now. Only if the result equals the saved plan is it applied; otherwise it is refused (exit 2 PLAN_MISMATCH) naming the fields that differ.'
  static override examples = ['<%= config.bin %> promote agent-runner --from canary --to stable --out plan.json', '<%= config.bin %> apply plan.json']
  static override args = {plan: Args.string({description: 'plan file written by --out', required: true})}
  static override flags = {
    ...identityFlags,
    ...anchorFlag,
    'evidence-key': Flags.string({description: 'Ed25519 private key that signs the receipt and commit (default: AIRLOCK_EVIDENCE_KEY)'}),
  }

  async run(): Promise<PlanOutcome> {
    const {args, flags} = await this.parse(Apply)
    const {readRegularFile} = await import('../control-plane/repo/files.js')
    const text = await readRegularFile(args.plan, {maxBytes: this.limits.maxFileBytes, missingCode: 'PLAN_INVALID'})
    const {parsePlan} = await import('../control-plane/plan/plan.js')
    const saved = parsePlan(text, args.plan, this.limits)
    const repo = await this.repository(flags.repo)
    return this.runChange(repo, {saved}, {...flags, reason: saved.reason, apply: true})
  }
}
