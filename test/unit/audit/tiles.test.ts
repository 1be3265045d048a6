/**
 * The tiles against merkle.ts's in-memory proofs (themselves checked against transparency-dev/merkle's
 * vectors): equal roots and proofs for many (index, size) pairs across tile boundaries, built in one
 * go or resumed; then the cache kept up to a real log, and rebuilt when it is lost or wrong.
 */
import {createHash} from 'node:crypto'
import {appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {consistencyProof, inclusionProof, leafHash, MerkleLog, rootFromLeafHashes, verifyConsistency, verifyInclusion} from '../../../control-plane/audit/merkle.js'
import {consistencyFromTiles, inclusionFromTiles, TileTree, updateTiles, withTiles} from '../../../control-plane/audit/tiles.js'
import {AirlockError} from '../../../control-plane/errors.js'
import {entryLine, prunedLine, TestLog} from './prove-log.js'
import {gonePid} from '../../helpers.js'

const hex = (bs: readonly Uint8Array[]): string[] => bs.map((b) => Buffer.from(b).toString('hex'))
const leaves = (n: number, from = 0): Uint8Array[] => Array.from({length: n}, (_, i) => leafHash(createHash('sha256').update(`leaf ${from + i}`).digest()))

function build(n: number, height?: number): {tree: TileTree; hashes: Uint8Array[]} {
  const tree = TileTree.open(mkdtempSync(join(tmpdir(), 'airlock-tiles-')), 0, height)
  const hashes = leaves(n)
  for (const h of hashes) tree.append(h)
  tree.flush()
  return {tree, hashes}
}

/** merkle.ts's proofs over `hashes`, computed once for all tile heights (each one scans the leaves). */
const memo = new Map<string, string[]>()
function reference(kind: 'inclusion' | 'consistency', hashes: Uint8Array[], a: number, size: number): string[] {
  const key = `${kind} ${hashes.length} ${a} ${size}`
  let proof = memo.get(key)
  if (!proof) {
    const prefix = hashes.slice(0, size)
    proof = hex(kind === 'inclusion' ? inclusionProof(prefix, a) : consistencyProof(prefix, a, size))
    memo.set(key, proof)
  }
  return proof
}

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    return error instanceof AirlockError ? error.code : `not an AirlockError: ${String(error)}`
  }
  return undefined
}

