/**
 * The pipeline owns the run: execute returns a typed outcome for every way a run ends, and the
 * record step sees each one, refusals included. A real fleet made by `airlock init`, driven
 * in-process; the signature checks are the platform's own (platform/images/policy.ts).
 */
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {loadSigner} from '../../../control-plane/crypto/keys.js'
import {localIdentity} from '../../../control-plane/identity/jwt.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import type {PipelineContext} from '../../../control-plane/pipeline/draft.js'
import {execute, type Mode, type Outcome} from '../../../control-plane/pipeline/pipeline.js'
import type {ChangeRequest} from '../../../control-plane/plan/plan.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {verifyBundleFor, verifyPinned} from '../../../platform/images/policy.js'
import {git, GIT_IDENTITY, initFleet} from '../../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const UNSIGNED = `sha256:${'ee'.repeat(32)}`

let fleet: Awaited<ReturnType<typeof initFleet>>
let repo: Repository
const recorded: Outcome[] = []

beforeAll(async () => {
  fleet = await initFleet({sign: [NEXT]})
  Object.assign(process.env, GIT_IDENTITY)
  repo = await Repository.open(fleet.dir)
}, 60_000)
afterAll(() => fleet.cleanup())

function context(now: Date, anchor: PipelineContext['anchor'] = {}): PipelineContext {
  return {
    now,
    reason: 'test',
    requestedBy: {actor: 'tester', via: 'cli'},
    identity: localIdentity('Tester', 'tester@example.com'),
    anchor,
    limits: DEFAULT_LIMITS,
    verifier: {
      pinned: (r, commit, image, digest, trust, extra) => verifyPinned(r, commit, image, digest, trust, now, DEFAULT_LIMITS, extra),
      bundle: (r, commit, image, digest, bundle, trust) => verifyBundleFor(r, commit, image, digest, bundle, trust, now, DEFAULT_LIMITS),
    },
    record: async (o) => void recorded.push(o),
  }
}

async function run(request: ChangeRequest, mode: Mode, anchor?: PipelineContext['anchor']): Promise<Outcome> {
  recorded.length = 0
  const outcome = await execute(repo, {request}, mode, context(new Date(), anchor))
  expect(recorded).toEqual([outcome])
  return outcome
}

const promote = (digest: string, to = 'canary'): ChangeRequest => ({kind: 'promote', image: 'agent-runner', digest, to})
const apply = (): Mode => ({kind: 'apply', signer: () => loadSigner({file: fleet.key}), toolVersion: 'test'})

describe('execute', () => {
  it('plans, and records the plan', async () => {
    const o = await run(promote(NEXT), {kind: 'plan'})
    expect(o).toMatchObject({status: 'planned', refusal: null, checkFailed: false, plan: {operation: 'promote'}})
  })

  it('records a refusal when a signature does not verify, with no plan', async () => {
    const o = await run(promote(UNSIGNED), apply())
    expect(o.status).toBe('refused')
    if (o.status === 'refused') {
      expect(o.plan).toBeNull()
      expect(o.error.code).toBe('IMAGE_NO_SIGNATURE')
    }
  })

  it('records a denial on --apply as refused, and as the plan\'s answer on a plan', async () => {
    const stable = await run(promote(NEXT, 'stable'), apply())
    expect(stable).toMatchObject({status: 'refused', error: {code: 'DENIED'}})
    const planned = await run(promote(NEXT, 'stable'), {kind: 'plan'})
    expect(planned).toMatchObject({status: 'planned', refusal: {code: 'DENIED'}, checkFailed: false})
  })

  it('records an invalid request as refused (its code decides the exit)', async () => {
    const o = await run({kind: 'promote', image: 'no-such-image', digest: NEXT, to: 'canary'}, {kind: 'plan'})
    expect(o).toMatchObject({status: 'refused', error: {code: 'UNKNOWN_IMAGE'}})
  })

  it('applies, then finds nothing left to do (noop); a saved plan of the old base is stale', async () => {
    const out = join(fleet.dir, '..', 'plan.json')
    const saved = await run(promote(NEXT), {kind: 'save', out})
    expect(saved).toMatchObject({status: 'saved', savedTo: out})
    const applied = await run(promote(NEXT), apply())
    expect(applied.status).toBe('applied')
    const noop = await run(promote(NEXT), apply())
    expect(noop.status).toBe('noop')
    if (saved.status !== 'saved') return
    recorded.length = 0
    const stale = await execute(repo, {saved: saved.plan}, apply(), context(new Date()))
    expect(stale).toMatchObject({status: 'refused', error: {code: 'STALE_PLAN'}})
    expect(recorded).toEqual([stale])
  })

  it('refuses to save or apply without a pinned anchor, and plans with the check failed', async () => {
    await git(fleet.dir, 'config', '--unset', 'airlock.trustAnchor')
    try {
      const planned = await run(promote(NEXT, 'canary'), {kind: 'plan'})
      expect(planned).toMatchObject({status: 'planned', refusal: {code: 'ANCHOR_NOT_PINNED'}, checkFailed: true})
      const refused = await run(promote(NEXT, 'canary'), {kind: 'save', out: join(fleet.dir, '..', 'never.json')})
      expect(refused).toMatchObject({status: 'refused', error: {code: 'ANCHOR_NOT_PINNED'}})
      const anchor = (await git(fleet.dir, 'rev-list', '--max-parents=0', 'HEAD')).trim()
      const pinned = await run(promote(NEXT, 'canary'), {kind: 'plan'}, {env: anchor})
      expect(pinned).toMatchObject({status: 'planned', refusal: null})
    } finally {
      await git(fleet.dir, 'config', 'airlock.trustAnchor', (await git(fleet.dir, 'rev-list', '--max-parents=0', 'HEAD')).trim())
    }
  })

  it('tries candidates in order and plans the first that verifies, recording each', async () => {
    const bad = {kind: 'store-signature' as const, operation: 'image-fetch-signature' as const, image: 'agent-runner', digest: NEXT, bundle: '{"not": "a bundle"}', details: {}}
    async function* candidates() {
      yield {request: bad, describe: {layout: 'referrer'}}
      yield {request: promote(NEXT, 'canary'), describe: {layout: 'second'}}
    }
    recorded.length = 0
    const o = await execute(repo, {candidates: candidates(), none: () => new Error('none') as never}, {kind: 'plan'}, context(new Date()))
    expect(o.candidates).toEqual([expect.objectContaining({layout: 'referrer', verified: false}), {layout: 'second', verified: true}])
    expect(recorded).toEqual([o])
  })
})
