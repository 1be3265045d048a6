/**
 * Recording a gate suite run: the draft changes no file; its receipt is the run's own signed
 * test-result statement (apply writes it instead of a change receipt). The statement must be one
 * of its kind, made on this very base (the commit the suite ran on is the one the receipt is
 * added on, as history verification requires).
 */
import {canonicalJson} from '../crypto/digest.js'
import {AirlockError} from '../errors.js'
import {BUILTINS} from '../gates/builtins/index.js'
import {suiteSubjects} from '../gates/statement.js'
import {loadGateSuites} from '../gates/suite.js'
import {TEST_RESULT_RECEIPT} from '../gates/receipt.js'
import {TEST_RESULT_PREDICATE_TYPE, type TestResultStatement} from '../gates/types.js'
import type {Limits} from '../limits.js'
import {checkNesting} from '../limits.js'
import type {ChangeRequest} from '../plan/plan.js'
import type {Draft} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'

/**
 * What the statement says about the fleet must be what the base holds: its subjects (the commit,
 * the pinned digests, the policy hashes), the gates file it was configured by, and the suite's
 * gates. Only the run's outcome comes from the run.
 */
export async function checkGateReceiptBase(repo: Repository, base: {commit: string; branch: string}, statement: TestResultStatement, limits: Limits): Promise<void> {
  const p = statement.predicate
  const mismatch = (field: string, what: string) => new AirlockError('INVALID_INPUT', `the gate receipt's ${what} is not what ${base.commit.slice(0, 12)} holds; run the suite again`, {field: `statement.${field}`})
  if (canonicalJson(statement.subject) !== canonicalJson(await suiteSubjects(repo, base.commit, base.branch, limits))) throw mismatch('subject', 'subjects (commit, pinned digests, policy hashes)')
  const suites = await loadGateSuites(repo, base.commit, limits, BUILTINS)
  const gates = suites?.suites.get(p.suite)
  if (!suites || !gates) throw mismatch('predicate.suite', `suite ${JSON.stringify(p.suite)}`)
  if (canonicalJson(p.configuration) !== canonicalJson([{name: suites.file, digest: {sha256: suites.sha256}}])) throw mismatch('predicate.configuration', 'gates file digest')
  const ids = (xs: Array<{id: string}>) => xs.map((g) => g.id).sort().join('\0')
  if (ids(p.gates) !== ids(gates)) throw mismatch('predicate.gates', `${p.suite} gates`)
}

export function buildGateReceipt(base: {commit: string; branch: string}, req: Extract<ChangeRequest, {kind: 'gate-receipt'}>, limits: Limits): Draft {
  if (Buffer.byteLength(req.statement) > limits.maxReceiptBytes) throw new AirlockError('TOO_LARGE', `the gate receipt is larger than ${limits.maxReceiptBytes} bytes`, {field: 'statement'})
  checkNesting(req.statement, 'gate receipt', 'json', limits.maxDepth)
  let statement: TestResultStatement
  try {
    statement = JSON.parse(req.statement) as TestResultStatement
  } catch (error) {
    throw new AirlockError('INVALID_INPUT', `the gate receipt is not JSON (${(error as Error).message})`, {field: 'statement'})
  }
  if (!statement || statement._type !== 'https://in-toto.io/Statement/v1' || statement.predicateType !== TEST_RESULT_PREDICATE_TYPE || !Array.isArray(statement.subject) || typeof statement.predicate !== 'object' || statement.predicate === null) {
    throw new AirlockError('INVALID_INPUT', `the gate receipt is not an in-toto Statement v1 with the test-result predicate (${TEST_RESULT_PREDICATE_TYPE})`, {field: 'statement'})
  }
  const problem = TEST_RESULT_RECEIPT.shapeProblem(statement.predicate as unknown as Record<string, unknown>)
  if (problem) throw new AirlockError('INVALID_INPUT', `the gate receipt: ${problem}`, {field: 'statement'})
  const p = statement.predicate
  if (p.baseCommit !== base.commit || p.branch !== base.branch) {
    throw new AirlockError('STALE_PLAN', `the ${p.suite} suite ran on ${p.branch} @ ${p.baseCommit.slice(0, 12)}, but HEAD is ${base.branch} @ ${base.commit.slice(0, 12)}; run the suite again`, {planned: {branch: p.branch, commit: p.baseCommit}, actual: base})
  }
  return {
    operation: 'gate-receipt',
    summary: `record the ${p.suite} gate results (${p.result})`,
    details: {suite: p.suite, result: p.result, passed: p.passedTests.length, warned: p.warnedTests.length, failed: p.failedTests.length, host: p.host},
    subjects: [],
    changes: [],
    inputs: [],
    slug: p.suite,
    statement,
    pins: [],
  }
}
