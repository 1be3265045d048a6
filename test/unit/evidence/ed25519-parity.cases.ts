/**
 * Ed25519 edge cases, built with @noble/ed25519's point arithmetic from fixed seeds: the table the
 * parity test runs through Node's crypto.verify (airlock's verifyEd25519), Chromium's WebCrypto and
 * the report page's rule with either engine.
 *
 * `node` is what Node's crypto.verify (OpenSSL) answers, `page` what the page's rule answers; they
 * differ only for keys the page refuses (small-order, with a small-order component, non-canonical):
 * OpenSSL and BoringSSL accept such keys, and a forged signature verifies under them.
 */
import {createHash} from 'node:crypto'
import * as ed from '@noble/ed25519'

export interface ParityCase {
  name: string
  publicKey: string
  message: string
  signature: string
  node: boolean
  page: boolean
}

const sha512 = (...parts: Uint8Array[]) => new Uint8Array(createHash('sha512').update(Buffer.concat(parts)).digest())
ed.hashes.sha512 = (m: Uint8Array) => sha512(m)
const {Point} = ed
const L = Point.CURVE().n
const P = Point.CURVE().p
const le = (b: Uint8Array) => b.reduceRight((n, byte) => (n << 8n) | BigInt(byte), 0n)
const toLe = (n: bigint, len = 32) => Uint8Array.from({length: len}, (_, i) => Number((n >> BigInt(8 * i)) & 255n))
const scalar = (...parts: Uint8Array[]) => le(sha512(...parts)) % L
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'))
const cat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts))
const str = (b: Uint8Array) => Buffer.from(b).toString('hex')

/** The eight points of small order, canonically encoded. */
const TORSION = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
].map(hex)

/** A signature that verifies (cofactorless) under a small-order key T: S = 0 and R = -[k]T, for the R among the torsion points that fits. */
function forgeUnderSmallOrder(T: Uint8Array, msg: Uint8Array): Uint8Array | undefined {
  const A = Point.fromBytes(T, true)
  for (const R of TORSION) {
    const k = scalar(R, T, msg)
    const expected = k === 0n ? Point.ZERO : A.multiply(k, false).negate()
    if (str(expected.toBytes()) === str(R)) return cat(R, toLe(0n))
  }
  return undefined
}

export function parityCases(): ParityCase[] {
  const msg = new TextEncoder().encode('DSSEv1 28 application/vnd.in-toto+json 2 {}')
  const seed = new Uint8Array(32).fill(7)
  const {scalar: a, pointBytes: A, prefix} = ed.utils.getExtendedPublicKey(seed)
  const sig = ed.sign(msg, seed)
  const S = le(sig.subarray(32))
  const cases: ParityCase[] = []
  const add = (name: string, pk: Uint8Array, m: Uint8Array, s: Uint8Array, node: boolean, page = node) => cases.push({name, publicKey: str(pk), message: str(m), signature: str(s), node, page})
  const flip = (b: Uint8Array, i: number) => Uint8Array.from(b, (x, j) => (j === i ? x ^ 1 : x))

  add('valid', A, msg, sig, true)
  add('valid, empty message', A, new Uint8Array(0), ed.sign(new Uint8Array(0), seed), true)
  add('wrong key', ed.getPublicKey(new Uint8Array(32).fill(9)), msg, sig, false)
  add('bit flipped in R', A, msg, flip(sig, 10), false)
  add('bit flipped in S', A, msg, flip(sig, 40), false)
  add('bit flipped in the message', A, flip(msg, 0), sig, false)
  add('non-canonical S (S + L)', A, msg, cat(sig.subarray(0, 32), toLe(S + L)), false)
  add('S = L', A, msg, cat(sig.subarray(0, 32), toLe(L)), false)
  add('S with its top bit set', A, msg, cat(sig.subarray(0, 32), toLe(S + (1n << 255n))), false)
  for (const [i, T] of TORSION.entries()) {
    const forged = forgeUnderSmallOrder(T, msg)
    if (forged) add(`small-order key ${i}, forged signature (S = 0)`, T, msg, forged, true, false)
    else add(`small-order key ${i}, identity R and S = 0`, T, msg, cat(TORSION[0]!, toLe(0n)), false)
  }
  const identity = TORSION[0]!
  const negativeZero = Uint8Array.from(identity, (x, j) => (j === 31 ? x | 0x80 : x))
  add('non-canonical key y = p + 1 (the identity), forged signature', toLe(P + 1n), msg, cat(identity, toLe(0n)), true, false)
  add('non-canonical key x = 0 with the sign bit (the identity), forged signature', negativeZero, msg, cat(identity, toLe(0n)), true, false)
  add('non-canonical R y = p + 1 under the identity key', identity, msg, cat(toLe(P + 1n), toLe(0n)), false)
  add('non-canonical R x = 0 with the sign bit under the identity key', identity, msg, cat(negativeZero, toLe(0n)), false)
  // R with a small-order component: the cofactored equation holds, the cofactorless one does not.
  const T8 = Point.fromBytes(TORSION[4]!, true)
  const r = scalar(prefix, msg, Uint8Array.of(1))
  const Rm = Point.BASE.multiply(r).add(T8).toBytes()
  add('R with a small-order component (cofactored-only valid)', A, msg, cat(Rm, toLe((r + scalar(Rm, A, msg) * a) % L)), false)
  // A key with a small-order component, and a signature that verifies under it cofactorlessly.
  const Amixed = Point.fromBytes(A).add(T8).toBytes()
  search: for (let tries = 0; tries < 64; tries++) {
    const rr = scalar(prefix, msg, Uint8Array.of(2, tries))
    for (const Tb of TORSION) {
      const R = Point.BASE.multiply(rr).add(Point.fromBytes(Tb, true)).toBytes()
      const k = scalar(R, Amixed, msg)
      const residue = k % 8n === 0n ? Point.ZERO : T8.multiply(k % 8n, false).negate()
      if (str(residue.toBytes()) === str(Tb)) {
        add('key with a small-order component (A + T), signature made with the private key of A', Amixed, msg, cat(R, toLe((rr + k * a) % L)), true, false)
        break search
      }
    }
  }
  add('signature of 63 bytes', A, msg, sig.subarray(0, 63), false)
  add('signature of 65 bytes', A, msg, cat(sig, Uint8Array.of(0)), false)
  add('key of 31 bytes', A.subarray(0, 31), msg, sig, false)
  add('key of 33 bytes', cat(A, Uint8Array.of(0)), msg, sig, false)
  add('key not on the curve', toLe(2n), msg, sig, false)
  return cases
}
