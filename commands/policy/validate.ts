import {Flags} from '@oclif/core'
import type {PolicyProblem} from '../../control-plane/policy/engine.js'
import {AirlockCommand} from '../_base.js'
import {policyTree} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class PolicyValidate extends AirlockCommand {
  static override summary = 'Parse the Cedar policies and validate them strictly against the schema.'
  static override flags = {
    policies: Flags.string({description: 'policy folder (default: policies/ at the repository top)'}),
    schema: Flags.string({description: 'Cedar schema (default: schema.cedarschema in the policy folder)'}),
  }

  async run(): Promise<{ok: boolean; policies: number; schema: string | null; problems: PolicyProblem[]}> {
    const {flags} = await this.parse(PolicyValidate)
    await this.oneShotWasm()
    const tree = await policyTree(flags)
    const {validateTree, invalidPolicy} = await import('../../control-plane/policy/engine.js')
    const problems = validateTree(tree)
    // Invalid policies are invalid input (exit 2), reported like every other error.
    if (problems.length > 0) throw invalidPolicy(problems)
    this.log(`OK: ${tree.policies.length} policies valid against ${tree.schema ? t(tree.schema.file) : '(no schema: parsed only)'}`)
    return {ok: true, policies: tree.policies.length, schema: tree.schema?.file ?? null, problems}
  }
}
