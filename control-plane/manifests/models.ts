import type {Document} from 'yaml'

export interface Channel {
  digest: string
  previous: string | null
  /** Evidence a digest needs before it may be pinned here (spec.channels.NAME.requires); absent: none. */
  requires?: EvidenceRequirement
}

/**
 * What a channel requires of a digest before it is pinned there: a passing signed receipt of each
 * suite for the same digest (run while it was on channel `on`, when given), at least `soakMs` old,
 * with no failing one since.
 */
export interface EvidenceRequirement {
  suites: string[]
  on?: string
  /** As written (e.g. `24h`), and in milliseconds (0 when absent). */
  soak?: string
  soakMs: number
}

/** A golden VM image and its channels, as pinned in `manifests/images/<name>.yaml`. */
export interface GoldenImage {
  name: string
  file: string
  /** Blob id of the manifest at the commit it was read from. */
  oid: string
  repository: string
  tier: number
  channels: Record<string, Channel>
  /** Who must have signed the image's digests (spec.verification); absent: trust.yaml's image keys. */
  verification: ImageVerificationSpec | null
  doc: Document
  /** The manifest as read, the "before" of any change to it. */
  text: string
}

export interface ImageVerificationSpec {
  keys?: string[]
  identities?: Array<{issuer: string; subject?: string; subjectRegExp?: string}>
  trustedRoot?: string
  tlogThreshold?: number
  timestampThreshold?: number
  /** Distinct trusted image keys or identities that must have signed a digest (default: trust.yaml's thresholds.image). */
  threshold?: number
}

/** What a trusted key may sign: evidence (receipts, commits), policy bundles, images, audit checkpoints, tool-call approvals. */
export const ROLES = ['evidence', 'policy', 'image', 'audit', 'approval'] as const
export type Role = (typeof ROLES)[number]

export interface TrustKey {
  id: string
  name?: string
  /** ed25519: publicKey is the raw key; ecdsa-p256 (image keys only): the SPKI DER. */
  algorithm: 'ed25519' | 'ecdsa-p256'
  publicKey: Uint8Array
  roles: Role[]
  validFrom: Date
  validUntil?: Date
}

/** `manifests/trust.yaml`: who may sign what, when, and how many signatures each role needs. */
export interface TrustPolicy {
  file: string
  oid: string | null
  /** The organisation the fleet belongs to: its channels' org_id in policy ('' when unset). */
  org: string
  keys: TrustKey[]
  thresholds: Record<Role, number>
  /** Policy bundles: the longest a bundle may live, expiresAt − issuedAt (spec.bundles.maxLifetime, default 30d). */
  bundles: {maxLifetimeMs: number}
  doc: Document | null
}

export const IMAGES_DIR = 'manifests/images'
export const TRUST_FILE = 'manifests/trust.yaml'
export const EVIDENCE_DIR = 'docs/evidence'
export const SIGNATURES_DIR = 'manifests/signatures'
/** Where a sandbox may connect (kind EgressPolicy). */
export const EGRESS_FILE = 'manifests/egress.yaml'
/** Which tools an agent may call (kind ToolPolicy). */
export const TOOL_POLICY_FILE = 'manifests/tool-policy.yaml'
/** The gate suites (GateSuite): preflight, postsession and any the fleet adds. */
export const GATES_FILE = 'manifests/gates.yaml'
/** Tier-2 sandbox jobs, one file each (kind SandboxSpec). */
export const SANDBOXES_DIR = 'manifests/sandboxes'
export const DEFAULT_TRUSTED_ROOT = 'manifests/sigstore/trusted_root.json'

/**
 * Where a Sigstore bundle of `digest` of `image` is kept: cosign's sha256-<hex> naming, and for
 * further signatures of the same digest (an image threshold above 1) slots 1, 2, …:
 * `sha256-<hex>.<slot>.sigstore.json`.
 */
export function signaturePath(image: string, digest: string, slot = 0): string {
  return `${SIGNATURES_DIR}/${image}/${digest.replace(':', '-')}${slot ? `.${slot}` : ''}.sigstore.json`
}

/** Beside a bundle converted from a cosign v2 `.sig` signature: the simple-signing payload it signs. */
export function signaturePayloadPath(image: string, digest: string, slot = 0): string {
  return `${SIGNATURES_DIR}/${image}/${digest.replace(':', '-')}${slot ? `.${slot}` : ''}.payload.json`
}

/** The slot of a bundle file name for `digest` (0 the first, null: not one of its bundles). */
export function signatureSlot(name: string, digest: string): number | null {
  const prefix = digest.replace(':', '-')
  if (!name.startsWith(prefix) || !name.endsWith('.sigstore.json')) return null
  const middle = name.slice(prefix.length, -'.sigstore.json'.length)
  if (middle === '') return 0
  const m = /^\.([1-9][0-9]{0,2})$/.exec(middle)
  return m ? Number(m[1]) : null
}
