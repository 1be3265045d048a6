/**
 * The evidence finder's judgement (evidence/promotion.ts judgeRequirement): one `describe` per way
 * a receipt is not evidence, each expecting its problem code. Receipts are built as the ledger
 * hands them over (parsed, signatures already judged); reading them from a real history is
 * test/integration/evidence-gate.test.ts.
 */
import {describe, expect, it} from 'vitest'
import {describeMissing, formatWait, verificationSummary} from '../../../control-plane/evidence/decision.js'
import {judgeRequirement, type GatedPin, type SuiteReceipt} from '../../../control-plane/evidence/promotion.js'
import {TEST_RESULT_PREDICATE_TYPE} from '../../../control-plane/gates/types.js'

const D = `sha256:${'a1'.repeat(32)}`
const OTHER = `sha256:${'b2'.repeat(32)}`
const H = 3_600_000
const T0 = Date.parse('2026-06-01T00:00:00Z')
const at = (hours: number) => new Date(T0 + hours * H)

const PIN: GatedPin = {image: 'agent-runner', repository: 'registry.example.com/golden/agent-runner', channel: 'stable', digest: D, requires: {suites: ['postsession'], on: 'canary', soak: '24h', soakMs: 24 * H}}

let n = 0
function receipt(opts: {hours: number; result?: 'PASSED' | 'WARNED' | 'FAILED'; digest?: string; channel?: string; image?: string; suite?: string; untrusted?: string; ran?: boolean}): SuiteReceipt {
  const finishedAt = at(opts.hours)
  const path = `docs/evidence/r${++n}.json`
  return {
    path,
    sha256: String(n).padStart(64, '0'),
    finishedAt,
    untrusted: opts.untrusted ?? null,
    statement: {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [
        {name: 'git:refs/heads/main', digest: {gitCommit: 'c'.repeat(40)}},
        {name: PIN.repository, digest: {sha256: (opts.digest ?? D).slice(7)}, annotations: {image: opts.image ?? 'agent-runner', channel: opts.channel ?? 'canary'}},
      ],
      predicateType: TEST_RESULT_PREDICATE_TYPE,
      predicate: {
        result: opts.result ?? 'PASSED',
        configuration: [],
        passedTests: [],
        warnedTests: [],
        failedTests: [],
        suite: opts.suite ?? 'postsession',
        startedAt: new Date(finishedAt.getTime() - 60_000).toISOString(),
        finishedAt: finishedAt.toISOString(),
        branch: 'refs/heads/main',
        baseCommit: 'c'.repeat(40),
        host: true,
        // One enforced gate, as the result says (ran: false — it was not run).
        gates: [{id: 'g', status: opts.ran === false ? 'not_run' : opts.result === 'FAILED' ? 'fail' : 'pass', mode: 'enforce', required: true, reason: '', elapsedMs: 1}],
        tool: {name: 'airlock', version: 'test'},
      },
    },
  }
}

const problems = (rs: SuiteReceipt[], now: Date, pin = PIN) => judgeRequirement(pin, rs, now).missing.map((m) => m.problem)

describe('when no receipt names the digest', () => {
  it('is NONE, saying which suite to run', () => {
    const c = judgeRequirement(PIN, [receipt({hours: 0, suite: 'preflight'})], at(48))
    expect(c.missing).toMatchObject([{problem: 'NONE', suite: 'postsession', digest: D, channel: 'stable', on: 'canary'}])
    expect(c.missing[0]!.message).toContain('airlock gate run postsession')
  })
  it('is OTHER_DIGEST when the suite passed only for another digest of the image', () => {
    const c = judgeRequirement(PIN, [receipt({hours: 0, digest: OTHER})], at(48))
    expect(c.missing.map((m) => m.problem)).toEqual(['OTHER_DIGEST'])
    expect(c.missing[0]!.message).toContain('sha256:b2b2b2b2b2b2')
  })
  it('is not evidence when the digest is named for another image', () => {
    expect(problems([receipt({hours: 0, image: 'browser-sandbox'})], at(48))).toEqual(['NONE'])
  })
})

describe('when the receipt ran on another channel', () => {
  it('is OTHER_CHANNEL', () => {
    expect(problems([receipt({hours: 0, channel: 'edge'})], at(48))).toEqual(['OTHER_CHANNEL'])
  })
  it('is evidence when the requirement names no channel', () => {
    const {on: _on, ...anyChannel} = PIN.requires
    expect(judgeRequirement({...PIN, requires: anyChannel}, [receipt({hours: 0, channel: 'edge'})], at(48)).missing).toEqual([])
  })
})

describe('when the receipt is younger than the soak', () => {
  it('is YOUNG, with when it will have soaked and how long to wait', () => {
    const c = judgeRequirement(PIN, [receipt({hours: 0})], at(3))
    expect(c.missing).toMatchObject([{problem: 'YOUNG', readyAt: at(24).toISOString()}])
    expect(describeMissing(c.missing, at(3))).toContain('(wait 21h 0m)')
    expect(c.relied).toEqual([])
  })
})

describe('when the history says the digest was not on that channel where the suite ran', () => {
  it('is NOT_PINNED_THEN, whatever the receipt claims', () => {
    const r = {...receipt({hours: 0}), pinnedAtBase: {'agent-runner': {canary: OTHER}}}
    expect(problems([r], at(48))).toEqual(['NOT_PINNED_THEN'])
    expect(problems([{...r, pinnedAtBase: {'agent-runner': {canary: D}}}], at(48))).toEqual([])
  })
})

