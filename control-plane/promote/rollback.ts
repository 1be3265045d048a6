import {AirlockError} from '../errors.js'
import {loadImage} from '../manifests/load.js'
import {parseDigestRef} from '../manifests/digest.js'
import type {Plan} from '../plan/plan.js'
import type {Repository} from '../repo/repository.js'
import {channelOf, planBase, planChannelChange, type ChangeRequest} from './channel-change.js'
import {short} from './promote.js'

export type RollbackRequest = ChangeRequest & {channel: string; to: 'previous' | string}

/**
 * Plans a rollback as a forward change: the channel gets the target back and the digest rolled
 * back from becomes its `previous`. History is never rewritten.
 */
export async function planRollback(repo: Repository, req: RollbackRequest): Promise<Plan> {
  if (!req.reason.trim()) throw new AirlockError('USAGE', '--reason: a rollback needs a reason; it goes into the commit and the receipt', {field: '--reason'})
  const base = await planBase(repo)
  const image = await loadImage(repo, base.commit, req.image, req.limits)
  const ch = channelOf(image, req.channel, '--channel')
  let target: string
  if (req.to === 'previous') {
    if (!ch.previous) {
      throw new AirlockError('INVALID_INPUT', `${image.file}: channel ${req.channel} records no rollback target (previous); give --to sha256:…`, {image: image.name, channel: req.channel})
    }
    target = ch.previous
  } else {
    target = parseDigestRef(req.to, '--to').digest
  }
  return planChannelChange(repo, {
    ...req,
    operation: 'rollback',
    to: target,
    extra: {source: req.to === 'previous' ? 'previous' : 'digest'},
    summary: (from) => `roll back ${req.image}/${req.channel}: ${short(from)} → ${short(target)}`,
  })
}
