/**
 * The rollback drill (issue 18; the `rollback-drill` gate and `airlock drill rollback`): on a
 * throwaway clone of the fleet, sign a test digest, promote it to a channel, roll the channel
 * back, then verify the channel holds what it held before and that the history and every receipt
 * verify from the pinned anchor — timing promote → rollback → verify against a recovery target.
 *
 * Every step is the pipeline's own `execute`, with the requests `airlock image sign`,
 * `airlock promote` and `airlock rollback` make: the drill exercises the path an operator takes
 * in an incident, not a second one.
 *
 * Nothing leaves the clone. The source repository is only read (`git clone` of it, its git config
 * for the anchor and the git identity); the clone lives in a temporary folder removed whatever
 * happens. Git config does not travel with a clone, so the anchor is resolved on the source
 * (--trust-anchor, $AIRLOCK_TRUST_ANCHOR, else its airlock.trustAnchor) and handed to every step
 * in the clone as an explicit anchor: the clone's history verifies from the same root of trust,
 * and trust.yaml and the image are read from the clone's HEAD only once it has.
 *
 * Keys: the operator's evidence key signs every commit and receipt in the clone. The test digest
 * is signed with the operator's image key when one is given; otherwise with throwaway image keys
 * (as many as the image's threshold), each first trusted by an `add-key` change signed with the
 * evidence key — acceptable only because the clone is thrown away — so the evidence key is the one
 * key the drill needs. An image whose policy names its keys or identities, or asks for
 * transparency-log entries or timestamps, cannot be met by a throwaway key: the drill then needs
 * the operator's image key, and without it is `not_run`.
 *
 * Outcome: `pass` when the channel is back and everything verifies within the target; `fail` when
 * a step is refused, the result or the evidence does not verify, or it took longer than the target
 * (both named); `not_run` when a prerequisite is missing (no pipeline context, no anchor, no
 * usable key), never `pass`. Invalid input (a duration, an unknown image or channel) throws.
 */
import {randomBytes} from 'node:crypto'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {performance} from 'node:perf_hooks'
import {execa} from 'execa'
import {generateImageKey, loadImageKey, type ImageSigningKey, type Signer} from '../crypto/keys.js'
import {sha256Hex} from '../crypto/digest.js'
import {parseDuration} from '../duration.js'
import {AirlockError, asAirlockError} from '../errors.js'
import {verifyEvidence} from '../evidence/verify.js'
import type {Limits} from '../limits.js'
import {loadImage, loadImages, loadTrust, keysFor} from '../manifests/load.js'
import type {GoldenImage, TrustPolicy} from '../manifests/models.js'
import type {ChangeRequest} from '../plan/plan.js'
import {resolveAnchor, verifiedHead} from '../pipeline/base.js'
import type {PipelineContext} from '../pipeline/draft.js'
import {execute, type Mode} from '../pipeline/pipeline.js'
import {Repository} from '../repo/repository.js'
import type {GatePipeline, GateStatus} from './types.js'

export const DEFAULT_DRILL_CHANNEL = 'canary'
export const DEFAULT_RECOVERY_TARGET = '60s'
/** More throwaway image keys than this would be a threshold no drill should meet by hand. */
const MAX_THROWAWAY_KEYS = 5

export interface RollbackDrillOptions {
  /** The fleet repository; only read. */
  source: Repository
  /** The commit the drill starts from (the suite's verified HEAD). */
  commit: string
  /** Image name (default: the first image in manifests/images/). */
  image?: string
  /** Channel to promote to and roll back (default: canary). */
  channel?: string
  /** A duration such as `60s` (control-plane/duration.ts). */
  recoveryTarget?: string
  /** The command's side of the pipeline; absent: not_run. */
  pipeline?: GatePipeline
  /** The operator's image key (PKCS#8 PEM file); absent: throwaway keys trusted in the clone. */
  imageKey?: string
  /** The reference time: commits, receipts and verification in the clone happen at it. */
  now: Date
  limits: Limits
  /** Milliseconds on a monotonic clock (default: performance.now); tests pass their own. */
  clock?: () => number
  signal?: AbortSignal
  /** Where the throwaway clone's temporary folder is made (default: the OS temporary folder). */
  tmpRoot?: string
}

export type DrillStepName = 'clone' | 'trust-image-key' | 'sign' | 'promote' | 'rollback' | 'verify'

