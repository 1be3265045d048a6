import {Flags} from '@oclif/core'
import type {GateEvent, SuiteRun} from '../control-plane/gates/runner.js'
import type {GateRunRecord, TestResultStatement} from '../control-plane/gates/types.js'
import {forTerminal as t} from '../control-plane/terminal.js'
import {AirlockCommand, anchorFlag, auditDirFlag} from './_base.js'
import {identityFlags} from './_identity.js'

export const gateRunFlags = {
  ...identityFlags,
  ...anchorFlag,
  ...auditDirFlag,
  host: Flags.boolean({description: 'this is a lab host (nested virtualization): run the gates that require one (default: they are not_run and do not fail the run)', default: false}),
  jobs: Flags.integer({description: 'gates run at once', default: 2, min: 1, max: 64}),
  junit: Flags.string({description: 'also write the run as JUnit XML to FILE (a testcase per gate)'}),
  sarif: Flags.string({description: 'also write the findings the gates returned as SARIF 2.1.0 to FILE'}),
  apply: Flags.boolean({description: 'commit the signed receipt to docs/evidence/ through the pipeline (authorized, signed by the evidence key)', default: false, exclusive: ['out']}),
  out: Flags.string({description: 'write the signed receipt (DSSE) to FILE instead of committing it', exclusive: ['apply']}),
  'evidence-key': Flags.string({description: 'Ed25519 private key that signs the receipt (and commit with --apply) (default: AIRLOCK_EVIDENCE_KEY)'}),
  reason: Flags.string({description: 'why: recorded in the commit with --apply', default: ''}),
  actor: Flags.string({description: 'who asks (default: AIRLOCK_ACTOR, the CI actor, or the local user)'}),
  example: exampleFlag('run on'),
}

/** --example: a command on the embedded example fleet instead of a repository. */
export function exampleFlag(verb: string) {
  return Flags.boolean({
    description: `${verb} the embedded example fleet: its signed history (examples/fleet.bundle) verified from the anchor pinned in airlock's code, the top-level manifests/, policies/ and docs/evidence/ checked equal to its tip`,
    default: false,
    exclusive: ['repo', 'trust-anchor', 'apply', 'out'],
  })
}

/** Runs `fn` on a verified temporary clone of the example fleet (removed afterwards), saying what was verified unless --json. */
export async function onExampleFleet<T>(cmd: AirlockCommand, fn: (fleet: {dir: string; anchor: string}) => Promise<T>): Promise<T> {
  const {openExampleFleet, EXAMPLE_BUNDLE} = await import('../control-plane/example/fleet.js')
  const fleet = await openExampleFleet(cmd.config.root, cmd.limits, cmd.now)
  try {
    if (!cmd.jsonEnabled()) cmd.log(`Example fleet: ${EXAMPLE_BUNDLE}, ${fleet.commits} signed commits verified from the anchor pinned in airlock (${fleet.anchor.slice(0, 12)}); manifests/, policies/ and docs/evidence/ (${fleet.files} files) equal its tip ${fleet.head.slice(0, 12)}.`)
    return await fn(fleet)
  } finally {
    await fleet.cleanup()
  }
}
type GateRunFlags = {
  repo?: string
  'trust-anchor'?: string
  host: boolean
  jobs: number
  junit?: string
  sarif?: string
  apply: boolean
  out?: string
  'evidence-key'?: string
  reason: string
  actor?: string
  jwt?: string
  jwks?: string
  issuer?: string
  audience?: string
  ca?: string
  example?: boolean
  'audit-dir'?: string
}

export interface GateRunOutput {
  suite: string
  result: SuiteRun['result']
  exitCode: 0 | 1
  commit: string
  branch: string
  host: boolean
  startedAt: string
  finishedAt: string
  gates: GateRunRecord[]
  passedTests: string[]
  warnedTests: string[]
  failedTests: string[]
  findings: SuiteRun['findings']
  statement: TestResultStatement
  receipt: {committed: {commit: string; path: string}} | {file: string} | null
}

