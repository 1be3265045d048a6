import {Flags} from '@oclif/core'
import {AirlockCommand, planFlags, type PlanOutcome} from '../_base.js'
import type {PublishRequest} from '../../control-plane/audit/published.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class AuditPublish extends AirlockCommand {
  static override summary = 'Publish the audit log\'s newest checkpoint into the fleet repository (docs/evidence/audit/), with the consistency proof from the one published before.'
  static override description =
    'Git as the log\'s witness: the signed checkpoint, byte for byte, and the RFC 6962 consistency proof from the last checkpoint published for this log\'s origin are committed as one signed change with its receipt, so every clone holds the log\'s history of roots. The checkpoint must verify with an audit key of trust.yaml and extend what was published (a smaller tree, or another root at a published size, is refused). Prints the plan unless --apply.'
  static override flags = {
    ...planFlags,
    'audit-dir': Flags.string({description: 'the audit log\'s folder (default: $AIRLOCK_AUDIT_DIR, else $XDG_STATE_HOME/airlock/audit, else ~/.local/state/airlock/audit)'}),
  }

  async run(): Promise<PlanOutcome & {audit: Omit<PublishRequest, 'request'> & {dir: string}}> {
    const {flags} = await this.parse(AuditPublish)
    const repo = await this.repository(flags.repo)
    const [{auditDirFrom}, {publishRequest}] = await Promise.all([import('../../control-plane/audit/log.js'), import('../../control-plane/audit/published.js')])
    const dir = auditDirFrom(flags['audit-dir'], process.env)
    const head = await repo.base()
    const {request, ...read} = await publishRequest(repo, head.commit, dir, this.limits)
    if (!this.jsonEnabled()) {
      const was = read.previous ? `size ${read.previous.size} (${t(read.previous.path)})` : 'nothing yet'
      this.log(`Audit log ${t(read.origin)} in ${t(dir)}\n  newest checkpoint  size ${read.checkpoint.size}, root ${t(read.checkpoint.root)}\n  published          ${was}\n`)
    }
    const outcome = await this.runChange(repo, request, flags)
    return {...outcome, audit: {...read, dir}}
  }
}
