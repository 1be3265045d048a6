import {stat} from 'node:fs/promises'
import {Document} from 'yaml'
import {AirlockError} from '../errors.js'
import {generateImageKey, generateSigner, keyIdOf, loadImageKey, loadSigner} from '../crypto/keys.js'
import type {Limits} from '../limits.js'
import {loadTrust} from '../manifests/load.js'
import {TRUST_FILE, type Role, type TrustKey} from '../manifests/models.js'
import type {Draft} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'
import type {ChangeRequest, PlannedChange} from '../plan/plan.js'

export interface KeyFileResult {
  keyid: string
  publicKey: Uint8Array
  algorithm: TrustKey['algorithm']
  /** A new key, held in memory only: nothing is written until the change that trusts it applies. */
  pem: string | null
}

/**
 * The key at `file` when it exists, otherwise a new one, generated in memory and not written:
 * Ed25519, or ECDSA P-256 for image keys (what cosign generates).
 */
export async function keyFor(file: string, name: string, algorithm: TrustKey['algorithm'] = 'ed25519'): Promise<KeyFileResult> {
  const exists = await stat(file).then(() => true, () => false)
  if (exists) {
    if (algorithm === 'ed25519') {
      const signer = await loadSigner({file})
      return {keyid: signer.keyid, publicKey: signer.publicKey, algorithm, pem: null}
    }
    const key = await loadImageKey(file)
    if (key.algorithm !== algorithm) throw new AirlockError('KEY_INVALID', `${file} holds an ${key.algorithm} key, not ${algorithm}`, {file})
    return {keyid: key.keyid, publicKey: key.publicKey, algorithm, pem: null}
  }
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) throw new AirlockError('USAGE', `key name "${name}": use lowercase letters, digits, - and _`, {field: 'name'})
  if (algorithm === 'ed25519') {
    const {signer, pem} = generateSigner()
    return {keyid: signer.keyid, publicKey: signer.publicKey, algorithm, pem}
  }
  const {key, pem} = generateImageKey(algorithm)
  return {keyid: key.keyid, publicKey: key.publicKey, algorithm, pem}
}

/** A trust.yaml key entry, as it is written. */
export function trustEntry(name: string, role: Role, publicKey: Uint8Array, keyid: string, validFrom: Date, validUntil?: string, algorithm: TrustKey['algorithm'] = 'ed25519') {
  return {
    id: keyid,
    name,
    algorithm,
    publicKey: Buffer.from(publicKey).toString('base64'),
    roles: [role],
    validFrom: validFrom.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...(validUntil ? {validUntil} : {}),
  }
}

export function newTrustDocument(entries: object[]): Document {
  return new Document({
    apiVersion: 'airlock/v1',
    kind: 'TrustPolicy',
    spec: {keys: entries, thresholds: {evidence: 1, policy: 1, image: 1, audit: 1}},
  })
}

/** Adds a public key with a role to trust.yaml (no change when it already has it). */
export async function buildAddKey(repo: Repository, commit: string, req: Extract<ChangeRequest, {kind: 'add-key'}>, now: Date, limits: Limits): Promise<Draft> {
  const {algorithm} = req
  if (algorithm !== 'ed25519' && req.role !== 'image') throw new AirlockError('USAGE', `--algorithm ${algorithm}: only image keys may be ECDSA; evidence, policy, audit and approval signatures are Ed25519`, {field: '--algorithm'})
  const publicKey = Buffer.from(req.publicKey, 'base64')
  const keyid = keyIdOf(publicKey)
  const validFrom = new Date(req.validFrom)
  if (Number.isNaN(validFrom.getTime())) throw new AirlockError('USAGE', `--valid-from: "${req.validFrom}" is not a time`, {field: '--valid-from'})
  if (req.validUntil !== undefined) {
    const until = Date.parse(req.validUntil)
    // A key that could never sign, or no longer can, would only make trust.yaml lie.
    if (Number.isNaN(until)) throw new AirlockError('USAGE', `--valid-until: "${req.validUntil}" is not a time`, {field: '--valid-until'})
    if (until <= validFrom.getTime()) throw new AirlockError('USAGE', `--valid-until: ${req.validUntil} is not after --valid-from ${req.validFrom}`, {field: '--valid-until'})
    if (until <= now.getTime()) throw new AirlockError('USAGE', `--valid-until: ${req.validUntil} is in the past; the key would never be valid`, {field: '--valid-until'})
  }
  const trust = await loadTrust(repo, commit, limits)
  const before = trust.oid ? await repo.readBlob(trust.oid) : null
  const existing = trust.keys.findIndex((k) => k.id === keyid)
  const changes: PlannedChange[] = []
  if (existing < 0 || !trust.keys[existing]!.roles.includes(req.role)) {
    if (existing >= 0 && trust.keys[existing]!.algorithm !== 'ed25519') throw new AirlockError('USAGE', `key ${req.name} is ${trust.keys[existing]!.algorithm}; only image keys may be ECDSA`, {field: '--role'})
    const entry = trustEntry(req.name, req.role, publicKey, keyid, validFrom, req.validUntil, algorithm)
    let doc: Document
    if (!trust.doc) doc = newTrustDocument([entry])
    else {
      doc = trust.doc.clone()
      if (existing < 0) doc.addIn(['spec', 'keys'], doc.createNode(entry))
      else doc.addIn(['spec', 'keys', existing, 'roles'], req.role)
    }
    changes.push({path: TRUST_FILE, action: before === null ? 'create' : 'modify', before, after: doc.toString()})
  }
  return {
    operation: 'trust-add-key',
    summary: changes.length ? `trust key ${req.name} (${keyid.slice(0, 16)}…) for ${req.role}` : `key ${req.name} already holds ${req.role}`,
    details: {key: req.name, keyid, role: req.role},
    subjects: [{name: `${algorithm}-key:${req.name}`, digest: {sha256: keyid}}],
    changes,
    inputs: [{path: TRUST_FILE, oid: trust.oid}],
    slug: `${req.name}-${req.role}`,
    pins: [],
  }
}
