/**
 * The report as Markdown (`airlock evidence report --format md`): the control matrix per framework,
 * the gaps said plainly, each control's population and how to recompute a sample of it, the
 * timeline of promotions and rollbacks, and the gate pass rates. Formats the model only.
 */
import type {ControlRow, Framework, Population, ReportModel} from './model.js'
import {SAMPLE_PROCEDURE} from './sample.js'

export const FRAMEWORK_TITLES: Record<Framework, string> = {
  soc2: 'SOC 2 (2017 Trust Services Criteria)',
  hipaa: 'HIPAA Security Rule (45 CFR 164.312)',
  fedramp: 'FedRAMP (NIST SP 800-53 rev5)',
}

const STATUS: Record<ControlRow['status'], string> = {evidenced: 'evidenced', partial: 'partial', gap: 'GAP'}

/** Text from the model inside a table cell or a line: no markup, no line breaks, no pipes. */
export function cell(text: string): string {
  return text
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/[\\`*_[\]<>|#]/g, (c) => `\\${c}`)
    .trim()
}

const code = (text: string) => `\`${text.replace(/`/g, "'")}\``

function matrix(rows: ControlRow[]): string[] {
  const lines = ['| Control | Title | Status | Claim level | Evidence | Gap |', '| --- | --- | --- | --- | --- | --- |']
  for (const r of rows) {
    const kinds = ['receipt', 'gate', 'checkpoint', 'policy'].map((k) => [k, r.evidence.filter((e) => e.kind === k).length] as const).filter(([, n]) => n > 0)
    const evidence = kinds.length > 0 ? kinds.map(([k, n]) => `${n} ${k}${n === 1 ? '' : 's'}`).join(', ') : 'none'
    lines.push(`| ${cell(r.id)} | ${cell(r.title)} | ${STATUS[r.status]} | ${r.claimLevel ?? 'n/a'} | ${evidence} | ${r.gap ? cell(r.gap) : ''} |`)
  }
  return lines
}

function populationLine(r: ControlRow, p: Population): string {
  const bound = p.checkpoint ? `bounded by the signed checkpoint ${code(p.checkpoint.path)} (origin ${code(p.checkpoint.origin)}, size ${p.checkpoint.size}, root ${code(p.checkpoint.root)})` : 'no checkpoint published with or after it'
  const range = p.kind === 'log' ? `log entries ${p.from}…${p.to} (${p.count})` : `commits ${code(`${p.from.slice(0, 12)}`)}…${code(p.to.slice(0, 12))}: ${p.count} commit(s) of anchor..HEAD`
  const seed = p.kind === 'log' ? `the checkpoint's root hash` : 'the head commit id'
  const flag = p.kind === 'log' && p.checkpoint ? ` --checkpoint ${cell(p.checkpoint.path)}` : ''
  return `- ${cell(r.id)}: ${range}, ${bound}. Sample: ${code(`airlock evidence sample --control ${r.id} --size N${flag}`)} (seeded from ${seed}).`
}

function controlDetail(r: ControlRow): string[] {
  const out = [`#### ${cell(r.id)} ${cell(r.title)}`, '', `${cell(r.feature)}`, '', `Status: **${STATUS[r.status]}**${r.claimLevel ? `; claim level ${r.claimLevel}` : ''}.${r.gap ? ` Gap: ${cell(r.gap)}.` : ''}`, '']
  if (r.evidence.length > 0) {
    out.push('| Kind | Evidence | Time | Summary |', '| --- | --- | --- | --- |')
    for (const e of r.evidence) out.push(`| ${e.kind} | ${code(e.ref)} | ${e.time ?? ''} | ${cell(e.summary)} |`)
    out.push('')
  }
  return out
}

/** Pass rate per suite: runs that PASSED or WARNED over all runs, and gates passed over gates run. */
function passRates(model: ReportModel): string[] {
  const suites = [...new Set(model.gateRuns.map((g) => g.suite))].sort()
  if (suites.length === 0) return ['No gate receipt in the verified history.']
  const lines = ['| Suite | Runs | Runs passed | Gates passed / run | First | Last |', '| --- | --- | --- | --- | --- | --- |']
  for (const s of suites) {
    const runs = model.gateRuns.filter((g) => g.suite === s)
    const ok = runs.filter((g) => g.result === 'PASSED' || g.result === 'WARNED').length
    const passed = runs.reduce((n, g) => n + g.passed, 0)
    const ran = runs.reduce((n, g) => n + g.passed + g.failed, 0)
    lines.push(`| ${cell(s)} | ${runs.length} | ${ok} (${Math.round((100 * ok) / runs.length)}%) | ${passed}/${ran} | ${runs[0]!.time} | ${runs[runs.length - 1]!.time} |`)
  }
  return lines
}

export function renderMarkdown(model: ReportModel): string {
  const out: string[] = ['# airlock compliance report', '']
  out.push(`Generated ${model.generatedAt} from the verified history at ${code(model.repository.head)} (trust anchor ${model.repository.anchor ? code(model.repository.anchor) : 'none'}).`)
  out.push(`Evidence: ${model.receipts.length} signed receipt(s), ${model.checkpoints.length} published audit checkpoint(s), ${model.keys.length} evidence/audit key(s) in manifests/trust.yaml.`, '')
  for (const f of model.frameworks) {
    out.push(`## ${FRAMEWORK_TITLES[f]}`, '', ...matrix(model.controls.filter((c) => c.framework === f)), '')
  }
  const gaps = model.controls.filter((c) => c.status !== 'evidenced')
  out.push('## Gaps', '')
  if (gaps.length === 0) out.push('None: every control listed is evidenced.')
  for (const c of gaps) out.push(`- ${cell(c.id)} (${STATUS[c.status]}): ${cell(c.gap ?? '')}`)
  out.push('', '## Populations and sampling', '')
  out.push(`Each population is a log range bounded by a signed, published checkpoint, or the commit range anchor..HEAD (commits sorted by id, as \`git rev-list ANCHOR..HEAD | sort\`). A sample is drawn by a procedure anyone recomputes: ${cell(SAMPLE_PROCEDURE)}.`, '')
  const withPop = model.controls.filter((c) => c.populations.length > 0)
  for (const c of model.controls) for (const p of c.populations) out.push(populationLine(c, p))
  for (const c of model.controls.filter((x) => x.populations.length === 0 && /checkpoint/.test(x.gap ?? ''))) out.push(`- ${cell(c.id)}: no population yet: no audit checkpoint has been published.`)
  if (withPop.length === 0) out.push('No control has a population yet.')
  out.push('', '## Controls in detail', '')
  for (const c of model.controls) out.push(...controlDetail(c))
  out.push('## Timeline of promotions and rollbacks', '')
  if (model.timeline.length === 0) out.push('No promotion or rollback in the verified history.')
  else {
    out.push('| Time | Operation | Image | Channel | Digest | Receipt |', '| --- | --- | --- | --- | --- | --- |')
    for (const t of model.timeline) out.push(`| ${t.time} | ${t.operation} | ${cell(t.image)} | ${cell(t.channel)} | ${code(t.digest)} | ${code(t.receipt)} |`)
  }
  out.push('', '## Gate pass rates', '', ...passRates(model), '')
  return `${out.join('\n')}\n`
}
