import type {AllowedTool, ToolFinding} from '../../control-plane/policy/tools/tools.js'
import {AirlockCommand} from '../_base.js'
import {toolPolicyFlags, warnFindings} from './_call.js'
import {forTerminal} from '../../control-plane/terminal.js'

type Listed = Pick<AllowedTool, 'name' | 'risk' | 'sideEffects' | 'capabilities' | 'schemaHash' | 'description'> & {approval: boolean}

export default class ToolList extends AirlockCommand {
  static override summary = 'List the tools an agent may call: allowed, not denied, and with a parameter schema that compiles and matches its hash.'
  static override description = 'Denied tools are absent, not marked: so are allowed tools that are also denied, have a forbidden capability, or whose schema is broken (those are reported on stderr, with file, line and field).'
  static override flags = {...toolPolicyFlags}

  async run(): Promise<{policy: string; policyHash: string; tools: Listed[]; findings: ToolFinding[]}> {
    const {flags} = await this.parse(ToolList)
    const [{listTools, RISK_MEANING}, {toolPolicy}] = await Promise.all([import('../../control-plane/policy/tools/tools.js'), import('../_policy.js')])
    const {policy} = await toolPolicy(flags, this)
    const tools = listTools(policy).map((t) => ({name: t.name, risk: t.risk, approval: t.approval !== null, sideEffects: t.sideEffects, capabilities: t.capabilities, schemaHash: t.schemaHash, description: t.description}))
    await warnFindings(policy, this.jsonEnabled())
    const width = Math.max(4, ...tools.map((t) => t.name.length))
    this.log(`${forTerminal(policy.file)} (${forTerminal(policy.name)}), ${tools.length} tool(s) an agent may call:`)
    for (const t of tools) this.log(`  ${forTerminal(t.name).padEnd(width)}  ${forTerminal(String(t.risk))} ${RISK_MEANING[t.risk].padEnd(29)} ${t.approval ? 'approval  ' : '          '}${forTerminal(t.sideEffects.join(', ')) || '-'}`)
    return {policy: policy.file, policyHash: policy.hash, tools, findings: policy.findings}
  }
}
