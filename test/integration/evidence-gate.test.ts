/**
 * Evidence-gated promotion on a real fleet made by `airlock init`: canary requires a passing
 * `postsession` receipt for the same digest, run while it was on `edge` (where NEXT is pinned), at
 * least 24 h old. The
 * receipts are real (signed DSSE envelopes committed as signed commits, test/receipts.ts); the
 * pipeline runs in-process with `now` passed in (soak without waiting), the CLI a few times.
 * One fleet, its history grown step by step (receipts are append-only): each `it` builds on the
 * one before, and the hostile receipts (unknown key, future date) live on side branches.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {sha256Hex} from '../../control-plane/crypto/digest.js'
import {generateSigner, loadSigner} from '../../control-plane/crypto/keys.js'
import type {EvidenceRecord} from '../../control-plane/evidence/decision.js'
import {verifyEvidence} from '../../control-plane/evidence/verify.js'
import {localIdentity} from '../../control-plane/identity/jwt.js'
import {DEFAULT_LIMITS} from '../../control-plane/limits.js'
import type {PipelineContext} from '../../control-plane/pipeline/draft.js'
import {execute, type Mode, type Outcome} from '../../control-plane/pipeline/pipeline.js'
import type {ChangeRequest} from '../../control-plane/plan/plan.js'
import {renderPlan} from '../../control-plane/plan/render.js'
import {Repository} from '../../control-plane/repo/repository.js'
import {verifyBundleFor, verifyPinned} from '../../platform/images/policy.js'
import {airlock, commitSignedByHand, git, GIT_IDENTITY, initFleet} from '../helpers.js'
import {commitSuiteReceipt} from '../receipts.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const HOTFIX = `sha256:${'c3'.repeat(32)}`
const OTHER = `sha256:${'b2'.repeat(32)}`
const EDGE = `sha256:${'e5'.repeat(32)}`
const IMAGE = 'manifests/images/agent-runner.yaml'
const H = 3_600_000

let fleet: Awaited<ReturnType<typeof initFleet>>
let repo: Repository

beforeAll(async () => {
  fleet = await initFleet({sign: [NEXT, HOTFIX]})
  Object.assign(process.env, GIT_IDENTITY)
  repo = await Repository.open(fleet.dir)
  // The fleet's signed desired state: an edge channel, and canary's requirement.
  const text = await readFile(join(fleet.dir, IMAGE), 'utf8')
  const canary = /( {4}canary:\n {6}digest: sha256:[0-9a-f]{64}\n {6}previous: \S+\n)/.exec(text)![1]!
  const gated = `${canary}      requires:\n        suites: [postsession]\n        on: edge\n        soak: 24h\n    edge:\n      digest: ${NEXT}\n      previous: ${EDGE}\n`
  await writeFile(join(fleet.dir, IMAGE), text.replace(canary, gated))
  await commitSignedByHand(fleet.dir, fleet.key, 'canary requires a soaked postsession on edge')
}, 120_000)
afterAll(() => fleet.cleanup())

function context(now: Date, anchor: PipelineContext['anchor'] = {}, reason = 'edge soaked'): PipelineContext {
  return {
    now,
    reason,
    requestedBy: {actor: 'tester', via: 'cli'},
    identity: localIdentity('Tester', 'tester@example.com'),
    anchor,
    limits: DEFAULT_LIMITS,
    verifier: {
      pinned: (r, commit, image, digest, trust, extra) => verifyPinned(r, commit, image, digest, trust, now, DEFAULT_LIMITS, extra),
      bundle: (r, commit, image, digest, bundle, trust) => verifyBundleFor(r, commit, image, digest, bundle, trust, now, DEFAULT_LIMITS),
    },
  }
}

const promote = (digest = NEXT, override = false): ChangeRequest => ({kind: 'promote', image: 'agent-runner', digest, to: 'canary', ...(override ? {override: true} : {})})
const applyMode = (): Mode => ({kind: 'apply', signer: () => loadSigner({file: fleet.key}), toolVersion: 'test'})
const plan = (now: Date, opts: {anchor?: PipelineContext['anchor']; request?: ChangeRequest; reason?: string} = {}) => execute(repo, {request: opts.request ?? promote()}, {kind: 'plan'}, context(now, opts.anchor, opts.reason))
const evidence = (o: Outcome): EvidenceRecord => (o as Extract<Outcome, {plan: unknown}>).plan!.details.evidence as EvidenceRecord
const refusalOf = (o: Outcome) => (o.status === 'planned' ? o.refusal : o.status === 'refused' ? o.error : null)
const missing = (o: Outcome) => evidence(o).checks.flatMap((c) => c.missing.map((m) => m.problem))
const head = async () => (await git(fleet.dir, 'rev-parse', 'HEAD')).trim()
const onEdge = (digest: string) => [{digest, channel: 'edge'}]

/** Runs `body` on a branch off HEAD, then returns to main (a hostile receipt stays off main). */
async function onBranch(name: string, body: () => Promise<void>): Promise<void> {
  await git(fleet.dir, 'checkout', '-q', '-b', name)
  try {
    await body()
  } finally {
    await git(fleet.dir, 'checkout', '-q', '-f', 'main')
  }
}

