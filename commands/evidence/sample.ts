import {Flags} from '@oclif/core'
import type {SampleResult} from '../../control-plane/evidence/report/sample.js'
import type {ReportCheckpoint} from '../../control-plane/evidence/report/model.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {anchorInput} from '../_policy.js'

export default class EvidenceSample extends AirlockCommand {
  static override summary = "Draw a sample of a control's population an auditor can recompute: log entries bounded by a signed checkpoint, or the commits since the trust anchor."
  static override description = 'The seed is the bounding checkpoint\'s root hash (log populations) or the head commit id (commit populations); the same inputs always draw the same members.'
  static override examples = ['<%= config.bin %> evidence sample --control CM-3 --size 25', '<%= config.bin %> evidence sample --control AU-2 --size 25 --checkpoint docs/evidence/audit/00000000000000001000.checkpoint']
  static override flags = {
    ...anchorFlag,
    control: Flags.string({description: 'the control id, e.g. CM-3, CC8.1, AU-2, 164.312(b)', required: true}),
    size: Flags.integer({description: 'how many members to draw (at most the population)', required: true, min: 1}),
    nonce: Flags.string({description: "a value of the auditor's own, chosen after the checkpoint (or head commit) was fixed, mixed into the seed: whoever appends cannot grind the root for a sample that avoids chosen entries"}),
    checkpoint: Flags.string({description: 'a signed checkpoint note bounding the log population (signed by an audit key of trust.yaml)'}),
  }

  async run(): Promise<SampleResult> {
    const {flags} = await this.parse(EvidenceSample)
    const repo = await this.repository(flags.repo)
    const [{sampleControl}, {resolveAnchor}, {readRegularFile}] = await Promise.all([import('../../control-plane/evidence/report/sample.js'), import('../../control-plane/pipeline/base.js'), import('../../control-plane/repo/files.js')])
    const anchor = await resolveAnchor(repo, anchorInput(flags))
    const checkpointText = flags.checkpoint ? await readRegularFile(flags.checkpoint, {maxBytes: 1024 * 1024, label: `--checkpoint ${flags.checkpoint}`}) : undefined
    // The audit log's checkpoints as published at HEAD (the history they are part of is verified with the rest).
    const head = await repo.head()
    const checkpoints: ReportCheckpoint[] = head.oid ? await (await import('../../control-plane/audit/published.js')).publishedCheckpoints(repo, head.oid, {limits: this.limits}) : []
    const result = await sampleControl(repo, {control: flags.control, size: flags.size, limits: this.limits, now: this.now, anchor: anchor.commit, ...(checkpointText !== undefined ? {checkpointText} : {}), ...(flags.nonce !== undefined ? {nonce: flags.nonce} : {}), checkpoints})
    if (!this.jsonEnabled()) {
      const p = result.population
      this.log(`${t(result.control)}: ${p.kind === 'log' ? `log entries ${p.from}..${p.to} of ${t(p.checkpoint?.origin ?? '')}` : `commits since the trust anchor, sorted by id`} (${p.count})`)
      this.log(`seed (${result.seedFrom}${flags.nonce !== undefined ? `, with your nonce: SHA-256(seed || nonce)` : '; add --nonce VALUE of your own so no one who appends can choose the sample'}): ${t(result.seed)}`)
      this.log(`procedure: ${result.procedure}`)
      if (result.indexes.length < result.asked) this.log(`asked for ${result.asked}; the population holds ${p.count}: all drawn`)
      for (const [i, m] of result.members.entries()) this.log(`${String(i + 1).padStart(4)}  ${p.kind === 'commits' ? `#${result.indexes[i]}  ` : ''}${t(m)}`)
    }
    return result
  }
}
