/**
 * The audit log's Merkle tree: RFC 6962 §2.1 / RFC 9162 §2.1 hashing over SHA-256, inclusion and
 * consistency proofs, their verification, and an append-only log that keeps only its compact range
 * (the roots of the perfect subtrees along the right edge).
 *
 * Everything is pure and works on Uint8Array. Sizes and indexes are JavaScript numbers; the bit
 * arithmetic below is done with division, not with the 32-bit operators, so every safe integer works.
 * Provers throw AirlockError('INVALID_INPUT'); verifiers never throw and answer false for anything
 * that is not a valid proof, including malformed arguments.
 */
import {createHash, hash} from 'node:crypto'
import {AirlockError} from '../errors.js'

/** SHA-256: every hash in the tree is this long. */
export const HASH_SIZE = 32

/** Returns the stored hash of leaf `index` (for proofs over leaf hashes kept outside memory). */
export type LeafHashAt = (index: number) => Uint8Array

const LEAF_PREFIX = Uint8Array.of(0x00)
const NODE_PREFIX = Uint8Array.of(0x01)

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** MTH({}) = SHA-256 of the empty string (RFC 6962 §2.1). */
export function emptyRoot(): Uint8Array {
  return sha256()
}

/** SHA-256 of bytes already joined, one call (the one-shot hash costs less per call than a hash object). */
function sha256Of(data: Buffer): Uint8Array {
  const d = hash('sha256', data, 'buffer')
  return new Uint8Array(d.buffer, d.byteOffset, d.length)
}

/** MTH({d}) = SHA-256(0x00 ‖ d): the prefix keeps a leaf from passing for an inner node. */
export function leafHash(entry: Uint8Array): Uint8Array {
  const data = Buffer.allocUnsafe(1 + entry.length)
  data[0] = LEAF_PREFIX[0]!
  data.set(entry, 1)
  return sha256Of(data)
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const data = Buffer.allocUnsafe(1 + left.length + right.length)
  data[0] = NODE_PREFIX[0]!
  data.set(left, 1)
  data.set(right, 1 + left.length)
  return sha256Of(data)
}

/** The Merkle Tree Hash of RFC 6962 §2.1 over leaf hashes already computed with leafHash. */
export function rootFromLeafHashes(hashes: readonly Uint8Array[]): Uint8Array {
  const at = fromArray(hashes)
  return hashes.length === 0 ? emptyRoot() : subtreeRoot(at, 0, hashes.length)
}

/** The audit path of RFC 6962 §2.1.1 (RFC 9162 §2.1.3.1) for leaf `index` in the tree of all `leafHashes`. */
export function inclusionProof(leafHashes: readonly Uint8Array[], index: number): Uint8Array[] {
  return inclusionProofAt(fromArray(leafHashes), leafHashes.length, index)
}

/** The audit path for leaf `index` in the tree of the first `treeSize` leaves that `leafHashAt` returns. */
export function inclusionProofAt(leafHashAt: LeafHashAt, treeSize: number, index: number): Uint8Array[] {
  checkSize(treeSize, 'treeSize')
  checkSize(index, 'index')
  if (index >= treeSize) throw new AirlockError('INVALID_INPUT', `leaf index ${index} is not in a tree of size ${treeSize}`, {index, treeSize})
  const at = checked(leafHashAt)
  return inclusionPath((start, end) => subtreeRoot(at, start, end), index, treeSize)
}

/** The root of the subtree of leaves [start, end): from the leaves, or from a store of interior hashes (tiles). */
export type SubtreeRoot = (start: number, end: number) => Uint8Array

/** PATH(index, D[0:size]) of RFC 6962 §2.1.1, each sibling's root from `root` (the caller checked the sizes). */
export function inclusionPath(root: SubtreeRoot, index: number, size: number): Uint8Array[] {
  const proof: Uint8Array[] = []
  // Descend towards the leaf, collecting the other side's root at each split; the RFC lists them
  // leaf first, so they are prepended on the way down.
  let start = 0
  let end = size
  let m = index
  while (end - start > 1) {
    const k = splitPoint(end - start)
    if (m < k) {
      proof.unshift(root(start + k, end))
      end = start + k
    } else {
      proof.unshift(root(start, start + k))
      start += k
      m -= k
    }
  }
  return proof
}

