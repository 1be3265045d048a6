import {Args, Flags} from '@oclif/core'
import type {AnchorCandidate} from '../../control-plane/pipeline/base.js'
import {AirlockCommand} from '../_base.js'
import {forTerminal} from '../../control-plane/terminal.js'

export default class TrustPin extends AirlockCommand {
  static override summary = "Pin this clone's trust anchor: show the keys its trust.yaml holds, and with --apply record it in git config airlock.trustAnchor."
  static override description = `Trust must start at a commit chosen from outside the repository: a fresh clone carries no git config, and a writer of the repository can force-push a new root whose trust.yaml names their own keys. Compare the fingerprints shown with those you were given out of band (the fleet's README, a ticket, a colleague), then pin with --apply. --expect-key makes that comparison part of the command, for scripts: the anchor's trust.yaml must hold exactly the keys given (by key id or SSH fingerprint), no fewer and no more, or nothing is pinned (exit 1); --expect-trust compares the whole file (its SHA-256, shown), roles, windows and thresholds included.

In CI, keep the anchor in a variable outside the repository instead: AIRLOCK_TRUST_ANCHOR=<full commit id>.`
  static override examples = ['<%= config.bin %> trust pin 3f1c0e…', '<%= config.bin %> trust pin 3f1c0e… --expect-key SHA256:Xz… --apply']
  static override args = {commit: Args.string({description: 'the commit trust starts at (any revision; the full id is recorded)', required: true})}
  static override flags = {
    apply: Flags.boolean({description: 'record the anchor in git config airlock.trustAnchor (default: show it only)', default: false}),
    'expect-key': Flags.string({description: 'a key id or SSH fingerprint (SHA256:…) the anchor must trust; repeat for each: the anchor must hold exactly these', multiple: true}),
    'expect-trust': Flags.string({description: "the SHA-256 of the anchor's whole trust.yaml (sha256:…, as shown): keys, roles, validity windows and thresholds"}),
  }

  async run(): Promise<AnchorCandidate & {pinned: boolean; missing: string[]; unexpected: string[]}> {
    const {args, flags} = await this.parse(TrustPin)
    const repo = await this.repository(flags.repo)
    const {describeAnchor, pinAnchor, ANCHOR_CONFIG} = await import('../../control-plane/pipeline/base.js')
    const anchor = await describeAnchor(repo, args.commit, this)
    const expected = flags['expect-key']
    const missing = (expected ?? []).filter((want) => !anchor.keys.some((k) => k.id === want || k.ssh === want))
    const unexpected = expected ? anchor.keys.filter((k) => !expected.includes(k.id) && !(k.ssh && expected.includes(k.ssh))).map((k) => k.id) : []
    const trustDiffers = flags['expect-trust'] !== undefined && flags['expect-trust'] !== anchor.trust.digest
    // A commit not signed by an evidence key of its own trust.yaml is no anchor, whatever it holds.
    const mismatch = missing.length > 0 || unexpected.length > 0 || trustDiffers || anchor.unsigned !== null
    const pinned = flags.apply && !mismatch
    if (pinned) await pinAnchor(repo, anchor.commit)
    if (mismatch) this.failCheck()
    if (!this.jsonEnabled()) {
      const t = (x: unknown) => forTerminal(String(x))
      const lines = [`trust anchor ${t(anchor.commit)}`, `  ${t(anchor.committedAt)}  ${t(anchor.subject)}`, `  trust.yaml ${t(anchor.trust.digest)} (the whole file: keys, roles, windows, thresholds)`, '  keys in its trust.yaml (compare with what you were given):']
      for (const k of anchor.keys) {
        lines.push(
          `    ${t(k.roles.join(',')).padEnd(18)} ${k.name === null ? '(unnamed)' : `"${t(k.name)}"`}  ${t(k.algorithm)}  valid ${t(k.validFrom)} → ${k.validUntil ? t(k.validUntil) : 'no end'}`,
          `      id  ${t(k.id)}`,
          ...(k.ssh ? [`      ssh ${t(k.ssh)}`] : []),
        )
      }
      lines.push(`  thresholds ${Object.entries(anchor.trust.thresholds).map(([r, n]) => `${t(r)} ${t(n)}`).join(', ')}`)
      lines.push(anchor.unsigned ? `  NOT AN ANCHOR: ${anchor.unsigned.code} ${forTerminal(anchor.unsigned.message)}` : '  signed by an evidence key of its own trust.yaml')
      const h = anchor.head
      lines.push(`  HEAD ${t(h.commit.slice(0, 12))} ${h.verified ? 'verifies from this anchor' : `does NOT verify from this anchor: ${h.problem ? `${h.problem.code} ${forTerminal(h.problem.message)}` : 'unknown'}`}`)
      for (const m of missing) lines.push(`  EXPECTED, NOT TRUSTED by this anchor: ${t(m)}`)
      for (const u of unexpected) lines.push(`  TRUSTED by this anchor, NOT EXPECTED: ${t(u)}`)
      if (trustDiffers) lines.push(`  trust.yaml is ${t(anchor.trust.digest)}, NOT the expected ${forTerminal(flags['expect-trust']!)}`)
      if (pinned) lines.push(`Pinned: git config ${ANCHOR_CONFIG} ${anchor.commit}`)
      else if (anchor.unsigned) lines.push('Not pinned: this commit cannot be a trust anchor.')
      else if (mismatch) lines.push('Not pinned: the anchor does not trust exactly what you expected.')
      else lines.push(`Not pinned yet; run again with --apply to record it (git config ${ANCHOR_CONFIG}).`)
      this.log(lines.join('\n'))
    }
    return {...anchor, pinned, missing, unexpected}
  }
}
