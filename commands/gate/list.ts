import {AirlockCommand, anchorFlag} from '../_base.js'
import {exampleFlag, onExampleFleet} from '../_gates.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

type ListedGate = {id: string; uses?: string; run?: string; needs: string[]; requires: string[]; required: boolean; mode: 'enforce' | 'shadow'; timeoutMs: number; expect?: {pass: number; fail: number}}

export default class GateList extends AirlockCommand {
  static override summary = 'List the gate suites of manifests/gates.yaml at the verified HEAD: each gate, what it runs, its needs, requirements and mode.'
  static override examples = ['<%= config.bin %> gate list', '<%= config.bin %> gate list --example', '<%= config.bin %> gate list --json']
  static override flags = {...anchorFlag, example: exampleFlag('list the suites of')}

  async run(): Promise<{file: string; sha256: string; commit: string; suites: Array<{name: string; gates: ListedGate[]}>}> {
    const {flags} = await this.parse(GateList)
    if (flags.example) return onExampleFleet(this, (fleet) => this.list({...flags, repo: fleet.dir, 'trust-anchor': fleet.anchor}))
    return this.list(flags)
  }

  private async list(flags: {repo?: string; 'trust-anchor'?: string}): Promise<{file: string; sha256: string; commit: string; suites: Array<{name: string; gates: ListedGate[]}>}> {
    const [{verifiedHead}, {requireGateSuites}, {formatMs}] = await Promise.all([import('../_policy.js'), import('../../control-plane/gates/run-suite.js'), import('../../control-plane/gates/run-command.js')])
    const head = await verifiedHead(flags, this)
    const suites = await requireGateSuites(head.repo, head.commit, this.limits)
    const listed = [...suites.suites].map(([name, gates]): {name: string; gates: ListedGate[]} => ({
      name,
      gates: gates.map((g): ListedGate => ({id: g.id, ...(g.uses ? {uses: g.uses} : {run: g.run}), needs: g.needs, requires: g.requires, required: g.required, mode: g.mode, timeoutMs: g.timeoutMs, ...(g.expect ? {expect: g.expect} : {})})),
    }))
    if (!this.jsonEnabled()) {
      for (const s of listed) {
        this.log(`${t(s.name)} (${s.gates.length} gate(s))`)
        for (const g of s.gates) {
          const what = g.uses ?? `run: ${g.run}`
          const extra = [g.needs.length ? `needs ${g.needs.join(', ')}` : '', g.requires.length ? `requires ${g.requires.join(', ')}` : '', g.mode === 'shadow' ? 'shadow' : '', g.required ? '' : 'optional', `timeout ${formatMs(g.timeoutMs)}`].filter(Boolean)
          this.log(`  ${t(g.id).padEnd(20)} ${t(what)}  [${t(extra.join('; '))}]`)
        }
      }
    }
    return {file: suites.file, sha256: suites.sha256, commit: head.commit, suites: listed}
  }
}
