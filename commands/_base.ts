import {userInfo} from 'node:os'
import {Command, Flags, type Interfaces} from '@oclif/core'
import {asAirlockError, exitFor, toErrorJson, type Outcome as Exit} from '../control-plane/errors.js'
import {DEFAULT_LIMITS, type Limits} from '../control-plane/limits.js'
import type {Signer} from '../control-plane/crypto/keys.js'
import type {ChangeRequest, Plan} from '../control-plane/plan/plan.js'
import type {PipelineContext, RecordedEvent} from '../control-plane/pipeline/draft.js'
import type {CandidateResult, Mode, Outcome, PipelineInput} from '../control-plane/pipeline/pipeline.js'
import {forTerminal, guardHumanOutput, jsonText, messageLines} from '../control-plane/terminal.js'
import {identityFlags} from './_identity.js'
import {anchorInput} from './_policy.js'
import type {ApplyResult} from '../control-plane/plan/apply.js'
import type {Repository} from '../control-plane/repo/repository.js'
import type {GatePipeline} from '../control-plane/gates/types.js'
import type {Requester} from '../control-plane/plan/plan.js'
import type {AuditEvent, AuditLog} from '../control-plane/audit/log.js'

/**
 * Reports an error: the small JSON shape on stdout with --json, one line on stderr otherwise.
 * Stack traces only with AIRLOCK_DEBUG=1. Returns the exit code from the one table.
 */
