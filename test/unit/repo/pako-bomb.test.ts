/**
 * isomorphic-git's zlib (the node:zlib shim) against a zlib bomb: a few hundred kilobytes that
 * inflate past the largest object airlock reads. isomorphic-git inflates every object it reads
 * itself (a version-1 pack index, a merge's reads), so the bound is in the shim.
 */
import {createDeflate} from 'node:zlib'
import {describe, expect, it} from 'vitest'
import {Inflate, inflate, MAX_INFLATED} from '../../../control-plane/repo/pako-zlib.js'
import {MAX_OBJECT_BYTES} from '../../../control-plane/repo/objects.js'

/** zlib of `total` zero bytes, built a megabyte at a time (the test never holds them). */
async function zeros(total: number): Promise<Buffer> {
  const z = createDeflate({level: 9})
  const out: Buffer[] = []
  z.on('data', (b: Buffer) => out.push(b))
  const done = new Promise((resolve) => z.on('end', resolve))
  const mb = Buffer.alloc(1 << 20)
  for (let n = 0; n < total; n += mb.length) if (!z.write(mb)) await new Promise((resolve) => z.once('drain', resolve))
  z.end()
  await done
  return Buffer.concat(out)
}

describe('the pako shim bounds what it inflates', () => {
  it('a stream inflating past the largest object is an error, not an allocation of it', async () => {
    const bomb = await zeros(MAX_OBJECT_BYTES + (8 << 20))
    expect(bomb.length).toBeLessThan(2 << 20)
    expect(() => inflate(bomb)).toThrow()
    const streaming = new Inflate()
    expect(streaming.push(bomb, true)).toBe(false)
    expect(streaming.err).not.toBe(0)
    expect(streaming.result).toBeUndefined()
  }, 120_000)

  it('the bound is the object reader’s own', () => {
    expect(MAX_INFLATED).toBe(MAX_OBJECT_BYTES + 64)
  })
})
