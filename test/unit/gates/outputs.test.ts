import {describe, expect, it} from 'vitest'
import {junitXml, MAX_SUMMARY_BYTES, plainLine, stepSummary} from '../../../control-plane/gates/outputs.js'
import {redact} from '../../../control-plane/gates/redact.js'
import type {SuiteRun} from '../../../control-plane/gates/runner.js'
import type {GateRunRecord} from '../../../control-plane/gates/types.js'

const rec = (id: string, status: GateRunRecord['status'], reason: string, extra: Partial<GateRunRecord> = {}): GateRunRecord => ({id, status, reason, mode: 'enforce', required: true, elapsedMs: 1200, ...extra})

function suiteRun(gates: GateRunRecord[]): SuiteRun {
  return {suite: 'preflight', startedAt: '2026-06-01T00:00:00.000Z', finishedAt: '2026-06-01T00:00:05.000Z', host: false, gates, findings: [], result: 'FAILED', passedTests: [], warnedTests: [], failedTests: [], exitCode: 1}
}

describe('gate run outputs', () => {
  it('JUnit: a testcase per gate, failure and skipped elements, text escaped and stripped of controls', () => {
    const xml = junitXml(suiteRun([rec('a', 'pass', 'ok'), rec('b', 'fail', 'exited <1> & "2"\u001b[31m'), rec('c', 'not_run', 'requires a lab host (--host)'), rec('d', 'fail', 'meh', {mode: 'shadow'})]))
    expect(xml).toContain('<testsuite name="preflight" tests="4" failures="2" errors="0" skipped="1" time="5.000"')
    expect(xml).toContain('<testcase classname="airlock.preflight" name="a" time="1.200"></testcase>')
    expect(xml).toContain('<failure message="exited &lt;1&gt; &amp; &quot;2&quot;[31m" type="enforce">')
    expect(xml).toContain('<failure message="meh" type="shadow">')
    expect(xml).toContain('<skipped message="requires a lab host (--host)"/>')
    expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/)
  })

  it('plain lines: status, id, time, reason; a failing shadow gate is a WARN', () => {
    expect(plainLine(rec('history', 'pass', 'fine'))).toBe('PASS    history                1.2s  fine')
    expect(plainLine(rec('s', 'fail', 'no', {mode: 'shadow'}))).toMatch(/^WARN {4}s .* no \(shadow\)$/)
  })

  it('the step summary is a Markdown table kept well under GitHub’s 1 MiB', () => {
    const md = stepSummary(suiteRun([rec('a|b', 'fail', 'x\ny | z')]), 'docs/evidence/r.json')
    expect(md).toContain('| a\\|b | FAIL | 1.2s | x y \\| z |')
    const many = stepSummary(suiteRun(Array.from({length: 2000}, (_, i) => rec(`g${i}`, 'pass', 'r'.repeat(1000)))), null)
    expect(Buffer.byteLength(many)).toBeLessThan(MAX_SUMMARY_BYTES)
    expect(many).toMatch(/more gate\(s\) not shown/)
  })
})

describe('redact', () => {
  it('masks common secret shapes, keeping what names them', () => {
    const pem = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----'
    const text = `aws AKIAIOSFODNN7EXAMPLE gh ghp_${'a'.repeat(36)} pat github_pat_${'B'.repeat(40)}\n${pem}\ntoken=abc123secret password: "p4ss"`
    const out = redact(text)
    expect(out).toBe('aws [REDACTED] gh [REDACTED] pat [REDACTED]\n[REDACTED]\ntoken=[REDACTED] password: "[REDACTED]"')
  })
})
