import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {loadImage} from '../manifests/load.js'
import type {GoldenImage} from '../manifests/models.js'
import type {PlannedChange} from '../plan/plan.js'
import type {Draft} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'

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
 * The change that sets `channel` of `image` to the digest `target` picks from the image as read
 * at the base commit, recording what it replaces as the rollback target (`previous`), captured
 * before anything changes. Setting the digest already there changes nothing.
 */
export async function buildChannelChange(
  repo: Repository,
  commit: string,
  req: {image: string; limits: Limits; operation: 'promote' | 'rollback'; channel: string; target: (image: GoldenImage) => string; extra: Record<string, unknown>; summary: (from: string, to: string) => string},
): Promise<Draft> {
  const image = await loadImage(repo, commit, req.image, req.limits)
  const to = req.target(image)
  const current = channelOf(image, req.channel, req.operation === 'promote' ? '--to' : '--channel')
  const noop = current.digest === to
  const changes: PlannedChange[] = []
  if (!noop) {
    const doc = image.doc.clone()
    doc.setIn(['spec', 'channels', req.channel, 'digest'], to)
    doc.setIn(['spec', 'channels', req.channel, 'previous'], current.digest)
    // Flow lists (a channel's `requires.suites: [a, b]`) keep their spacing: the diff shows only the pin.
    changes.push({path: image.file, action: 'modify', before: image.text, after: doc.toString({flowCollectionPadding: false})})
  }
  return {
    operation: req.operation,
    summary: noop ? `${image.name}/${req.channel} is already at ${to}` : req.summary(current.digest, to),
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
    inputs: [{path: image.file, oid: image.oid}],
    slug: `${image.name}-${req.channel}`,
    channel: {action: req.operation === 'promote' ? 'Promote' : 'Rollback', image: image.name, channel: req.channel},
    pins: noop ? [] : [{image, digest: to, channel: req.channel}],
  }
}
