import {readFile} from 'node:fs/promises'
import {Args, Flags} from '@oclif/core'
import {AirlockError} from '../control-plane/errors.js'
import type {ApplyResult} from '../control-plane/plan/apply.js'
import {AirlockCommand} from './_base.js'

export default class Apply extends AirlockCommand {
  static override summary = 'Apply a saved plan, only if nothing it was computed from has changed.'
  static override examples = ['<%= config.bin %> promote agent-runner --from canary --to stable --out plan.json', '<%= config.bin %> apply plan.json']
  static override args = {plan: Args.string({description: 'plan file written by --out', required: true})}
  static override flags = {
    'evidence-key': Flags.string({description: 'Ed25519 private key that signs the receipt and commit (default: AIRLOCK_EVIDENCE_KEY)'}),
  }

  async run(): Promise<ApplyResult> {
    const {args, flags} = await this.parse(Apply)
    const signer = await this.evidenceSigner(flags['evidence-key'])
    const text = await readFile(args.plan, 'utf8').catch((error: Error) => {
      throw new AirlockError('PLAN_INVALID', `${args.plan}: cannot read the plan (${error.message})`, {file: args.plan})
    })
    const [{parsePlan}, {applyPlan}] = await Promise.all([import('../control-plane/plan/plan.js'), import('../control-plane/plan/apply.js')])
    const plan = parsePlan(text, args.plan, this.limits)
    const repo = await this.repository(flags.repo)
    const result = await applyPlan(repo, plan, {signer, now: this.now, toolVersion: this.config.version, limits: this.limits})
    this.log(`Applied ${plan.operation}: ${plan.summary}\n  commit  ${result.commit}\n  receipt ${result.receipt}`)
    return result
  }
}
