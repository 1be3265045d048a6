/**
 * The audit log's Merkle tree against the transparency-dev/merkle reference vectors (vendored in
 * test/fixtures/merkle/, see its README), then against a literal transcription of RFC 6962's
 * recursive definitions over trees of up to 300 leaves, with tampered proofs failing.
 */
import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {
  consistencyProof,
  consistencyProofAt,
  emptyRoot,
  inclusionProof,
  inclusionProofAt,
  leafHash,
  MerkleLog,
  nodeHash,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../../control-plane/audit/merkle.js'

interface Vectors {
  hasher: {emptyRoot: string; emptyLeaf: {entry: string; hash: string}; leaf: {entryUtf8: string; hash: string}; node: {leftUtf8: string; rightUtf8: string; hash: string}}
  leafInputs: string[]
  rootHashes: string[]
  nodeHashes: string[][]
  compactTrees: string[][]
  inclusionProofs: {leafIndex: number; treeSize: number; proof: string[]}[]
  consistencyProofs: {size1: number; size2: number; proof: string[]}[]
  probes: {
    inclusion: {file: string; leafIdx: number; treeSize: number; root: string; leafHash: string; proof: string[]; desc: string; wantErr: boolean}[]
    consistency: {file: string; size1: number; size2: number; root1: string; root2: string; proof: string[]; desc: string; wantErr: boolean}[]
  }
}

const V = JSON.parse(readFileSync(new URL('../../fixtures/merkle/transparency-dev-vectors.json', import.meta.url), 'utf8')) as Vectors

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const hexes = (bs: readonly Uint8Array[]): string[] => bs.map(hex)
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

const LEAVES = V.leafInputs.map((l) => leafHash(unhex(l)))

/** RFC 6962 §2.1, §2.1.1 and §2.1.2 written as the RFC writes them: recursion over slices. */
const ref = {
  split(n: number): number {
    let k = 1
    while (k * 2 < n) k *= 2
    return k
  },
  mth(d: Uint8Array[]): Uint8Array {
    if (d.length === 0) return emptyRoot()
    if (d.length === 1) return d[0]!
    const k = ref.split(d.length)
    return nodeHash(ref.mth(d.slice(0, k)), ref.mth(d.slice(k)))
  },
  path(m: number, d: Uint8Array[]): Uint8Array[] {
    if (d.length === 1) return []
    const k = ref.split(d.length)
    return m < k ? [...ref.path(m, d.slice(0, k)), ref.mth(d.slice(k))] : [...ref.path(m - k, d.slice(k)), ref.mth(d.slice(0, k))]
  },
  subproof(m: number, d: Uint8Array[], b: boolean): Uint8Array[] {
    if (m === d.length) return b ? [] : [ref.mth(d)]
    const k = ref.split(d.length)
    return m <= k ? [...ref.subproof(m, d.slice(0, k), b), ref.mth(d.slice(k))] : [...ref.subproof(m - k, d.slice(k), false), ref.mth(d.slice(0, k))]
  },
}

/** A fixed-seed generator (mulberry32), so a failing case is the same on every run. */
function random(seed: number): (below: number) => number {
  let a = seed >>> 0
  return (below) => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * below)
  }
}

function flipBit(h: Uint8Array, bit: number): Uint8Array {
  const c = Uint8Array.from(h)
  c[(bit >> 3) % c.length]! ^= 1 << (bit & 7)
  return c
}