/** The consistency proof of RFC 6962 §2.1.2 (RFC 9162 §2.1.4.1) between the trees of the first `oldSize` and the first `newSize` of `leafHashes`. */
export function consistencyProof(leafHashes: readonly Uint8Array[], oldSize: number, newSize: number): Uint8Array[] {
  const at = fromArray(leafHashes)
  if (isSize(newSize) && newSize > leafHashes.length) throw new AirlockError('INVALID_INPUT', `new size ${newSize} is beyond the ${leafHashes.length} leaf hashes given`, {newSize, leaves: leafHashes.length})
  return consistencyProofAt(at, oldSize, newSize)
}

/** The consistency proof from size `oldSize` to `newSize` over the leaves that `leafHashAt` returns. */
export function consistencyProofAt(leafHashAt: LeafHashAt, oldSize: number, newSize: number): Uint8Array[] {
  checkSize(oldSize, 'oldSize')
  checkSize(newSize, 'newSize')
  // RFC 6962 defines the proof for 0 < m ≤ n; every tree extends the empty one, so there is nothing to prove from 0.
  if (oldSize === 0) throw new AirlockError('INVALID_INPUT', 'there is no consistency proof from the empty tree', {oldSize, newSize})
  if (oldSize > newSize) throw new AirlockError('INVALID_INPUT', `old size ${oldSize} is larger than new size ${newSize}`, {oldSize, newSize})
  const at = checked(leafHashAt)
  return consistencyPath((start, end) => subtreeRoot(at, start, end), oldSize, newSize)
}

/** SUBPROOF(oldSize, D[0:newSize], true) of RFC 6962 §2.1.2, each subtree's root from `root` (0 < oldSize ≤ newSize, checked by the caller). */
export function consistencyPath(root: SubtreeRoot, oldSize: number, newSize: number): Uint8Array[] {
  const proof: Uint8Array[] = []
  // Unrolled: each step's sibling goes after the rest of the proof.
  let start = 0
  let end = newSize
  let m = oldSize
  let whole = true // b: whether D[start:start+m] is the old tree itself, whose root the verifier already has
  while (m !== end - start) {
    const k = splitPoint(end - start)
    if (m <= k) {
      proof.unshift(root(start + k, end))
      end = start + k
    } else {
      proof.unshift(root(start, start + k))
      start += k
      m -= k
      whole = false
    }
  }
  if (!whole) proof.unshift(root(start, end))
  return proof
}

/**
 * RFC 9162 §2.1.3.2: does `proof` show the leaf with hash `leaf` at `index` in the tree of size
 * `treeSize` whose root is `root`?
 */
export function verifyInclusion(leaf: Uint8Array, index: number, treeSize: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!isSize(index) || !isSize(treeSize) || !isHash(leaf) || !isHash(root) || !Array.isArray(proof) || !proof.every(isHash)) return false
  // 1. The leaf must be in the tree.
  if (index >= treeSize) return false
  // 2.–3.
  let fn = index
  let sn = treeSize - 1
  let r = leaf
  // 4.
  for (const p of proof) {
    // a. More path than levels: a padded proof.
    if (sn === 0) return false
    // b.
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r)
      // The leaf's subtree was the right edge: climb until it becomes a right child (or the top).
      while (!odd(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      r = nodeHash(r, p)
    }
    // c.
    fn = half(fn)
    sn = half(sn)
  }
  // 5. sn = 0: the path reached the root (not a truncated proof), and the root matches.
  return sn === 0 && equal(r, root)
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show that the tree of size `newSize` with root `newRoot` extends
 * the tree of size `oldSize` with root `oldRoot`? Equal sizes need an empty proof and equal roots;
 * an old size of 0 is never accepted (there is no proof from the empty tree to check).
 */
export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!isSize(oldSize) || !isSize(newSize) || !isHash(oldRoot) || !isHash(newRoot) || !Array.isArray(proof) || !proof.every(isHash)) return false
  if (oldSize === 0 || oldSize > newSize) return false
  if (oldSize === newSize) return proof.length === 0 && equal(oldRoot, newRoot)
  // 1. An empty path proves nothing between different sizes.
  if (proof.length === 0) return false
  // 2. When the old tree is a perfect subtree of the new one, its root is the path's first node.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof
  // 3.
  let fn = oldSize - 1
  let sn = newSize - 1
  // 4.
  while (odd(fn)) {
    fn = half(fn)
    sn = half(sn)
  }
  // 5.
  let fr = path[0]!
  let sr = path[0]!
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0) return false
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      while (!odd(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = half(fn)
    sn = half(sn)
  }
  // 7. Both roots rebuilt, and the path went all the way up the new tree.
  return sn === 0 && equal(fr, oldRoot) && equal(sr, newRoot)
}

