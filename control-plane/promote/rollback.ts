import {AirlockError} from '../errors.js'
import {parseDigestRef} from '../manifests/digest.js'
import type {Plan} from '../plan/plan.js'
import type {Repository} from '../repo/repository.js'
import {channelOf, planChannelChange, type ChangeRequest} from './channel-change.js'
import {short} from './promote.js'

export type RollbackRequest = ChangeRequest & {channel: string; to: 'previous' | string}

/**
 * Plans a rollback as a forward change: the channel gets the target back and the digest rolled
 * back from becomes its `previous`. History is never rewritten.
 */
export async function planRollback(repo: Repository, req: RollbackRequest): Promise<Plan> {
  if (!req.reason.trim()) throw new AirlockError('USAGE', '--reason: a rollback needs a reason; it goes into the commit and the receipt', {field: '--reason'})
  const to = req.to === 'previous' ? null : parseDigestRef(req.to, '--to').digest
  return planChannelChange(repo, {
    ...req,
    operation: 'rollback',
    target: (image) => {
      if (to) return to
      const previous = channelOf(image, req.channel, '--channel').previous
      if (!previous) {
        throw new AirlockError('INVALID_INPUT', `${image.file}: channel ${req.channel} records no rollback target (previous); give --to sha256:…`, {image: image.name, channel: req.channel})
      }
      return previous
    },
    extra: {source: req.to === 'previous' ? 'previous' : 'digest'},
    summary: (from, target) => `roll back ${req.image}/${req.channel}: ${short(from)} → ${short(target)}`,
  })
}