describe('RFC 6962 hashing', () => {
  it('hashes as the transparency-dev/merkle rfc6962 hasher', () => {
    expect(hex(emptyRoot())).toBe(V.hasher.emptyRoot)
    expect(hex(leafHash(unhex(V.hasher.emptyLeaf.entry)))).toBe(V.hasher.emptyLeaf.hash)
    expect(hex(leafHash(Buffer.from(V.hasher.leaf.entryUtf8)))).toBe(V.hasher.leaf.hash)
    expect(hex(nodeHash(Buffer.from(V.hasher.node.leftUtf8), Buffer.from(V.hasher.node.rightUtf8)))).toBe(V.hasher.node.hash)
  })

  it('separates leaves from nodes (a node is not the leaf of its children concatenated)', () => {
    const [a, b] = [leafHash(Buffer.from('Hello')), leafHash(Buffer.from('World'))]
    expect(hex(nodeHash(a, b))).not.toBe(hex(leafHash(Buffer.concat([a, b]))))
    expect(hex(nodeHash(a, b))).not.toBe(hex(nodeHash(b, a)))
  })

  it('returns plain, independent Uint8Arrays', () => {
    const r = emptyRoot()
    expect(r.constructor).toBe(Uint8Array)
    r[0] = 0
    expect(hex(emptyRoot())).toBe(V.hasher.emptyRoot)
  })
})

describe('the reference tree (transparency-dev/merkle testonly)', () => {
  it('has the reference root for every size 0..8', () => {
    expect(V.rootHashes).toHaveLength(9)
    for (let n = 0; n <= 8; n++) expect(hex(rootFromLeafHashes(LEAVES.slice(0, n))), `size ${n}`).toBe(V.rootHashes[n])
  })

  it('has the reference hash for every perfect subtree', () => {
    for (const [level, nodes] of V.nodeHashes.entries()) {
      for (const [i, want] of nodes.entries()) {
        const width = 2 ** level
        expect(hex(rootFromLeafHashes(LEAVES.slice(i * width, (i + 1) * width))), `level ${level} node ${i}`).toBe(want)
      }
    }
  })

  it('keeps the reference compact range and root after every append', () => {
    const log = new MerkleLog()
    expect(hexes(log.compactRange())).toEqual(V.compactTrees[0])
    expect(hex(log.root())).toBe(V.rootHashes[0])
    for (const [i, h] of LEAVES.entries()) {
      expect(log.append(h)).toBe(i)
      expect(log.size).toBe(i + 1)
      expect(hexes(log.compactRange()), `size ${i + 1}`).toEqual(V.compactTrees[i + 1])
      expect(hex(log.root()), `size ${i + 1}`).toBe(V.rootHashes[i + 1])
    }
  })

  it('produces and accepts each reference inclusion proof', () => {
    expect(V.inclusionProofs).toHaveLength(5)
    for (const {leafIndex, treeSize, proof} of V.inclusionProofs) {
      const at = `leaf ${leafIndex} of ${treeSize}`
      expect(hexes(inclusionProof(LEAVES.slice(0, treeSize), leafIndex)), at).toEqual(proof)
      expect(verifyInclusion(LEAVES[leafIndex]!, leafIndex, treeSize, proof.map(unhex), unhex(V.rootHashes[treeSize]!)), at).toBe(true)
    }
  })

  it('proves every leaf of every reference tree against the reference root, and no other root', () => {
    for (let n = 1; n <= 8; n++) {
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(LEAVES.slice(0, n), i)
        for (let other = 1; other <= 8; other++) {
          expect(verifyInclusion(LEAVES[i]!, i, n, proof, unhex(V.rootHashes[other]!)), `leaf ${i} of ${n} against root ${other}`).toBe(other === n)
        }
      }
    }
  })

  it('produces and accepts each reference consistency proof', () => {
    expect(V.consistencyProofs).toHaveLength(5)
    for (const {size1, size2, proof} of V.consistencyProofs) {
      const at = `${size1} to ${size2}`
      expect(hexes(consistencyProof(LEAVES.slice(0, size2), size1, size2)), at).toEqual(proof)
      expect(verifyConsistency(size1, size2, unhex(V.rootHashes[size1]!), unhex(V.rootHashes[size2]!), proof.map(unhex)), at).toBe(true)
    }
  })

  it('proves every pair of reference sizes consistent', () => {
    for (let n = 1; n <= 8; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(LEAVES, m, n)
        expect(verifyConsistency(m, n, unhex(V.rootHashes[m]!), unhex(V.rootHashes[n]!), proof), `${m} to ${n}`).toBe(true)
      }
    }
  })
})

