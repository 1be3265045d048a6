import {userInfo} from 'node:os'
import {Command, Flags, type Interfaces} from '@oclif/core'
import {AirlockError, asAirlockError, exitFor, toErrorJson, type Outcome} from '../control-plane/errors.js'
import {DEFAULT_LIMITS, type Limits} from '../control-plane/limits.js'
import type {Signer} from '../control-plane/crypto/keys.js'
import type {ChangeRequest, Plan} from '../control-plane/plan/plan.js'
import type {PipelineContext} from '../control-plane/pipeline/draft.js'
import {identityFlags} from './_identity.js'
import type {ApplyResult} from '../control-plane/plan/apply.js'
import type {Repository} from '../control-plane/repo/repository.js'
import type {Requester} from '../control-plane/plan/plan.js'

/**
 * Reports an error: the small JSON shape on stdout with --json, one line on stderr otherwise.
 * Stack traces only with AIRLOCK_DEBUG=1. Returns the exit code from the one table.
 */
export function reportError(err: unknown, json: boolean): number {
  const error = asAirlockError(err)
  if (json) process.stdout.write(`${JSON.stringify(toErrorJson(error))}\n`)
  else process.stderr.write(`airlock: ${error.message}\n`)
  if (process.env.AIRLOCK_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`)
  return exitFor(error)
}

export type PlanOutcome = {plan: Plan; applied: ApplyResult | null; savedTo: string | null}

export abstract class AirlockCommand extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    repo: Flags.string({description: 'repository to work on (default: the git top level of the working directory)', helpGroup: 'GLOBAL'}),
  }

  /** The command's reference time, captured once and passed down. */
  protected readonly now = new Date()
  protected readonly limits: Limits = DEFAULT_LIMITS

  /** How the command ended when it did not throw; `finally` turns it into the exit code. */
  protected outcome: Outcome = 'ok'

  protected override async catch(err: Interfaces.CommandError): Promise<void> {
    process.exitCode = reportError(err, this.jsonEnabled())
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    if (!err) process.exitCode = exitFor(this.outcome)
    return super.finally(err)
  }

  /** `--json` output: one plain JSON object (oclif's own logJson colourises it token by token). */
  protected override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`)
  }

  /** A check that ran and failed (exit 1); the result is still printed. */
  protected failCheck(): void {
    this.outcome = 'check_failed'
  }

  protected color(): boolean {
    return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && !this.jsonEnabled()
  }

  protected async repository(dir: string | undefined): Promise<Repository> {
    const {Repository, findTopLevel} = await import('../control-plane/repo/repository.js')
    return Repository.open(dir ?? (await findTopLevel(process.cwd())))
  }

  protected requester(actor: string | undefined): Promise<Requester> {
    return import('../control-plane/evidence/requester.js').then((m) => m.requesterFrom(process.env, actor, userInfo().username))
  }

  protected async evidenceSigner(file: string | undefined): Promise<Signer> {
    const {loadSigner} = await import('../control-plane/crypto/keys.js')
    return loadSigner({file, env: process.env.AIRLOCK_EVIDENCE_KEY})
  }

  /**
   * For commands that make a few policy decisions and exit: compile Cedar's wasm with Liftoff
   * only. Optimizing it in the background (TurboFan) costs more than a one-shot run gains on two
   * cores (docs/benchmarks.md); long-running uses (--batch, serve) keep the default.
   */
  protected async oneShotWasm(): Promise<void> {
    const {setFlagsFromString} = await import('node:v8')
    setFlagsFromString('--liftoff-only')
  }

  /**
   * What the pipeline needs from the outside world: who acts (a verified token, or the local git
   * identity), the signature checks (platform/), the reference time and the trust anchor flag.
   */
  protected async pipelineContext(repo: Repository, flags: PipelineFlags): Promise<PipelineContext> {
    await this.oneShotWasm()
    const [{actingIdentity}, {verifyPinned, verifyBundleFor}] = await Promise.all([import('./_identity.js'), import('../platform/images/policy.js')])
    const {now, limits} = this
    return {
      now,
      reason: flags.reason ?? '',
      requestedBy: await this.requester(flags.actor),
      identity: await actingIdentity(flags, repo, now),
      ...(flags['trust-anchor'] ? {anchor: flags['trust-anchor']} : {}),
      limits,
      verifier: {
        pinned: (r, commit, image, digest, trust, extra) => verifyPinned(r, commit, image, digest, trust, now, limits, extra),
        bundle: (r, commit, image, digest, bundle, trust) => verifyBundleFor(r, commit, image, digest, bundle, trust, now, limits),
      },
    }
  }

  /** A mutating command: the request through the pipeline, then save, apply, render. */
  protected async runChange(repo: Repository, request: ChangeRequest, flags: PipelineFlags & {apply: boolean; out?: string; 'evidence-key'?: string}): Promise<PlanOutcome> {
    const {planChange} = await import('../control-plane/pipeline/pipeline.js')
    const plan = await planChange(repo, request, await this.pipelineContext(repo, flags))
    return this.finishPlan(repo, plan, flags)
  }

  /** The shared tail of every mutating command: save (--out), apply (--apply), render. */
  protected async finishPlan(repo: Repository, plan: Plan, flags: {apply: boolean; out?: string; 'evidence-key'?: string}): Promise<PlanOutcome> {
    const {refusal, applyChange} = await import('../control-plane/pipeline/pipeline.js')
    const refused = refusal(plan)
    // Refused before anything is applied or saved; a plan-only run shows the plan instead.
    if (refused && (flags.apply || flags.out)) throw refused
    const signer = flags.apply ? await this.evidenceSigner(flags['evidence-key']) : null
    let savedTo: string | null = null
    if (flags.out) {
      const [{writeFileAtomic}, {serializePlan}, {resolve}] = await Promise.all([
        import('../control-plane/repo/files.js'),
        import('../control-plane/plan/plan.js'),
        import('node:path'),
      ])
      savedTo = resolve(flags.out)
      await writeFileAtomic(savedTo, serializePlan(plan))
    }
    let applied: ApplyResult | null = null
    if (signer && plan.changes.length === 0) {
      // Nothing to change may mean an earlier apply committed and was killed before the work
      // tree caught up: say so rather than succeed silently over a staged revert.
      const {unfinishedCheckout} = await import('../control-plane/plan/repair.js')
      const [left] = await unfinishedCheckout(repo)
      if (left) throw new AirlockError('UNCOMMITTED_CHANGES', `nothing to apply, but ${left.problem}; run \`airlock repair --apply\``, {finding: left})
    }
    if (signer && plan.changes.length > 0) applied = await applyChange(repo, plan, {signer, now: this.now, toolVersion: this.config.version, limits: this.limits})
    if (!this.jsonEnabled()) {
      const {renderPlan} = await import('../control-plane/plan/render.js')
      process.stdout.write(renderPlan(plan, {color: this.color(), applied}))
      if (savedTo) process.stdout.write(`Saved the plan to ${savedTo}; apply it with: airlock apply ${flags.out}\n`)
    }
    // A base whose history does not verify is a failed check even for a plan-only run.
    if (refused?.code === 'BASE_UNVERIFIED') {
      if (!this.jsonEnabled()) process.stderr.write(`airlock: ${refused.message}\n`)
      this.failCheck()
    }
    return {plan, applied, savedTo}
  }
}

type PipelineFlags = {reason?: string; actor?: string; 'trust-anchor'?: string; jwt?: string; jwks?: string; issuer?: string; audience?: string; ca?: string}

export const anchorFlag = {
  'trust-anchor': Flags.string({description: 'the commit trust starts at (default: git config airlock.trustAnchor, else the one root commit)'}),
}

export const planFlags = {
  ...identityFlags,
  ...anchorFlag,
  apply: Flags.boolean({description: 'make the change (default: print the plan only)', default: false}),
  out: Flags.string({description: 'save the plan to FILE, for `airlock apply FILE`'}),
  reason: Flags.string({description: 'why: recorded in the commit and the receipt', default: ''}),
  actor: Flags.string({description: 'who asks (default: AIRLOCK_ACTOR, the CI actor, or the local user)'}),
  'evidence-key': Flags.string({description: 'Ed25519 private key that signs the receipt and commit (default: AIRLOCK_EVIDENCE_KEY)'}),
}
