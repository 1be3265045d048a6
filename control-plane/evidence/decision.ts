/**
 * The evidence step's decision as the plan and the receipt record it (details.evidence), and as a
 * SLSA Verification Summary Attestation v1 for tools that read VSAs. Shapes only: the finder is
 * promotion.ts (this module is imported by the receipt, and reads no repository).
 */
import {canonicalJson, sha256Hex} from '../crypto/digest.js'

export interface ReliedReceipt {
  suite: string
  path: string
  /** The envelope's digest, `sha256:<hex>`. */
  digest: string
  result: 'PASSED' | 'WARNED'
  finishedAt: string
}

export type MissingProblem = 'NONE' | 'OTHER_DIGEST' | 'OTHER_CHANNEL' | 'UNTRUSTED' | 'FUTURE_DATED' | 'NOT_PINNED_THEN' | 'ONLY_FAILED' | 'FAILED_SINCE' | 'YOUNG' | 'NOTHING_RAN'

/** What is missing for one suite. Nothing in it depends on the time the plan was made but `problem`. */
export interface MissingEvidence {
  suite: string
  image: string
  channel: string
  digest: string
  on: string | null
  problem: MissingProblem
  /** One line written by airlock (receipt paths and times are the repository's). */
  message: string
  /** YOUNG: when the oldest passing receipt will have soaked. */
  readyAt?: string
  /** The receipts this is about (young, failing, untrusted, for another digest). */
  receipts?: string[]
}

/** One pin's requirement and what the history holds for it. */
export interface RequirementCheck {
  image: string
  repository: string
  channel: string
  digest: string
  requires: {suites: string[]; on: string | null; soak: string | null}
  relied: ReliedReceipt[]
  missing: MissingEvidence[]
}

/** What the pipeline's evidence step records in the plan's details (and so in the receipt). */
export interface EvidenceRecord {
  /** satisfied: every requirement met; missing: refused; overridden: missing, passed by a permitted Override. */
  decision: 'satisfied' | 'missing' | 'overridden'
  checks: RequirementCheck[]
  /** `--override`: why, and what was missing (who: the plan's authorization, which then includes Override). */
  override?: {reason: string; missing: Array<Pick<MissingEvidence, 'suite' | 'image' | 'channel' | 'digest' | 'problem'>>}
}


/** The refusal's text: each missing piece on its line, a young receipt with how long to wait. */
export function describeMissing(missing: MissingEvidence[], now: Date): string {
  return missing
    .map((m) => {
      const wait = m.readyAt ? Date.parse(m.readyAt) - now.getTime() : 0
      return `${m.image}/${m.channel}: ${m.message}${wait > 0 ? ` (wait ${formatWait(wait)})` : ''}`
    })
    .join('\n')
}

/** `21h 5m`, `3d 2h`, `45s`: a wait, rounded up (never less than is needed). */
export function formatWait(ms: number): string {
  if (ms < 60_000) return `${Math.ceil(ms / 1000)}s`
  const minutes = Math.ceil(ms / 60_000)
  const d = Math.floor(minutes / 1440)
  const h = Math.floor((minutes % 1440) / 60)
  const m = minutes % 60
  if (d > 0) return `${d}d ${h}h${m ? ` ${m}m` : ''}`
  if (h > 0) return `${h}h ${m}m`
  return `${m}m`
}

export const VSA_PREDICATE_TYPE = 'https://slsa.dev/verification_summary/v1'

/** A SLSA Verification Summary Attestation v1 (https://slsa.dev/spec/v1.0/verification_summary) as an in-toto Statement. */
export interface VerificationSummaryStatement {
  _type: 'https://in-toto.io/Statement/v1'
  subject: Array<{name: string; digest: Record<string, string>}>
  predicateType: typeof VSA_PREDICATE_TYPE
  predicate: {
    verifier: {id: string; version: Record<string, string>}
    timeVerified: string
    resourceUri: string
    policy: {uri: string; digest: Record<string, string>}
    inputAttestations: Array<{uri: string; digest: Record<string, string>}>
    verificationResult: 'PASSED' | 'FAILED'
    verifiedLevels: string[]
  }
}
export const VSA_VERIFIER_ID = 'https://airlock.dev/verifiers/evidence-gate/v1'

/**
 * The decision as a SLSA Verification Summary Attestation v1 statement, for tools that read VSAs:
 * the digest pinned is the subject; the policy is the channel's `requires` in the image manifest
 * (the file's blob at the base and the requirement's canonical hash); the inputs are the receipts
 * relied on. An override is a FAILED verification (the promotion went ahead on a permit, not on
 * evidence), with no level verified.
 */
export function verificationSummary(
  check: RequirementCheck,
  ctx: {decision: EvidenceRecord['decision']; manifest: {path: string; oid: string | null}; baseCommit: string | null; branch: string; timeVerified: Date; toolVersion: string},
): VerificationSummaryStatement {
  const passed = ctx.decision === 'satisfied' && check.missing.length === 0
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{name: check.repository, digest: {sha256: check.digest.slice('sha256:'.length)}}],
    predicateType: VSA_PREDICATE_TYPE,
    predicate: {
      verifier: {id: VSA_VERIFIER_ID, version: {airlock: ctx.toolVersion}},
      timeVerified: ctx.timeVerified.toISOString(),
      resourceUri: `oci://${check.repository}@${check.digest}`,
      policy: {
        uri: `git+${ctx.branch}@${ctx.baseCommit ?? ''}#${ctx.manifest.path}:spec.channels.${check.channel}.requires`,
        digest: {sha256: sha256Hex(canonicalJson(check.requires)), ...(ctx.manifest.oid ? {gitBlob: ctx.manifest.oid} : {})},
      },
      inputAttestations: check.relied.map((r) => ({uri: r.path, digest: {sha256: r.digest.slice('sha256:'.length)}})),
      verificationResult: passed ? 'PASSED' : 'FAILED',
      // Custom levels (not SLSA_…): one per suite whose soaked, passing receipt was relied on.
      verifiedLevels: passed ? check.relied.map((r) => `AIRLOCK_SUITE_${r.suite.toUpperCase().replaceAll('-', '_')}_PASSED`) : [],
    },
  }
}

/** The evidence step's record in a plan (its details), if the plan pins a gated channel. */
export function evidenceOf(plan: {details: Record<string, unknown>}): EvidenceRecord | undefined {
  const e = plan.details.evidence as EvidenceRecord | undefined
  return e && typeof e === 'object' && Array.isArray(e.checks) ? e : undefined
}
