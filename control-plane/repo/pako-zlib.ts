/**
 * pako (the pure-JavaScript zlib isomorphic-git ships with) on Node's own zlib: the bundle and
 * the tests alias `pako` to this module (scripts/bundle.js, vitest.config.ts). Only the surface
 * isomorphic-git 1.44.11 uses, with pako 1.0.11's results:
 *
 * - `inflate(bytes)` reads every loose and packed object (its DecompressionStream path is off);
 *   corrupt data throws zlib's message as a string, as pako does, which isomorphic-git turns
 *   into its DecompressionError.
 * - `deflate(bytes)` writes loose objects where CompressionStream is missing (Node has it, so
 *   isomorphic-git does not call this here); zlib's defaults are pako's (level 6, 15-bit window,
 *   memLevel 8), though not always its bytes: git names an object by its inflated bytes.
 * - `new Inflate()` with `push(chunk, false)`, `result`, `err`, `msg` and `strm.avail_in` finds
 *   where each object of a pack ends (indexPack, listpack): `result` is set once the stream
 *   ends, and `strm.avail_in` is then how many bytes of the last chunk follow it. Node has no
 *   public synchronous streaming inflate, so each push inflates what was pushed so far again:
 *   isomorphic-git pushes a pack it holds whole as one chunk per object.
 *
 * Deliberate differences: nothing inflates past MAX_INFLATED (an error, as corrupt data is);
 * and pako 1.0.11 returns what it could inflate of a truncated stream as if it were whole; here
 * a truncated stream is an error (`unexpected end of file`). A cut-off
 * object is refused where it is read instead of failing later, or not at all.
 */
import {deflateSync, inflateSync, type ZlibOptions} from 'node:zlib'

/**
 * No stream inflates past the largest object airlock reads (objects.ts MAX_OBJECT_BYTES, and a
 * loose object's header): a few bytes of zlib can claim gigabytes (pako had no bound either).
 * A number here, not an import: test/pako-alias.ts loads this module on its own.
 */
export const MAX_INFLATED = (512 << 20) + 64

interface ZlibError extends Error {
  code?: string
  errno?: number
}

/** pako returns plain Uint8Arrays; a view of the same memory, no copy. */
const plain = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

const bytes = (input: Uint8Array | ArrayBuffer): Uint8Array => (input instanceof ArrayBuffer ? new Uint8Array(input) : input)

export function inflate(input: Uint8Array | ArrayBuffer): Uint8Array {
  try {
    return plain(inflateSync(bytes(input), {maxOutputLength: MAX_INFLATED}))
  } catch (error) {
    throw (error as ZlibError).message
  }
}

export function deflate(input: Uint8Array | ArrayBuffer): Uint8Array {
  return plain(deflateSync(bytes(input)))
}

/** pako's streaming inflater, as isomorphic-git drives it: chunks pushed until `result` is set. */
export class Inflate {
  /** 0, or zlib's (negative) error number once the stream failed. */
  err = 0
  msg = ''
  /** The whole inflated stream, once its end was reached. */
  result: Uint8Array | undefined
  /** `avail_in`: bytes of the last chunk pushed that follow the end of the stream. */
  readonly strm = {avail_in: 0}
  ended = false
  #chunks: Uint8Array[] = []

  /**
   * Adds `data`; `mode` true (or 4, Z_FINISH) says no more input follows. Returns false once the
   * stream has ended or failed, as pako does.
   */
  push(data: Uint8Array | ArrayBuffer, mode: boolean | number = false): boolean {
    if (this.ended) return false
    const chunk = bytes(data)
    this.#chunks.push(chunk)
    const input = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks)
    try {
      const {buffer, engine} = inflateSync(input, {info: true, maxOutputLength: MAX_INFLATED} as ZlibOptions & {info: true}) as unknown as {buffer: Buffer; engine: {bytesWritten: number}}
      this.result = plain(buffer)
      this.strm.avail_in = input.byteLength - engine.bytesWritten
      this.ended = true
      this.#chunks = []
      return true
    } catch (error) {
      const e = error as ZlibError
      const finish = mode === true || mode === 4
      // The stream goes on past what was pushed so far: wait for the next chunk.
      if (e.code === 'Z_BUF_ERROR' && !finish) {
        this.strm.avail_in = 0
        return true
      }
      this.err = e.errno ?? -3
      this.msg = e.message
      this.ended = true
      this.#chunks = []
      return false
    }
  }
}

export default {inflate, deflate, Inflate}
