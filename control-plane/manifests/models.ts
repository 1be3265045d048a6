import type {Document} from 'yaml'

export interface Channel {
  digest: string
  previous: string | null
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
  doc: Document
  /** The manifest as read, the "before" of any change to it. */
  text: string
}

export type Role = 'evidence' | 'policy' | 'image' | 'audit'

export interface TrustKey {
  id: string
  name?: string
  algorithm: 'ed25519'
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
  doc: Document | null
}

export const IMAGES_DIR = 'manifests/images'
export const TRUST_FILE = 'manifests/trust.yaml'
export const EVIDENCE_DIR = 'docs/evidence'