/**
 * An append-only Merkle log that keeps only its compact range: the roots of the perfect subtrees
 * that make up the tree, largest (leftmost) first, one for each bit set in the size. Appending and
 * taking the root are O(log n); proofs come from inclusionProofAt / consistencyProofAt over the
 * leaf hashes the caller stores.
 */
export class MerkleLog {
  #size = 0
  #range: Uint8Array[] = []

  /** A log resumed from a saved size and compact range (see compactRange()). */
  static fromCompactRange(size: number, range: readonly Uint8Array[]): MerkleLog {
    checkSize(size, 'size')
    if (range.length !== popCount(size)) throw new AirlockError('INVALID_INPUT', `a tree of size ${size} has ${popCount(size)} compact range hashes, not ${range.length}`, {size, hashes: range.length})
    for (const h of range) checkHash(h, 'compact range hash')
    const log = new MerkleLog()
    log.#size = size
    log.#range = range.map((h) => Uint8Array.from(h))
    return log
  }

  get size(): number {
    return this.#size
  }

  /** Appends a leaf hash (leafHash(entry)) and returns the new leaf's index. */
  append(hash: Uint8Array): number {
    checkHash(hash, 'leaf hash')
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new AirlockError('INVALID_INPUT', 'the log is full', {size: this.#size})
    const index = this.#size
    let right: Uint8Array = Uint8Array.from(hash)
    // Each trailing one bit of the old size is a perfect subtree as tall as the one being carried: merge them.
    for (let s = index; odd(s); s = half(s)) right = nodeHash(this.#range.pop()!, right)
    this.#range.push(right)
    this.#size = index + 1
    return index
  }

  /** The tree head: the compact range folded right to left (the MTH splits at the largest power of two). */
  root(): Uint8Array {
    if (this.#range.length === 0) return emptyRoot()
    let r = this.#range[this.#range.length - 1]!
    for (let i = this.#range.length - 2; i >= 0; i--) r = nodeHash(this.#range[i]!, r)
    return r
  }

  /** A copy of the compact range, for saving beside the size. */
  compactRange(): Uint8Array[] {
    return this.#range.map((h) => Uint8Array.from(h))
  }
}

/** MTH(D[start:end]) for 0 ≤ start < end, split at the largest power of two below the length (a leaf's hash is copied, never shared). */
function subtreeRoot(at: LeafHashAt, start: number, end: number): Uint8Array {
  if (end - start === 1) return Uint8Array.from(at(start))
  const k = splitPoint(end - start)
  return nodeHash(subtreeRoot(at, start, start + k), subtreeRoot(at, start + k, end))
}

/** The largest power of two smaller than n (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

function fromArray(hashes: readonly Uint8Array[]): LeafHashAt {
  if (!Array.isArray(hashes)) throw new AirlockError('INVALID_INPUT', 'leaf hashes must be an array')
  for (const [i, h] of hashes.entries()) checkHash(h, `leaf hash ${i}`)
  return (i) => hashes[i]!
}

/** A getter whose every answer is checked to be a hash: a short or missing leaf hash is the caller's error, not a crash. */
function checked(leafHashAt: LeafHashAt): LeafHashAt {
  return (i) => {
    const h = leafHashAt(i)
    checkHash(h, `leaf hash ${i}`)
    return h
  }
}

function checkHash(h: unknown, what: string): asserts h is Uint8Array {
  if (!isHash(h)) throw new AirlockError('INVALID_INPUT', `${what} is not a ${HASH_SIZE}-byte SHA-256 hash`)
}

function checkSize(n: unknown, what: string): asserts n is number {
  if (!isSize(n)) throw new AirlockError('INVALID_INPUT', `${what} must be a non-negative safe integer, not ${String(n)}`)
}

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_SIZE
}

function isSize(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0
}

function isPowerOfTwo(n: number): boolean {
  while (n > 1 && !odd(n)) n = half(n)
  return n === 1
}

function popCount(n: number): number {
  let c = 0
  for (; n > 0; n = half(n)) if (odd(n)) c++
  return c
}

function odd(n: number): boolean {
  return n % 2 === 1
}

function half(n: number): number {
  return Math.floor(n / 2)
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
