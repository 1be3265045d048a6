import {Args} from '@oclif/core'
import type {StatusReport} from '../control-plane/promote/status.js'
import type {TrustSource} from '../control-plane/pipeline/base.js'
import type {ExposedKey} from '../control-plane/crypto/keyfile.js'
import {forTerminal as t} from '../control-plane/terminal.js'
import {AirlockCommand, anchorFlag} from './_base.js'

export default class Status extends AirlockCommand {
  static override summary = 'Show each image channel: pinned digest, rollback target, last change and its receipt.'
  static override args = {image: Args.string({description: 'only this image'})}
  static override flags = {...anchorFlag}

  async run(): Promise<StatusReport & {history: {verified: boolean; anchor: {commit: string | null; pinned: boolean}; problems: unknown[]}; trustSource: TrustSource; exposedKeys: ExposedKey[]}> {
    const {args, flags} = await this.parse(Status)
    const repo = await this.repository(flags.repo)
    const [{status}, {inspectHead, HOW_TO_PIN}, {anchorInput}, {exposedPrivateKeys}] = await Promise.all([
      import('../control-plane/promote/status.js'),
      import('../control-plane/pipeline/base.js'),
      import('./_policy.js'),
      import('../control-plane/crypto/keyfile.js'),
    ])
    // A read-only view: it shows HEAD whatever its history, and says what that history is.
    const head = await inspectHead(repo, {anchor: anchorInput(flags), limits: this.limits, now: this.now})
    const history = head.verification
    // The key scan (file reads and a git child) runs while status reads history; a failure of
    // status is reported before one of the scan, as when they ran one after the other.
    const [shown, exposed] = await Promise.allSettled([
      status(repo, {image: args.image, limits: this.limits, verified: history.verified, unverified: history.unverified}),
      // Private keys git would commit: tracked, or untracked and not ignored.
      exposedPrivateKeys(repo, this.limits.maxFileBytes),
    ])
    if (shown.status === 'rejected') throw shown.reason
    if (exposed.status === 'rejected') throw exposed.reason
    const report = {
      ...shown.value,
      history: {verified: history.verified, anchor: history.anchor, problems: history.problems},
      trustSource: head.source,
      exposedKeys: exposed.value,
    }
    if (!this.jsonEnabled()) {
      const a = report.history.anchor
      const anchor = a.pinned ? `from trust anchor ${t(String(a.commit).slice(0, 12))} (pinned by ${t(String(head.source.anchor.from))})` : `UNPINNED: no trust anchor is pinned for this clone; ${HOW_TO_PIN}`
      const lines = [
        `${t(report.branch.replace('refs/heads/', ''))} @ ${t(report.head.slice(0, 12))}`,
        `history ${report.history.verified ? 'VERIFIED' : `UNVERIFIED (${report.history.problems.length} problem(s); airlock evidence verify lists them)`} ${anchor}`,
      ]
      for (const img of report.images) {
        lines.push('', `${t(img.name)}  ${t(img.repository)}  tier ${t(String(img.tier))}`)
        for (const ch of img.channels) {
          const last = ch.lastChange
          lines.push(`  ${t(ch.channel).padEnd(8)} ${t(ch.digest)}`)
          lines.push(`  ${''.padEnd(8)} rollback target ${ch.rollbackTarget === null ? 'none' : t(ch.rollbackTarget)}`)
          if (last) {
            const what = last.receipt ? `${t(last.operation ?? 'change')}, receipt ${t(last.receipt)}` : 'changed outside airlock (no receipt of its own)'
            lines.push(`  ${''.padEnd(8)} last change ${t(last.commit.slice(0, 12))}${last.verified ? '' : ' UNVERIFIED'} ${t(last.time)} ${what}`)
            if (last.requestedBy) lines.push(`  ${''.padEnd(8)}   requested by ${t(last.requestedBy)}`)
            lines.push(`  ${''.padEnd(8)}   authored by  ${t(last.author)}`)
          }
        }
      }
      this.log(lines.join('\n'))
      for (const k of report.exposedKeys) {
        process.stderr.write(`airlock: warning: ${t(k.path)} holds a private key and ${k.tracked ? 'is tracked by git (remove it: git rm --cached, and replace the key)' : 'is not ignored by git (add it to .gitignore)'}\n`)
      }
    }
    return report
  }
}