export interface DrillStep {
  step: DrillStepName
  /** The command an operator would type for the same step (the drill calls its core). */
  command: string
  elapsedMs: number
  /** Counted against the recovery target (promote, rollback, verify). */
  timed: boolean
  /** The clone's commit the step made, when it made one. */
  commit?: string
  receipt?: string
}

export interface RollbackDrill {
  status: GateStatus
  reason: string
  image: string | null
  channel: string
  recoveryTarget: string
  targetMs: number
  /** promote + rollback + verify, in ms (null when the drill did not get that far). */
  totalMs: number | null
  /** clone + keys + sign, in ms (not counted against the target). */
  setupMs: number
  steps: DrillStep[]
  digests: {before: string | null; test: string | null; after: string | null}
  imageKey: 'given' | 'throwaway' | null
  anchor: string | null
  /**
   * The drill's id: every commit it makes carries it (`Airlock-Drill: <id>`, under the evidence
   * key's signature), and such a commit verifies only in the history check of this drill — never
   * in the fleet, should anything copy it out of the throwaway clone.
   */
  id: string
  sourceCommit: string
  /** The clone's last commit (gone with the clone; it names what was verified). */
  finalCommit: string | null
  /** Receipts the drill's promote and rollback wrote in the clone. */
  receipts: string[]
  verification: {ok: boolean; receipts: number; receiptsVerified: number; commitsWalked: number; problems: Array<{code: string; message: string}>} | null
  /** Where the record step put each step's event in this host's audit log (empty: nothing recorded). */
  audit: Array<{index: number; fingerprint: string; operation: string | null; status: string; commit: string | null}>
}

/** A pipeline step in the clone that did not apply: its outcome's reason. */
class StepRefused extends Error {
  constructor(
    readonly step: DrillStepName,
    readonly error: AirlockError,
  ) {
    super(error.message)
  }
}

/**
 * The environment of the git commands that make the clone: none of the variables that would point
 * them at another repository (GIT_DIR set by a hook would make `git -C clone` work on the source).
 */
const CLONE_ENV: Record<string, string | undefined> = {
  GIT_TERMINAL_PROMPT: '0',
  ...Object.fromEntries(['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_COMMON_DIR', 'GIT_NAMESPACE', 'GIT_CEILING_DIRECTORIES'].map((k) => [k, undefined])),
}

