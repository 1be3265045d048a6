import {GateRunCommand, gateRunFlags, type GateRunOutput} from './_gates.js'

export default class Preflight extends GateRunCommand {
  static override summary = 'Run the preflight gate suite before a canary or preview session (and in CI before a promotion): the same as `airlock gate run preflight`.'
  static override examples = ['<%= config.bin %> preflight', '<%= config.bin %> preflight --host --apply', '<%= config.bin %> preflight --junit preflight.xml --out preflight.receipt.json']
  static override flags = {...gateRunFlags}

  async run(): Promise<GateRunOutput> {
    const {flags} = await this.parse(Preflight)
    return this.runGates('preflight', flags)
  }
}
