import {AirlockError} from '../errors.js'
import {parseDigestRef} from '../manifests/digest.js'
import type {Plan} from '../plan/plan.js'
import type {Repository} from '../repo/repository.js'
import {channelOf, planChannelChange, type ChangeRequest} from './channel-change.js'

export type PromoteRequest = ChangeRequest & {to: string} & ({digest: string; from?: undefined} | {from: string; digest?: undefined})

/** Plans moving an image's channel to a pinned digest, or to the digest another channel holds. */
export async function planPromote(repo: Repository, req: PromoteRequest): Promise<Plan> {
  if (req.from !== undefined && req.from === req.to) throw new AirlockError('USAGE', '--from and --to name the same channel', {field: '--from'})
  const ref = req.from === undefined ? parseDigestRef(req.digest, '--digest') : null
  return planChannelChange(repo, {
    ...req,
    operation: 'promote',
    channel: req.to,
    target: (image) => {
      if (!ref) return channelOf(image, req.from!, '--from').digest
      if (ref.repository !== undefined && ref.repository !== image.repository) {
        throw new AirlockError('INVALID_INPUT', `--digest: ${ref.repository} is not the repository of image ${image.name} (${image.repository})`, {field: '--digest'})
      }
      return ref.digest
    },
    extra: {source: ref ? 'digest' : `channel ${req.from}`},
    summary: (from, to) => `promote ${req.image} to ${req.to}: ${short(from)} → ${short(to)}`,
  })
}

export function short(digest: string): string {
  return `${digest.slice(0, 'sha256:'.length + 12)}…`
}