/** The reasons a key file cannot be used: a prerequisite missing, not a failed drill. */
const KEY_PROBLEMS = new Set(['KEY_MISSING', 'KEY_INVALID', 'KEY_PERMISSIONS'])

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`
const short = (digest: string | null) => (digest ? `${digest.slice(0, 19)}…` : 'none')

/** The test digest: well-formed, clearly not a real image, and new for this run. */
export function drillDigest(image: string, channel: string, now: Date): string {
  return `sha256:${sha256Hex(`airlock rollback drill ${image}/${channel} ${now.toISOString()}`)}`
}

/**
 * Why throwaway image keys cannot sign a test digest of `image` (null: they can). A throwaway key
 * meets only a policy that takes any trusted image key, asks for no log entries or timestamps,
 * and needs a handful of signatures at most.
 */
export function throwawayKeyProblem(image: GoldenImage, threshold: number): string | null {
  const spec = image.verification ?? {}
  if (spec.keys || spec.identities) return `${image.file} names the keys or identities that must sign its digests (spec.verification), which a throwaway key cannot be: give the drill an image key it names (--image-key, with.image_key)`
  if ((spec.tlogThreshold ?? 0) > 0 || (spec.timestampThreshold ?? 0) > 0) return `${image.file} requires transparency-log entries or timestamps (spec.verification), which a locally signed test digest cannot have`
  if (threshold > MAX_THROWAWAY_KEYS) return `${image.name} needs ${threshold} image signatures; the drill makes at most ${MAX_THROWAWAY_KEYS} throwaway keys: give it an image key (--image-key, with.image_key)`
  return null
}

/** The image and channel to drill, read at the clone's verified commit (throws on invalid input). */
async function drillTarget(repo: Repository, commit: string, opts: RollbackDrillOptions, channel: string): Promise<GoldenImage> {
  let image: GoldenImage
  if (opts.image !== undefined) image = await loadImage(repo, commit, opts.image, opts.limits)
  else {
    const images = (await loadImages(repo, commit, opts.limits)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    if (!images[0]) throw new AirlockError('UNKNOWN_IMAGE', `no image in manifests/images/ at ${commit.slice(0, 12)}: nothing to drill`, {field: 'image'})
    image = images[0]
  }
  if (!image.channels[channel]) throw new AirlockError('UNKNOWN_CHANNEL', `image ${image.name} has no channel "${channel}" (channels: ${Object.keys(image.channels).join(', ')})`, {image: image.name, channel, field: 'channel'})
  return image
}

/**
 * Runs the drill. Returns its report (pass, fail or not_run, with the reason); throws only on
 * invalid input (a duration, an unknown image or channel, a malformed anchor). The temporary
 * clone is removed before it returns or throws, whatever happened.
 */
export async function runRollbackDrill(opts: RollbackDrillOptions): Promise<RollbackDrill> {
  const recoveryTarget = opts.recoveryTarget ?? DEFAULT_RECOVERY_TARGET
  const targetMs = parseDuration(recoveryTarget, 'recovery_target')
  const channel = opts.channel ?? DEFAULT_DRILL_CHANNEL
  const report: RollbackDrill = {
    status: 'not_run',
    reason: '',
    image: opts.image ?? null,
    channel,
    recoveryTarget,
    targetMs,
    totalMs: null,
    setupMs: 0,
    steps: [],
    digests: {before: null, test: null, after: null},
    imageKey: null,
    anchor: null,
    id: randomBytes(12).toString('hex'),
    sourceCommit: opts.commit,
    finalCommit: null,
    receipts: [],
    audit: [],
    verification: null,
  }
  const notRun = (reason: string): RollbackDrill => ({...report, status: 'not_run', reason})

  // Prerequisites the drill cannot do without are `not_run`, never a pass; these need no clone.
  if (!opts.pipeline) return notRun('no pipeline context was handed to the drill (it runs changes in a throwaway clone: identity, anchor and keys come from the command)')
  const pipeline = opts.pipeline
  // The source's anchor (its git config is read here, as a clone carries none), handed to the clone.
  const anchor = await resolveAnchor(opts.source, pipeline.context.anchor)
  if (!anchor.commit) return notRun('no trust anchor is pinned (--trust-anchor, AIRLOCK_TRUST_ANCHOR or git config airlock.trustAnchor): the clone could not verify its history')
  report.anchor = anchor.commit
  let signer: Signer
  try {
    signer = await pipeline.evidenceSigner()
  } catch (error) {
    const e = asAirlockError(error)
    if (KEY_PROBLEMS.has(e.code)) return notRun(`no usable evidence key to sign the drill's commits and receipts: ${e.message}`)
    throw error
  }
  let given: ImageSigningKey | null = null
  if (opts.imageKey !== undefined) {
    try {
      given = await loadImageKey(opts.imageKey)
    } catch (error) {
      const e = asAirlockError(error)
      if (KEY_PROBLEMS.has(e.code)) return notRun(`the image key cannot be used: ${e.message}`)
      throw error
    }
  }
  const root = await mkdtemp(join(opts.tmpRoot ?? tmpdir(), 'airlock-drill-'))
  try {
    return await drill(opts, report, {root, anchor: anchor.commit, signer, given, channel, targetMs, clock: opts.clock ?? (() => performance.now()), pipeline})
  } finally {
    await rm(root, {recursive: true, force: true, maxRetries: 3})
  }
}

interface DrillRun {
  root: string
  anchor: string
  signer: Signer
  given: ImageSigningKey | null
  channel: string
  targetMs: number
  clock: () => number
  pipeline: GatePipeline
}

