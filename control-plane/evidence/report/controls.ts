/**
 * The control catalogue of the compliance report: each control airlock speaks to, the feature that
 * serves it (said as the code does it, no more), the claim area (gates/claims.ts CONTROL_AREAS)
 * whose level it reports, the evidence that counts for it, and what its population is.
 *
 * Titles: NIST SP 800-53 rev5 control names; HIPAA 45 CFR 164.312 standard and implementation
 * specification names; SOC 2 criteria (2017 Trust Services Criteria) have no names, so the title
 * is the criterion's own opening words.
 */
import type {ReceiptStatement} from '../receipt.js'
import type {EvidenceRef, Framework} from './model.js'

/** Which change receipts speak to a control (by what the signed predicate records). */
export type ReceiptFilter = (p: ReceiptStatement['predicate']) => boolean

export interface ControlDef {
  framework: Framework
  id: string
  title: string
  feature: string
  /** The CONTROL_AREAS id whose claim level the row reports (null: no gate area speaks to it). */
  area: string | null
  /** The kinds of evidence that count; the first is the one without which the control is a gap. */
  counts: ReadonlyArray<EvidenceRef['kind']>
  /** The change receipts that count (kind 'receipt'), and what is missing when none does. */
  receipts: {keep: ReceiptFilter; missing: string}
  /** Policy files at HEAD that count (kind 'policy'): repository path prefixes. */
  policies: readonly string[]
  /** log: entries of the audit log up to a published checkpoint; commits: anchor..HEAD. */
  population: 'log' | 'commits' | null
}

const authorized = {keep: (p) => p.authorization !== undefined, missing: 'no signed change receipt records a Cedar authorization decision'} satisfies ControlDef['receipts']
const signedPins = {keep: (p) => (p.operation === 'promote' || p.operation === 'rollback') && p.signature !== undefined, missing: 'no promotion or rollback receipt records a verified image signature'} satisfies ControlDef['receipts']
const any = {keep: () => true, missing: 'no signed change receipt in the verified history'} satisfies ControlDef['receipts']
const none = {keep: () => false, missing: 'no change receipt counts for it'} satisfies ControlDef['receipts']

const CEDAR = 'Every change goes through the pipeline\'s Cedar authorization step (default deny) before it is applied; promotions and rollbacks record the decision in their signed receipt.'
const EGRESS = 'Sandboxes reach the network only as the default-deny egress policy (manifests/egress.yaml) allows; `airlock egress check` decides and `airlock egress render` writes it for the runtime.'
const AUDIT = 'Every pipeline outcome, refusals included, is written to a hash-chained OCSF audit log whose Merkle checkpoints are signed with an audit key and published into the repository.'
const HISTORY = 'Every change to desired state is a signed commit through one pipeline (plan, Cedar authorization, gates, rollback target) with a signed DSSE receipt; history is verified back to the trust anchor.'
const CRYPTO = 'Receipts are DSSE envelopes and commits SSH signatures, both Ed25519 with keys from trust.yaml; images are pinned by digest and their cosign signatures verified before they are pinned.'
const INTEGRITY = 'Images are pinned by sha256 digest with verified signatures, and every change carries a signed DSSE receipt, so an altered artefact or record fails verification.'

const soc2 = (id: string, title: string, rest: Omit<ControlDef, 'framework' | 'id' | 'title'>): ControlDef => ({framework: 'soc2', id, title, ...rest})
const hipaa = (id: string, title: string, rest: Omit<ControlDef, 'framework' | 'id' | 'title'>): ControlDef => ({framework: 'hipaa', id, title, ...rest})
const fedramp = (id: string, title: string, rest: Omit<ControlDef, 'framework' | 'id' | 'title'>): ControlDef => ({framework: 'fedramp', id, title, ...rest})

const access = {feature: CEDAR, area: 'policy', counts: ['receipt', 'policy', 'gate'], receipts: authorized, policies: ['policies/'], population: null} as const
const boundary = {feature: EGRESS, area: 'isolation', counts: ['policy', 'gate'], receipts: none, policies: ['manifests/egress.yaml', 'manifests/sandboxes/'], population: null} as const
const transmission = {feature: EGRESS, area: 'policy', counts: ['policy', 'gate'], receipts: none, policies: ['manifests/egress.yaml'], population: null} as const
const logging = {feature: AUDIT, area: 'history-evidence', counts: ['checkpoint', 'gate'], receipts: none, policies: [], population: 'log'} as const
const change = {feature: HISTORY, area: 'history-evidence', counts: ['receipt', 'gate'], receipts: any, policies: [], population: 'commits'} as const

export const CONTROLS: readonly ControlDef[] = [
  soc2('CC6.1', 'Logical access security over protected information assets', access),
  soc2('CC6.6', 'Logical access security measures against threats from outside system boundaries', boundary),
  soc2('CC6.7', 'Restriction of the transmission, movement, and removal of information', transmission),
  soc2('CC7.2', 'Monitoring of system components for anomalies', logging),
  soc2('CC8.1', 'Authorization, testing, approval, and implementation of changes', change),
  hipaa('164.312(a)(1)', 'Access control', access),
  hipaa('164.312(b)', 'Audit controls', logging),
  hipaa('164.312(e)(1)', 'Transmission security', transmission),
  hipaa('164.312(e)(2)', 'Transmission security: integrity controls and encryption', {feature: INTEGRITY, area: 'image-supply-chain', counts: ['receipt', 'gate'], receipts: signedPins, policies: [], population: null}),
  fedramp('AC-3', 'Access Enforcement', access),
  fedramp('AU-2', 'Event Logging', logging),
  fedramp('SC-7', 'Boundary Protection', boundary),
  fedramp('SC-13', 'Cryptographic Protection', {feature: CRYPTO, area: 'image-supply-chain', counts: ['receipt', 'gate', 'policy'], receipts: signedPins, policies: ['manifests/trust.yaml'], population: null}),
  fedramp('CM-3', 'Configuration Change Control', change),
]

/** The catalogue entry for `id` (case-insensitive), or undefined. */
export function controlById(id: string): ControlDef | undefined {
  const want = id.toLowerCase()
  return CONTROLS.find((c) => c.id.toLowerCase() === want)
}

/**
 * The control's id as an OSCAL token (`^(\p{L}|_)(\p{L}|\p{N}|[.\-_])*$`): NIST ids as NIST's
 * catalog writes them (ac-3), SOC 2 lower-cased (cc6.1), HIPAA with its parentheses as dashes and
 * a prefix, since a token cannot start with a digit (hipaa-164.312-a-1).
 */
export function oscalControlId(c: Pick<ControlDef, 'framework' | 'id'>): string {
  if (c.framework === 'hipaa') return `hipaa-${c.id.replace(/\((\w+)\)/g, '-$1')}`
  return c.id.toLowerCase()
}