export function reportError(err: unknown, json: boolean): number {
  const error = asAirlockError(err)
  if (json) process.stdout.write(`${jsonText(toErrorJson(error))}\n`)
  else process.stderr.write(messageLines('airlock: ', error.message))
  if (process.env.AIRLOCK_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`)
  return exitFor(error)
}

export type PlanOutcome = {outcome: Outcome['status']; plan: Plan; applied: ApplyResult | null; savedTo: string | null; staged?: string[]; found?: CandidateResult[]}

export abstract class AirlockCommand extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    repo: Flags.string({description: 'repository to work on (default: the git top level of the working directory)', helpGroup: 'GLOBAL'}),
  }

  /** The command's reference time, captured once and passed down. */
  readonly now = new Date()
  readonly limits: Limits = DEFAULT_LIMITS

  /** How the command ended when it did not throw; `finally` turns it into the exit code. */
  protected outcome: Exit = 'ok'

  /** This host's audit log, once the command records into it; closed (flushed) in `finally`. */
  private auditLog: AuditLog | null = null
  /** A command that changes something or enforces a decision: an event it cannot record fails it (fail closed). */
  private auditRequired = false

  /** Writes data (JSON lines) to stdout past the human-output guard: JSON escapes its own strings. */
  protected writeData: (text: string) => void = (text) => void process.stdout.write(text)

  /**
   * Human output (no --json) goes through `forHumanStream` on its way to stdout and stderr, as
   * defense in depth: each renderer still passes every field it did not write through
   * `forTerminal`, and a field one forgets still cannot drive the terminal.
   */
  protected override async init(): Promise<void> {
    await super.init()
    if (!this.jsonEnabled()) {
      const raw = guardHumanOutput()
      this.writeData = (text) => void raw.stdout(text)
    }
  }

  protected override async catch(err: Interfaces.CommandError): Promise<void> {
    process.exitCode = reportError(err, this.jsonEnabled())
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    if (!err) process.exitCode = exitFor(this.outcome)
    if (this.auditLog) {
      const log = this.auditLog
      this.auditLog = null
      // Every append already waited for its fdatasync; closing saves the state cache (and makes a checkpoint when one is due).
      await log.close().catch((error: unknown) => this.warnUnrecorded(error))
    }
    return super.finally(err)
  }

  /**
   * Opens this host's audit log (--audit-dir, $AIRLOCK_AUDIT_DIR, else the XDG state folder) for
   * the events this command records. `required`: the command changes something or enforces a
   * decision, and fails closed (AUDIT_UNAVAILABLE) when the log cannot be written; otherwise an
   * unwritable log is a warning. With AIRLOCK_AUDIT_KEY set (a key of role audit), a checkpoint
   * is signed whenever one is due (every 1,024 entries or 60 s).
   */
  protected async openAudit(flags: {'audit-dir'?: string}, required: boolean): Promise<void> {
    this.auditRequired ||= required
    if (this.auditLog) return
    const {AuditLog, auditDirFrom} = await import('../control-plane/audit/log.js')
    try {
      let checkpoint: {signer: Signer; onClose: false} | undefined
      if (process.env.AIRLOCK_AUDIT_KEY) {
        const {loadSigner} = await import('../control-plane/crypto/keys.js')
        checkpoint = {signer: await loadSigner({env: process.env.AIRLOCK_AUDIT_KEY}, 'audit'), onClose: false}
      }
      this.auditLog = await AuditLog.open(auditDirFrom(flags['audit-dir'], process.env), {toolVersion: this.config.version, ...(checkpoint ? {checkpoint} : {})})
    } catch (error) {
      if (this.auditRequired) throw error
      this.warnUnrecorded(error)
    }
  }

  /** Appends one event (the log redacts it before it is written); resolves once it is on disk. */
  protected async recordAudit(event: AuditEvent): Promise<RecordedEvent | undefined> {
    if (!this.auditLog) {
      if (this.auditRequired) {
        const {AirlockError} = await import('../control-plane/errors.js')
        throw new AirlockError('AUDIT_UNAVAILABLE', 'audit log unavailable: it was not opened')
      }
      return undefined
    }
    try {
      return await this.auditLog.append(event)
    } catch (error) {
      if (this.auditRequired) throw error
      this.warnUnrecorded(error)
      return undefined
    }
  }

  private warnUnrecorded(error: unknown): void {
    process.stderr.write(messageLines('airlock: warning: not recorded in the audit log: ', asAirlockError(error).message))
  }


  /** `--json` output: one plain JSON object (oclif's own logJson colourises it token by token). */
  protected override logJson(json: unknown): void {
    process.stdout.write(`${jsonText(json, 2)}\n`)
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
   * identity), the signature checks (platform/), the reference time and where the trust anchor
   * comes from (--trust-anchor, $AIRLOCK_TRUST_ANCHOR; git config is read by the core).
   */
  protected async pipelineContext(repo: Repository, flags: PipelineFlags): Promise<PipelineContext> {
    await this.oneShotWasm()
    // --apply changes the repository: a change that cannot be recorded is not made (fail closed).
    await this.openAudit(flags, flags.apply === true)
    const [{actingIdentity}, {verifyPinned, verifyBundleFor}] = await Promise.all([import('./_identity.js'), import('../platform/images/policy.js')])
    const {now, limits} = this
    const requestedBy = await this.requester(flags.actor)
    return {
      now,
      reason: flags.reason ?? '',
      requestedBy,
      identity: await actingIdentity(flags, repo, now, {record: (e) => this.recordAudit(e), toolVersion: this.config.version}),
      record: (outcome, extra) => this.recordOutcome(outcome, requestedBy.actor, flags, extra),
      anchor: anchorInput(flags),
      limits,
      verifier: {
        pinned: (r, commit, image, digest, trust, extra) => verifyPinned(r, commit, image, digest, trust, now, limits, extra),
        bundle: (r, commit, image, digest, bundle, trust) => verifyBundleFor(r, commit, image, digest, bundle, trust, now, limits),
      },
    }
  }

  /** The record step's sink: the outcome as an OCSF event (API Activity, with the authorization decision). */
  private async recordOutcome(outcome: Outcome, actor: string, flags: PipelineFlags, extra: {drill?: string; operation?: string} = {}): Promise<RecordedEvent | undefined> {
    const {outcomeEvent} = await import('../control-plane/audit/ocsf.js')
    const {hostname} = await import('node:os')
    const mode = flags.apply ? 'apply' : flags.out ? 'save' : 'plan'
    try {
      return await this.recordAudit(outcomeEvent(outcome, {now: new Date(), actor, host: hostname(), toolVersion: this.config.version, mode, ...extra}))
    } catch (error) {
      // After the commit: the change stands, and the command says it was not recorded.
      if (outcome.status !== 'applied') throw error
      const {AirlockError} = await import('../control-plane/errors.js')
      throw new AirlockError('AUDIT_UNAVAILABLE', `the change was applied (commit ${outcome.applied.commit}) but could not be recorded in the audit log: ${asAirlockError(error).message}`, {commit: outcome.applied.commit})
    }
  }

  /**
   * What gates that run changes through the pipeline (the rollback drill, in a throwaway clone)
   * need from the command: this command's pipeline context, the evidence key (loaded only when a
   * gate asks for it), the Sigstore signer for image bundles, and the tool version.
   */
  protected async gatePipeline(repo: Repository, flags: PipelineFlags & {'evidence-key'?: string}): Promise<GatePipeline> {
    const [context, {signImageBundle}] = await Promise.all([this.pipelineContext(repo, flags), import('../platform/images/sign.js')])
    return {context, evidenceSigner: () => this.evidenceSigner(flags['evidence-key']), signImageBundle, toolVersion: this.config.version}
  }

  /** The mode the flags ask for: --apply, --out FILE, or a plan (`stage`: --apply writes the work tree instead of committing). */
  protected mode(flags: {apply?: boolean; out?: string; 'evidence-key'?: string}, stage = false): Mode {
    if (flags.apply && stage) return {kind: 'stage'}
    if (flags.apply) return {kind: 'apply', signer: () => this.evidenceSigner(flags['evidence-key']), toolVersion: this.config.version}
    if (flags.out) return {kind: 'save', out: flags.out}
    return {kind: 'plan'}
  }

  /** A mutating command: its input through the pipeline in the mode its flags ask for, then the outcome rendered. */
  protected async runChange(repo: Repository, input: ChangeRequest | PipelineInput, flags: PipelineFlags & {apply?: boolean; out?: string; 'evidence-key'?: string}, opts: {stage?: boolean} = {}): Promise<PlanOutcome> {
    // Before the pipeline's import: loading it compiles Cedar's wasm, and the flag only counts from then on.
    await this.oneShotWasm()
    const {execute} = await import('../control-plane/pipeline/pipeline.js')
    const given = 'kind' in input ? {request: input} : input
    return this.render(await execute(repo, given, this.mode(flags, opts.stage), await this.pipelineContext(repo, flags)))
  }

  /**
   * Renders an outcome: a refusal is the error (its exit code from the one table); otherwise the
   * plan, what was applied or where it was saved. The JSON keeps the plan, applied and savedTo.
   */
  protected async render(outcome: Outcome): Promise<PlanOutcome> {
    if (outcome.status === 'refused') {
      if (outcome.candidates) Object.assign(outcome.error.details, {found: outcome.candidates})
      throw outcome.error
    }
    const applied = outcome.status === 'applied' ? outcome.applied : null
    const savedTo = outcome.status === 'saved' ? outcome.savedTo : null
    const staged = outcome.status === 'staged' ? outcome.written : null
    if (!this.jsonEnabled()) {
      const {renderPlan} = await import('../control-plane/plan/render.js')
      const tried = outcome.candidates ?? []
      const t = (x: unknown) => forTerminal(String(x))
      if (tried.length > 0) process.stdout.write(`Tried ${tried.length} candidate(s): ${tried.map((c) => `${t(c.layout ?? 'candidate')}${c.via ? ` (${t(c.via)})` : ''} ${c.verified ? 'verifies' : `does not verify (${t(c.reason)})`}`).join('; ')}\n\n`)
      process.stdout.write(renderPlan(outcome.plan, {color: this.color(), applied, staged}))
      if (savedTo) process.stdout.write(`Saved the plan to ${t(savedTo)}; apply it with: airlock apply ${t(savedTo)}\n`)
    }
    if (outcome.status === 'planned' && outcome.checkFailed) {
      if (!this.jsonEnabled() && outcome.refusal) process.stderr.write(messageLines('airlock: ', outcome.refusal.message))
      this.failCheck()
    }
    return {outcome: outcome.status, plan: outcome.plan, applied, savedTo, ...(staged ? {staged} : {}), ...(outcome.candidates ? {found: outcome.candidates} : {})}
  }
}

export type PipelineFlags = {reason?: string; actor?: string; 'trust-anchor'?: string; jwt?: string; jwks?: string; issuer?: string; audience?: string; ca?: string; apply?: boolean; out?: string; 'audit-dir'?: string}

export const auditDirFlag = {
  'audit-dir': Flags.string({description: 'the audit log folder (default: $AIRLOCK_AUDIT_DIR, else $XDG_STATE_HOME/airlock/audit, else ~/.local/state/airlock/audit)', helpGroup: 'AUDIT'}),
}

export const anchorFlag = {
  'trust-anchor': Flags.string({description: 'the commit trust starts at, a full commit id (default: $AIRLOCK_TRUST_ANCHOR, else git config airlock.trustAnchor, which `airlock trust pin` and `airlock init` set)'}),
}

export const planFlags = {
  ...identityFlags,
  ...anchorFlag,
  ...auditDirFlag,
  apply: Flags.boolean({description: 'make the change (default: print the plan only)', default: false}),
  out: Flags.string({description: 'save the plan to FILE, for `airlock apply FILE`'}),
  reason: Flags.string({description: 'why: recorded in the commit and the receipt', default: ''}),
  actor: Flags.string({description: 'who asks (default: AIRLOCK_ACTOR, the CI actor, or the local user)'}),
  'evidence-key': Flags.string({description: 'Ed25519 private key that signs the receipt and commit (default: AIRLOCK_EVIDENCE_KEY)'}),
}
