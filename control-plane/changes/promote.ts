import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {parseDigestRef} from '../manifests/digest.js'
import type {ChangeRequest} from '../plan/plan.js'
import type {Draft} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'
import {buildChannelChange, channelOf} from './channel.js'

/** Moves an image's channel to a pinned digest, or to the digest another channel holds. */
export async function buildPromote(repo: Repository, commit: string, req: Extract<ChangeRequest, {kind: 'promote'}>, limits: Limits): Promise<Draft> {
  if ((req.from === undefined) === (req.digest === undefined)) throw new AirlockError('USAGE', 'give exactly one of --digest or --from', {field: '--digest'})
  if (req.from !== undefined && req.from === req.to) throw new AirlockError('USAGE', '--from and --to name the same channel', {field: '--from'})
  const ref = req.digest !== undefined ? parseDigestRef(req.digest, '--digest') : null
  return buildChannelChange(repo, commit, {
    image: req.image,
    limits,
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
