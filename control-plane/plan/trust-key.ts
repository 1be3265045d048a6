import {stat} from 'node:fs/promises'
import {Document} from 'yaml'
import {AirlockError} from '../errors.js'
import {generateSigner, keyIdOf, loadSigner, writePrivateKey, type Signer} from '../crypto/keys.js'
import {receiptPathFor} from '../evidence/receipt.js'
import type {Limits} from '../limits.js'
import {loadTrust} from '../manifests/load.js'
import {TRUST_FILE, type Role} from '../manifests/models.js'
import {planBase} from '../promote/channel-change.js'
import type {Repository} from '../repo/repository.js'
import {sealPlan, type Plan, type PlannedChange, type Requester} from './plan.js'

/** Uses the key at `file` when it exists, otherwise generates one there (mode 0600). */
export async function ensureKeyFile(file: string, name: string): Promise<{signer: Signer; created: boolean}> {
  const exists = await stat(file).then(() => true, () => false)
  if (exists) return {signer: await loadSigner({file}), created: false}
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) throw new AirlockError('USAGE', `key name "${name}": use lowercase letters, digits, - and _`, {field: 'name'})
  const {signer, pem} = generateSigner()
  await writePrivateKey(file, pem)
  return {signer, created: true}
}

/** A trust.yaml key entry, as it is written. */
export function trustEntry(name: string, role: Role, publicKey: Uint8Array, keyid: string, validFrom: Date, validUntil?: string) {
  return {
    id: keyid,
    name,
    algorithm: 'ed25519',
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

/** Plans adding a public key with a role to trust.yaml (a no-op when it already has it). */
export async function planAddKey(
  repo: Repository,
  req: {name: string; role: Role; publicKey: Uint8Array; validUntil?: string; reason: string; requestedBy: Requester; now: Date; limits: Limits},
): Promise<Plan> {
  const keyid = keyIdOf(req.publicKey)
  if (req.validUntil !== undefined && Number.isNaN(Date.parse(req.validUntil))) throw new AirlockError('USAGE', `--valid-until: "${req.validUntil}" is not a time`, {field: '--valid-until'})
  const base = await planBase(repo)
  const trust = await loadTrust(repo, base.commit, req.limits)
  const before = trust.oid ? await repo.readBlob(trust.oid) : null
  const existing = trust.keys.findIndex((k) => k.id === keyid)
  const changes: PlannedChange[] = []
  if (existing < 0 || !trust.keys[existing]!.roles.includes(req.role)) {
    const entry = trustEntry(req.name, req.role, req.publicKey, keyid, req.now, req.validUntil)
    let doc: Document
    if (!trust.doc) doc = newTrustDocument([entry])
    else {
      doc = trust.doc.clone()
      if (existing < 0) doc.addIn(['spec', 'keys'], doc.createNode(entry))
      else doc.addIn(['spec', 'keys', existing, 'roles'], req.role)
    }
    changes.push({path: TRUST_FILE, action: before === null ? 'create' : 'modify', before, after: doc.toString()})
  }
  const unsigned = {
    apiVersion: 'airlock/v1' as const,
    kind: 'Plan' as const,
    operation: 'trust-add-key' as const,
    summary: changes.length ? `trust key ${req.name} (${keyid.slice(0, 16)}…) for ${req.role}` : `key ${req.name} already holds ${req.role}`,
    reason: req.reason,
    requestedBy: req.requestedBy,
    createdAt: req.now.toISOString(),
    branch: base.branch,
    baseCommit: base.commit,
    inputs: [{path: TRUST_FILE, oid: trust.oid}],
    details: {key: req.name, keyid, role: req.role},
    subjects: [{name: `ed25519-key:${req.name}`, digest: {sha256: keyid}}],
    changes,
  }
  return sealPlan({...unsigned, receiptPath: changes.length ? receiptPathFor(unsigned, `${req.name}-${req.role}`) : null})
}

