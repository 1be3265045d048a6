import type {Identity} from '../identity/jwt.js'
import type {Limits} from '../limits.js'
import type {GoldenImage, TrustPolicy} from '../manifests/models.js'
import type {PlannedChange, Plan, Requester, SignatureVerification, Subject} from '../plan/plan.js'
import type {Repository} from '../repo/repository.js'
import type {AnchorInput} from './base.js'

/** A file a plan was computed from, with its blob id at the base commit (null: absent). */
export interface PlanInput {
  path: string
  oid: string | null
}

/** The base of a change: the branch HEAD names and its commit (null only for init). */
export interface Base {
  branch: string
  commit: string | null
}

/** A digest a change would pin, and the bundle it brings along when it brings one. */
export interface Pin {
  image: GoldenImage
  digest: string
  /** The channel the digest is pinned on (absent: a signature being stored, not a channel move). */
  channel?: string
  /** A signature being stored (image sign, fetch-signature): this one bundle must verify. */
  bundle?: {text: string; path: string; oid: string; payload?: string}
  /** Bundles for the digest the change itself adds, counted with those at the base toward the image's threshold. */
  bundles?: Array<{text: string; path: string; oid: string; payload?: string}>
}

/** What a builder returns: the change in its own terms, before authorization, verification and sealing. */
export interface Draft {
  operation: Plan['operation']
  summary: string
  details: Record<string, unknown>
  subjects: Subject[]
  changes: PlannedChange[]
  inputs: PlanInput[]
  /** Names the receipt file. */
  slug: string
  /** A channel move (Promote/Rollback on the channel); absent: ChangeDesiredState on what the changes touch. */
  channel?: {action: 'Promote' | 'Rollback'; image: string; channel: string}
  /** A gate-receipt: the statement the receipt holds (the draft changes no file; authorized as recording a GateResult). */
  statement?: import('../gates/types.js').TestResultStatement
  /** Digests whose signatures must verify before anything is planned. */
  pins: Pin[]
  /**
   * A kind of change authorized as its own action on its own resource (audit-publish:
   * PublishCheckpoint on the AuditLog), not as ChangeDesiredState on the kinds of file it writes.
   */
  asks?: Array<import('./authorize.js').Ask>
}

/** Signature checks live on the platform side (Sigstore); the commands hand them in. */
export interface SignatureVerifier {
  pinned(repo: Repository, commit: string, image: GoldenImage, digest: string, trust: TrustPolicy, extra?: NonNullable<Pin['bundles']>): Promise<{record: SignatureVerification; inputs: PlanInput[]}>
  bundle(repo: Repository, commit: string, image: GoldenImage, digest: string, bundle: NonNullable<Pin['bundle']>, trust: TrustPolicy): Promise<{record: SignatureVerification; inputs: PlanInput[]}>
}

/** Where the record step's event went: its index and fingerprint in this host's audit log. */
export interface RecordedEvent {
  index: number
  fingerprint: string
}

export interface PipelineContext {
  /** The reference time of the command: verification and authorization happen now. */
  now: Date
  /** When the plan was made; a saved plan keeps its own. */
  createdAt?: string
  reason: string
  requestedBy: Requester
  /** Who acts now (null only for init, before any policy exists). */
  identity: Identity | null
  /** Where the trust anchor comes from: --trust-anchor, $AIRLOCK_TRUST_ANCHOR (else git config). */
  anchor: AnchorInput
  limits: Limits
  verifier: SignatureVerifier
  /**
   * Inside a rollback drill's throwaway clone only: the drill's id. Every commit gets an
   * `Airlock-Drill` trailer, and only a history verified with the same id accepts such commits.
   */
  drill?: string
  /**
   * The record step's sink: it sees every outcome, refusals included (the audit log's writer),
   * with the drill's id inside a rollback drill; it answers where the event went in the log.
   */
  record?: (outcome: import('./pipeline.js').Outcome, extra?: {drill?: string; operation?: string}) => Promise<RecordedEvent | void>
}
