import {Flags} from '@oclif/core'
import {AirlockError} from '../../control-plane/errors.js'
import type {ExportFormat, ExportSummary} from '../../control-plane/audit/export.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import {AirlockCommand} from '../_base.js'
import {auditDir, auditDirFlag} from '../_audit.js'

export default class AuditExport extends AirlockCommand {
  static override summary = 'Export a range of the audit log as OCSF JSON, JSON lines or CSV.'
  static override description =
    'The range is --since (inclusive) to --until (exclusive), each a log index or a time (RFC 3339, compared with the events’ OCSF time). Pruned entries have no body and are skipped and counted. CSV has the columns index, time, class_uid, type_uid, activity, status, actor, operation, resource, decision, fingerprint, quoted as RFC 4180 says; a cell starting with = + - @ tab or CR gets a leading \' (formula injection). Without --out the export goes to stdout (not with --json).'
  static override flags = {
    since: Flags.string({description: 'first entry: a log index (e.g. 0) or a time (e.g. 2026-11-01T00:00:00Z)', required: true}),
    until: Flags.string({description: 'end of the range, excluded: a log index or a time'}),
    format: Flags.string({description: 'ocsf: a JSON array; jsonl: the lines as written; csv: flat columns', options: ['ocsf', 'jsonl', 'csv'], default: 'ocsf'}),
    out: Flags.string({description: 'write the export to this file (replaced atomically, mode 0600)'}),
    ...auditDirFlag,
  }

  async run(): Promise<ExportSummary & {out: string | null}> {
    const {flags} = await this.parse(AuditExport)
    const [{exportLog, parseBound}, {logEntries}] = await Promise.all([import('../../control-plane/audit/export.js'), import('../../control-plane/audit/stream.js')])
    if (this.jsonEnabled() && !flags.out) throw new AirlockError('USAGE', '--json prints the summary: give --out FILE for the export itself', {field: '--out'})
    const range = {since: parseBound(flags.since, '--since'), ...(flags.until ? {until: parseBound(flags.until, '--until')} : {})}
    const summary = {} as ExportSummary
    const chunks = exportLog(logEntries(await auditDir(flags)), range, flags.format as ExportFormat, summary)
    if (flags.out) {
      const {writeFileAtomic} = await import('../../control-plane/repo/files.js')
      const parts: Buffer[] = []
      for await (const chunk of chunks) parts.push(Buffer.from(chunk))
      await writeFileAtomic(flags.out, Buffer.concat(parts), 0o600)
      if (!this.jsonEnabled()) {
        const pruned = summary.skippedPruned ? ` (${summary.skippedPruned} pruned entries skipped)` : ''
        this.log(`${summary.events} events${summary.first === null ? '' : ` (entries ${summary.first}..${summary.last})`} written to ${t(flags.out)} as ${summary.format}${pruned}`)
      }
    } else {
      // Piped, the export goes out as written; on a terminal, through the human-output guard (a CSV
      // cell holds an event's text unescaped, and an event's text came from outside airlock).
      const write = process.stdout.isTTY ? (text: string) => void process.stdout.write(text) : this.writeData
      for await (const chunk of chunks) write(chunk)
    }
    return {...summary, out: flags.out ?? null}
  }
}
