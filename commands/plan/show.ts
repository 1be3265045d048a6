import {Args} from '@oclif/core'
import type {Plan} from '../../control-plane/plan/plan.js'
import {AirlockCommand} from '../_base.js'

export default class PlanShow extends AirlockCommand {
  static override summary = 'Show a saved plan (and check it was not edited).'
  static override args = {plan: Args.string({description: 'plan file written by --out', required: true})}

  async run(): Promise<Plan> {
    const {args} = await this.parse(PlanShow)
    const {readRegularFile} = await import('../../control-plane/repo/files.js')
    const text = await readRegularFile(args.plan, {maxBytes: this.limits.maxFileBytes, missingCode: 'PLAN_INVALID'})
    const [{parsePlan}, {renderPlan}] = await Promise.all([import('../../control-plane/plan/plan.js'), import('../../control-plane/plan/render.js')])
    const plan = parsePlan(text, args.plan, this.limits)
    if (!this.jsonEnabled()) process.stdout.write(renderPlan(plan, {color: this.color()}))
    return plan
  }
}