/** `airlock gate run SUITE`, `airlock preflight`, `airlock postsession`: one suite on the verified HEAD. */
export abstract class GateRunCommand extends AirlockCommand {
  protected async runGates(suite: string, flags: GateRunFlags): Promise<GateRunOutput> {
    if (!flags.example) return this.runSuiteOn(suite, flags)
    const out = await onExampleFleet(this, (fleet) => this.runSuiteOn(suite, {...flags, repo: fleet.dir, 'trust-anchor': fleet.anchor}, true))
    if (!this.jsonEnabled()) {
      this.log(
        [
          '',
          'Next:',
          '  airlock gate list --example                 what each suite runs (manifests/gates.yaml)',
          '  airlock gate report --example               the claim level each control area\'s signed receipts support',
          '  airlock init DIR --apply                    a fleet of your own: keys, trust.yaml, policies, gates.yaml, its anchor pinned',
          '  AIRLOCK_EVIDENCE_KEY=DIR/keys/evidence.key airlock preflight --repo DIR --apply',
          '                                              run it there and record the signed receipt in DIR/docs/evidence/',
          '  airlock preflight --repo DIR --host         on a lab host with nested virtualization: the host gates run too',
        ].join('\n'),
      )
    }
    return out
  }

  private async runSuiteOn(suite: string, flags: GateRunFlags, example = false): Promise<GateRunOutput> {
    const [{verifiedHead}, {runGateSuite, requireGateSuites}, {suiteGates}] = await Promise.all([import('./_policy.js'), import('../control-plane/gates/run-suite.js'), import('../control-plane/gates/suite.js')])
    // The gates file, like every desired-state file, is read only from a HEAD whose history verifies.
    const head = await verifiedHead(flags, this)
    await this.oneShotWasm()
    const gates = suiteGates(await requireGateSuites(head.repo, head.commit, this.limits), suite)
    // Gates that run changes (the rollback drill, in a throwaway clone) get this command's side of
    // the pipeline: who acts, the anchor, the evidence key. Built only when the suite has one.
    const recording = flags.apply || flags.out !== undefined
    if (recording) await (await import('../control-plane/gates/run-suite.js')).requireCleanWorkTree(head.repo, head.commit)
    // Each gate's result goes into this host's audit log; a run whose receipt is recorded fails closed without it.
    await this.openAudit(flags, recording)
    const {auditDirFrom} = await import('../control-plane/audit/log.js')
    const pipeline = gates.some((g) => g.uses === 'builtin/rollback-drill') ? await this.gatePipeline(head.repo, flags) : undefined
    const display = await this.display(suite, gates.map((g) => g.id))
    const {run, statement} = await runGateSuite({
      repo: head.repo,
      commit: head.commit,
      branch: head.branch,
      anchor: head.source.anchor.commit,
      suite,
      host: flags.host,
      jobs: flags.jobs,
      limits: this.limits,
      now: this.now,
      // The display's clock: elapsed times only (decisions use `now`).
      clock: () => new Date(),
      toolVersion: this.config.version,
      env: {AIRLOCK_ROOT: this.config.root},
      onEvent: display.onEvent,
      pipeline,
      recording,
      auditDir: auditDirFrom(flags['audit-dir'], process.env),
    })
    await display.done()
    const [{gateFindingEvent}, {hostname}] = await Promise.all([import('../control-plane/audit/ocsf.js'), import('node:os')])
    const uses = new Map(gates.map((g) => [g.id, g]))
    for (const g of run.gates) {
      const spec = uses.get(g.id)
      await this.recordAudit(
        gateFindingEvent({
          now: new Date(),
          suite,
          gate: {id: g.id, ...(spec?.uses ? {uses: spec.uses} : {}), ...(spec?.run ? {run: spec.run} : {}), status: g.status, reason: g.reason, mode: g.mode, required: g.required},
          run: {commit: head.commit, result: run.result, host: hostname()},
          toolVersion: this.config.version,
        }),
      )
    }
    const outputs = await import('../control-plane/gates/outputs.js')
    const {writeFileAtomic} = await import('../control-plane/repo/files.js')
    if (flags.junit) await writeFileAtomic(flags.junit, outputs.junitXml(run))
    if (flags.sarif) await (await import('../control-plane/gates/sarif.js')).writeSarif(flags.sarif, run.findings, {category: `airlock/${suite}`, airlockVersion: this.config.version})
    let receipt: GateRunOutput['receipt'] = null
    if (flags.apply) receipt = await this.commitReceipt(head.repo, statement, flags)
    else if (flags.out) receipt = await this.writeReceipt(head, statement, flags.out, flags['evidence-key'])
    if (process.env.GITHUB_STEP_SUMMARY) {
      const {appendFile} = await import('node:fs/promises')
      const where = receipt && 'committed' in receipt ? receipt.committed.path : receipt && 'file' in receipt ? receipt.file : null
      await appendFile(process.env.GITHUB_STEP_SUMMARY, outputs.stepSummary(run, where))
    }
    if (!this.jsonEnabled()) {
      // Each gate counted once, by how it ended; the not-run ones that fail the run said so.
      const count = (status: string) => run.gates.filter((g) => g.status === status).length
      const blocking = run.failedTests.length - run.gates.filter((g) => g.status === 'fail' && g.mode === 'enforce' && g.required).length
      this.log(`\n${suite}: ${run.result} — ${count('pass')} passed, ${run.warnedTests.length} warned, ${count('fail') - run.warnedTests.length} failed, ${count('not_run')} not run${blocking > 0 ? ` (${blocking} of them required, which fails the run)` : ''}${flags.host ? '' : '; without --host, gates that need a lab host are not run and do not fail the run'}`)
      // A finding is named by rule, file and line (a secret never appears, only its keyed fingerprint).
      const shown = run.findings.filter((f) => !f.suppression).slice(0, 20)
      for (const f of shown) this.log(`  ${t(f.ruleId)}  ${t(f.file)}${f.line ? `:${f.line}` : ''}${f.fingerprint ? `  fingerprint ${f.fingerprint.slice(0, 16)}` : ''}`)
      const more = run.findings.filter((f) => !f.suppression).length - shown.length
      if (more > 0) this.log(`  … ${more} more finding(s): --json or --sarif FILE lists them all`)
      if (receipt && 'committed' in receipt) this.log(`Recorded the signed receipt ${t(receipt.committed.path)} in commit ${t(receipt.committed.commit)}`)
      else if (receipt) this.log(`Wrote the signed receipt to ${t(receipt.file)}`)
      else if (!example) this.log('Nothing recorded: --apply commits the signed receipt to docs/evidence/, --out FILE writes it to a file.')
    }
    if (run.exitCode !== 0) this.failCheck()
    return {suite, result: run.result, exitCode: run.exitCode, commit: head.commit, branch: head.branch, host: run.host, startedAt: run.startedAt, finishedAt: run.finishedAt, gates: run.gates, passedTests: run.passedTests, warnedTests: run.warnedTests, failedTests: run.failedTests, findings: run.findings, statement, receipt}
  }

