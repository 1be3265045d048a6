import {parseDuration} from '../../duration.js'
import {inputError} from '../../errors.js'
import type {BuiltinGate} from '../types.js'

const RUNTIME = /^(podman|containerd|file:.+|command:.+)$/

/**
 * Running vs pinned digest, per image with the channel (as `airlock align`), for the runtime in
 * `with: {runtime, channel (default stable), timeout (default 10s)}`. Drift fails; a runtime
 * that cannot be read is not_run with the reason, never a pass.
 */
export const digestAlign: BuiltinGate = {
  name: 'digest-align',
  description: 'the runtime runs the digest each image pins (with: runtime, channel)',
  checkWith(value, where) {
    const at = (field: string) => ({file: where.file, line: where.line, field: `${where.field}.${field}`})
    for (const key of Object.keys(value)) if (!['runtime', 'channel', 'timeout'].includes(key)) throw inputError('SCHEMA_VIOLATION', at(key), 'is not a known field (runtime, channel, timeout)')
    if (typeof value.runtime !== 'string' || !RUNTIME.test(value.runtime)) throw inputError('SCHEMA_VIOLATION', at('runtime'), 'is required: podman, containerd, file:PATH or command:CMD')
    if (value.channel !== undefined && (typeof value.channel !== 'string' || !/^[a-z0-9-]{1,63}$/.test(value.channel))) throw inputError('SCHEMA_VIOLATION', at('channel'), 'must be a channel name')
    if (value.timeout !== undefined) {
      try {
        parseDuration(String(value.timeout), 'timeout')
      } catch {
        throw inputError('SCHEMA_VIOLATION', at('timeout'), `"${String(value.timeout)}" is not a duration like 10s`)
      }
    }
  },
  async run(ctx) {
    const [{loadImages}, {runtimeAdapter}, {alignImages}] = await Promise.all([import('../../manifests/load.js'), import('../../../platform/runtime/adapters.js'), import('../../../platform/runtime/align.js')])
    const channel = typeof ctx.with.channel === 'string' ? ctx.with.channel : 'stable'
    const spec = String(ctx.with.runtime)
    const runtime = runtimeAdapter(spec, {timeoutMs: parseDuration(String(ctx.with.timeout ?? '10s'), 'timeout'), maxFileBytes: ctx.limits.maxFileBytes})
    const images = (await loadImages(ctx.repo, ctx.commit, ctx.limits)).filter((i) => i.channels[channel])
    if (images.length === 0) return {status: 'not_run', reason: `no image has a channel "${channel}"`}
    const results = await alignImages(images, channel, runtime)
    const evidence = {runtime: spec, channel, results: results.map((r) => ({image: r.image, status: r.status, manifest: r.manifest, running: r.running, ...(r.reason ? {reason: r.reason} : {})}))}
    const drift = results.filter((r) => r.status === 'DRIFT')
    const unreadable = results.filter((r) => r.status === 'UNREADABLE')
    if (drift.length > 0) return {status: 'fail', reason: `DRIFT: ${drift.map((r) => `${r.image}/${channel} runs ${r.running} but pins ${r.manifest}`).join('; ')}`, evidence}
    if (unreadable.length > 0) return {status: 'not_run', reason: `the runtime cannot be read: ${unreadable[0]!.reason}`, evidence}
    return {status: 'pass', reason: `${results.length} image(s) on ${channel} run their pinned digest`, evidence}
  },
}
