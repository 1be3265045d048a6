import {describe, expect, it} from 'vitest'
import type {AirlockError} from '../../../control-plane/errors.js'
import {csvCell, exportLog, parseBound, type ExportFormat, type ExportRange, type ExportSummary} from '../../../control-plane/audit/export.js'
import type {StreamEntry} from '../../../control-plane/audit/stream.js'

const T0 = Date.parse('2026-11-01T00:00:00Z')
const DAY = 86_400_000
const FP = 'ab'.repeat(32)

function event(i: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    attestation_list: [{fingerprint: {algorithm_id: 3, value: FP}, chain_uid: 'o', uid: String(i)}],
    activity_id: 3,
    activity_name: 'Update',
    class_uid: 6003,
    type_uid: 600303,
    time: T0 + i * DAY,
    status: 'Success',
    actor: {user: {name: 'ops'}},
    api: {operation: 'promote'},
    resources: [{name: 'agent-runner'}, {uid: 'stable'}],
    action: 'Allowed',
    ...extra,
  })
}
const stub = (i: number) => `{"pruned":{"uid":"${i}","fingerprint":"${FP}","prev":null,"time":${T0 + i * DAY}}}`
const log = (lines: string[]): StreamEntry[] => lines.map((line, index) => ({index, line, pruned: line.startsWith('{"pruned"')}))

async function run(entries: StreamEntry[], range: ExportRange, format: ExportFormat): Promise<{text: string; summary: ExportSummary}> {
  const summary = {} as ExportSummary
  let text = ''
  for await (const chunk of exportLog(entries, range, format, summary)) text += chunk
  return {text, summary}
}

describe('csvCell', () => {
  it('quotes as RFC 4180 says and defuses formulas', () => {
    expect(csvCell('plain')).toBe('plain')
    expect(csvCell('a,b')).toBe('"a,b"')
    expect(csvCell('say "hi"')).toBe('"say ""hi"""')
    expect(csvCell('two\nlines')).toBe('"two\nlines"')
    expect(csvCell('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`)
    for (const c of ['+1', '-1+2', '@SUM(A1)', '\tx']) expect(csvCell(c)).toBe(`'${c}`)
    expect(csvCell('\rx')).toBe(`"'\rx"`)
  })
})

describe('parseBound', () => {
  it('reads an index or an RFC 3339 time, and refuses anything else with USAGE', () => {
    expect(parseBound('12', '--since')).toEqual({index: 12})
    expect(parseBound('2026-11-03T00:00:00Z', '--since')).toEqual({time: T0 + 2 * DAY})
    expect(parseBound('2026-11-03', '--since')).toEqual({time: T0 + 2 * DAY})
    for (const bad of ['yesterday', '-3', '2026-11-03T00:00:00', '2026-13-45T00:00:00Z']) {
      let code: string | undefined
      try {
        parseBound(bad, '--since')
      } catch (e) {
        code = (e as AirlockError).code
      }
      expect(code, bad).toBe('USAGE')
    }
  })
})

describe('exportLog', () => {
  const lines = [event(0), stub(1), event(2), event(3, {actor: {user: {name: '=cmd|calc'}}, resources: [{name: 'a,b'}]}), event(4)]
  it('ocsf: a JSON array of the events in the range, pruned stubs skipped and counted', async () => {
    const {text, summary} = await run(log(lines), {since: {index: 1}, until: {index: 4}}, 'ocsf')
    expect((JSON.parse(text) as Array<{attestation_list: [{uid: string}]}>).map((e) => e.attestation_list[0].uid)).toEqual(['2', '3'])
    expect(summary).toEqual({format: 'ocsf', events: 2, skippedPruned: 1, first: 2, last: 3})
    expect(JSON.parse((await run(log(lines), {since: {index: 9}}, 'ocsf')).text)).toEqual([])
  })
  it('jsonl: the lines as written, selected by time', async () => {
    const {text} = await run(log(lines), {since: {time: T0 + 2 * DAY}, until: {time: T0 + 4 * DAY}}, 'jsonl')
    expect(text).toBe(`${lines[2]}\n${lines[3]}\n`)
  })
  it('csv: the flat columns, CRLF records, quoted and defused cells', async () => {
    const {text} = await run(log(lines), {since: {index: 3}, until: {index: 4}}, 'csv')
    expect(text).toBe(
      'index,time,class_uid,type_uid,activity,status,actor,operation,resource,decision,fingerprint\r\n' +
        `3,2026-11-04T00:00:00.000Z,6003,600303,Update,Success,'=cmd|calc,promote,"a,b",Allowed,${FP}\r\n`,
    )
  })
  it('an entry that is not JSON is AUDIT_TAMPERED', async () => {
    const err = (await run(log([event(0), '{"broken']), {since: {index: 0}}, 'jsonl').catch((e) => e)) as AirlockError
    expect(err.code).toBe('AUDIT_TAMPERED')
    expect(err.message).toMatch(/entry 1/)
  })
})