async function drill(opts: RollbackDrillOptions, report: RollbackDrill, run: DrillRun): Promise<RollbackDrill> {
  const {clock, channel, signer, given, pipeline} = run
  const steps = report.steps
  let current: DrillStepName = 'clone'
  const fail = (reason: string): RollbackDrill => ({...report, status: 'fail', reason})
  const notRun = (reason: string): RollbackDrill => ({...report, status: 'not_run', reason})
  const abortCheck = () => {
    if (opts.signal?.aborted) throw new StepRefused(current, new AirlockError('INTERNAL', `aborted before ${current} (${String(opts.signal.reason ?? 'timeout')})`))
  }
  try {
    // 1. The throwaway clone, at the drill's commit, on the source's branch name.
    abortCheck()
    const dir = join(run.root, 'fleet')
    const t0 = clock()
    const head = await opts.source.head()
    const branch = head.ref.startsWith('refs/heads/') ? head.ref.slice('refs/heads/'.length) : 'main'
    const git = (args: string[]) => execa('git', ['-c', 'core.hooksPath=/dev/null', ...args], {cancelSignal: opts.signal, env: CLONE_ENV, stdin: 'ignore'})
    // An empty template: no hooks, nothing of the operator's init.templateDir in the clone.
    await git(['clone', '--quiet', '--no-checkout', '--template=', '--', resolve(opts.source.dir), dir]).catch((error: Error) => {
      throw new StepRefused('clone', new AirlockError('INTERNAL', `git clone failed: ${error.message.split('\n')[0]}`))
    })
    await git(['-C', dir, 'checkout', '--quiet', '-B', branch, opts.commit])
    // Who commits in the clone: the source's git identity (its local config does not travel either).
    const who = await opts.source.gitIdentity()
    if (who.name) await git(['-C', dir, 'config', 'user.name', who.name])
    if (who.email) await git(['-C', dir, 'config', 'user.email', who.email])
    const clone = await Repository.open(dir)
    // Everything the drill reads — trust, the image, its channel — comes from the clone's HEAD once
    // its history verifies from the source's anchor (the first pipeline step then walks no further).
    const anchorInput = {flag: run.anchor}
    const verified = await verifiedHead(clone, {anchor: anchorInput, limits: opts.limits, now: opts.now}).catch((error: unknown) => {
      throw new StepRefused('clone', asAirlockError(error))
    })
    steps.push({step: 'clone', command: `git clone --no-checkout <repository> <tmp> && git checkout -B ${branch} ${opts.commit}`, elapsedMs: clock() - t0, timed: false, commit: verified.commit})

    // 2. What to drill, and whether the keys can do it in this fleet.
    const image = await drillTarget(clone, verified.commit, opts, channel)
    const name = image.name
    const before = image.channels[channel]!.digest
    report.image = name
    report.digests.before = before
    const trust = await loadTrust(clone, verified.commit, opts.limits)
    const at = `${trust.file} at ${verified.commit.slice(0, 12)}`
    if (!keysFor(trust, 'evidence', opts.now).some((k) => k.id === signer.keyid)) {
      return notRun(`the evidence key ${signer.keyid.slice(0, 16)}… is not a valid evidence key of ${at}: the drill's commits would not verify`)
    }
    const threshold = image.verification?.threshold ?? trust.thresholds.image
    if (given) {
      if (!keysFor(trust, 'image', opts.now).some((k) => k.id === given.keyid)) return notRun(`the image key ${given.keyid.slice(0, 16)}… is not a valid image key of ${at}`)
      if (threshold > 1) return notRun(`${name} needs ${threshold} image signatures; the drill signs with the one image key given (without one, it makes ${threshold} throwaway keys)`)
      report.imageKey = 'given'
    } else {
      const problem = throwawayKeyProblem(image, threshold)
      if (problem) return notRun(problem)
      report.imageKey = 'throwaway'
    }
    const test = drillDigest(name, channel, opts.now)
    report.digests.test = test

    // Every step: the pipeline in the clone, with the anchor handed in (never the clone's config).
    // The record step writes each outcome to this host's audit log marked with the drill's id (a
    // rehearsal, never a change of the fleet); where each went is kept so the gate checks the log.
    const sink = pipeline.context.record
    const record: PipelineContext['record'] = sink
      ? async (outcome, extra) => {
          const at = await sink(outcome, extra)
          if (at) report.audit.push({...at, operation: outcome.plan?.operation ?? null, status: outcome.status, commit: outcome.status === 'applied' ? outcome.applied.commit : null})
          return at
        }
      : undefined
    const ctx: PipelineContext = {...pipeline.context, now: opts.now, anchor: anchorInput, reason: `rollback drill: ${name}/${channel} in a throwaway clone`, record, drill: report.id}
    const mode: Mode = {kind: 'apply', signer: async () => signer, toolVersion: pipeline.toolVersion}
    const apply = async (step: DrillStepName, command: string, timed: boolean, request: ChangeRequest) => {
      current = step
      abortCheck()
      const started = clock()
      const outcome = await execute(clone, {request}, mode, ctx)
      const elapsedMs = clock() - started
      if (outcome.status === 'refused') throw new StepRefused(step, outcome.error)
      if (outcome.status !== 'applied') throw new StepRefused(step, new AirlockError('INTERNAL', `${command} ended ${outcome.status}, not applied`))
      steps.push({step, command, elapsedMs, timed, commit: outcome.applied.commit, receipt: outcome.applied.receipt})
      report.finalCommit = outcome.applied.commit
      return outcome.applied
    }

    // 3. Keys and the test digest's signatures (setup, not timed).
    const keys: ImageSigningKey[] = given ? [given] : []
    for (let i = 0; !given && i < threshold; i++) {
      const {key} = generateImageKey('ecdsa-p256')
      const keyName = `drill-image-${i + 1}`
      await apply('trust-image-key', `airlock keys generate ${keyName} --role image --algorithm ecdsa-p256 --apply`, false, {
        kind: 'add-key',
        name: keyName,
        role: 'image',
        algorithm: 'ecdsa-p256',
        publicKey: Buffer.from(key.publicKey).toString('base64'),
        validFrom: opts.now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      })
      keys.push(key)
    }
    for (const key of keys) {
      current = 'sign'
      const bundle = await pipeline.signImageBundle(image.repository, test, key)
      await apply('sign', `airlock image sign ${name}@${test} --key <${given ? 'image' : 'throwaway'} key ${key.keyid.slice(0, 16)}> --apply`, false, {
        kind: 'store-signature',
        operation: 'image-sign',
        image: name,
        digest: test,
        bundle,
        details: {keyid: key.keyid, algorithm: key.algorithm},
      })
    }
    report.setupMs = steps.reduce((sum, x) => sum + x.elapsedMs, 0)

    // 4. The timed part: promote, roll back, verify.
    const promoted = await apply('promote', `airlock promote ${name} --to ${channel} --digest ${test} --apply`, true, {kind: 'promote', image: name, to: channel, digest: test})
    const rolled = await apply('rollback', `airlock rollback ${name} --channel ${channel} --to previous --reason "rollback drill" --apply`, true, {kind: 'rollback', image: name, channel, to: 'previous'})
    report.receipts = [promoted.receipt, rolled.receipt]
    current = 'verify'
    abortCheck()
    const started = clock()
    const after = (await loadImage(clone, rolled.commit, name, opts.limits)).channels[channel]?.digest ?? null
    const evidence = await verifyEvidence(clone, {limits: opts.limits, anchor: run.anchor, now: opts.now, drill: report.id})
    steps.push({step: 'verify', command: `airlock evidence verify --trust-anchor ${run.anchor}`, elapsedMs: clock() - started, timed: true, commit: evidence.head})
    report.digests.after = after
    const ours = evidence.receipts.filter((r) => report.receipts.includes(r.path))
    report.verification = {
      ok: evidence.ok,
      receipts: evidence.receipts.length,
      receiptsVerified: evidence.receipts.filter((r) => r.ok).length,
      commitsWalked: evidence.commitsWalked,
      problems: evidence.problems.slice(0, 5).map((p) => ({code: p.code, message: p.message})),
    }
    report.totalMs = steps.filter((x) => x.timed).reduce((sum, x) => sum + x.elapsedMs, 0)
    const took = `promote → rollback → verify took ${seconds(report.totalMs)}`

    // 5. The verdict: the channel is back, everything verifies, within the target.
    if (after !== before) return fail(`after the rollback ${name}/${channel} holds ${short(after)}, not ${short(before)} as before the drill`)
    if (!evidence.ok) {
      const first = evidence.problems[0]
      return fail(`the clone's evidence does not verify after the drill${first ? `: ${first.code} ${first.message}` : ''}`)
    }
    if (ours.length !== 2 || !ours.every((r) => r.ok)) return fail(`the drill's receipts do not verify (${report.receipts.join(', ')})`)
    if (report.totalMs > run.targetMs) return fail(`${took}, over the recovery target ${report.recoveryTarget} (${seconds(run.targetMs)})`)
    return {...report, status: 'pass', reason: `${took}, within the recovery target ${report.recoveryTarget}; ${name}/${channel} is back at ${short(before)} and ${report.verification.receiptsVerified} receipts verify`}
  } catch (error) {
    if (error instanceof StepRefused) return fail(`${error.step} in the throwaway clone failed: ${error.error.code} ${error.error.message}`)
    if (opts.signal?.aborted) return fail(`aborted during ${current} (${String(opts.signal.reason ?? 'timeout')})`)
    const e = asAirlockError(error)
    // Invalid input (an unknown image or channel) and the unanticipated are thrown, not a verdict.
    if (e.code === 'INTERNAL' || ['USAGE', 'UNKNOWN_IMAGE', 'UNKNOWN_CHANNEL'].includes(e.code)) throw error
    return fail(`${current} in the throwaway clone failed: ${e.code} ${e.message}`)
  }
}
