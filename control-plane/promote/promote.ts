import {AirlockError} from '../errors.js'
import {loadImage} from '../manifests/load.js'
import {parseDigestRef} from '../manifests/digest.js'
import type {Plan} from '../plan/plan.js'
import type {Repository} from '../repo/repository.js'
import {channelOf, planBase, planChannelChange, type ChangeRequest} from './channel-change.js'

export type PromoteRequest = ChangeRequest & {to: string} & ({digest: string; from?: undefined} | {from: string; digest?: undefined})

/** Plans moving an image's channel to a pinned digest, or to the digest another channel holds. */
export async function planPromote(repo: Repository, req: PromoteRequest): Promise<Plan> {
  let digest: string
  let source: string
  if (req.from !== undefined) {
    const base = await planBase(repo)
    const image = await loadImage(repo, base.commit, req.image, req.limits)
    digest = channelOf(image, req.from, '--from').digest
    source = `channel ${req.from}`
    if (req.from === req.to) throw new AirlockError('USAGE', '--from and --to name the same channel', {field: '--from'})
  } else {
    const ref = parseDigestRef(req.digest, '--digest')
    if (ref.repository !== undefined) {
      const image = await loadImage(repo, (await planBase(repo)).commit, req.image, req.limits)
      if (ref.repository !== image.repository) {
        throw new AirlockError('INVALID_INPUT', `--digest: ${ref.repository} is not the repository of image ${image.name} (${image.repository})`, {field: '--digest'})
      }
    }
    digest = ref.digest
    source = 'digest'
  }
  return planChannelChange(repo, {
    ...req,
    operation: 'promote',
    channel: req.to,
    to: digest,
    extra: {source},
    summary: (from) => `promote ${req.image} to ${req.to}: ${short(from)} → ${short(digest)}`,
  })
}

export function short(digest: string): string {
  return `${digest.slice(0, 'sha256:'.length + 12)}…`
}