describe.each([1, 2, 3, 8])('proofs from tiles of height %i equal merkle.ts\'s', (height) => {
  it('for every (index, size) and every (old, new) up to 70 leaves', () => {
    const {tree, hashes} = build(70, height)
    for (let size = 1; size <= 70; size++) {
      expect(hex([tree.root(size)])).toEqual(hex([rootFromLeafHashes(hashes.slice(0, size))]))
      for (let index = 0; index < size; index++) expect(hex(inclusionFromTiles(tree, index, size))).toEqual(hex(inclusionProof(hashes.slice(0, size), index)))
      for (let old = 1; old <= size; old++) expect(hex(consistencyFromTiles(tree, old, size))).toEqual(hex(consistencyProof(hashes, old, size)))
    }
    tree.close()
  })

  it('at tile boundaries (size 1, powers of two and ±1, across the second tile level)', () => {
    const n = 256 * 256 + 300
    const {tree, hashes} = build(n, height)
    const sizes = [1, 2, 3, 255, 256, 257, 511, 512, 513, 4095, 4096, 4097, 65535, 65536, 65537, n]
    for (const size of sizes) {
      const root = rootFromLeafHashes(hashes.slice(0, size))
      expect(hex([tree.root(size)])).toEqual(hex([root]))
      // Fewer probes where merkle.ts's reference (a scan of every leaf) is costly.
      const big = size > 5000
      for (const index of new Set((big ? [size >> 1, size - 1, 65535] : [0, 1, size >> 1, size - 2, size - 1, 255, 256]).filter((i) => i >= 0 && i < size))) {
        const proof = inclusionFromTiles(tree, index, size)
        expect(hex(proof)).toEqual(reference('inclusion', hashes, index, size))
        expect(verifyInclusion(hashes[index]!, index, size, proof, root)).toBe(true)
      }
      for (const old of new Set((big ? [257, 65536, size - 1] : [1, 255, 256, 257, size - 1, size]).filter((o) => o >= 1 && o <= size))) {
        const proof = consistencyFromTiles(tree, old, size)
        expect(hex(proof)).toEqual(reference('consistency', hashes, old, size))
      }
    }
    tree.close()
  }, 120_000)

  it('when the tiles were built in several sessions (partial tiles resumed from disk)', () => {
    const folder = mkdtempSync(join(tmpdir(), 'airlock-tiles-'))
    const hashes = leaves(256 * 3 + 77)
    let size = 0
    for (const step of [1, 254, 1, 256, 300, 1, 0, 955]) {
      const tree = TileTree.open(folder, size, height)
      for (const h of hashes.slice(size, size + step)) tree.append(h)
      tree.flush()
      size = tree.size
      tree.close()
      if (size >= hashes.length) break
    }
    const tree = TileTree.open(folder, hashes.length, height)
    const log = new MerkleLog()
    for (const [i, h] of hashes.entries()) {
      log.append(h)
      if (i % 97 === 0 || i === hashes.length - 1) expect(hex([tree.root(i + 1)])).toEqual(hex([log.root()]))
    }
    for (const old of [1, 256, 511, 800]) expect(verifyConsistency(old, hashes.length, tree.root(old), log.root(), consistencyFromTiles(tree, old, hashes.length))).toBe(true)
    tree.close()
  })

  it('for any leaf range, aligned or not (MTH of D[start:end])', () => {
    const {tree, hashes} = build(300, height)
    for (const [start, end] of [[1, 3], [3, 7], [5, 261], [256, 300], [0, 300], [299, 300]] as const) {
      expect(hex([tree.subtree(start, end)])).toEqual(hex([rootFromLeafHashes(hashes.slice(start, end))]))
    }
    tree.close()
  })

  it('refuses what no tree holds, with INVALID_INPUT', () => {
    const {tree} = build(10, height)
    expect(code(() => inclusionFromTiles(tree, 10, 10))).toBe('INVALID_INPUT')
    expect(code(() => inclusionFromTiles(tree, 0, 11))).toBe('INVALID_INPUT')
    expect(code(() => inclusionFromTiles(tree, -1, 5))).toBe('INVALID_INPUT')
    expect(code(() => consistencyFromTiles(tree, 0, 5))).toBe('INVALID_INPUT')
    expect(code(() => consistencyFromTiles(tree, 6, 5))).toBe('INVALID_INPUT')
    expect(code(() => tree.root(11))).toBe('INVALID_INPUT')
    expect(code(() => tree.node(1, 5))).toBe('INVALID_INPUT')
    tree.close()
  })
})

