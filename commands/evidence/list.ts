import {AirlockCommand} from '../_base.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

interface ReceiptSummary {
  path: string
  operation: string
  summary: string
  appliedAt: string
  requestedBy: string
}

export default class EvidenceList extends AirlockCommand {
  static override summary = 'List the evidence receipts in docs/evidence/ at HEAD.'

  async run(): Promise<{receipts: ReceiptSummary[]}> {
    const {flags} = await this.parse(EvidenceList)
    const repo = await this.repository(flags.repo)
    const {listReceipts, parseReceipt} = await import('../../control-plane/evidence/ledger.js')
    const head = (await repo.head()).oid
    const receipts: ReceiptSummary[] = []
    for (const file of head ? await listReceipts(repo, head) : []) {
      try {
        const r = parseReceipt(await repo.readBlob(file.oid), file.path, this.limits)
        const s = r.statement
        // Each registered kind says what it records and when; a change receipt also who asked and why.
        const change = s.predicateType === 'https://airlock.dev/attestations/change/v1' ? s.predicate : null
        const summary = change ? change.summary : s.predicateType === 'https://in-toto.io/attestation/test-result/v0.1' ? `${s.predicate.suite}: ${s.predicate.result}` : ''
        receipts.push({path: file.path, operation: r.kind.label(s), summary, appliedAt: r.kind.time(s), requestedBy: change?.requestedBy?.actor ?? '?'})
      } catch (error) {
        receipts.push({path: file.path, operation: 'unreadable', summary: (error as Error).message, appliedAt: '', requestedBy: ''})
      }
    }
    if (!this.jsonEnabled()) {
      if (receipts.length === 0) this.log('No receipts.')
      for (const r of receipts) this.log(`${t(String(r.appliedAt)).padEnd(24)} ${t(String(r.operation)).padEnd(13)} ${t(String(r.requestedBy)).padEnd(16)} ${t(r.path)}\n${''.padEnd(25)}${t(String(r.summary))}`)
    }
    return {receipts}
  }
}
