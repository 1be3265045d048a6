/**
 * Publishing an audit checkpoint: git as the log's witness (docs/audit.md, "Published
 * checkpoints"). The change commits the signed note, byte for byte, and the consistency proof from
 * the last checkpoint published for the same origin, so every clone holds the log's history of
 * roots. Everything is judged against the base commit, never against the change itself, in
 * order; each step names the attack it stops and refuses with AUDIT_CHECKPOINT_INVALID and a
 * `reason`.
 */
import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {keysFor, loadTrust} from '../manifests/load.js'
import {TRUST_FILE, type TrustPolicy} from '../manifests/models.js'
import type {ChangeRequest, PlannedChange} from '../plan/plan.js'
import type {Draft, PlanInput} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'
import {verifyConsistency} from '../audit/merkle.js'
import {parseCheckpoint, parseNote, verifierKeyOf, verifyNote, type Checkpoint} from '../audit/note.js'
import {checkpointPath, consistencyPath, decodeHash, encodeHash, formatConsistency, lastPublished, originSlug, type PublishedCheckpoint} from '../audit/published.js'

/** The Cedar action publishing a checkpoint is authorized as, on the log (AgentKernel::AuditLog::"<origin>"). */
export const PUBLISH_ACTION = 'PublishCheckpoint'

function invalid(reason: string, message: string, details: Record<string, unknown> = {}): AirlockError {
  return new AirlockError('AUDIT_CHECKPOINT_INVALID', message, {reason, ...details})
}

/** Step 1 — the note reads as a C2SP tlog-checkpoint (a size limit first: no huge note is parsed). */
function readCheckpoint(text: string, limits: Limits): {checkpoint: Checkpoint; note: ReturnType<typeof parseNote>} {
  if (Buffer.byteLength(text) > limits.maxFileBytes) throw new AirlockError('TOO_LARGE', `the checkpoint is larger than ${limits.maxFileBytes} bytes`, {field: 'checkpoint'})
  try {
    const note = parseNote(text, {maxBytes: limits.maxFileBytes})
    return {note, checkpoint: parseCheckpoint(note.text)}
  } catch (error) {
    if (!(error instanceof AirlockError)) throw error
    throw invalid('MALFORMED', `the checkpoint is not a C2SP signed checkpoint: ${error.message}`, {field: 'checkpoint', problem: error.details.problem})
  }
}

/**
 * Step 2 — signed by enough audit keys of the base's trust policy valid now, under the log's own
 * origin as the key name (stops a forged checkpoint, one signed by a key the fleet does not trust,
 * and one of another log: its origin names another key).
 */
function checkSigners(note: ReturnType<typeof parseNote>, checkpoint: Checkpoint, trust: TrustPolicy, now: Date): string[] {
  const keys = keysFor(trust, 'audit', now).filter((k) => k.algorithm === 'ed25519')
  if (keys.length === 0) throw invalid('UNTRUSTED_KEY', `${TRUST_FILE} holds no audit key valid now (${now.toISOString()}); add one with \`airlock keys generate NAME --role audit --apply\``)
  let verified
  try {
    verified = verifyNote(note, keys.map((k) => verifierKeyOf(checkpoint.origin, k.publicKey)))
  } catch (error) {
    if (!(error instanceof AirlockError)) throw error
    const reason = error.code === 'BAD_SIGNATURE' ? 'FORGED' : error.code === 'UNKNOWN_KEY' ? 'UNTRUSTED_KEY' : 'MALFORMED'
    const why = reason === 'UNTRUSTED_KEY' ? `signed by no audit key of ${TRUST_FILE} valid now under the name ${JSON.stringify(checkpoint.origin)}` : error.message
    throw invalid(reason, `the checkpoint of ${JSON.stringify(checkpoint.origin)} at size ${checkpoint.size}: ${why}`, {origin: checkpoint.origin, problem: error.details.problem})
  }
  const ids = verified.verifiedBy.map((v) => keys.find((k) => Buffer.from(k.publicKey).equals(v.publicKey))!.id)
  const need = trust.thresholds.audit
  if (ids.length < need) throw invalid('UNTRUSTED_KEY', `the checkpoint is signed by ${ids.length} audit key(s) of ${TRUST_FILE}; its audit threshold is ${need}`, {origin: checkpoint.origin, signers: ids})
  return ids
}

