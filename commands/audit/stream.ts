import {Flags} from '@oclif/core'
import {AirlockError} from '../../control-plane/errors.js'
import type {StreamReport} from '../../control-plane/audit/stream.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import {AirlockCommand} from '../_base.js'
import {readInput} from '../_policy.js'
import {auditDir, auditDirFlag} from '../_audit.js'

/** A duration flag that also takes milliseconds (`250ms`), for the streamer's short waits. */
async function millis(text: string, flag: string): Promise<number> {
  const ms = /^(\d{1,7})ms$/.exec(text.trim())
  if (ms) return Number(ms[1])
  const {parseDuration} = await import('../../control-plane/duration.js')
  return parseDuration(text, flag)
}

/** The sink's URL: https, or http to this machine only (an audit log crosses no network in clear text). */
function sinkUrl(text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new AirlockError('USAGE', '--to: not a URL', {field: '--to'})
  }
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new AirlockError('USAGE', '--to: https:// (http:// only to 127.0.0.1, [::1] or localhost)', {field: '--to'})
  return url
}

export default class AuditStream extends AirlockCommand {
  static override summary = 'Deliver the audit log to a SIEM webhook in batches, from a durable cursor (at least once, nothing lost).'
  static override description =
    'The cursor (stream/<16 hex>.cursor in the audit folder) moves only after the sink answered 2xx. Retries back off exponentially with jitter; 429 and 503 with Retry-After are waited out, never dropped; another 4xx stops with AUDIT_SINK_FAILED and the cursor stays. Each batch carries Idempotency-Key: <origin>:<first>-<last> and each event its log index (attestation_list uid). Without --once the log is followed until SIGINT or SIGTERM; the batch in flight is finished first.'
  static override flags = {
    to: Flags.string({description: 'the sink: an https:// webhook URL (http:// to this machine only)', required: true}),
    'batch-size': Flags.integer({description: 'events per request', default: 50, min: 1, max: 10_000}),
    'flush-interval': Flags.string({description: 'following: send a smaller batch once its oldest event waited this long', default: '30s'}),
    format: Flags.string({description: 'ocsf: a JSON array of the events; jsonl: the lines as written', options: ['ocsf', 'jsonl'], default: 'ocsf'}),
    once: Flags.boolean({description: 'send what is there and exit (for cron)', default: false}),
    header: Flags.string({description: 'an extra request header, "Name: value" (repeatable), e.g. the SIEM token', multiple: true}),
    ca: Flags.string({description: 'CA certificate (PEM) the sink certificate must chain to'}),
    timeout: Flags.string({description: 'deadline of one request', default: '30s'}),
    'max-attempts': Flags.integer({description: 'tries of one batch before AUDIT_SINK_FAILED (default: 10 with --once, no limit when following)', min: 1}),
    'poll-interval': Flags.string({description: 'following: how often the log is looked at', default: '1s', hidden: true}),
    backoff: Flags.string({description: 'the first retry delay (doubled per try, up to 60s)', default: '500ms', hidden: true}),
    ...auditDirFlag,
  }

  async run(): Promise<StreamReport> {
    const {flags} = await this.parse(AuditStream)
    const [{streamLog, logSource}, {DEFAULT_SINK_LIMITS, parseHeader, systemClock}] = await Promise.all([import('../../control-plane/audit/stream.js'), import('../../control-plane/audit/sink.js')])
    const url = sinkUrl(flags.to)
    const headers = Object.fromEntries((flags.header ?? []).map(parseHeader))
    const dir = await auditDir(flags)
    const stop = new AbortController()
    const onSignal = () => stop.abort()
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      const report = await streamLog({
        dir,
        sink: {url, headers, ...(flags.ca ? {ca: await readInput(flags.ca)} : {})},
        source: await logSource(dir),
        format: flags.format as 'ocsf' | 'jsonl',
        batchSize: flags['batch-size'],
        flushIntervalMs: await millis(flags['flush-interval'], '--flush-interval'),
        pollMs: await millis(flags['poll-interval'], '--poll-interval'),
        once: flags.once,
        limits: {
          ...DEFAULT_SINK_LIMITS,
          requestTimeoutMs: await millis(flags.timeout, '--timeout'),
          backoffBaseMs: await millis(flags.backoff, '--backoff'),
          maxAttempts: flags['max-attempts'] ?? (flags.once ? DEFAULT_SINK_LIMITS.maxAttempts : Number.POSITIVE_INFINITY),
        },
        clock: systemClock,
        stop: stop.signal,
      })
      if (!this.jsonEnabled()) {
        const pruned = report.skippedPruned ? `, ${report.skippedPruned} pruned entries skipped` : ''
        const retried = report.retries ? `, ${report.retries} tries retried` : ''
        const range = report.cursor > report.from ? ` (entries ${report.from}..${report.cursor - 1})` : ''
        this.log(`${t(report.sink)}: ${report.events} events in ${report.batches} batches${range}${pruned}${retried}; cursor at ${report.cursor}${report.stopped ? ' (stopped)' : ''}`)
      }
      return report
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
}
