/**
 * A suite run as its receipt: an in-toto Statement v1 with the test-result predicate (types.ts),
 * whose subjects are the commit, every pinned digest and the policy hashes the run concerned.
 * Also where earlier runs are found: the newest receipt of a suite in the verified history whose
 * gate passed (GateContext.lastPassing).
 */
import {canonicalJson, digestOfJson} from '../crypto/digest.js'
import {listReceipts, parseReceipt} from '../evidence/ledger.js'
import type {Limits} from '../limits.js'
import {loadImages} from '../manifests/load.js'
import {EGRESS_FILE, TOOL_POLICY_FILE} from '../manifests/models.js'
import {loadYaml} from '../manifests/yaml.js'
import type {Repository} from '../repo/repository.js'
import type {SuiteRun} from './runner.js'
import type {GateSuites} from './suite.js'
import {TEST_RESULT_PREDICATE_TYPE, type GateRunRecord, type TestResultStatement} from './types.js'

const hex = (digest: string) => digest.replace(/^sha256:/, '')

/** The subjects: the commit, each pinned digest (annotated with image and channel), the tool and egress policies' canonical hashes. */
export async function suiteSubjects(repo: Repository, commit: string, branch: string, limits: Limits): Promise<TestResultStatement['subject']> {
  const subject: TestResultStatement['subject'] = [{name: `git:${branch}`, digest: {gitCommit: commit}}]
  for (const image of await loadImages(repo, commit, limits)) {
    for (const [channel, pin] of Object.entries(image.channels)) subject.push({name: image.repository, digest: {sha256: hex(pin.digest)}, annotations: {image: image.name, channel}})
  }
  for (const file of [TOOL_POLICY_FILE, EGRESS_FILE]) {
    const found = await repo.readFile(commit, file)
    if (!found) continue
    // The canonical form of what the file says (RFC 8785), as `tool hash` prints it.
    subject.push({name: file, digest: {sha256: hex(digestOfJson(loadYaml(found.text, file, limits).value))}})
  }
  return subject
}

/** The statement for a finished suite run on `commit`. */
export async function suiteStatement(repo: Repository, at: {commit: string; branch: string}, run: SuiteRun, suites: GateSuites, opts: {limits: Limits; toolVersion: string}): Promise<TestResultStatement> {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: await suiteSubjects(repo, at.commit, at.branch, opts.limits),
    predicateType: TEST_RESULT_PREDICATE_TYPE,
    predicate: {
      result: run.result,
      configuration: [{name: suites.file, digest: {sha256: suites.sha256}}],
      passedTests: run.passedTests,
      warnedTests: run.warnedTests,
      failedTests: run.failedTests,
      suite: run.suite,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      branch: at.branch,
      baseCommit: at.commit,
      host: run.host,
      // JSON-safe: evidence went through JSON once (no undefined, no functions).
      gates: JSON.parse(canonicalJson(run.gates)) as GateRunRecord[],
      tool: {name: 'airlock', version: opts.toolVersion},
    },
  }
}

/**
 * The newest receipt of `suite` at `commit` (whose history verified, so every receipt in it was
 * checked when it was added) in which gate `gateId` passed; its record, or null.
 */
export async function lastPassingRecord(repo: Repository, commit: string, suite: string, gateId: string, limits: Limits): Promise<GateRunRecord | null> {
  let best: {time: number; record: GateRunRecord} | null = null
  for (const file of await listReceipts(repo, commit)) {
    let statement
    try {
      statement = parseReceipt(await repo.readBlob(file.oid), file.path, limits).statement
    } catch {
      continue
    }
    if (statement.predicateType !== TEST_RESULT_PREDICATE_TYPE || statement.predicate.suite !== suite) continue
    const record = statement.predicate.gates.find((g) => g.id === gateId && g.status === 'pass')
    const time = Date.parse(statement.predicate.finishedAt)
    if (record && (!best || time > best.time)) best = {time, record}
  }
  return best?.record ?? null
}