/**
 * Step 3 — against the last checkpoint published for the origin: a smaller tree is a rollback; the
 * same size with another root is a second history of one log (a fork); a larger tree must be
 * proved to extend the published one (RFC 6962 consistency), so a log rewritten after publishing
 * is never published over. The same checkpoint again is nothing to do (null).
 */
function checkExtends(checkpoint: Checkpoint, previous: PublishedCheckpoint | null, proofText: string[]): Uint8Array[] | null {
  const {origin, size} = checkpoint
  const root = encodeHash(checkpoint.rootHash)
  const proof = proofText.map((h, i) => {
    const hash = decodeHash(h)
    if (!hash) throw new AirlockError('INVALID_INPUT', `proof hash ${i + 1} is not a 32-byte hash in canonical base64`, {field: `proof[${i}]`})
    return hash
  })
  if (!previous) {
    if (proof.length > 0) throw new AirlockError('INVALID_INPUT', `nothing is published for ${JSON.stringify(origin)} yet, so there is nothing to prove consistency with; the proof must be empty`, {field: 'proof'})
    return proof
  }
  const was = {path: previous.path, size: previous.size, root: previous.root}
  if (size < previous.size) throw invalid('ROLLED_BACK', `the checkpoint of ${JSON.stringify(origin)} is of size ${size}, smaller than the ${previous.size} already published (${previous.path}); a log only grows`, {origin, size, published: was})
  if (size === previous.size) {
    if (root === previous.root) return null
    throw invalid('FORK', `the checkpoint of ${JSON.stringify(origin)} at size ${size} has root ${root}, but ${previous.path} published ${previous.root} at that size: two histories of one log`, {origin, size, root, published: was})
  }
  const oldRoot = decodeHash(previous.root)!
  if (!verifyConsistency(previous.size, size, oldRoot, checkpoint.rootHash, proof)) {
    throw invalid('INCONSISTENT', `the checkpoint of ${JSON.stringify(origin)} at size ${size} is not proved to extend the one published at size ${previous.size} (${previous.path}): the log was rewritten, or the proof is wrong`, {origin, size, root, published: was})
  }
  return proof
}

/** Builds the publication of `req.checkpoint` on the base `commit`. */
export async function buildAuditPublish(repo: Repository, commit: string, req: Extract<ChangeRequest, {kind: 'audit-publish'}>, now: Date, limits: Limits): Promise<Draft> {
  const {note, checkpoint} = readCheckpoint(req.checkpoint, limits)
  const {origin, size} = checkpoint
  if (size === 0) throw invalid('EMPTY', `the checkpoint of ${JSON.stringify(origin)} is of an empty log: there is nothing to publish`, {origin})
  originSlug(origin)
  const trust = await loadTrust(repo, commit, limits)
  const signers = checkSigners(note, checkpoint, trust, now)
  const previous = await lastPublished(repo, commit, origin, limits)
  const proof = checkExtends(checkpoint, previous, req.proof)
  const root = encodeHash(checkpoint.rootHash)
  const path = checkpointPath(origin, size)
  const proofPath = previous ? consistencyPath(origin, size) : null
  const changes: PlannedChange[] = []
  if (proof) {
    changes.push({path, action: 'create', before: null, after: req.checkpoint})
    if (proofPath) changes.push({path: proofPath, action: 'create', before: null, after: formatConsistency({oldSize: previous!.size, newSize: size, proof})})
  }
  // What the plan was computed from: the trust policy, the last published checkpoint, and the
  // absence of the files it adds (a saved plan applies only while they are still absent).
  const inputs: PlanInput[] = [{path: TRUST_FILE, oid: trust.oid}]
  if (previous) inputs.push({path: previous.path, oid: previous.oid})
  inputs.push(...changes.map((c) => ({path: c.path, oid: null})))
  return {
    operation: 'audit-publish',
    summary: proof ? `publish the audit checkpoint of ${origin} at size ${size}` : `the audit checkpoint of ${origin} at size ${size} is already published`,
    details: {origin, size, root, signers, checkpoint: path, consistency: proof ? proofPath : (previous?.consistency?.path ?? null), previous: previous ? {size: previous.size, root: previous.root, path: previous.path} : null},
    subjects: [{name: `audit-log:${origin}`, digest: {sha256: Buffer.from(checkpoint.rootHash).toString('hex')}}],
    changes,
    inputs,
    slug: `audit-${size}`,
    pins: [],
    asks: [{action: PUBLISH_ACTION, resource: {type: 'AgentKernel::AuditLog', id: origin}, attrs: {origin}}],
  }
}
