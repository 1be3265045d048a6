import {Flags} from '@oclif/core'
import {join, resolve} from 'node:path'
import {AirlockError} from '../../control-plane/errors.js'
import {FRAMEWORKS, type Framework, type ReportCheckpoint, type ReportModel} from '../../control-plane/evidence/report/model.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {anchorInput} from '../_policy.js'

type Format = 'md' | 'oscal' | 'html'
const FILES: Record<Format, string> = {md: 'report.md', oscal: 'assessment-results.json', html: 'report.html'}
const DEFAULT_DIR = 'airlock-report'

/** The HTML renderer (another part of the report, merged separately): loaded by a path tsc does not resolve. */
const HTML_MODULE = '../../control-plane/evidence/report/html.js'

export default class EvidenceReport extends AirlockCommand {
  static override summary = 'Map SOC 2, HIPAA and FedRAMP controls to the evidence in the verified history: a Markdown report, OSCAL Assessment Results, or one self-contained HTML page.'
  static override description = `Each control is mapped to the airlock feature that serves it, the signed receipts, gate results and published audit checkpoints that evidence it, and the claim level its gate area reached; gaps are said plainly. Without --format and --out the Markdown is printed; otherwise the report is written (atomically) into --out DIR, default ./${DEFAULT_DIR}/ (report.md, assessment-results.json, report.html).`
  static override examples = ['<%= config.bin %> evidence report', '<%= config.bin %> evidence report --framework fedramp --format oscal --out out/', '<%= config.bin %> evidence report --format html']
  static override flags = {
    ...anchorFlag,
    framework: Flags.string({description: 'which framework', options: [...FRAMEWORKS, 'all'], default: 'all'}),
    format: Flags.string({description: 'md (default), oscal (OSCAL Assessment Results 1.2.2 JSON) or html', options: ['md', 'oscal', 'html']}),
    out: Flags.string({description: `folder to write the report into (default with --format: ./${DEFAULT_DIR}/)`}),
  }

  async run(): Promise<{head: string; anchor: string | null; frameworks: Framework[]; format: Format; written: string[]; controls: Array<{framework: string; id: string; status: string; gap: string | null}>; report?: ReportModel}> {
    const {flags} = await this.parse(EvidenceReport)
    const format = (flags.format ?? 'md') as Format
    // Refused before any work: the HTML renderer may not be part of this build yet.
    const renderHtml = format === 'html' ? await loadHtml() : null
    const repo = await this.repository(flags.repo)
    const [{buildReport}, {resolveAnchor}] = await Promise.all([import('../../control-plane/evidence/report/build.js'), import('../../control-plane/pipeline/base.js')])
    const anchor = await resolveAnchor(repo, anchorInput(flags))
    const frameworks = flags.framework === 'all' ? [...FRAMEWORKS] : [flags.framework as Framework]
    // The audit log's checkpoints as published at HEAD (the history they are part of is verified with the rest).
    const head = await repo.head()
    const checkpoints: ReportCheckpoint[] = head.oid ? await (await import('../../control-plane/audit/published.js')).publishedCheckpoints(repo, head.oid, {limits: this.limits}) : []
    const model = await buildReport(repo, {frameworks, limits: this.limits, now: this.now, anchor: anchor.commit, checkpoints})
    const controls = model.controls.map((c) => ({framework: c.framework, id: c.id, status: c.status, gap: c.gap}))
    const base = {head: model.repository.head, anchor: model.repository.anchor, frameworks, format, controls}
    const toStdout = flags.format === undefined && flags.out === undefined
    if (toStdout) {
      if (this.jsonEnabled()) return {...base, written: [], report: model}
      const {renderMarkdown} = await import('../../control-plane/evidence/report/markdown.js')
      this.writeData(renderMarkdown(model))
      return {...base, written: []}
    }
    const text = await render(model, format, renderHtml)
    const {writeFileAtomic} = await import('../../control-plane/repo/files.js')
    const file = join(resolve(flags.out ?? DEFAULT_DIR), FILES[format])
    await writeFileAtomic(file, text)
    if (!this.jsonEnabled()) {
      const gaps = controls.filter((c) => c.status !== 'evidenced').length
      this.log(`Wrote ${t(file)}: ${controls.length} control(s), ${gaps} not evidenced, at ${model.repository.head.slice(0, 12)}.`)
    }
    return {...base, written: [file]}
  }
}

async function loadHtml(): Promise<(model: ReportModel) => string> {
  try {
    const mod = (await import(HTML_MODULE)) as {renderHtml?: (model: ReportModel) => string}
    if (typeof mod.renderHtml === 'function') return mod.renderHtml
  } catch (error) {
    if ((error as {code?: string}).code !== 'ERR_MODULE_NOT_FOUND') throw error
  }
  throw new AirlockError('USAGE', '--format html: the HTML report is not built yet in this version of airlock; use --format md or --format oscal')
}

async function render(model: ReportModel, format: Format, renderHtml: ((model: ReportModel) => string) | null): Promise<string> {
  if (format === 'html') return renderHtml!(model)
  if (format === 'oscal') {
    const {renderOscal} = await import('../../control-plane/evidence/report/oscal.js')
    return `${JSON.stringify(renderOscal(model), null, 2)}\n`
  }
  const {renderMarkdown} = await import('../../control-plane/evidence/report/markdown.js')
  return renderMarkdown(model)
}
