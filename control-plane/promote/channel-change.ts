import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {loadImage} from '../manifests/load.js'
import type {GoldenImage} from '../manifests/models.js'
import {sealPlan, type AuthorizationRecord, type Plan, type PlannedChange, type Requester, type SignatureVerification} from '../plan/plan.js'
import {receiptPathFor} from '../evidence/receipt.js'
import type {Repository} from '../repo/repository.js'

export interface ChangeRequest {
  image: string
  /**
   * Decides whether the acting principal may make this change: called once the image and
   * channel are known to exist and before any change is computed. Absent for core-only callers.
   */
  authorize?: (change: {action: 'Promote' | 'Rollback'; image: string; channel: string; base: string}) => Promise<AuthorizationRecord>
  /**
   * Verifies the signature of the digest the change pins, under the image's policy at the base
   * commit; throws when it does not verify. Returns the record and the files it read.
   */
  verify?: (image: GoldenImage, digest: string, base: string) => Promise<{record: SignatureVerification; inputs: Array<{path: string; oid: string | null}>}>
  reason: string
  requestedBy: Requester
  now: Date
  limits: Limits
}

/** The base every plan starts from: the branch HEAD names and its commit. */
export async function planBase(repo: Repository): Promise<{branch: string; commit: string}> {
  const head = await repo.head()
  if (!head.oid) throw new AirlockError('INVALID_INPUT', `${head.ref} has no commit yet; nothing to plan against`, {branch: head.ref})
  return {branch: head.ref, commit: head.oid}
}

export function channelOf(image: GoldenImage, channel: string, flag: string) {
  const ch = image.channels[channel]
  if (!ch) {
    throw new AirlockError('UNKNOWN_CHANNEL', `${flag}: image ${image.name} has no channel "${channel}" (channels: ${Object.keys(image.channels).join(', ')})`, {
      image: image.name,
      channel,
      field: flag,
    })
  }
  return ch
}

/**
 * A plan that sets `channel` of `image` to the digest `target` picks from the image as read at
 * the base commit, and records what it replaces as the rollback target (`previous`), captured
 * before anything changes. Setting the digest already there is a no-op plan.
 */
export async function planChannelChange(
  repo: Repository,
  req: ChangeRequest & {operation: 'promote' | 'rollback'; channel: string; target: (image: GoldenImage) => string; extra: Record<string, unknown>; summary: (from: string, to: string) => string},
): Promise<Plan> {
  const base = await planBase(repo)
  const image = await loadImage(repo, base.commit, req.image, req.limits)
  const to = req.target(image)
  const current = channelOf(image, req.channel, req.operation === 'promote' ? '--to' : '--channel')
  const authorization = req.authorize ? await req.authorize({action: req.operation === 'promote' ? 'Promote' : 'Rollback', image: image.name, channel: req.channel, base: base.commit}) : undefined
  const noop = current.digest === to
  const signature = !noop && req.verify ? await req.verify(image, to, base.commit) : undefined
  const before = image.text
  const changes: PlannedChange[] = []
  if (!noop) {
    const doc = image.doc.clone()
    doc.setIn(['spec', 'channels', req.channel, 'digest'], to)
    doc.setIn(['spec', 'channels', req.channel, 'previous'], current.digest)
    changes.push({path: image.file, action: 'modify', before, after: doc.toString()})
  }
  const unsigned = {
    apiVersion: 'airlock/v1' as const,
    kind: 'Plan' as const,
    operation: req.operation,
    summary: noop ? `${image.name}/${req.channel} is already at ${to}` : req.summary(current.digest, to),
    reason: req.reason,
    requestedBy: req.requestedBy,
    createdAt: req.now.toISOString(),
    branch: base.branch,
    baseCommit: base.commit,
    inputs: [{path: image.file, oid: image.oid}, ...(signature?.inputs ?? [])],
    details: {
      image: image.name,
      repository: image.repository,
      channel: req.channel,
      from: current.digest,
      to,
      rollbackTarget: noop ? current.previous : current.digest,
      ...req.extra,
    },
    subjects: [{name: image.repository, digest: {sha256: to.slice('sha256:'.length)}}],
    changes,
    ...(authorization ? {authorization} : {}),
    ...(signature ? {signature: signature.record} : {}),
  }
  return sealPlan({...unsigned, receiptPath: noop ? null : receiptPathFor({...unsigned}, `${image.name}-${req.channel}`)})
}
