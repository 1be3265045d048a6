/**
 * The rollback drill (`builtin/rollback-drill`, `airlock drill rollback`) on a real fleet made by
 * `airlock init`: real git clones, real keys, the real pipeline. Time is an injected clock that
 * advances by a fixed step each time it is read, so no test races the machine's clock.
 */
import {createHash} from 'node:crypto'
import {readdirSync} from 'node:fs'
import {readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it, vi} from 'vitest'
import {generateSigner, loadSigner} from '../../control-plane/crypto/keys.js'
import {runRollbackDrill, throwawayKeyProblem, type RollbackDrillOptions} from '../../control-plane/gates/drill.js'
import {rollbackDrill} from '../../control-plane/gates/builtins/rollback-drill.js'
import type {GateContext, GatePipeline} from '../../control-plane/gates/types.js'
import {localIdentity} from '../../control-plane/identity/jwt.js'
import {DEFAULT_LIMITS} from '../../control-plane/limits.js'
import {parseImage} from '../../control-plane/manifests/load.js'
import {Repository} from '../../control-plane/repo/repository.js'
import {execute} from '../../control-plane/pipeline/pipeline.js'
import {verifyEvidence} from '../../control-plane/evidence/verify.js'
import {drillOf} from '../../control-plane/evidence/history.js'
import {verifyBundleFor, verifyPinned} from '../../platform/images/policy.js'
import {signImageBundle} from '../../platform/images/sign.js'
import {airlock, git, GIT_IDENTITY, initFleet, tempDir} from '../helpers.js'

const IMAGE = 'manifests/images/agent-runner.yaml'

let fleet: Awaited<ReturnType<typeof initFleet>>
let repo: Repository
let head: string
let before: Map<string, string>

/** Every file under `dir` (the .git folder included) and the SHA-256 of its content. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const e of await readdir(dir, {withFileTypes: true, recursive: true})) {
    if (!e.isFile()) continue
    const path = join(e.parentPath, e.name)
    out.set(path.slice(dir.length + 1), createHash('sha256').update(await readFile(path)).digest('hex'))
  }
  return out
}

/** What the command hands in (commands/_base.ts gatePipeline), built here without a process. */
function pipeline(now: Date, evidenceSigner: GatePipeline['evidenceSigner'] = () => loadSigner({file: fleet.key})): GatePipeline {
  return {
    context: {
      now,
      reason: '',
      requestedBy: {actor: 'tester', via: 'cli'},
      identity: localIdentity('Tester', 'tester@example.com'),
      anchor: {},
      limits: DEFAULT_LIMITS,
      verifier: {
        pinned: (r, commit, image, digest, trust, extra) => verifyPinned(r, commit, image, digest, trust, now, DEFAULT_LIMITS, extra),
        bundle: (r, commit, image, digest, bundle, trust) => verifyBundleFor(r, commit, image, digest, bundle, trust, now, DEFAULT_LIMITS),
      },
    },
    evidenceSigner,
    signImageBundle,
    toolVersion: 'test',
  }
}

/** What the drill left in a temporary folder (node's own compile cache aside). */
async function drillFolders(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n !== 'node-compile-cache')
}

/** A clock that moves `stepMs` each time it is read. */
function steppingClock(stepMs: number, onRead?: (reads: number) => void): () => number {
  let reads = 0
  return () => {
    reads++
    onRead?.(reads)
    return reads * stepMs
  }
}

async function drill(extra: Partial<RollbackDrillOptions> & {tmpRoot: string}) {
  const now = new Date()
  return runRollbackDrill({source: repo, commit: head, now, limits: DEFAULT_LIMITS, pipeline: pipeline(now), clock: steppingClock(100), ...extra})
}

beforeAll(async () => {
  fleet = await initFleet()
  Object.assign(process.env, GIT_IDENTITY)
  repo = await Repository.open(fleet.dir)
  head = (await repo.base()).commit
  before = await snapshot(fleet.dir)
}, 60_000)
afterAll(() => fleet.cleanup())

