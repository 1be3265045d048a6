/**
 * A suite run rendered for its readers: plain lines (CI logs, a pipe), JUnit XML (one testsuite,
 * a testcase per gate) and a Markdown table for GitHub's step summary. Every text that came from
 * a gate (reasons quote commands, files and tools) is stripped of controls and escaped for its
 * format.
 */
import type {SuiteRun} from './runner.js'
import {formatMs} from './run-command.js'
import type {GateRunRecord} from './types.js'

/** Controls (except newline and tab) removed, bidirectional overrides too: XML 1.0 cannot hold most of them. */
const CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufffe\uffff]/g

export function xmlText(text: string): string {
  return text.replace(CONTROLS, '').replace(/[<>&"']/g, (c) => `&${{'<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos'}[c]};`)
}

export const STATUS_WORD: Record<GateRunRecord['status'], string> = {pass: 'PASS', fail: 'FAIL', not_run: 'NOT RUN'}

/** The word shown for a gate: a failing shadow or optional gate is a WARN. */
export function statusWord(r: GateRunRecord): string {
  if (r.status === 'fail' && (r.mode === 'shadow' || !r.required)) return 'WARN'
  return STATUS_WORD[r.status]
}

/** `PASS  id  1.2s  reason` (the caller sanitizes for its terminal). */
export function plainLine(r: GateRunRecord): string {
  const flags = [r.mode === 'shadow' ? 'shadow' : '', r.required ? '' : 'optional'].filter(Boolean)
  return `${statusWord(r).padEnd(7)} ${r.id.padEnd(20)} ${formatMs(r.elapsedMs).padStart(6)}  ${r.reason}${flags.length ? ` (${flags.join(', ')})` : ''}`
}

/** JUnit XML: one testsuite for the suite run, one testcase per gate; fail → failure, not_run → skipped. */
export function junitXml(run: SuiteRun): string {
  const failures = run.gates.filter((g) => g.status === 'fail').length
  const skipped = run.gates.filter((g) => g.status === 'not_run').length
  const time = (ms: number) => (ms / 1000).toFixed(3)
  const total = Date.parse(run.finishedAt) - Date.parse(run.startedAt)
  const cases = run.gates.map((g) => {
    const open = `    <testcase classname="airlock.${xmlText(run.suite)}" name="${xmlText(g.id)}" time="${time(g.elapsedMs)}">`
    if (g.status === 'pass') return `${open}</testcase>`
    if (g.status === 'not_run') return `${open}\n      <skipped message="${xmlText(g.reason)}"/>\n    </testcase>`
    const type = g.mode === 'shadow' ? 'shadow' : g.required ? 'enforce' : 'optional'
    return `${open}\n      <failure message="${xmlText(g.reason)}" type="${type}">${xmlText(g.reason)}</failure>\n    </testcase>`
  })
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="airlock" tests="${run.gates.length}" failures="${failures}" skipped="${skipped}" time="${time(total)}">`,
    `  <testsuite name="${xmlText(run.suite)}" tests="${run.gates.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${time(total)}" timestamp="${xmlText(run.startedAt)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}

/** GitHub's step summary allows 1 MiB a step; stay well under it. */
export const MAX_SUMMARY_BYTES = 256 * 1024

function cell(text: string): string {
  return text.replace(CONTROLS, '').replace(/[\r\n\t]+/g, ' ').replace(/[|\\`*_<>[\]]/g, (c) => `\\${c}`)
}

/** The run as a Markdown table (truncated, saying so, past MAX_SUMMARY_BYTES). */
export function stepSummary(run: SuiteRun, receipt: string | null): string {
  const head = [
    `### airlock ${cell(run.suite)}: ${run.result}`,
    '',
    `${run.passedTests.length} passed, ${run.warnedTests.length} warned, ${run.failedTests.length} failed, ${run.gates.filter((g) => g.status === 'not_run').length} not run${run.host ? '' : ' (no lab host)'}${receipt ? `; receipt \`${cell(receipt)}\`` : ''}`,
    '',
    '| gate | result | time | reason |',
    '| --- | --- | ---: | --- |',
  ].join('\n')
  let out = `${head}\n`
  for (const [i, g] of run.gates.entries()) {
    const row = `| ${cell(g.id)} | ${statusWord(g)} | ${formatMs(g.elapsedMs)} | ${cell(g.reason).slice(0, 2000)} |\n`
    if (Buffer.byteLength(out + row) > MAX_SUMMARY_BYTES - 200) {
      out += `\n_${run.gates.length - i} more gate(s) not shown (summary size limit)._\n`
      break
    }
    out += row
  }
  return `${out}\n`
}
