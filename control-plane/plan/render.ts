import {structuredPatch} from 'diff'
import {HOW_TO_PIN} from '../pipeline/base.js'
import {forTerminal} from '../terminal.js'
import {describeMissing, evidenceOf, type EvidenceRecord} from '../evidence/decision.js'
import type {Plan} from './plan.js'

const STYLE = {red: [31, 39], green: [32, 39], yellow: [33, 39], bold: [1, 22], dim: [2, 22]} as const
type Style = keyof typeof STYLE

function paint(color: boolean) {
  return (style: Style, text: string) => (color ? `\u001B[${STYLE[style][0]}m${text}\u001B[${STYLE[style][1]}m` : text)
}

/**
 * A plan as a person reviews it: what, why, from which commit, then a diff per file. Everything
 * in it that came from the repository, the work tree, a registry or a plan file — summary,
 * details, reason, principals, policy ids, signers, paths, every line of every diff — passes the
 * one sanitizer (`t`), so no file content can move the cursor and redraw what is reviewed.
 */
export function renderPlan(plan: Plan, opts: {color: boolean; applied?: {commit: string; receipt: string} | null; staged?: string[] | null; verdict?: {ok: boolean; text: string}}): string {
  const c = paint(opts.color)
  const t = (text: unknown) => forTerminal(String(text))
  const out: string[] = []
  out.push(c('bold', `airlock ${t(plan.operation)}: ${t(plan.summary)}`))
  out.push(`  base            ${t(plan.branch.replace('refs/heads/', ''))} @ ${plan.baseCommit ? t(plan.baseCommit.slice(0, 12)) : '(no commit yet)'}`)
  const h = plan.base
  if (h) {
    const anchor = h.anchor.commit ? `${t(String(h.anchor.commit).slice(0, 12))}${h.anchor.pinned ? ' (pinned)' : ''}` : 'none'
    if (!h.anchor.pinned) {
      out.push(`  history         ${c('red', 'UNPINNED')}: no trust anchor is pinned for this clone, so nothing in it is trusted yet`)
      out.push(c('red', `                  --apply and --out would be refused; ${HOW_TO_PIN}`))
    } else if (h.verified) out.push(`  history         ${c('green', 'VERIFIED')} from trust anchor ${anchor}`)
    else {
      const first = h.problems[0]
      out.push(`  history         ${c('red', 'UNVERIFIED')} from trust anchor ${anchor}${first ? `: ${t(first.code)} ${t(first.message)}` : ''}`)
      out.push(c('red', '                  --apply and --out would be refused'))
    }
  }
  for (const [k, v] of Object.entries(plan.details)) {
    if (v !== undefined && v !== null && typeof v !== 'object') out.push(`  ${t(k).padEnd(15)} ${t(v)}`)
  }
  if (plan.reason) out.push(`  reason          ${forTerminal(plan.reason, {keepNewlines: true}).replaceAll('\t', ' ').replaceAll('\n', '\n                  ')}`)
  const a = plan.authorization
  if (a) {
    const who = `${t(a.principal)}${a.authenticated ? '' : ' (unauthenticated)'}`
    const why = a.reasons.length ? ` by ${t(a.reasons.join(', '))}` : a.note ? ` (${t(a.note)})` : ' (no policy permits it)'
    out.push(`  authorization   ${a.decision === 'allow' ? c('green', 'ALLOW') : c('red', 'DENY')} ${t(a.action)} for ${who}${why}`)
    if (a.decision === 'deny') out.push(c('red', '                  --apply would be refused'))
  }
  const e = evidenceOf(plan)
  if (e) out.push(...renderEvidence(e, plan, c, t))
  const sig = plan.signature
  if (sig) {
    const by = 'keyid' in sig.signer ? `key ${t(sig.signer.keyid.slice(0, 16))}…` : `${t(sig.signer.subject)} (issuer ${t(sig.signer.issuer)})`
    const logs = sig.tlogEntries.length ? `, log index ${t(sig.tlogEntries.map((e) => e.logIndex).join(', '))}` : ''
    out.push(`  signature       ${c('green', 'VERIFIED')} ${t(sig.bundleType)} bundle signed by ${by}${logs}`)
    // Each distinct signer that counted toward the image's threshold.
    if (sig.threshold !== undefined && (sig.threshold > 1 || (sig.signers?.length ?? 0) > 1)) {
      const names = (sig.signers ?? []).map((s) => ('keyid' in s.signer ? `key ${t(s.signer.keyid.slice(0, 16))}…` : `${t(s.signer.subject)} (issuer ${t(s.signer.issuer)})`))
      out.push(`  signers         ${names.length} of threshold ${t(sig.threshold)}: ${names.join(', ')}`)
    }
  }
  out.push('')
  if (plan.statement && plan.changes.length === 0) {
    const p = plan.statement.predicate
    out.push(`${c('green', '+')} ${c('bold', t(String(plan.receiptPath)))}  the ${t(p.suite)} suite's signed test-result receipt (${t(p.result)}: ${p.passedTests.length} passed, ${p.warnedTests.length} warned, ${p.failedTests.length} failed)`)
    if (opts.verdict) out.push(c(opts.verdict.ok ? 'dim' : 'red', opts.verdict.text))
    return `${out.join('\n')}\n`
  }
  if (plan.changes.length === 0) {
    out.push(c('green', 'No changes. The repository already matches this request.'))
    if (opts.verdict) out.push(c(opts.verdict.ok ? 'dim' : 'red', opts.verdict.text))
    return `${out.join('\n')}\n`
  }
  const counts = {create: 0, modify: 0, delete: 0}
  for (const change of plan.changes) {
    counts[change.action]++
    const sign = change.action === 'create' ? c('green', '+') : change.action === 'delete' ? c('red', '-') : c('yellow', '~')
    out.push(`${sign} ${c('bold', t(change.path))}`)
    const patch = structuredPatch(change.path, change.path, change.before ?? '', change.after ?? '', '', '', {context: 2})
    for (const hunk of patch.hunks) {
      out.push(c('dim', `  @@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`))
      for (const line of hunk.lines) {
        if (line.startsWith('\\')) continue
        const body = `  ${t(line)}`
        out.push(line[0] === '+' ? c('green', body) : line[0] === '-' ? c('red', body) : body)
      }
    }
  }
  if (plan.receiptPath) {
    counts.create++
    out.push(`${c('green', '+')} ${c('bold', t(plan.receiptPath))}  ${c('dim', '(signed evidence receipt, written on apply)')}`)
  }
  out.push('')
  out.push(`Plan: ${counts.create} to add, ${counts.modify} to change, ${counts.delete} to remove.  digest ${t(plan.digest)}`)
  if (opts.applied) {
    out.push(c('green', `Applied in commit ${t(opts.applied.commit)}; receipt ${t(opts.applied.receipt)}.`))
  } else if (opts.staged) {
    out.push(c('green', `Wrote ${opts.staged.length ? t(opts.staged.join(', ')) : 'nothing new'} to the work tree; nothing is committed. Commit the change with: airlock change --apply`))
  } else if (opts.verdict) {
    out.push(c(opts.verdict.ok ? 'dim' : 'red', opts.verdict.text))
  } else {
    // Never the advice to apply what would be refused.
    const refused = (h && (!h.anchor.pinned || !h.verified)) || a?.decision === 'deny' || e?.decision === 'missing'
    out.push(
      refused
        ? c('red', 'This is a plan; nothing was changed. As things stand --apply and --out would be refused, for the reason shown above.')
        : c('dim', 'This is a plan; nothing was changed. Run again with --apply to apply it, or --out FILE to save it for `airlock apply FILE`.'),
    )
  }
  return `${out.join('\n')}\n`
}