describe('the cache kept up to the log', () => {
  const tilesOf = (log: TestLog) => join(log.dir, 'tiles')

  it('reads only the entries added since, and its root is the log\'s', async () => {
    const log = TestLog.temp().append(600)
    expect(await updateTiles(log.dir)).toEqual({size: 600, added: 600, rebuilt: 'no state.json (ENOENT)'})
    expect(await updateTiles(log.dir)).toEqual({size: 600, added: 0, rebuilt: null})
    log.append(1)
    expect(await updateTiles(log.dir)).toEqual({size: 601, added: 1, rebuilt: null})
    log.append(300)
    await withTiles(log.dir, async (s) => {
      expect(s.update).toEqual({size: 901, added: 300, rebuilt: null})
      expect(hex([s.tree.root(901)])).toEqual(hex([log.merkle.root()]))
      for (const i of [0, 255, 256, 511, 512, 900]) expect((await s.entry(i)).line.toString()).toBe(log.lines[i])
    })
  })

  it('leaves a torn last line for later, and takes it once it is whole', async () => {
    const log = TestLog.temp().append(5)
    const {line} = entryLine(log.origin, 5, log.fingerprints[4]!)
    appendFileSync(join(log.dir, 'events.jsonl'), line.slice(0, 40))
    expect((await updateTiles(log.dir)).size).toBe(5)
    appendFileSync(join(log.dir, 'events.jsonl'), `${line.slice(40)}\n`)
    expect(await updateTiles(log.dir)).toEqual({size: 6, added: 1, rebuilt: null})
  })

  it('takes pruned entries by the fingerprint they keep', async () => {
    const log = TestLog.temp().append(4)
    log.lines[1] = prunedLine(1, log.fingerprints[1]!, log.fingerprints[0]!)
    log.rewrite()
    await withTiles(log.dir, (s) => expect(hex([s.tree.root(4)])).toEqual(hex([log.merkle.root()])))
  })

  it('refuses a line that is no entry with AUDIT_TAMPERED naming it', async () => {
    const log = TestLog.temp().append(3)
    appendFileSync(join(log.dir, 'events.jsonl'), '{"hello":"world"}\n')
    await expect(updateTiles(log.dir)).rejects.toMatchObject({code: 'AUDIT_TAMPERED', details: {line: 4, problem: 'MALFORMED'}})
  })

  it('refuses an entry out of place with AUDIT_TAMPERED naming its line', async () => {
    const log = TestLog.temp().append(3)
    appendFileSync(join(log.dir, 'events.jsonl'), `${log.lines[2]}\n`)
    await expect(updateTiles(log.dir)).rejects.toMatchObject({code: 'AUDIT_TAMPERED', details: {line: 4, index: 3}})
  })

  it('refuses a folder without a log with AUDIT_UNAVAILABLE', async () => {
    await expect(updateTiles(mkdtempSync(join(tmpdir(), 'airlock-nolog-')))).rejects.toMatchObject({code: 'AUDIT_UNAVAILABLE'})
  })

  it('lets one updater at a time in: concurrent updates all end with the same tiles', async () => {
    const log = TestLog.temp().append(1000)
    const updates = await Promise.all(Array.from({length: 4}, () => updateTiles(log.dir)))
    expect(updates.map((u) => u.size)).toEqual([1000, 1000, 1000, 1000])
    expect(updates.filter((u) => u.added === 1000)).toHaveLength(1)
    await withTiles(log.dir, (s) => expect(hex([s.tree.root(1000)])).toEqual(hex([log.merkle.root()])))
  })

  it('waits for a live lock holder, then AUDIT_LOCKED; takes over the lock of one that is gone', async () => {
    const log = TestLog.temp().append(10)
    await updateTiles(log.dir)
    writeFileSync(join(tilesOf(log), 'lock'), `${process.pid}\n`)
    await expect(updateTiles(log.dir, {lockWaitMs: 0})).rejects.toMatchObject({code: 'AUDIT_LOCKED', details: {holder: process.pid}})
    writeFileSync(join(tilesOf(log), 'lock'), `${await gonePid()}\n`)
    expect(await updateTiles(log.dir, {lockWaitMs: 0})).toMatchObject({size: 10, rebuilt: null})
    expect(() => statSync(join(tilesOf(log), 'lock'))).toThrow()
  })

  describe('rebuilt from the log when', () => {
    const cases: [string, (log: TestLog) => void, RegExp][] = [
      ['the folder is deleted', (log) => rmSync(tilesOf(log), {recursive: true}), /no state\.json/],
      ['state.json is not JSON', (log) => writeFileSync(join(tilesOf(log), 'state.json'), '{'), /not JSON/],
      ['state.json says something else', (log) => writeFileSync(join(tilesOf(log), 'state.json'), '{"version":1,"size":3,"bytes":1,"last":null}'), /not a tiles state/],
      ['a level file lost its tail', (log) => truncateSync(join(tilesOf(log), '0.hashes'), 32 * 400), /0\.hashes holds fewer/],
      ['the offsets are gone', (log) => truncateSync(join(tilesOf(log), 'offsets'), 0), /offsets/],
      ['the tiles were built with another height', (log) => {
        const state = JSON.parse(readFileSync(join(tilesOf(log), 'state.json'), 'utf8'))
        writeFileSync(join(tilesOf(log), 'state.json'), JSON.stringify({...state, height: 8}))
      }, /height 8/],
      ['the last leaf hash is wrong', (log) => patch(join(tilesOf(log), '0.hashes'), 32 * 599), /leaf hash of entry 599/],
      ['the log was replaced by another as long', (log) => {
        const other = TestLog.temp('airlock.audit/test-host/fedcba9876543210').append(600)
        writeFileSync(join(log.dir, 'events.jsonl'), readFileSync(join(other.dir, 'events.jsonl')))
      }, /entry 599 is not the one/],
      ['the log is shorter than the tiles', (log) => truncateSync(join(log.dir, 'events.jsonl'), statSync(join(log.dir, 'events.jsonl')).size - 10), /shorter/],
    ]
    for (const [what, damage, reason] of cases) {
      it(what, async () => {
        const log = TestLog.temp().append(600)
        await updateTiles(log.dir)
        damage(log)
        const update = await updateTiles(log.dir)
        expect(update.rebuilt).toMatch(reason)
        expect(update.added).toBe(update.size)
        expect(await updateTiles(log.dir)).toMatchObject({rebuilt: null, added: 0})
      })
    }
  })
})

/** Overwrites the 32 bytes at `at` with other bytes. */
function patch(file: string, at: number): void {
  const bytes = readFileSync(file)
  bytes.fill(0x42, at, at + 32)
  writeFileSync(file, bytes)
}
