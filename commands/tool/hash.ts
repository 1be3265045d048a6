import {Flags} from '@oclif/core'
import {AirlockCommand} from '../_base.js'
import {toolPolicyFlags} from './_call.js'
import {forTerminal} from '../../control-plane/terminal.js'

type Tool = {name: string; recorded: string; computed: string; matches: boolean}

export default class ToolHash extends AirlockCommand {
  static override summary = "Print the tool policy's canonical hash (SHA-256 of its RFC 8785 JSON), which an operator can pin; and each tool's parameter schema hash."
  static override description = 'With --schema FILE, print the hash a parameter schema (JSON or YAML) gets in schemaHash instead. Exit 1 when a recorded schemaHash is not its schema\'s.'
  static override examples = ['<%= config.bin %> tool hash', '<%= config.bin %> tool hash --schema read_file.schema.json']
  static override flags = {
    ...toolPolicyFlags,
    schema: Flags.string({description: 'a parameter schema file (JSON or YAML): print its schemaHash', exclusive: ['policy']}),
  }

  async run(): Promise<{hash: string; policy?: string; tools?: Tool[]}> {
    const {flags} = await this.parse(ToolHash)
    const [{schemaHash}, {toolPolicy, readInput}] = await Promise.all([import('../../control-plane/policy/tools/tools.js'), import('../_policy.js')])
    if (flags.schema) {
      const {loadYaml} = await import('../../control-plane/manifests/yaml.js')
      // YAML is a superset of JSON: one loader, with its size, alias and depth limits.
      const hash = schemaHash(loadYaml(await readInput(flags.schema, this.limits.maxFileBytes), flags.schema, this.limits).value)
      this.log(hash)
      return {hash}
    }
    const {policy} = await toolPolicy(flags, this)
    const tools = [...policy.allowed.values()].map((t) => ({name: t.name, recorded: t.schemaHash, computed: t.computedHash, matches: t.schemaHash === t.computedHash}))
    if (tools.some((t) => !t.matches)) this.failCheck()
    this.log(`${policy.hash}  ${forTerminal(policy.file)}`)
    for (const t of tools) this.log(`  ${forTerminal(String(t.computed))}  ${forTerminal(t.name)}${t.matches ? '' : `  (recorded ${forTerminal(String(t.recorded))}: does not match)`}`)
    return {hash: policy.hash, policy: policy.file, tools}
  }
}