  /** --apply: the receipt through the pipeline (a gate-receipt change: authorized, signed, one commit). */
  private async commitReceipt(repo: import('../control-plane/repo/repository.js').Repository, statement: TestResultStatement, flags: GateRunFlags): Promise<GateRunOutput['receipt']> {
    const {execute} = await import('../control-plane/pipeline/pipeline.js')
    const outcome = await execute(repo, {request: {kind: 'gate-receipt', statement: JSON.stringify(statement)}}, this.mode({apply: true, 'evidence-key': flags['evidence-key']}), await this.pipelineContext(repo, flags))
    if (outcome.status === 'refused') throw outcome.error
    if (outcome.status !== 'applied') {
      const {AirlockError} = await import('../control-plane/errors.js')
      throw new AirlockError('INTERNAL', `recording the receipt ended ${outcome.status}`)
    }
    return {committed: {commit: outcome.applied.commit, path: outcome.applied.receipt}}
  }

  /** --out: the receipt signed by the evidence key, which must be one trust.yaml at HEAD trusts now. */
  private async writeReceipt(head: {repo: import('../control-plane/repo/repository.js').Repository; commit: string}, statement: TestResultStatement, file: string, keyFile: string | undefined): Promise<GateRunOutput['receipt']> {
    const [{signReceipt, receiptText}, {parseReceipt, checkReceiptSignatures}, {loadTrust}, {writeFileAtomic}, {AirlockError}, {resolve}] = await Promise.all([
      import('../control-plane/evidence/receipt.js'),
      import('../control-plane/evidence/ledger.js'),
      import('../control-plane/manifests/load.js'),
      import('../control-plane/repo/files.js'),
      import('../control-plane/errors.js'),
      import('node:path'),
    ])
    const signer = await this.evidenceSigner(keyFile)
    const text = receiptText(signReceipt(statement, [signer]))
    const {problem} = checkReceiptSignatures(parseReceipt(text, file, this.limits), await loadTrust(head.repo, head.commit, this.limits))
    if (problem) throw new AirlockError('KEY_INVALID', `--out: the receipt would not verify: ${problem.message} (is ${signer.keyid.slice(0, 16)}… an evidence key valid now in trust.yaml?)`, {keyid: signer.keyid, problem})
    const path = resolve(file)
    await writeFileAtomic(path, text)
    return {file: path}
  }

