/**
 * One suite run on a verified HEAD, end to end in the core: the gates file read at that commit,
 * the suite run, and its test-result statement. The command renders it, and records it (through
 * the pipeline) or writes it signed to a file.
 */
import type {Limits} from '../limits.js'
import type {Repository} from '../repo/repository.js'
import {AirlockError} from '../errors.js'
import {BUILTINS} from './builtins/index.js'
import {runCommandGate} from './run-command.js'
import {runSuite, type GateEvent, type SuiteRun} from './runner.js'
import {lastPassingRecord, suiteStatement} from './statement.js'
import {GATES_FILE, loadGateSuites, suiteGates, type GateSuites} from './suite.js'
import type {BuiltinGate, GatePipeline, TestResultStatement} from './types.js'

export interface GateRunInput {
  repo: Repository
  /** A commit whose history verified from the pinned anchor, and its branch. */
  commit: string
  branch: string
  anchor: string | null
  suite: string
  host: boolean
  jobs: number
  limits: Limits
  now: Date
  clock: () => Date
  toolVersion: string
  builtins?: Readonly<Record<string, BuiltinGate>>
  /** Added to the environment of `run:` gates (e.g. AIRLOCK_ROOT, where airlock is installed). */
  env?: Record<string, string>
  onEvent?: (event: GateEvent) => void
  /**
   * The run will be signed (--apply, --out): the work tree must still be the commit's when the
   * gates have run, since `run:` gates read it and the receipt speaks for the commit (else
   * UNCOMMITTED_CHANGES; the command checks it before the run too, so nothing runs for nothing).
   */
  recording?: boolean
  /** The command's side of the pipeline, for gates that run changes (the rollback drill); without it they are not_run. */
  pipeline?: GatePipeline
  /** This host's audit log folder (the audit-integrity gate verifies it; the rollback drill checks its steps were recorded). */
  auditDir?: string
}

/** The gates file at the verified commit; a fleet without one is told how to add it. */
export async function requireGateSuites(repo: Repository, commit: string, limits: Limits, builtins: Readonly<Record<string, BuiltinGate>> = BUILTINS): Promise<GateSuites> {
  const suites = await loadGateSuites(repo, commit, limits, builtins)
  if (!suites) throw new AirlockError('INVALID_INPUT', `${GATES_FILE}: no gate suites at HEAD ${commit.slice(0, 12)} (add one with \`airlock change\`; \`airlock init\` scaffolds preflight and postsession)`, {file: GATES_FILE})
  return suites
}

/** A run to be signed needs the work tree to be the commit's (tracked files; untracked ones are scanned, and named in the receipt's evidence). */
export async function requireCleanWorkTree(repo: Repository, commit: string): Promise<void> {
  const modified = await repo.modifiedTracked()
  if (modified.length > 0) {
    throw new AirlockError('UNCOMMITTED_CHANGES', `${modified.length} tracked file(s) differ from ${commit.slice(0, 12)} (first: ${modified[0]}); a signed receipt speaks for the commit, so commit them (airlock change) or set them aside (git stash) first`, {files: modified.slice(0, 20)})
  }
}

export async function runGateSuite(input: GateRunInput): Promise<{run: SuiteRun; statement: TestResultStatement; suites: GateSuites}> {
  const builtins = input.builtins ?? BUILTINS
  const suites = await requireGateSuites(input.repo, input.commit, input.limits, builtins)
  const gates = suiteGates(suites, input.suite)
  const {repo, commit, limits} = input
  const run = await runSuite({
    suite: input.suite,
    gates,
    jobs: input.jobs,
    host: input.host,
    builtins,
    clock: input.clock,
    onEvent: input.onEvent,
    context: {repo, commit, dir: repo.dir, limits, now: input.now, anchor: input.anchor, pipeline: input.pipeline, ...(input.auditDir ? {auditDir: input.auditDir} : {}), lastPassing: (gateId) => lastPassingRecord(repo, commit, input.suite, gateId, limits)},
    runCommand: (gate, ctx) => runCommandGate({run: gate.run!, expect: gate.expect, timeoutMs: gate.timeoutMs}, {dir: ctx.dir, signal: ctx.signal, limits: ctx.limits, env: input.env}),
  })
  // A gate that edited tracked files while it ran (and a run that speaks for the commit) is not signed.
  if (input.recording) await requireCleanWorkTree(repo, commit)
  const statement = await suiteStatement(repo, {commit, branch: input.branch}, run, suites, {limits, toolVersion: input.toolVersion})
  return {run, statement, suites}
}
