import {Flags} from '@oclif/core'
import type {RollbackDrill} from '../../control-plane/gates/drill.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {identityFlags} from '../_identity.js'

export default class DrillRollback extends AirlockCommand {
  static override summary = 'Rehearse a rollback on a throwaway clone: sign and promote a test digest, roll it back, verify, and time it against a recovery target.'
  static override description =
    'Clones the fleet into a temporary folder (removed afterwards, whatever happens; the repository itself is only read), and there, through the same pipeline as `image sign`, `promote` and `rollback`, signs a test digest, promotes it to the channel, rolls the channel back and verifies that the channel holds its digest from before and that the history and every receipt verify from the pinned trust anchor. Promote → rollback → verify is timed against --recovery-target. The evidence key signs the clone\'s commits; the test digest is signed with --image-key, or else with throwaway image keys the clone trusts by a signed change (the clone is thrown away). Exit 0 when it passed; 1 when it failed or could not run (not_run: a missing key or anchor, with the reason).'
  static override examples = ['<%= config.bin %> drill rollback', '<%= config.bin %> drill rollback --image agent-runner --channel canary --recovery-target 30s --json']
  static override flags = {
    ...identityFlags,
    ...anchorFlag,
    image: Flags.string({description: 'image to drill (default: the first image in manifests/images/)'}),
    channel: Flags.string({description: 'channel to promote to and roll back', default: 'canary'}),
    'recovery-target': Flags.string({description: 'how long promote → rollback → verify may take (a duration: 60s, 5m)', default: '60s'}),
    'image-key': Flags.string({description: 'an image key of trust.yaml to sign the test digest with (default: throwaway keys, trusted only in the clone)'}),
    'evidence-key': Flags.string({description: 'Ed25519 private key that signs the clone\'s commits and receipts (default: AIRLOCK_EVIDENCE_KEY)'}),
    actor: Flags.string({description: 'who asks (default: AIRLOCK_ACTOR, the CI actor, or the local user)'}),
  }

  async run(): Promise<RollbackDrill> {
    const {flags} = await this.parse(DrillRollback)
    const repo = await this.repository(flags.repo)
    const [{runRollbackDrill}, {parseDuration}] = await Promise.all([import('../../control-plane/gates/drill.js'), import('../../control-plane/duration.js')])
    parseDuration(flags['recovery-target'], '--recovery-target')
    const {commit} = await repo.base()
    const report = await runRollbackDrill({
      source: repo,
      commit,
      image: flags.image,
      channel: flags.channel,
      recoveryTarget: flags['recovery-target'],
      pipeline: await this.gatePipeline(repo, flags),
      imageKey: flags['image-key'],
      now: this.now,
      limits: this.limits,
    })
    if (report.status !== 'pass') this.failCheck()
    if (!this.jsonEnabled()) this.log(renderDrill(report))
    return report
  }
}

/** The human view: each step with its time (`*` counts against the target), then the verdict. */
export function renderDrill(d: RollbackDrill): string {
  const lines = [`Rollback drill: ${t(d.image ?? '?')}/${t(d.channel)} on a throwaway clone of ${d.sourceCommit.slice(0, 12)}${d.imageKey ? ` (${d.imageKey === 'given' ? 'the given image key' : 'throwaway image keys'})` : ''}`]
  const width = Math.max(0, ...d.steps.map((s) => s.step.length))
  for (const s of d.steps) lines.push(`  ${s.step.padEnd(width)} ${s.timed ? '*' : ' '} ${`${Math.round(s.elapsedMs)}ms`.padStart(8)}  ${t(s.command)}`)
  if (d.totalMs !== null) lines.push(`  ${'total'.padEnd(width)} * ${`${Math.round(d.totalMs)}ms`.padStart(8)}  promote → rollback → verify (target ${t(d.recoveryTarget)}); setup ${Math.round(d.setupMs)}ms`)
  if (d.digests.test) lines.push(`  digests: before ${d.digests.before}, test ${d.digests.test}, after ${d.digests.after ?? '-'}`)
  lines.push(`${d.status === 'pass' ? 'PASS' : d.status === 'fail' ? 'FAIL' : 'NOT RUN'}: ${t(d.reason)}`)
  return lines.join('\n')
}
