import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {parseDigestRef} from '../manifests/digest.js'
import type {ChangeRequest} from '../plan/plan.js'
import type {Draft} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'
import {buildChannelChange, channelOf} from './channel.js'
import {short} from './promote.js'

/**
 * A rollback as a forward change: the channel gets the target back and the digest rolled back
 * from becomes its `previous`. History is never rewritten.
 */
export async function buildRollback(repo: Repository, commit: string, req: Extract<ChangeRequest, {kind: 'rollback'}>, reason: string, limits: Limits): Promise<Draft> {
  if (!reason.trim()) throw new AirlockError('USAGE', '--reason: a rollback needs a reason; it goes into the commit and the receipt', {field: '--reason'})
  const to = req.to === 'previous' ? null : parseDigestRef(req.to, '--to').digest
  return buildChannelChange(repo, commit, {
    image: req.image,
    limits,
    operation: 'rollback',
    channel: req.channel,
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