describe('rollback drill', () => {
  it('passes within a generous target, records every step, and leaves no clone behind', async () => {
    const tmp = await tempDir()
    try {
      // Read 2 ends the clone step: the clone is there then.
      let during: string[] = []
      const d = await drill({tmpRoot: tmp.dir, recoveryTarget: '60s', clock: steppingClock(100, (n) => n === 2 && (during = readdirSync(tmp.dir)))})
      expect(d.status, d.reason).toBe('pass')
      expect(d.steps.map((s) => s.step)).toEqual(['clone', 'trust-image-key', 'sign', 'promote', 'rollback', 'verify'])
      expect(d.steps.filter((s) => s.timed).map((s) => s.step)).toEqual(['promote', 'rollback', 'verify'])
      expect(d.steps.every((s) => s.elapsedMs === 100)).toBe(true)
      expect(d.totalMs).toBe(300)
      expect(d.setupMs).toBe(300)
      expect(d.targetMs).toBe(60_000)
      expect(d.imageKey).toBe('throwaway')
      expect(d.anchor).toMatch(/^[0-9a-f]{40}$/)
      expect(d.digests.after).toBe(d.digests.before)
      expect(d.digests.test).not.toBe(d.digests.before)
      expect(d.steps.find((s) => s.step === 'promote')!.command).toBe(`airlock promote agent-runner --to canary --digest ${d.digests.test} --apply`)
      expect(d.finalCommit).toMatch(/^[0-9a-f]{40}$/)
      expect(d.receipts).toHaveLength(2)
      expect(d.verification).toMatchObject({ok: true, problems: []})
      expect(d.verification!.receiptsVerified).toBe(d.verification!.receipts)
      expect(d.reason).toMatch(/took 0\.30s, within the recovery target 60s/)
      // The clone was made in the folder given, and removed.
      expect(during).toEqual([expect.stringMatching(/^airlock-drill-/)])
      expect(await drillFolders(tmp.dir)).toEqual([])
    } finally {
      await tmp.cleanup()
    }
  })

  it('fails over a tiny target, naming both the time it took and the target', async () => {
    const tmp = await tempDir()
    try {
      // GIT_DIR as a git hook would leave it, pointing at the source: the clone's git commands ignore it.
      vi.stubEnv('GIT_DIR', join(fleet.dir, '.git'))
      const d = await drill({tmpRoot: tmp.dir, recoveryTarget: '1s', clock: steppingClock(1000)})
      vi.unstubAllEnvs()
      expect(d.status).toBe('fail')
      expect(d.totalMs).toBe(3000)
      expect(d.reason).toBe('promote → rollback → verify took 3.00s, over the recovery target 1s (1.00s)')
      expect(await snapshot(fleet.dir)).toEqual(before)
      // Everything else was right: only the time failed it.
      expect(d.digests.after).toBe(d.digests.before)
      expect(d.verification?.ok).toBe(true)
      expect(await drillFolders(tmp.dir)).toEqual([])
    } finally {
      vi.unstubAllEnvs()
      await tmp.cleanup()
    }
  })

  it('fails at a step the pipeline refuses, naming the step and the refusal', async () => {
    const tmp = await tempDir()
    try {
      // The clone's own policies decide, as they would in an incident: a local operator may not
      // move stable, so the drill fails at the promotion, naming the policy.
      const stable = await drill({tmpRoot: tmp.dir, imageKey: fleet.imageKey, image: 'agent-runner', channel: 'stable'})
      expect(stable.status).toBe('fail')
      expect(stable.reason).toMatch(/^promote in the throwaway clone failed: DENIED policy denies Promote of .*agent-runner\/stable/)
      expect(stable.totalMs).toBeNull()
      expect(await drillFolders(tmp.dir)).toEqual([])
    } finally {
      await tmp.cleanup()
    }
  })

  it('fails when the history does not verify from the anchor, before reading anything from it', async () => {
    const tmp = await tempDir()
    try {
      // A copy of the fleet with an unsigned commit on top, as a writer without keys can make.
      const copy = join(tmp.dir, 'copy')
      await git(tmp.dir, 'clone', '--quiet', fleet.dir, copy)
      const text = await readFile(join(copy, IMAGE), 'utf8')
      await writeFile(join(copy, IMAGE), text.replace(/^( {6}digest: )sha256:[0-9a-f]{64}/m, `$1sha256:${'ee'.repeat(32)}`))
      await git(copy, 'commit', '--quiet', '-am', 'unsigned')
      const source = await Repository.open(copy)
      // The copy's git config has no anchor (config does not travel): --trust-anchor's is used.
      const given = pipeline(new Date())
      given.context.anchor = {flag: head}
      const d = await drill({source, commit: await git(copy, 'rev-parse', 'HEAD'), tmpRoot: tmp.dir, pipeline: given})
      expect(d.status).toBe('fail')
      expect(d.reason).toMatch(/^clone in the throwaway clone failed: BASE_UNVERIFIED /)
      expect(d.image).toBeNull()
      expect(await drillFolders(tmp.dir)).toEqual(['copy'])
    } finally {
      await tmp.cleanup()
    }
  })

  it('is not_run without the evidence key, or with one trust.yaml does not hold, and leaves no clone', async () => {
    const tmp = await tempDir()
    try {
      const now = new Date()
      const missing = await drill({tmpRoot: tmp.dir, pipeline: pipeline(now, () => loadSigner({}))})
      expect(missing.status).toBe('not_run')
      expect(missing.reason).toMatch(/no usable evidence key .*AIRLOCK_EVIDENCE_KEY/)
      expect(missing.steps).toEqual([])
      const stranger = await drill({tmpRoot: tmp.dir, pipeline: pipeline(now, async () => generateSigner().signer)})
      expect(stranger.status).toBe('not_run')
      expect(stranger.reason).toMatch(/is not a valid evidence key of manifests\/trust\.yaml/)
      // Trust is read from the clone once its history verifies, never from the source unverified.
      expect(stranger.steps.map((x) => x.step)).toEqual(['clone'])
      const none = await drill({tmpRoot: tmp.dir, pipeline: undefined})
      expect(none.status).toBe('not_run')
      const badKey = await drill({tmpRoot: tmp.dir, imageKey: join(tmp.dir, 'absent.key')})
      expect(badKey.status).toBe('not_run')
      expect(badKey.reason).toMatch(/the image key cannot be used/)
      expect(await drillFolders(tmp.dir)).toEqual([])
    } finally {
      await tmp.cleanup()
    }
  })

  it('stops at the next step when aborted, and still removes the clone', async () => {
    const tmp = await tempDir()
    const stop = new AbortController()
    try {
      // Reads 1–2 time the clone; the third starts the first key's change: abort there.
      const d = await drill({tmpRoot: tmp.dir, signal: stop.signal, clock: steppingClock(100, (n) => n === 3 && stop.abort(new Error('gate timeout')))})
      expect(d.status).toBe('fail')
      expect(d.reason).toMatch(/aborted before sign.*gate timeout/)
      expect(d.totalMs).toBeNull()
      expect(await drillFolders(tmp.dir)).toEqual([])
    } finally {
      await tmp.cleanup()
    }
  })

  it('throwaway image keys only where any trusted image key would do (else not_run, naming why)', async () => {
    const text = (await repo.readFile(head, IMAGE))!.text
    const image = (extra: string) => parseImage(`${text}  verification:\n${extra}`, IMAGE, '', DEFAULT_LIMITS)
    expect(throwawayKeyProblem(parseImage(text, IMAGE, '', DEFAULT_LIMITS), 1)).toBeNull()
    expect(throwawayKeyProblem(image(`    keys: ["${'ab'.repeat(32)}"]\n`), 1)).toMatch(/names the keys or identities .*--image-key/)
    expect(throwawayKeyProblem(image('    identities: [{issuer: "https://token.actions.githubusercontent.com", subject: "x"}]\n'), 1)).toMatch(/names the keys or identities/)
    expect(throwawayKeyProblem(image('    tlogThreshold: 1\n'), 1)).toMatch(/transparency-log entries or timestamps/)
    expect(throwawayKeyProblem(image('    threshold: 6\n'), 6)).toMatch(/needs 6 image signatures/)
  })

  it('throws on invalid input: an unknown image or channel, a bad duration', async () => {
    const tmp = await tempDir()
    try {
      await expect(drill({tmpRoot: tmp.dir, image: 'nope'})).rejects.toThrowAirlockError('UNKNOWN_IMAGE')
      await expect(drill({tmpRoot: tmp.dir, channel: 'nightly'})).rejects.toThrowAirlockError('UNKNOWN_CHANNEL')
      await expect(drill({tmpRoot: tmp.dir, recoveryTarget: 'soon'})).rejects.toThrowAirlockError('USAGE')
      const where = {file: 'manifests/gates.yaml', line: 12, field: 'postsession[3].with'}
      expect(() => rollbackDrill.checkWith!({recovery_target: '1 minute'}, where)).toThrowAirlockError('USAGE')
      expect(() => rollbackDrill.checkWith!({target: '60s'}, where)).toThrowAirlockError('SCHEMA_VIOLATION')
      expect(() => rollbackDrill.checkWith!({image: 3}, where)).toThrowAirlockError('SCHEMA_VIOLATION')
      expect(() => rollbackDrill.checkWith!({image: 'agent-runner', channel: 'canary', recovery_target: '90s', image_key: 'keys/image.key'}, where)).not.toThrow()
      expect(await drillFolders(tmp.dir)).toEqual([])
    } finally {
      await tmp.cleanup()
    }
  })

  it('as the builtin gate, with a given image key (no throwaway key): the drill under the suite context, its facts in the evidence', async () => {
    const tmp = await tempDir()
    vi.stubEnv('TMPDIR', tmp.dir)
    try {
      const now = new Date()
      const ctx: GateContext = {
        repo,
        commit: head,
        dir: fleet.dir,
        limits: DEFAULT_LIMITS,
        now,
        with: {recovery_target: '5m', image_key: 'keys/image.key'},
        signal: new AbortController().signal,
        host: false,
        lastPassing: async () => null,
        pipeline: pipeline(now),
      }
      const r = await rollbackDrill.run(ctx)
      expect(r.status, r.reason).toBe('pass')
      expect(r.evidence).toMatchObject({image: 'agent-runner', channel: 'canary', recoveryTarget: '5m', targetMs: 300_000, imageKey: 'given', sourceCommit: head})
      expect((r.evidence!.steps as Array<{step: string}>).map((x) => x.step)).toEqual(['clone', 'sign', 'promote', 'rollback', 'verify'])
      expect(JSON.parse(JSON.stringify(r.evidence))).toEqual(r.evidence)
      expect(await drillFolders(tmp.dir)).toEqual([])
      // Without the command's side of the pipeline the gate cannot run, and says so.
      const bare = await rollbackDrill.run({...ctx, pipeline: undefined})
      expect(bare.status).toBe('not_run')
    } finally {
      vi.unstubAllEnvs()
      await tmp.cleanup()
    }
  })

  it('airlock drill rollback: exit 0 and the JSON report on a pass; exit 1 and the reason when it cannot run', async () => {
    const tmp = await tempDir()
    try {
      const ok = await airlock(['drill', 'rollback', '--json', '--recovery-target', '10m'], {cwd: fleet.dir, env: {...fleet.env, TMPDIR: tmp.dir}})
      expect(ok.exitCode, ok.stderr).toBe(0)
      expect(ok.json).toMatchObject({status: 'pass', image: 'agent-runner', channel: 'canary', recoveryTarget: '10m'})
      expect(ok.json.steps.map((s: {step: string}) => s.step)).toEqual(['clone', 'trust-image-key', 'sign', 'promote', 'rollback', 'verify'])
      const no = await airlock(['drill', 'rollback'], {cwd: fleet.dir, env: {TMPDIR: tmp.dir}})
      expect(no.exitCode).toBe(1)
      expect(no.stdout).toMatch(/^NOT RUN: no usable evidence key/m)
      expect(await drillFolders(tmp.dir)).toEqual([])
    } finally {
      await tmp.cleanup()
    }
  })

  it("a drill's commit never verifies outside its drill: copied into the fleet it is DRILL_COMMIT", async () => {
    const t = await tempDir('airlock-drill-replay-')
    try {
      // A copy of the fleet stands for the fleet a drill commit is copied into (the source stays untouched).
      const dir = join(t.dir, 'copy')
      await git(t.dir, 'clone', '-q', fleet.dir, dir)
      const copy = await Repository.open(dir)
      const anchor = (await repo.config('airlock.trustAnchor'))!
      const now = new Date()
      const text = await readFile(join(dir, IMAGE), 'utf8')
      // The commit a drill makes: the pipeline with the drill's id in its context, signed by the real evidence key.
      const ctx = {...pipeline(now).context, anchor: {flag: anchor}, drill: 'd1a2b3c4d5e6f7a8b9c0d1e2'}
      const outcome = await execute(copy, {request: {kind: 'change', files: [{path: IMAGE, content: `${text}# a drill's edit\n`}]}}, {kind: 'apply', signer: () => loadSigner({file: fleet.key}), toolVersion: 'test'}, ctx)
      expect(outcome.status).toBe('applied')
      const made = await copy.readCommit((await copy.head()).oid!)
      expect(made.message).toMatch(/^Airlock-Drill: d1a2b3c4d5e6f7a8b9c0d1e2$/m)
      // Verified as the fleet verifies (no drill id): refused, naming the drill; inside the drill: fine.
      const fleetView = await verifyEvidence(copy, {limits: DEFAULT_LIMITS, anchor, now})
      expect(fleetView.ok).toBe(false)
      expect(fleetView.problems.map((p) => p.code)).toContain('DRILL_COMMIT')
      expect((await verifyEvidence(copy, {limits: DEFAULT_LIMITS, anchor, now, drill: ctx.drill})).ok).toBe(true)
      const cli = await airlock(['evidence', 'verify', '--trust-anchor', anchor, '--json'], {cwd: dir})
      expect(cli.exitCode).toBe(1)
      // A reason in the body cannot make the trailer: only the last paragraph counts.
      expect(drillOf('airlock: x\n\nAirlock-Drill: body\n\nAirlock-Operation: change\n')).toBeNull()
    } finally {
      await t.cleanup()
    }
  })

  it('never touches the source repository: refs, config, work tree and .git are as they were', async () => {
    expect(await snapshot(fleet.dir)).toEqual(before)
  })
})
