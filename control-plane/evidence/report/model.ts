/**
 * The compliance report's model (`airlock evidence report`): what the Markdown, OSCAL and HTML
 * renderers draw from, computed once from the verified history (receipts, gate results, claim
 * levels) and the audit log's signed, published checkpoints. Renderers only format it.
 *
 * The HTML page carries the signed material itself (receipt envelopes, checkpoint notes, the
 * trust.yaml keys) so an auditor's browser re-verifies every signature with no network.
 */
import type {ClaimLevel} from '../../gates/claims.js'

export const FRAMEWORKS = ['soc2', 'hipaa', 'fedramp'] as const
export type Framework = (typeof FRAMEWORKS)[number]

/** A signed checkpoint as published under docs/evidence/audit/ (a C2SP tlog-checkpoint note). */
export interface ReportCheckpoint {
  /** Repository path of the note. */
  path: string
  origin: string
  size: number
  /** Base64 root hash, as the note's third line. */
  root: string
  /** The whole signed note, as committed. */
  text: string
  /** When the commit that published it was made (ledger time, ISO 8601). */
  publishedAt: string
}

/** One piece of evidence a control rests on. */
export interface EvidenceRef {
  kind: 'receipt' | 'gate' | 'checkpoint' | 'policy'
  /** Repository path (a receipt, a checkpoint note, a policy file). */
  ref: string
  summary: string
  /** ISO 8601 (ledger time for receipts and checkpoints). */
  time?: string
}

/** The set an auditor samples from: a range of log entries or of commits, bounded by a signed checkpoint. */
export interface Population {
  kind: 'log' | 'commits'
  /** log: first and last entry index (inclusive); commits: oldest and newest commit id. */
  from: string
  to: string
  /** How many items the range holds. */
  count: number
  /** The signed checkpoint bounding it (log populations; commits: the checkpoint published with or after `to`, if any). */
  checkpoint: {path: string; origin: string; size: number; root: string} | null
}

export interface ControlRow {
  framework: Framework
  /** e.g. CC6.1, 164.312(a)(1), AC-3. */
  id: string
  title: string
  /** The airlock feature that serves it, one sentence. */
  feature: string
  /** The claim level of the gate area that speaks to it (null: no gate area does). */
  claimLevel: ClaimLevel | null
  status: 'evidenced' | 'partial' | 'gap'
  /** Stated plainly when status is not evidenced. */
  gap: string | null
  evidence: EvidenceRef[]
  /**
   * What an auditor samples from: for log-based controls one per audit-log origin (the newest
   * published checkpoint of each), for change controls the one commit range; empty: none yet.
   */
  populations: Population[]
}

/** A receipt as the page verifies it: the DSSE envelope as committed, and the key that must have signed it. */
export interface ReportReceipt {
  path: string
  /** The envelope JSON exactly as committed (payloadType, payload, signatures). */
  envelope: {payloadType: string; payload: string; signatures: Array<{keyid: string; sig: string}>}
  /** change, gate, … (the predicate's kind) */
  kind: string
  /** Ledger time (ISO 8601): keys are judged valid at this time. */
  time: string
}

/** A trust.yaml key as the page needs it to verify receipts (role evidence) and checkpoints (role audit). */
export interface ReportKey {
  keyid: string
  /** Base64 of the raw 32-byte Ed25519 public key. */
  publicKey: string
  roles: string[]
  validFrom: string | null
  validUntil: string | null
}

export interface TimelineEvent {
  time: string
  operation: 'promote' | 'rollback'
  image: string
  channel: string
  digest: string
  /** The receipt path. */
  receipt: string
}

export interface GateRunPoint {
  time: string
  suite: string
  passed: number
  failed: number
  notRun: number
  /** The run's verdict (PASSED, WARNED, FAILED). */
  result: string
  receipt: string
}

export interface ReportModel {
  generatedAt: string
  repository: {head: string; anchor: string | null}
  frameworks: Framework[]
  controls: ControlRow[]
  receipts: ReportReceipt[]
  checkpoints: ReportCheckpoint[]
  keys: ReportKey[]
  /** trust.yaml's signature thresholds at HEAD: how many distinct keys a receipt (evidence) and a checkpoint (audit) need. */
  thresholds: {evidence: number; audit: number}
  timeline: TimelineEvent[]
  gateRuns: GateRunPoint[]
}
