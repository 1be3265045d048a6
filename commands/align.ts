import {Args, Flags} from '@oclif/core'
import type {Alignment} from '../platform/runtime/align.js'
import type {TrustSource} from '../control-plane/pipeline/base.js'
import {AirlockCommand, anchorFlag} from './_base.js'
import {verifiedHead} from './_policy.js'
import {forTerminal as t} from '../control-plane/terminal.js'

export default class Align extends AirlockCommand {
  static override summary = 'Compare the digest an image is running at with the digest its manifest pins: ALIGNED or DRIFT.'
  static override description = `Reads the running digest from the runtime and compares it with the channel's pin at HEAD. Exit 1 on DRIFT or when the runtime cannot be read (the reason is printed).

Runtimes: podman (the container named after the image), containerd (ctr, the container named after the image; namespace AIRLOCK_CONTAINERD_NAMESPACE), file:PATH (the reconciler's state file: {"apiVersion":"airlock/v1","kind":"RuntimeState","images":{"<image>":{"digest":"sha256:…"}}}), command:CMD (any command that prints the digest; AIRLOCK_IMAGE, AIRLOCK_REPOSITORY and AIRLOCK_CHANNEL tell it which image).`
  static override examples = [
    '<%= config.bin %> align agent-runner --channel canary --runtime file:/var/lib/agentkernel/state.json',
    '<%= config.bin %> align --channel stable --runtime "command:/usr/local/bin/running-digest --host h1"',
  ]
  static override args = {image: Args.string({description: 'image name (default: every image with the channel)'})}
  static override flags = {
    ...anchorFlag,
    channel: Flags.string({description: 'channel whose pin the host should run', default: 'stable'}),
    runtime: Flags.string({description: 'podman | containerd | file:PATH | command:CMD', required: true}),
    timeout: Flags.string({description: 'deadline for each runtime command', default: '10s'}),
  }

  async run(): Promise<{results: Alignment[]; aligned: number; drift: number; unreadable: number; trustSource: TrustSource}> {
    const {args, flags} = await this.parse(Align)
    // The pins compared are those at a HEAD whose history verifies back to the pinned anchor.
    const {repo, commit, source} = await verifiedHead(flags, this)
    const [{loadImage, loadImages}, {runtimeAdapter}, {alignImages}, {parseDuration}, {AirlockError}] = await Promise.all([
      import('../control-plane/manifests/load.js'),
      import('../platform/runtime/adapters.js'),
      import('../platform/runtime/align.js'),
      import('../control-plane/duration.js'),
      import('../control-plane/errors.js'),
    ])
    const runtime = runtimeAdapter(flags.runtime, {timeoutMs: parseDuration(flags.timeout, '--timeout'), maxFileBytes: this.limits.maxFileBytes})
    let images = args.image ? [await loadImage(repo, commit, args.image, this.limits)] : await loadImages(repo, commit, this.limits)
    if (args.image && !images[0]!.channels[flags.channel]) {
      throw new AirlockError('UNKNOWN_CHANNEL', `--channel: image ${args.image} has no channel "${flags.channel}" (channels: ${Object.keys(images[0]!.channels).join(', ')})`, {field: '--channel'})
    }
    images = images.filter((i) => i.channels[flags.channel])
    if (images.length === 0) throw new AirlockError('UNKNOWN_CHANNEL', `--channel: no image has a channel "${flags.channel}"`, {field: '--channel'})
    const results = await alignImages(images, flags.channel, runtime)
    const count = (s: Alignment['status']) => results.filter((r) => r.status === s).length
    if (!this.jsonEnabled()) {
      for (const r of results) {
        const where = `${t(r.image)}/${t(r.channel)}`
        if (r.status === 'ALIGNED') this.log(`ALIGNED     ${where}  ${t(r.manifest)}`)
        else if (r.status === 'DRIFT') this.log(`DRIFT       ${where}\n  manifest  ${t(r.manifest)}\n  running   ${t(String(r.running))}`)
        else this.log(`UNREADABLE  ${where}  ${t(String(r.reason))}\n  manifest  ${t(r.manifest)}`)
      }
    }
    if (count('DRIFT') + count('UNREADABLE') > 0) this.failCheck()
    return {results, aligned: count('ALIGNED'), drift: count('DRIFT'), unreadable: count('UNREADABLE'), trustSource: source}
  }
}
