import {Args} from '@oclif/core'
import type {RegisteredStatement} from '../../control-plane/evidence/predicates.js'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {verifiedHead} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class EvidenceShow extends AirlockCommand {
  static override summary = 'Show one receipt: its statement and whether its signatures verify against trust.yaml.'
  static override flags = {...anchorFlag}
  static override args = {receipt: Args.string({description: 'receipt path (docs/evidence/….json) or a unique part of its name', required: true})}

  async run(): Promise<{path: string; statement: RegisteredStatement; signers: string[]; problem: string | null; trustSource: TrustSource}> {
    const {args, flags} = await this.parse(EvidenceShow)
    // The receipt and the trust it is checked against, at a HEAD whose history verifies.
    const {repo, commit: head, source} = await verifiedHead(flags, this)
    const [{listReceipts, readReceipt}, {checkReceiptSignatures}, {loadTrust}, {AirlockError}] = await Promise.all([
      import('../../control-plane/evidence/ledger.js'),
      import('../../control-plane/evidence/history.js'),
      import('../../control-plane/manifests/load.js'),
      import('../../control-plane/errors.js'),
    ])
    const matches = (await listReceipts(repo, head)).filter((r) => r.path === args.receipt || r.path.includes(args.receipt))
    if (matches.length !== 1) {
      throw new AirlockError('INVALID_INPUT', `${args.receipt}: ${matches.length === 0 ? 'no receipt matches' : `${matches.length} receipts match; be more precise`}`, {receipt: args.receipt})
    }
    const receipt = await readReceipt(repo, head, matches[0]!.path, this.limits)
    // Judged as evidence verify judges it: under the trust policy it was added on.
    const {receiptAddedOn} = await import('../../control-plane/evidence/verify.js')
    const {signers, problem} = checkReceiptSignatures(receipt, await loadTrust(repo, await receiptAddedOn(repo, head, receipt.path), this.limits))
    if (problem) this.failCheck()
    if (!this.jsonEnabled()) {
      this.log(`${t(receipt.path)}\n  signatures ${problem ? `FAILED: ${t(problem.message)}` : `ok (${signers.map((s) => `${t(s.slice(0, 16))}…`).join(', ')})`}\n`)
      // JSON escapes C0 controls but not DEL, C1 or the bidirectional controls.
      this.log(t(JSON.stringify(receipt.statement, null, 2), {keepNewlines: true}))
    }
    return {path: receipt.path, statement: receipt.statement, signers, problem: problem?.message ?? null, trustSource: source}
  }
}