/** The evidence step's decision: what each gated channel requires, the receipts relied on, or what is missing. */
function renderEvidence(e: EvidenceRecord, plan: Plan, c: ReturnType<typeof paint>, t: (text: unknown) => string): string[] {
  const out: string[] = []
  const pad = '                  '
  const head = e.decision === 'satisfied' ? c('green', 'SATISFIED') : e.decision === 'overridden' ? c('yellow', 'OVERRIDDEN') : c('red', 'MISSING')
  for (const [i, check] of e.checks.entries()) {
    const r = check.requires
    const wants = `${t(r.suites.join(', '))}${r.on ? ` on ${t(r.on)}` : ''}${r.soak ? `, soaked ${t(r.soak)}` : ''}`
    out.push(`  ${i === 0 ? 'evidence        ' : pad}${head} ${t(check.image)}/${t(check.channel)} requires ${wants}`)
    for (const relied of check.relied) out.push(`${pad}${t(relied.suite)}: ${t(relied.path)} (${t(relied.result)}, finished ${t(relied.finishedAt)}, ${t(relied.digest.slice(0, 19))}…)`)
    if (check.missing.length) out.push(...describeMissing(check.missing, new Date(plan.createdAt)).split('\n').map((line) => `${pad}${c('red', 'missing')} ${t(line)}`))
  }
  if (e.override) out.push(`${pad}${c('yellow', 'override')} by ${t(plan.authorization?.principal ?? plan.requestedBy.actor)}: ${t(e.override.reason)}`)
  else if (e.decision === 'missing') out.push(c('red', `${pad}--apply would be refused${plan.request.kind === 'promote' ? ' (--override --reason "…" passes it where policy permits Override)' : ''}`))
  return out
}
