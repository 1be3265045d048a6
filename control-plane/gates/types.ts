/**
 * Gates: the checks operators run before and after a session (preflight, postsession) and CI
 * runs before a promotion. These are the shapes shared by the suite file, the runner, the
 * built-in gates, the outputs (JSON, JUnit, SARIF, step summary) and the signed receipt.
 *
 * A gate ends `pass`, `fail` or `not_run`, always with a reason. A gate whose prerequisites are
 * missing is `not_run`, never `pass`.
 */
import type {Signer} from '../crypto/keys.js'
import type {BundleSigner} from '../init/scaffold.js'
import type {Limits} from '../limits.js'
import type {PipelineContext} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'

export type GateStatus = 'pass' | 'fail' | 'not_run'

/** A located finding (secret scan, sandbox check, policy check): what SARIF and JUnit report. */
export interface Finding {
  /** The tool that found it (one SARIF run per tool): e.g. `airlock-secret-scan`, `gitleaks`. */
  tool: string
  /** A stable rule id, e.g. `secret/aws-access-key-id`, `sandbox/MOUNT_SYSTEM_PATH`. */
  ruleId: string
  level: 'error' | 'warning' | 'note'
  /** One line written by airlock (never the secret, a prefix, a suffix or its length). */
  message: string
  /** A tracked file, relative to the repository root (an image finding points at its manifest). */
  file: string
  line?: number
  column?: number
  /** A stable fingerprint (for secrets: HMAC of the secret under the fleet's key), hex. */
  fingerprint?: string
  /** Reported but accepted (a secrets-baseline entry): does not fail the gate; SARIF `suppressions`. */
  suppression?: {kind: 'baseline'; justification: string}
}

/** What one gate came to. */
export interface GateResult {
  status: GateStatus
  /** One line: why it passed, failed or did not run. */
  reason: string
  /** JSON-safe facts that go into the receipt (counts, digests, elapsed times); never a secret. */
  evidence?: Record<string, unknown>
  findings?: Finding[]
}

/** What a gate runs with. The runner makes one per gate run. */
export interface GateContext {
  repo: Repository
  /** The commit the suite runs on: HEAD, whose history verified from the pinned anchor. */
  commit: string
  /** The repository's work tree (what `run:` gates and file scans see). */
  dir: string
  limits: Limits
  /** The command's reference time (gates never read the clock for decisions). */
  now: Date
  /** The gate's `with:` block (validated by the builtin). */
  with: Record<string, unknown>
  /** Aborted when the gate's timeout passes; long work checks it. */
  signal: AbortSignal
  /** `--host`: gates that need a lab host (nested virtualization) may run. */
  host: boolean
  /** The id of the gate being run (optional: added for builtins that look up their own last passing record). */
  gateId?: string
  /** The pinned trust anchor HEAD's history verified from, when the runner knows it (the history gate verifies from it; the secret scan derives its fingerprint key from it). */
  anchor?: string | null
  /** The newest verified receipt of this suite whose gate `gateId` passed, if any (e.g. tool-policy-hash). */
  lastPassing(gateId: string): Promise<GateRunRecord | null>
  /**
   * What a gate that makes changes through the pipeline needs from the command (the rollback
   * drill, in a throwaway clone): absent, such a gate is `not_run`. Optional (added by the drill).
   */
  pipeline?: GatePipeline
  /** This host's audit log folder, when the command knows it (audit-integrity, rollback-drill). */
  auditDir?: string
}

/**
 * The command's side of the pipeline, handed to gates that run changes (the core reads no flags,
 * no environment and no platform/ module): who acts and where the anchor comes from, the
 * signature checks, the operator's evidence key, and the Sigstore signer for image bundles.
 */
export interface GatePipeline {
  /** Identity, requester, anchor input (--trust-anchor, $AIRLOCK_TRUST_ANCHOR), limits, verifier. */
  context: PipelineContext
  /** The operator's evidence key (--evidence-key, $AIRLOCK_EVIDENCE_KEY); throws KEY_MISSING without one. */
  evidenceSigner: () => Promise<Signer>
  /** platform/images/sign signImageBundle. */
  signImageBundle: BundleSigner
  toolVersion: string
}

/** A built-in gate (`uses: builtin/<name>`). */
export interface BuiltinGate {
  name: string
  description: string
  /** `host`: needs a lab host; without `--host` it is not run. */
  requires?: 'host'
  /** Checks `with:` (throws a located AirlockError naming the field). */
  checkWith?(value: Record<string, unknown>, where: {file: string; line?: number; field: string}): void
  run(ctx: GateContext): Promise<GateResult>
}

/** One gate of a suite, as `manifests/gates.yaml` declares it. */
export interface GateSpec {
  id: string
  uses?: string
  run?: string
  with: Record<string, unknown>
  /** Milliseconds. */
  timeoutMs: number
  needs: string[]
  requires: Array<'host'>
  required: boolean
  mode: 'enforce' | 'shadow'
  /** `run:` gates: the `PASS=N FAIL=M` line the output must end with. */
  expect?: {pass: number; fail: number}
  /** Where it is declared (for messages). */
  line?: number
}

/** One gate's outcome as recorded in a suite run (and in its receipt). */
export interface GateRunRecord {
  id: string
  status: GateStatus
  reason: string
  mode: 'enforce' | 'shadow'
  required: boolean
  elapsedMs: number
  evidence?: Record<string, unknown>
}

/**
 * A suite run's receipt: an in-toto Statement v1 with the test-result predicate
 * (https://github.com/in-toto/attestation/blob/main/spec/predicates/test-result.md), signed as
 * DSSE by an evidence key and committed to docs/evidence/ through the pipeline.
 *
 * Subjects: the commit (`git:<branch>` with `gitCommit`), every pinned digest
 * (`<repository>` with `sha256`, plus `annotations: {image, channel}` naming the manifest and
 * channel), and the policy hashes concerned (`manifests/tool-policy.yaml` with `sha256` of its
 * canonical form, …).
 *
 * The test-result fields are the spec's own; airlock's facts (suite, times, per-gate states,
 * including not_run and shadow gates) sit beside them, which the spec's consumers ignore.
 */
export const TEST_RESULT_PREDICATE_TYPE = 'https://in-toto.io/attestation/test-result/v0.1'

export interface TestResultPredicate {
  /** PASSED: the run's exit would be 0. FAILED otherwise. WARNED: passed, with a shadow gate failing. */
  result: 'PASSED' | 'WARNED' | 'FAILED'
  /** The gates file (and anything else the run was configured by) as resource descriptors. */
  configuration: Array<{name: string; digest: Record<string, string>; uri?: string}>
  url?: string
  /** `SUITE/GATE-ID` of gates that passed, failed, or (shadow gates) failed without failing the run. */
  passedTests: string[]
  warnedTests: string[]
  failedTests: string[]
  /** airlock's own fields. */
  suite: string
  startedAt: string
  finishedAt: string
  branch: string
  baseCommit: string
  host: boolean
  gates: GateRunRecord[]
  tool: {name: 'airlock'; version: string}
}

export interface TestResultStatement {
  _type: 'https://in-toto.io/Statement/v1'
  subject: Array<{name: string; digest: Record<string, string>; annotations?: Record<string, unknown>}>
  predicateType: typeof TEST_RESULT_PREDICATE_TYPE
  predicate: TestResultPredicate
}
