import {Flags} from '@oclif/core'
import type {PruneReport} from '../../control-plane/audit/prune.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import {AirlockCommand} from '../_base.js'
import {auditDir, auditDirFlag, auditKeysOf, auditTrust, auditTrustFlags, verifierKeysFrom} from '../_audit.js'

export default class AuditPrune extends AirlockCommand {
  static override summary = 'Remove event bodies older than the retention, keeping every fingerprint: the log still verifies and every checkpoint and proof still holds.'
  static override description =
    'Prints the plan (how many bodies, which entries, how many bytes) unless --apply is given. The log is verified first (checkpoints with --key, else the role-audit keys of trust.yaml at the verified HEAD) and only entries under the last verified checkpoint are pruned. With --archive (or "archive": true in the audit folder’s config.json) the bodies are first sealed into archive/<first>-<last>.jsonl with a DSSE envelope signed by the audit key. A retention shorter than config.json’s retentionFloorDays is refused.'
  static override flags = {
    'retention-days': Flags.integer({description: 'keep the bodies of events younger than this many days', required: true, min: 1}),
    apply: Flags.boolean({description: 'replace the bodies (default: print the plan)', default: false}),
    archive: Flags.boolean({description: 'seal the bodies into a signed archive segment first', default: false}),
    'ignore-streams': Flags.boolean({description: 'prune bodies a SIEM stream (airlock audit stream) has not sent yet (default: refused, unless --archive keeps them)', default: false}),
    'audit-key': Flags.string({description: 'the audit signing key (PEM) that seals the archive (default: $AIRLOCK_AUDIT_KEY)'}),
    ...auditDirFlag,
    ...auditTrustFlags,
    key: Flags.string({description: 'a C2SP verifier key (<origin>+<key id>+<key>) or a file holding one, that checkpoints are checked with (default: the role-audit keys of trust.yaml at the verified HEAD); repeat for each', multiple: true}),
  }

  async run(): Promise<PruneReport> {
    const {flags} = await this.parse(AuditPrune)
    const [{pruneLog}, {loadSigner}] = await Promise.all([import('../../control-plane/audit/prune.js'), import('../../control-plane/crypto/keys.js')])
    const keyGiven = flags['audit-key'] !== undefined || process.env.AIRLOCK_AUDIT_KEY
    const signer = flags.apply && keyGiven ? await loadSigner({file: flags['audit-key'], env: process.env.AIRLOCK_AUDIT_KEY}, 'audit') : undefined
    const dir = await auditDir(flags)
    const {readOrigin} = await import('../../control-plane/audit/log.js')
    // The checkpoints that bound the prune are checked with the fleet's audit keys: the whole log is verified first.
    let threshold = 1
    const keys = flags.key?.length
      ? await verifierKeysFrom(flags.key)
      : await (async () => {
          const {trust} = await auditTrust(flags, this)
          threshold = trust.thresholds.audit
          return auditKeysOf(trust, await readOrigin(dir), this.now)
        })()
    const report = await pruneLog(dir, {retentionDays: flags['retention-days'], now: this.now, archive: flags.archive, ignoreStreams: flags['ignore-streams']}, {apply: flags.apply, signer, keys, threshold})
    if (!this.jsonEnabled()) this.log(render(report))
    return report
  }
}

function render(r: PruneReport): string {
  const why = {retention: 'the next event is within the retention', checkpoint: `entries from ${r.checkpointSize} are not under a checkpoint yet`, end: 'the end of the log'}[r.limitedBy]
  const lines = [`retention ${r.retentionDays} days (floor ${r.floorDays}): events before ${r.cutoff}; last checkpoint at ${r.checkpointSize} entries`]
  if (r.bodies === 0) lines.push(`nothing to prune (${why})`)
  else lines.push(`${r.applied ? 'pruned' : 'would prune'} ${r.bodies} bodies, entries ${r.first}..${r.last} (stopped by ${why}); events.jsonl ${r.bytesBefore} → ${r.bytesAfter} bytes`)
  if (r.waitingForCheckpoint > 0) lines.push(`${r.waitingForCheckpoint} older events wait for a checkpoint (airlock audit checkpoint)`)
  for (const s of r.streamsBehind) lines.push(`warning: the SIEM stream ${t(s.cursor)} has sent entries up to ${s.next}; its sink ${r.applied ? 'will never get' : 'would never get'} the bodies pruned after that`)
  if (r.archived) lines.push(`sealed into ${t(r.archived.file)} (sha256 ${r.archived.sha256}), envelope ${t(r.archived.envelope)}`)
  else if (r.archive && !r.applied && r.bodies > 0) lines.push(`would seal into ${t(r.archive)}`)
  if (!r.applied && r.bodies > 0) lines.push('plan only: run again with --apply')
  return lines.join('\n')
}