describe('the transparency-dev/merkle verification probes (testdata/)', () => {
  it(`answers each of the ${V.probes.inclusion.length} inclusion probes as the Go verifier does`, () => {
    expect(V.probes.inclusion.length).toBeGreaterThan(90)
    for (const p of V.probes.inclusion) {
      expect(verifyInclusion(unhex(p.leafHash), p.leafIdx, p.treeSize, p.proof.map(unhex), unhex(p.root)), `${p.file}: ${p.desc}`).toBe(!p.wantErr)
    }
  })

  // The Go verifier accepts equal sizes with equal roots of any length; here a root is a SHA-256 or nothing.
  const STRICTER = new Set(['testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json'])

  it(`answers each of the ${V.probes.consistency.length} consistency probes as the Go verifier does`, () => {
    expect(V.probes.consistency.length).toBeGreaterThan(90)
    for (const p of V.probes.consistency) {
      const want = !p.wantErr && !STRICTER.has(p.file)
      expect(verifyConsistency(p.size1, p.size2, unhex(p.root1), unhex(p.root2), p.proof.map(unhex)), `${p.file}: ${p.desc}`).toBe(want)
    }
  })

  it('rejects the one accepted probe with short roots, and accepts it with real ones', () => {
    const [p] = V.probes.consistency.filter((q) => STRICTER.has(q.file))
    expect(p!.wantErr).toBe(false)
    expect(unhex(p!.root1)).not.toHaveLength(32)
    const root = unhex(V.rootHashes[1]!)
    expect(verifyConsistency(p!.size1, p!.size2, root, root, [])).toBe(true)
  })
})