  /** listr2 on a terminal (each gate's state and elapsed time); plain lines when not a TTY, in CI, or with --json (nothing). */
  private async display(suite: string, ids: string[]): Promise<{onEvent: (e: GateEvent) => void; done: () => Promise<void>}> {
    if (this.jsonEnabled()) return {onEvent: () => {}, done: async () => {}}
    const {plainLine} = await import('../control-plane/gates/outputs.js')
    if (!process.stdout.isTTY || process.env.CI) {
      this.log(`${suite}: ${ids.length} gate(s)`)
      return {onEvent: (e) => void (e.type === 'ended' && this.log(t(plainLine(e.record)))), done: async () => {}}
    }
    return this.liveDisplay(suite, ids)
  }

  private async liveDisplay(suite: string, ids: string[]): Promise<{onEvent: (e: GateEvent) => void; done: () => Promise<void>}> {
    const [{Listr, ListrLogger, ProcessOutput}, {formatMs}, {statusWord}, {guardHumanOutput}] = await Promise.all([
      import('listr2'),
      import('../control-plane/gates/run-command.js'),
      import('../control-plane/gates/outputs.js'),
      import('../control-plane/terminal.js'),
    ])
    // listr2 draws with cursor controls, which the human-output guard would escape: it writes past
    // the guard, and everything it shows (ids, reasons) went through forTerminal first.
    const raw = guardHumanOutput()
    // log-update hides the cursor on stderr (and shows it again at exit): those two sequences, exactly, pass too.
    const guardedErr = process.stderr.write
    process.stderr.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      if (chunk === '\u001b[?25l' || chunk === '\u001b[?25h') return (raw.stderr as (...a: unknown[]) => boolean)(chunk, ...rest)
      return (guardedErr as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
    } as typeof process.stderr.write
    const past = (stream: NodeJS.WriteStream, write: typeof stream.write) => Object.assign(Object.create(stream) as NodeJS.WriteStream, {write, columns: stream.columns, rows: stream.rows, isTTY: stream.isTTY})
    const logger = new ListrLogger({useIcons: true, toStderr: [], processOutput: new ProcessOutput(past(process.stdout, raw.stdout), past(process.stderr, raw.stderr))})
    const ended = new Map<string, (r: GateRunRecord) => void>()
    const started = new Map<string, () => void>()
    const results = new Map(ids.map((id) => [id, new Promise<GateRunRecord>((resolve) => ended.set(id, resolve))]))
    const starts = new Map(ids.map((id) => [id, new Promise<void>((resolve) => started.set(id, resolve))]))
    const list = new Listr(
      ids.map((id) => ({
        title: `${t(id)}  waiting`,
        task: async (_: unknown, task: {title: string; skip: (m?: string) => void}) => {
          await starts.get(id)
          const began = Date.now()
          task.title = `${t(id)}  running`
          const tick = setInterval(() => (task.title = `${t(id)}  running  ${formatMs(Date.now() - began)}`), 250)
          const r = await results.get(id)!
          clearInterval(tick)
          const line = `${t(id)}  ${formatMs(r.elapsedMs)}  ${t(r.reason)}`
          if (r.status === 'pass') task.title = line
          else if (r.status === 'not_run') task.skip(`${statusWord(r)}  ${line}`)
          else throw new Error(`${statusWord(r)}  ${line}`)
        },
      })),
      {concurrent: true, exitOnError: false, rendererOptions: {collapseErrors: false, showErrorMessage: true, logger}},
    )
    const running = list.run().catch(() => {})
    void suite
    return {
      onEvent: (e) => {
        if (e.type === 'started') started.get(e.id)?.()
        else {
          started.get(e.id)?.()
          ended.get(e.id)?.(e.record)
        }
      },
      done: async () => void (await running),
    }
  }
}
