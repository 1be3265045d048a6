import {GateRunCommand, gateRunFlags, type GateRunOutput} from './_gates.js'

export default class Postsession extends GateRunCommand {
  static override summary = 'Run the postsession gate suite after a canary or preview session: the same as `airlock gate run postsession`.'
  static override examples = ['<%= config.bin %> postsession', '<%= config.bin %> postsession --host --apply', '<%= config.bin %> postsession --junit postsession.xml --out postsession.receipt.json']
  static override flags = {...gateRunFlags}

  async run(): Promise<GateRunOutput> {
    const {flags} = await this.parse(Postsession)
    return this.runGates('postsession', flags)
  }
}