describe('proofs over trees of up to 300 leaves', () => {
  const MAX = 300
  const next = random(0x5eed)
  const leaves = Array.from({length: MAX}, (_, i) => leafHash(Buffer.from(`audit entry ${i}`)))
  const roots = [emptyRoot(), ...leaves.map((_, i) => ref.mth(leaves.slice(0, i + 1)))]
  // Every size to 64, the sizes either side of 128 and 256, and 40 more drawn from the rest.
  const SIZES = [...new Set([...Array.from({length: 64}, (_, i) => i + 1), 127, 128, 129, 255, 256, 257, MAX, ...Array.from({length: 40}, () => 65 + next(MAX - 64))])].sort((a, b) => a - b)

  it('has the RFC root at every size, incrementally and at once', () => {
    const log = new MerkleLog()
    for (let n = 1; n <= MAX; n++) {
      log.append(leaves[n - 1]!)
      const want = hex(roots[n]!)
      expect(hex(log.root()), `size ${n}`).toBe(want)
      expect(hex(rootFromLeafHashes(leaves.slice(0, n))), `size ${n}`).toBe(want)
      expect(hex(MerkleLog.fromCompactRange(n, log.compactRange()).root()), `size ${n}`).toBe(want)
    }
  })

  it('proves inclusion as RFC 6962 PATH, and each tampered proof fails', () => {
    for (const n of SIZES) {
      const tree = leaves.slice(0, n)
      const root = roots[n]!
      const indexes = new Set([0, n - 1, next(n), next(n), next(n)])
      for (const i of indexes) {
        const at = `leaf ${i} of ${n}`
        const proof = inclusionProof(tree, i)
        expect(hexes(proof), at).toEqual(hexes(ref.path(i, tree)))
        expect(hexes(inclusionProofAt((j) => leaves[j]!, n, i)), at).toEqual(hexes(proof))
        expect(verifyInclusion(tree[i]!, i, n, proof, root), at).toBe(true)

        for (let k = 0; k < proof.length; k++) {
          const bad = proof.map((p, j) => (j === k ? flipBit(p, next(256)) : p))
          expect(verifyInclusion(tree[i]!, i, n, bad, root), `${at}: element ${k} altered`).toBe(false)
        }
        expect(verifyInclusion(flipBit(tree[i]!, next(256)), i, n, proof, root), `${at}: other leaf`).toBe(false)
        expect(verifyInclusion(tree[i]!, i, n, proof, flipBit(root, next(256))), `${at}: other root`).toBe(false)
        expect(verifyInclusion(tree[i]!, i, n, [...proof, root], root), `${at}: extended`).toBe(false)
        expect(verifyInclusion(tree[i]!, i, n, [leaves[0]!, ...proof], root), `${at}: preceded`).toBe(false)
        if (proof.length > 0) expect(verifyInclusion(tree[i]!, i, n, proof.slice(0, -1), root), `${at}: truncated`).toBe(false)
        if (i + 1 < n) expect(verifyInclusion(tree[i]!, i + 1, n, proof, root), `${at}: next index`).toBe(false)
        if (i > 0) expect(verifyInclusion(tree[i]!, i - 1, n, proof, root), `${at}: previous index`).toBe(false)
        expect(verifyInclusion(tree[i]!, n, n, proof, root), `${at}: index = size`).toBe(false)
      }
    }
  })

  it('proves consistency as RFC 6962 PROOF, and each tampered proof fails', () => {
    for (const n of SIZES) {
      const tree = leaves.slice(0, n)
      const newRoot = roots[n]!
      const sizes = new Set([1, n, Math.max(1, n - 1), 1 + next(n), 1 + next(n), 1 + next(n)])
      for (const m of sizes) {
        const at = `${m} to ${n}`
        const oldRoot = roots[m]!
        const proof = consistencyProof(tree, m, n)
        expect(hexes(proof), at).toEqual(hexes(ref.subproof(m, tree, true)))
        expect(hexes(consistencyProof(leaves, m, n)), at).toEqual(hexes(proof))
        expect(hexes(consistencyProofAt((j) => leaves[j]!, m, n)), at).toEqual(hexes(proof))
        expect(verifyConsistency(m, n, oldRoot, newRoot, proof), at).toBe(true)

        for (let k = 0; k < proof.length; k++) {
          const bad = proof.map((p, j) => (j === k ? flipBit(p, next(256)) : p))
          expect(verifyConsistency(m, n, oldRoot, newRoot, bad), `${at}: element ${k} altered`).toBe(false)
        }
        expect(verifyConsistency(m, n, flipBit(oldRoot, next(256)), newRoot, proof), `${at}: other old root`).toBe(false)
        expect(verifyConsistency(m, n, oldRoot, flipBit(newRoot, next(256)), proof), `${at}: other new root`).toBe(false)
        expect(verifyConsistency(m, n, newRoot, oldRoot, proof), `${at}: roots swapped`).toBe(m === n)
        expect(verifyConsistency(m, n, oldRoot, newRoot, [...proof, newRoot]), `${at}: extended`).toBe(false)
        expect(verifyConsistency(m, n, oldRoot, newRoot, [oldRoot, ...proof]), `${at}: preceded by the old root`).toBe(false)
        if (proof.length > 0) expect(verifyConsistency(m, n, oldRoot, newRoot, proof.slice(0, -1)), `${at}: truncated`).toBe(false)
        if (m < n) expect(verifyConsistency(n, m, newRoot, oldRoot, proof), `${at}: sizes swapped`).toBe(false)
      }
    }
  })
})

describe('large sizes (no 32-bit arithmetic)', () => {
  const x = leafHash(Buffer.from('x'))
  const y = leafHash(Buffer.from('y'))

  it('verifies the last leaf of a tree of 2^33 + 1 leaves', () => {
    expect(verifyInclusion(y, 2 ** 33, 2 ** 33 + 1, [x], nodeHash(x, y))).toBe(true)
    expect(verifyInclusion(y, 2 ** 33, 2 ** 33 + 1, [x], nodeHash(y, x))).toBe(false)
  })

  it('verifies 2^33 to 2^33 + 1 consistency', () => {
    expect(verifyConsistency(2 ** 33, 2 ** 33 + 1, x, nodeHash(x, y), [y])).toBe(true)
    expect(verifyConsistency(2 ** 33, 2 ** 33 + 1, x, nodeHash(y, x), [y])).toBe(false)
  })

  it('appends to a log resumed at 2^40 + 3 leaves', () => {
    const [a, b, c] = ['a', 'b', 'c'].map((s) => leafHash(Buffer.from(s))) as [Uint8Array, Uint8Array, Uint8Array]
    const log = MerkleLog.fromCompactRange(2 ** 40 + 3, [a, b, c])
    expect(hex(log.root())).toBe(hex(nodeHash(a, nodeHash(b, c))))
    expect(log.append(x)).toBe(2 ** 40 + 3)
    expect(log.size).toBe(2 ** 40 + 4)
    expect(hexes(log.compactRange())).toEqual(hexes([a, nodeHash(b, nodeHash(c, x))]))
  })
})

