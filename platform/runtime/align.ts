/** Running digest against the manifest's pin, per image: ALIGNED, DRIFT, or UNREADABLE (with why). */
import type {GoldenImage} from '../../control-plane/manifests/models.js'
import {RuntimeUnavailable, type RuntimeAdapter} from './adapters.js'

export interface Alignment {
  image: string
  channel: string
  status: 'ALIGNED' | 'DRIFT' | 'UNREADABLE'
  manifest: string
  running: string | null
  reason?: string
}

/** Compares each image's pin on `channel` with what the runtime says runs; one unreadable image hides no other. */
export async function alignImages(images: GoldenImage[], channel: string, runtime: RuntimeAdapter): Promise<Alignment[]> {
  const out: Alignment[] = []
  for (const image of images) {
    const manifest = image.channels[channel]!.digest
    try {
      const running = await runtime.running({image: image.name, repository: image.repository, channel})
      out.push({image: image.name, channel, status: running === manifest ? 'ALIGNED' : 'DRIFT', manifest, running})
    } catch (error) {
      if (!(error instanceof RuntimeUnavailable)) throw error
      out.push({image: image.name, channel, status: 'UNREADABLE', manifest, running: null, reason: error.problem})
    }
  }
  return out
}
