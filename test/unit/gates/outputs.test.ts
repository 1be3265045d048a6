import {describe, expect, it} from 'vitest'
import {junitXml, MAX_SUMMARY_BYTES, plainLine, stepSummary} from '../../../control-plane/gates/outputs.js'
import {redact} from '../../../control-plane/gates/redact.js'
import {EXCERPT_BYTES, excerptOf, gateEnvironment} from '../../../control-plane/gates/run-command.js'
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

  it('masks what the attack review got past it: glued tokens, a headless PEM body, JSON keys, URL credentials, sk- keys, generated secrets', () => {
    const body = 'MIIEowIBAAKCAQEA7v1Yx3kq9Zp0hV2m4Lr8sT6wQeR1uYiOpAsDfGhJkLzXcVbNm'
    const text = [`AKIAIOSFODNN7EXAMPLE_x xAKIAIOSFODNN7EXAMPLE ghp_${'a'.repeat(36)}_y`, body, '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', 'postgres://user:pa55word@db:5432/x', `sk-ant-${'Q'.repeat(30)}`, `digest sha256:${'ab'.repeat(32)}`].join('\n')
    const out = redact(text)
    for (const secret of ['IOSFODNN7EXAMPLE', 'a'.repeat(36), body.slice(10, 40), 'wJalrXUtnFEMI', 'pa55word', 'Q'.repeat(30)]) expect(out).not.toContain(secret)
    // A hex digest is not a secret, nor a commit id or a digest alone on its line (evidence, not a key).
    expect(out).toContain(`sha256:${'ab'.repeat(32)}`)
    expect(redact(`${'0123456789abcdef'.repeat(4)}\n${'a1'.repeat(20)}`)).toBe(`${'0123456789abcdef'.repeat(4)}\n${'a1'.repeat(20)}`)
  })

  it('an excerpt is redacted before it is cut and starts at a line, so no secret is cut in two', () => {
    const key = `AKIA${'IOSFODNN7EXAMPL1'}`
    // The key straddles the excerpt's start: once redacted first, nothing of it is left.
    const tail = `${key} ${'x '.repeat((EXCERPT_BYTES - 26) / 2)}\nPASS=6 FAIL=0\n`
    const e = excerptOf(tail, false)
    expect(e).not.toMatch(/IOSF|EXAMPL1|AKIA/)
    expect(e).toMatch(/^\[REDACTED\] x x [x ]+\nPASS=6 FAIL=0\n$/)
    // Cut without redacting first, the window would have started inside the key.
    expect(Buffer.from(tail).subarray(-EXCERPT_BYTES).toString()).toMatch(/^NN7EXAMPL1 /)
    // A kept tail that starts mid-stream loses its first line.
    expect(excerptOf(`DNN7EXAMPL1 rest\nok\n`, true)).toBe('ok\n')
  })

  it('no escape sequence, CR, zero-width or full-width form hides a secret from its rule in an excerpt', () => {
    const tail = ['aws: AKIA\u001b[31mQYLPMN5HHHFPZAM2\u001b[0m', 'AKIAQYLP\rMN5HHHFPZAM2', 'AKIA\u200bQYLPMN5HHHFPZAM2', 'ＡＫＩＡQYLPMN5HHHFPZAM2', 'ok'].join('\n')
    const e = excerptOf(`${tail}\n`, false)
    expect(e).not.toMatch(/QYLP|MN5H/)
    expect(e.endsWith('ok\n')).toBe(true)
  })

  it('a run: gate sees no airlock secret and nothing named like a credential', () => {
    const env = gateEnvironment({PATH: '/bin', AIRLOCK_ROOT: '/opt/airlock', AIRLOCK_EVIDENCE_KEY: 'k', AIRLOCK_SECRET_SCAN_KEY: 'k', GITHUB_TOKEN: 't', AWS_SECRET_ACCESS_KEY: 's', DB_PASSWORD: 'p', SSH_KEY: 'x', ACCEPTANCE_RUNTIME: 'podman'}, {EXTRA: '1'})
    expect(env).toEqual({PATH: '/bin', AIRLOCK_ROOT: '/opt/airlock', ACCEPTANCE_RUNTIME: 'podman', EXTRA: '1'})
  })
})