describe('when arguments are invalid', () => {
  const tree = LEAVES.slice(0, 5)
  const root = rootFromLeafHashes(tree)
  const proof = inclusionProof(tree, 2)

  describe('when a prover is asked for something that does not exist', () => {
    it('refuses an index at or beyond the size', () => {
      expect(() => inclusionProof(tree, 5)).toThrowAirlockError('INVALID_INPUT')
      expect(() => inclusionProof([], 0)).toThrowAirlockError('INVALID_INPUT')
      expect(() => inclusionProofAt((i) => LEAVES[i]!, 5, 7)).toThrowAirlockError('INVALID_INPUT')
    })
    it('refuses an index or size that is not a non-negative safe integer', () => {
      for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
        expect(() => inclusionProof(tree, bad), String(bad)).toThrowAirlockError('INVALID_INPUT')
        expect(() => inclusionProofAt((i) => LEAVES[i]!, bad, 0), String(bad)).toThrowAirlockError('INVALID_INPUT')
        expect(() => consistencyProof(tree, bad, 5), String(bad)).toThrowAirlockError('INVALID_INPUT')
        expect(() => consistencyProof(tree, 1, bad), String(bad)).toThrowAirlockError('INVALID_INPUT')
      }
    })
    it('refuses an old size larger than the new one', () => {
      expect(() => consistencyProof(tree, 4, 3)).toThrowAirlockError('INVALID_INPUT')
      expect(() => consistencyProofAt((i) => LEAVES[i]!, 8, 7)).toThrowAirlockError('INVALID_INPUT')
    })
    it('refuses a proof from the empty tree', () => {
      expect(() => consistencyProof(tree, 0, 5)).toThrowAirlockError('INVALID_INPUT')
      expect(() => consistencyProof(tree, 0, 0)).toThrowAirlockError('INVALID_INPUT')
    })
    it('refuses a new size beyond the leaf hashes given', () => {
      expect(() => consistencyProof(tree, 2, 6)).toThrowAirlockError('INVALID_INPUT')
    })
  })

  describe('when a leaf hash is not a SHA-256 hash', () => {
    it('refuses it in a list', () => {
      expect(() => rootFromLeafHashes([LEAVES[0]!, new Uint8Array(31)])).toThrowAirlockError('INVALID_INPUT')
      expect(() => inclusionProof([LEAVES[0]!, 'x' as unknown as Uint8Array], 0)).toThrowAirlockError('INVALID_INPUT')
      expect(() => consistencyProof([LEAVES[0]!, new Uint8Array(33)], 1, 2)).toThrowAirlockError('INVALID_INPUT')
    })
    it('refuses it from a getter, including a missing one', () => {
      expect(() => inclusionProofAt((i) => (i === 3 ? new Uint8Array(0) : LEAVES[i]!), 5, 0)).toThrowAirlockError('INVALID_INPUT')
      expect(() => consistencyProofAt((i) => LEAVES[i]!, 3, 9)).toThrowAirlockError('INVALID_INPUT')
    })
    it('refuses it in the log', () => {
      const log = new MerkleLog()
      expect(() => log.append(new Uint8Array(16))).toThrowAirlockError('INVALID_INPUT')
      expect(log.size).toBe(0)
    })
  })

  describe('when a saved compact range does not fit its size', () => {
    it('refuses the wrong number of hashes', () => {
      expect(() => MerkleLog.fromCompactRange(5, [LEAVES[0]!])).toThrowAirlockError('INVALID_INPUT')
      expect(() => MerkleLog.fromCompactRange(0, [LEAVES[0]!])).toThrowAirlockError('INVALID_INPUT')
    })
    it('refuses a hash of the wrong length, and a bad size', () => {
      expect(() => MerkleLog.fromCompactRange(1, [new Uint8Array(20)])).toThrowAirlockError('INVALID_INPUT')
      expect(() => MerkleLog.fromCompactRange(-1, [])).toThrowAirlockError('INVALID_INPUT')
    })
    it('copies what it is given and what it returns', () => {
      const saved = [Uint8Array.from(LEAVES[0]!)]
      const log = MerkleLog.fromCompactRange(1, saved)
      saved[0]![0]! ^= 1
      log.compactRange()[0]![0]! ^= 1
      expect(hex(log.root())).toBe(V.rootHashes[1])
    })
  })

  describe('when a verifier is given malformed input', () => {
    it('answers false for bad sizes and indexes instead of throwing', () => {
      for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '2' as unknown as number]) {
        expect(verifyInclusion(tree[2]!, bad, 5, proof, root), String(bad)).toBe(false)
        expect(verifyInclusion(tree[2]!, 2, bad, proof, root), String(bad)).toBe(false)
        expect(verifyConsistency(bad, 5, root, root, []), String(bad)).toBe(false)
        expect(verifyConsistency(1, bad, root, root, []), String(bad)).toBe(false)
      }
      expect(verifyInclusion(tree[2]!, 2, 5, proof, root)).toBe(true)
    })
    it('answers false for hashes of the wrong length or type', () => {
      expect(verifyInclusion(tree[2]!.subarray(1), 2, 5, proof, root)).toBe(false)
      expect(verifyInclusion(tree[2]!, 2, 5, proof, root.subarray(0, 31))).toBe(false)
      expect(verifyInclusion(tree[2]!, 2, 5, [...proof.slice(0, -1), new Uint8Array(64)], root)).toBe(false)
      expect(verifyInclusion(tree[2]!, 2, 5, [...proof.slice(0, -1), hex(proof.at(-1)!) as unknown as Uint8Array], root)).toBe(false)
      expect(verifyInclusion(tree[2]!, 2, 5, null as unknown as Uint8Array[], root)).toBe(false)
      const old = rootFromLeafHashes(tree.slice(0, 3))
      const cp = consistencyProof(tree, 3, 5)
      expect(verifyConsistency(3, 5, old, root, cp)).toBe(true)
      expect(verifyConsistency(3, 5, old.subarray(1), root, cp)).toBe(false)
      expect(verifyConsistency(3, 5, old, root, [...cp, new Uint8Array(0)])).toBe(false)
      expect(verifyConsistency(3, 5, old, root, undefined as unknown as Uint8Array[])).toBe(false)
    })
    it('answers false for anything from the empty tree, or from a larger size', () => {
      const empty = emptyRoot()
      expect(verifyConsistency(0, 0, empty, empty, [])).toBe(false)
      expect(verifyConsistency(0, 5, empty, root, [])).toBe(false)
      expect(verifyConsistency(5, 4, root, rootFromLeafHashes(tree.slice(0, 4)), [])).toBe(false)
      expect(verifyInclusion(tree[0]!, 0, 0, [], empty)).toBe(false)
    })
    it('answers false for equal sizes with a proof or with different roots', () => {
      expect(verifyConsistency(5, 5, root, root, [])).toBe(true)
      expect(verifyConsistency(5, 5, root, root, [root])).toBe(false)
      expect(verifyConsistency(5, 5, root, flipBit(root, 0), [])).toBe(false)
    })
    it('answers false for an empty proof between different sizes', () => {
      expect(verifyConsistency(4, 5, rootFromLeafHashes(tree.slice(0, 4)), root, [])).toBe(false)
    })
  })
})
