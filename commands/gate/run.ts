import {Args} from '@oclif/core'
import {GateRunCommand, gateRunFlags, type GateRunOutput} from '../_gates.js'

export default class GateRun extends GateRunCommand {
  static override summary = 'Run a gate suite of manifests/gates.yaml (at the verified HEAD): every gate ends pass, fail or not_run with a reason; exit 1 when the run fails.'
  static override description = `Independent gates run in parallel (--jobs). Gates that require a lab host run only with --host; without it they are not_run and do not fail the run. The run fails (exit 1) when a required, enforced gate fails, or is not_run for any other reason; shadow gates are recorded and never fail it.
The run is one in-toto test-result statement: --apply commits it signed to docs/evidence/ through the pipeline, --out FILE writes it signed to a file. --junit FILE writes JUnit XML; with $GITHUB_STEP_SUMMARY set, a Markdown table is appended to it.`
  static override examples = ['<%= config.bin %> gate run preflight', '<%= config.bin %> gate run postsession --host --apply', '<%= config.bin %> gate run preflight --junit preflight.xml --out preflight.receipt.json --json']
  static override args = {suite: Args.string({description: 'suite name (preflight, postsession, or one the gates file adds)', required: true})}
  static override flags = {...gateRunFlags}

  async run(): Promise<GateRunOutput> {
    const {args, flags} = await this.parse(GateRun)
    return this.runGates(args.suite, flags)
  }
}
