import type {BuiltinGate} from '../types.js'

/** As `airlock image verify --all`: every digest a channel pins verifies under its image's signature policy. */
export const imageVerify: BuiltinGate = {
  name: 'image-verify',
  description: 'every pinned digest of every channel verifies (as image verify --all)',
  async run(ctx) {
    const [{loadImages, loadTrust}, {verifyAllPinned}] = await Promise.all([import('../../manifests/load.js'), import('../../../platform/images/policy.js')])
    const [images, trust] = await Promise.all([loadImages(ctx.repo, ctx.commit, ctx.limits), loadTrust(ctx.repo, ctx.commit, ctx.limits)])
    const results = await verifyAllPinned(ctx.repo, ctx.commit, images, trust, ctx.now, ctx.limits)
    const failed = results.filter((r) => !r.verified)
    const evidence = {verified: results.length - failed.length, failed: failed.map((r) => ({image: r.image, channel: r.channel, digest: r.digest, reason: r.reason}))}
    if (results.length === 0) return {status: 'pass', reason: 'no channel pins a digest', evidence}
    if (failed.length > 0) {
      const f = failed[0]!
      return {status: 'fail', reason: `${failed.length} of ${results.length} pinned digest(s) do not verify, first ${f.image}/${f.channel} ${f.digest.slice(0, 19)}…: ${f.reason}`, evidence}
    }
    return {status: 'pass', reason: `${results.length} pinned digest(s) verify`, evidence}
  },
}
