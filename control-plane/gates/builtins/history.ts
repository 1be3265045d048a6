import type {BuiltinGate} from '../types.js'

/** As `airlock evidence verify`: every receipt, append-only evidence and signed commits, from the pinned anchor. */
export const history: BuiltinGate = {
  name: 'history',
  description: 'the history verifies from the pinned trust anchor (as evidence verify)',
  async run(ctx) {
    const [{verifyEvidence}, {resolveAnchor}] = await Promise.all([import('../../evidence/verify.js'), import('../../pipeline/base.js')])
    const anchor = ctx.anchor !== undefined ? ctx.anchor : (await resolveAnchor(ctx.repo, {})).commit
    if (!anchor) return {status: 'fail', reason: 'no trust anchor is pinned; nothing in the history is trusted'}
    const report = await verifyEvidence(ctx.repo, {limits: ctx.limits, anchor, now: ctx.now})
    const evidence = {anchor, receipts: report.receipts.length, commitsWalked: report.commitsWalked, commitsSigned: report.commitsSigned, problems: report.problems.slice(0, 20).map((p) => ({code: p.code, message: p.message}))}
    if (!report.ok) return {status: 'fail', reason: `${report.problems.length} problem(s), first: ${report.problems[0]?.code ?? 'unknown'} ${report.problems[0]?.message ?? ''}`.trim(), evidence}
    return {status: 'pass', reason: `${report.receipts.length} receipt(s) and ${report.commitsSigned} signed commit(s) verify from ${anchor.slice(0, 12)}`, evidence}
  },
}