describe('when the receipt is dated in the future', () => {
  it('is FUTURE_DATED, never soaked', () => {
    expect(problems([receipt({hours: 100})], at(48))).toEqual(['FUTURE_DATED'])
  })
})

describe('when the receipt is not signed by a trusted evidence key', () => {
  it('is UNTRUSTED, naming why', () => {
    const c = judgeRequirement(PIN, [receipt({hours: 0, untrusted: 'UNKNOWN_KEY: signed by 1234…'})], at(48))
    expect(c.missing).toMatchObject([{problem: 'UNTRUSTED'}])
    expect(c.missing[0]!.message).toContain('UNKNOWN_KEY')
  })
})

describe('when the suite failed for the digest', () => {
  it('is ONLY_FAILED when nothing passed', () => {
    expect(problems([receipt({hours: 0, result: 'FAILED'})], at(48))).toEqual(['ONLY_FAILED'])
  })
  it('is FAILED_SINCE when a failure came after the passing receipt, on any channel', () => {
    const c = judgeRequirement(PIN, [receipt({hours: 0}), receipt({hours: 5, result: 'FAILED', channel: 'edge'})], at(48))
    expect(c.missing).toMatchObject([{problem: 'FAILED_SINCE'}])
  })
  it('is FAILED_SINCE for a failure run while the digest was on another channel, whatever that commit pinned on `on`', () => {
    const failed = {...receipt({hours: 5, result: 'FAILED', channel: 'edge'}), pinnedAtBase: {'agent-runner': {canary: OTHER}}}
    expect(problems([receipt({hours: 0}), failed], at(48))).toEqual(['FAILED_SINCE'])
  })
  it('is NOTHING_RAN when the passing receipt passed no gate (all not run)', () => {
    expect(problems([receipt({hours: 0, ran: false})], at(48))).toEqual(['NOTHING_RAN'])
  })
  it('needs a new passing run to soak after the failure', () => {
    const rs = [receipt({hours: 0}), receipt({hours: 5, result: 'FAILED'}), receipt({hours: 10})]
    expect(problems(rs, at(30))).toEqual(['YOUNG'])
    expect(judgeRequirement(PIN, rs, at(34)).relied).toMatchObject([{path: rs[2]!.path}])
  })
})

describe('when the evidence is there', () => {
  it('relies on the oldest passing receipt with no failure since (WARNED passes), whatever the time of apply', () => {
    const rs = [receipt({hours: 0, result: 'WARNED'}), receipt({hours: 30})]
    const plan = judgeRequirement(PIN, rs, at(48))
    const apply = judgeRequirement(PIN, rs, at(500))
    expect(plan.missing).toEqual([])
    expect(plan.relied).toEqual([{suite: 'postsession', path: rs[0]!.path, digest: `sha256:${rs[0]!.sha256}`, result: 'WARNED', finishedAt: at(0).toISOString()}])
    expect(apply).toEqual(plan)
  })
  it('needs every suite listed', () => {
    const pin = {...PIN, requires: {...PIN.requires, suites: ['postsession', 'preflight']}}
    const c = judgeRequirement(pin, [receipt({hours: 0})], at(48))
    expect(c.relied.map((r) => r.suite)).toEqual(['postsession'])
    expect(c.missing).toMatchObject([{suite: 'preflight', problem: 'NONE'}])
  })
  it('is summarized as a SLSA VSA v1 naming the receipts relied on', () => {
    const rs = [receipt({hours: 0})]
    const c = judgeRequirement(PIN, rs, at(48))
    const vsa = verificationSummary(c, {decision: 'satisfied', manifest: {path: 'manifests/images/agent-runner.yaml', oid: 'f'.repeat(40)}, baseCommit: 'c'.repeat(40), branch: 'refs/heads/main', timeVerified: at(48), toolVersion: 'test'})
    expect(vsa).toMatchObject({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{name: PIN.repository, digest: {sha256: D.slice(7)}}],
      predicateType: 'https://slsa.dev/verification_summary/v1',
      predicate: {
        timeVerified: at(48).toISOString(),
        resourceUri: `oci://${PIN.repository}@${D}`,
        policy: {digest: {gitBlob: 'f'.repeat(40)}},
        inputAttestations: [{uri: rs[0]!.path, digest: {sha256: rs[0]!.sha256}}],
        verificationResult: 'PASSED',
        verifiedLevels: ['AIRLOCK_SUITE_POSTSESSION_PASSED'],
      },
    })
    expect(verificationSummary(judgeRequirement(PIN, [], at(48)), {decision: 'overridden', manifest: {path: 'x', oid: null}, baseCommit: null, branch: 'refs/heads/main', timeVerified: at(48), toolVersion: 't'}).predicate).toMatchObject({verificationResult: 'FAILED', verifiedLevels: [], inputAttestations: []})
  })
})

describe('formatWait', () => {
  it('says days, hours, minutes', () => {
    expect([formatWait(3 * 86_400_000 + 2 * H), formatWait(H + 60_000), formatWait(90_000), formatWait(1)]).toEqual(['3d 2h', '1h 1m', '2m', '1s'])
  })
})