describe('a promotion to a channel with evidence requirements', () => {
  it('is refused without any receipt, naming the suite, digest and channel (CLI)', async () => {
    const shown = renderPlan(((await plan(new Date())) as Extract<Outcome, {status: 'planned'}>).plan, {color: false})
    expect(shown).toMatch(/evidence\s+MISSING agent-runner\/canary requires postsession on edge, soaked 24h/)
    expect(shown).toContain('missing agent-runner/canary: postsession: no receipt of suite postsession for sha256:a1a1a1a1a1a1… on edge')
    expect(shown).toContain('--apply would be refused')
    const applied = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
    expect(applied.exitCode).toBe(1)
    expect(applied.json.error).toMatchObject({code: 'EVIDENCE_MISSING', details: {missing: [{suite: 'postsession', digest: NEXT, channel: 'canary', on: 'edge', problem: 'NONE'}]}})
    // An override the policy does not permit (the local operator has no release-manager role) is DENIED.
    const override = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--override', '--reason', 'skip it', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
    expect(override.exitCode).toBe(1)
    expect(override.json.error).toMatchObject({code: 'DENIED', details: {authorization: {decision: 'deny', action: 'Promote, Override'}}})
    expect(await git(fleet.dir, 'log', '-1', '--format=%s')).toBe('canary requires a soaked postsession on edge')
  }, 60_000)

  it('is refused with a receipt for another digest', async () => {
    await commitSuiteReceipt(fleet.dir, fleet.key, {suite: 'postsession', result: 'PASSED', finishedAt: new Date(), pins: onEdge(OTHER)})
    expect(missing(await plan(new Date(Date.now() + 48 * H)))).toEqual(['OTHER_DIGEST'])
  })

  it('is refused with a receipt signed by a key not in trust.yaml: the history does not verify, and from an anchor past it the finder says so', async () => {
    await onBranch('stranger', async () => {
      const {commit} = await commitSuiteReceipt(fleet.dir, fleet.key, {suite: 'postsession', result: 'PASSED', finishedAt: new Date(), pins: onEdge(NEXT), signer: generateSigner().signer})
      const later = new Date(Date.now() + 48 * H)
      const o = await plan(later)
      expect(refusalOf(o)?.code).toBe('BASE_UNVERIFIED')
      // Pinned at that very commit (its receipts are the anchor's own), the receipt is judged under the anchor's trust.
      const anchored = await plan(later, {anchor: {flag: commit}})
      expect(refusalOf(anchored)?.code).toBe('EVIDENCE_MISSING')
      expect(missing(anchored)).toEqual(['UNTRUSTED'])
    })
  })

  it('is refused with a receipt dated in the future', async () => {
    await onBranch('future', async () => {
      const {commit} = await commitSuiteReceipt(fleet.dir, fleet.key, {suite: 'postsession', result: 'PASSED', finishedAt: new Date(Date.now() + 30 * 24 * H), pins: onEdge(NEXT)})
      const later = new Date(Date.now() + 48 * H)
      const o = await plan(later)
      expect(refusalOf(o)?.code).toBe('BASE_UNVERIFIED')
      expect(JSON.stringify(refusalOf(o)?.details)).toContain('FUTURE_DATED')
      expect(missing(await plan(later, {anchor: {flag: commit}}))).toEqual(['FUTURE_DATED'])
    })
  })

  it('is refused with a receipt younger than the soak, saying how long to wait', async () => {
    const t = new Date()
    await commitSuiteReceipt(fleet.dir, fleet.key, {suite: 'postsession', result: 'PASSED', finishedAt: t, pins: onEdge(NEXT)})
    const o = await plan(new Date(t.getTime() + 2 * H))
    expect(missing(o)).toEqual(['YOUNG'])
    expect(refusalOf(o)?.message).toContain('(wait 22h 0m)')
    expect(missing(await plan(new Date(t.getTime() + 25 * H)))).toEqual([])
  })

  it('is refused with a FAILED receipt after the passing one', async () => {
    await commitSuiteReceipt(fleet.dir, fleet.key, {suite: 'postsession', result: 'FAILED', finishedAt: new Date(), pins: onEdge(NEXT)})
    const o = await plan(new Date(Date.now() + 25 * H))
    expect(missing(o)).toEqual(['FAILED_SINCE'])
    expect(refusalOf(o)?.code).toBe('EVIDENCE_MISSING')
  })

  it('passes with a valid receipt, listing it in the receipt and its VSA', async () => {
    const good = await commitSuiteReceipt(fleet.dir, fleet.key, {suite: 'postsession', result: 'PASSED', finishedAt: new Date(), pins: onEdge(NEXT)})
    const now = new Date(Date.now() + 25 * H)
    const shown = renderPlan(((await plan(now)) as Extract<Outcome, {status: 'planned'}>).plan, {color: false})
    expect(shown).toMatch(/evidence\s+SATISFIED agent-runner\/canary requires postsession on edge, soaked 24h\n\s+postsession: docs\/evidence\/\S+-gate-postsession-\d+\.json \(PASSED, finished /)
    expect(shown).toContain('Run again with --apply')
    const o = await execute(repo, {request: promote()}, applyMode(), context(now))
    expect(o.status).toBe('applied')
    const applied = (o as Extract<Outcome, {status: 'applied'}>).applied
    const envelope = JSON.parse(await readFile(join(fleet.dir, applied.receipt), 'utf8'))
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'))
    const relied = {suite: 'postsession', path: good.path, digest: `sha256:${sha256Hex(good.text)}`, result: 'PASSED'}
    expect(statement.predicate.details.evidence).toMatchObject({decision: 'satisfied', checks: [{image: 'agent-runner', channel: 'canary', digest: NEXT, relied: [relied], missing: []}]})
    expect(statement.predicate.verificationSummaries).toMatchObject([
      {
        subject: [{name: 'registry.example.com/golden/agent-runner', digest: {sha256: NEXT.slice(7)}}],
        predicateType: 'https://slsa.dev/verification_summary/v1',
        predicate: {verificationResult: 'PASSED', inputAttestations: [{uri: good.path, digest: {sha256: sha256Hex(good.text)}}], verifiedLevels: ['AIRLOCK_SUITE_POSTSESSION_PASSED'], policy: {uri: expect.stringContaining(`${IMAGE}:spec.channels.canary.requires`)}},
      },
    ])
    // The promotion's own receipt verifies like every other.
    expect((await verifyEvidence(repo, {limits: DEFAULT_LIMITS, anchor: await repo.config('airlock.trustAnchor'), now})).problems).toEqual([])
  })

  it('holds back a hand edit of the pin and a rollback to a digest other than the recorded previous one', async () => {
    const now = new Date(Date.now() + 25 * H)
    const text = await readFile(join(fleet.dir, IMAGE), 'utf8')
    const edited = text.replace(/( {4}canary:\n(?: {6}.*\n)*? {6}digest: )sha256:[0-9a-f]{64}/, `$1${HOTFIX}`)
    expect(edited).not.toBe(text)
    const change = await execute(repo, {request: {kind: 'change', files: [{path: IMAGE, content: edited}]}}, {kind: 'plan'}, context(now))
    expect(refusalOf(change)?.code).toBe('EVIDENCE_MISSING')
    expect(missing(change)).toEqual(['OTHER_DIGEST'])
    const rollback = await execute(repo, {request: {kind: 'rollback', image: 'agent-runner', channel: 'canary', to: HOTFIX}}, {kind: 'plan'}, context(now, {}, 'roll back'))
    expect(refusalOf(rollback)?.code).toBe('EVIDENCE_MISSING')
  })

  it('is passed by --override only where Cedar permits Override, and the override is recorded', async () => {
    const now = new Date(Date.now() + 26 * H)
    const denied = await plan(now, {request: promote(HOTFIX, true), reason: 'CVE hotfix; postsession rerun scheduled'})
    expect(refusalOf(denied)).toMatchObject({code: 'DENIED'})
    expect((denied as Extract<Outcome, {status: 'planned'}>).plan.authorization).toMatchObject({action: 'Promote, Override', decision: 'deny'})
    // The fleet's policies permit it (a signed change of policies/): the same request is allowed.
    await writeFile(
      join(fleet.dir, 'policies', 'global', 'override.cedar'),
      '@id("scratch-operators-override")\npermit (principal, action == AgentKernel::Action::"Override", resource)\nwhen { resource.org_id like "local-*" && context has reason };\n',
    )
    await commitSignedByHand(fleet.dir, fleet.key, 'local operators may override in this scratch fleet')
    const o = await execute(repo, {request: promote(HOTFIX, true)}, applyMode(), context(now, {}, 'CVE hotfix; postsession rerun scheduled'))
    expect(o.status).toBe('applied')
    expect(renderPlan((o as Extract<Outcome, {status: 'applied'}>).plan, {color: false})).toMatch(/evidence\s+OVERRIDDEN agent-runner\/canary[^]*override by AgentKernel::User::"local:tester@example.com": CVE hotfix/)
    const applied = (o as Extract<Outcome, {status: 'applied'}>).applied
    const statement = JSON.parse(Buffer.from(JSON.parse(await readFile(join(fleet.dir, applied.receipt), 'utf8')).payload, 'base64').toString('utf8'))
    expect(statement.predicate.details.evidence).toMatchObject({
      decision: 'overridden',
      override: {reason: 'CVE hotfix; postsession rerun scheduled', missing: [{suite: 'postsession', digest: HOTFIX, channel: 'canary', problem: 'OTHER_DIGEST'}]},
    })
    expect(statement.predicate.authorization).toMatchObject({decision: 'allow', action: 'Promote, Override', principal: 'AgentKernel::User::"local:tester@example.com"', reasons: expect.arrayContaining([expect.stringContaining('scratch-operators-override')])})
    expect(statement.predicate.verificationSummaries[0].predicate).toMatchObject({verificationResult: 'FAILED', verifiedLevels: []})
  })

  it('never holds back a rollback to the recorded previous digest', async () => {
    const o = await execute(repo, {request: {kind: 'rollback', image: 'agent-runner', channel: 'canary', to: 'previous'}}, {kind: 'plan'}, context(new Date(Date.now() + 27 * H), {}, 'hotfix regressed'))
    expect(o.status).toBe('planned')
    expect(refusalOf(o)).toBeNull()
    expect((o as Extract<Outcome, {status: 'planned'}>).plan.details.evidence).toBeUndefined()
  })
})
