/**
 * Inclusion proofs from a real log (real files, real Ed25519 keys): a proof verifies offline with
 * checkEntryProof, and each way of failing — an edited entry, another entry, a tampered proof hash,
 * a checkpoint of another log, an unknown or forged signer — is the problem that names it; the
 * prover refuses what it cannot prove with the exact code.
 */
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {checkEntryProof, consistencyOf, proveEntry} from '../../../control-plane/audit/prove.js'
import {AuditLog, writeCheckpoint} from '../../../control-plane/audit/log.js'
import {consistencyProof, leafHash, MerkleLog, rootFromLeafHashes, verifyConsistency} from '../../../control-plane/audit/merkle.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
import {parseTlogProof, verifierKeyOf} from '../../../control-plane/audit/note.js'
import {generateSigner} from '../../../control-plane/crypto/keys.js'
import {entryLine, prunedLine, TestLog} from './prove-log.js'

/** Replaces proof hash `n` (0-based) of a tlog-proof with another hash. */
function tamperHash(text: string, n: number): string {
  const lines = text.split('\n')
  const at = lines.findIndex((l) => l.startsWith('index ')) + 1 + n
  const h = Buffer.from(lines[at]!, 'base64')
  h[0]! ^= 1
  lines[at] = h.toString('base64')
  return lines.join('\n')
}

describe('a proof from a real log', () => {
  const log = TestLog.temp().append(1000)
  log.checkpoint()

  it('verifies offline for entries across the tree, with the log\'s key', async () => {
    for (const index of [0, 1, 255, 256, 511, 999]) {
      const p = await proveEntry(log.dir, index)
      expect(p).toMatchObject({index, size: 1000, origin: log.origin, fingerprint: log.fingerprints[index], entry: log.lines[index]})
      expect(parseTlogProof(p.text).proof.length).toBe(index === 999 ? 8 : 10)
      expect(checkEntryProof(p.text, `${log.lines[index]}\n`, [log.key])).toEqual({ok: true, index, size: 1000, origin: log.origin, fingerprint: log.fingerprints[index], signedBy: [log.key.text]})
    }
  })

  it('is made against an older checkpoint given as a file or as text', async () => {
    const small = TestLog.temp().append(10)
    const note = small.checkpoint()
    small.append(20).checkpoint()
    const byText = await proveEntry(small.dir, 9, {checkpoint: note})
    const byFile = await proveEntry(small.dir, 9, {checkpoint: join(small.dir, 'checkpoints', '00000000000000000010.checkpoint')})
    expect(byText.text).toBe(byFile.text)
    expect(byText.size).toBe(10)
    expect(checkEntryProof(byText.text, small.lines[9]!, [small.key]).ok).toBe(true)
    expect((await proveEntry(small.dir, 9)).size).toBe(30)
  })

  describe('fails the offline check', () => {
    it('for an edited entry line: FINGERPRINT_MISMATCH', async () => {
      const p = await proveEntry(log.dir, 42)
      expect(checkEntryProof(p.text, log.lines[42]!.replace('"event 42"', '"event 43"'), [log.key])).toMatchObject({ok: false, problem: 'FINGERPRINT_MISMATCH'})
    })

    it('for another entry: INDEX_MISMATCH', async () => {
      const p = await proveEntry(log.dir, 42)
      expect(checkEntryProof(p.text, log.lines[43]!, [log.key])).toMatchObject({ok: false, problem: 'INDEX_MISMATCH'})
    })

    it('for a tampered proof hash, any of them: NOT_INCLUDED', async () => {
      const p = await proveEntry(log.dir, 42)
      for (let n = 0; n < 10; n++) expect(checkEntryProof(tamperHash(p.text, n), log.lines[42]!, [log.key])).toMatchObject({ok: false, problem: 'NOT_INCLUDED'})
    })

    it('for a proof with its index changed: INDEX_MISMATCH, and NOT_INCLUDED for the entry at that index', async () => {
      const p = await proveEntry(log.dir, 42)
      const moved = p.text.replace('\nindex 42\n', '\nindex 43\n')
      expect(checkEntryProof(moved, log.lines[42]!, [log.key])).toMatchObject({problem: 'INDEX_MISMATCH'})
      expect(checkEntryProof(moved, log.lines[43]!, [log.key])).toMatchObject({problem: 'NOT_INCLUDED'})
    })

    it('for a checkpoint of another log: ORIGIN_MISMATCH', async () => {
      const other = TestLog.temp('airlock.audit/other-host/fedcba9876543210', log.signer).append(1000)
      other.checkpoint()
      const p = await proveEntry(other.dir, 42)
      // Signed by the fleet's audit key under the other log's name: the signature holds, the entry is not that log's.
      expect(checkEntryProof(p.text, log.lines[42]!, [other.key])).toMatchObject({ok: false, problem: 'ORIGIN_MISMATCH', origin: other.origin})
      expect(checkEntryProof(p.text, other.lines[42]!, [other.key], {origin: log.origin})).toMatchObject({ok: false, problem: 'ORIGIN_MISMATCH'})
      // With only this log's key the other log's checkpoint is signed by no known key.
      expect(checkEntryProof(p.text, other.lines[42]!, [log.key])).toMatchObject({ok: false, problem: 'UNKNOWN_KEY'})
    })

    it('for a checkpoint signed by an unknown key: UNKNOWN_KEY', async () => {
      const p = await proveEntry(log.dir, 42, {checkpoint: log.checkpoint(false, generateSigner().signer)})
      expect(checkEntryProof(p.text, log.lines[42]!, [log.key])).toMatchObject({ok: false, problem: 'UNKNOWN_KEY'})
      expect(checkEntryProof(p.text, log.lines[42]!, [])).toMatchObject({ok: false, problem: 'UNKNOWN_KEY'})
    })

    it('for a forged checkpoint under the log\'s key: BAD_SIGNATURE', async () => {
      const p = await proveEntry(log.dir, 42)
      // Another tree size under the genuine signature line.
      const forged = p.text.replace(/\n1000\n/, '\n1001\n')
      expect(checkEntryProof(forged, log.lines[42]!, [log.key])).toMatchObject({ok: false, problem: 'BAD_SIGNATURE', size: 1001})
    })

    it('for a pruned entry: ENTRY_PRUNED; the archived line still checks', async () => {
      const p = await proveEntry(log.dir, 7)
      expect(checkEntryProof(p.text, prunedLine(7, log.fingerprints[7]!, log.fingerprints[6]!), [log.key])).toMatchObject({problem: 'ENTRY_PRUNED', fingerprint: log.fingerprints[7]})
      expect(checkEntryProof(p.text, 'not json', [log.key])).toMatchObject({problem: 'ENTRY_MALFORMED'})
      expect(checkEntryProof(p.text, `${log.lines[7]}\n${log.lines[8]}\n`, [log.key])).toMatchObject({problem: 'ENTRY_MALFORMED'})
    })

    it('for a proof that is not one: throws MALFORMED', async () => {
      expect(() => checkEntryProof('c2sp.org/tlog-proof@v1\nindex x\n\n', log.lines[0]!, [log.key])).toThrow(expect.objectContaining({code: 'MALFORMED'}))
    })
  })
})

describe('a log written by log.ts\'s appender', () => {
  it('proves its entries, checked with the key that signed the checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-prove-'))
    const log = await AuditLog.open(dir)
    const merkle = new MerkleLog()
    const results = await Promise.all(Array.from({length: 300}, (_, i) => log.append({class_uid: 6003, activity_id: 1, type_uid: 600301, message: `event ${i}`})))
    await log.close()
    for (const r of results) merkle.append(leafHash(Buffer.from(r.fingerprint, 'hex')))
    const {signer} = generateSigner()
    await writeCheckpoint(dir, log.origin, signer, merkle.size, merkle.root())
    const p = await proveEntry(dir, 257)
    expect(p.fingerprint).toBe(results[257]!.fingerprint)
    expect(checkEntryProof(p.text, p.entry, [verifierKeyOf(log.origin, signer.publicKey)])).toMatchObject({ok: true, index: 257, size: 300, origin: log.origin})
  })
})

describe('the prover refuses', () => {
  it('an entry beyond the checkpoint with USAGE, saying to checkpoint first', async () => {
    const log = TestLog.temp().append(5)
    log.checkpoint()
    log.append(5)
    await expect(proveEntry(log.dir, 5)).rejects.toMatchObject({code: 'USAGE', message: expect.stringContaining('airlock audit checkpoint')})
    await expect(proveEntry(log.dir, -1)).rejects.toMatchObject({code: 'USAGE'})
  })

  it('a log with no checkpoint yet with USAGE', async () => {
    await expect(proveEntry(TestLog.temp().append(3).dir, 0)).rejects.toMatchObject({code: 'USAGE', message: expect.stringContaining('no checkpoint yet')})
  })

  it('a checkpoint of another log, or no checkpoint at all, with AUDIT_CHECKPOINT_INVALID', async () => {
    const log = TestLog.temp().append(5)
    const other = TestLog.temp('airlock.audit/other-host/fedcba9876543210').append(5)
    await expect(proveEntry(log.dir, 1, {checkpoint: other.checkpoint(false)})).rejects.toMatchObject({code: 'AUDIT_CHECKPOINT_INVALID'})
    writeFileSync(join(log.dir, 'checkpoints', '00000000000000000005.checkpoint'), 'not a note\n')
    await expect(proveEntry(log.dir, 1)).rejects.toMatchObject({code: 'AUDIT_CHECKPOINT_INVALID', details: {problem: 'NO_BLANK_LINE'}})
  })

  it('a log whose entry was edited, fingerprint and all, with AUDIT_TAMPERED', async () => {
    const log = TestLog.temp().append(300)
    log.checkpoint()
    await proveEntry(log.dir, 3)
    log.lines[100] = entryLine(log.origin, 100, log.fingerprints[99]!, {extra: 'planted'}).line
    log.rewrite()
    await expect(proveEntry(log.dir, 3)).rejects.toMatchObject({code: 'AUDIT_TAMPERED', message: expect.stringContaining('do not hash to the root')})
  })

  it('an entry whose body was edited under its old fingerprint with AUDIT_TAMPERED naming its line', async () => {
    const log = TestLog.temp().append(20)
    log.checkpoint()
    log.lines[12] = log.lines[12]!.replace('"event 12"', '"event 99"')
    log.rewrite()
    await expect(proveEntry(log.dir, 12)).rejects.toMatchObject({code: 'AUDIT_TAMPERED', details: {line: 13, index: 12}})
    expect((await proveEntry(log.dir, 11)).index).toBe(11)
  })

  it('a log cut shorter than its checkpoint with AUDIT_TAMPERED', async () => {
    const log = TestLog.temp().append(20)
    log.checkpoint()
    log.lines.length = 15
    log.rewrite()
    await expect(proveEntry(log.dir, 3)).rejects.toMatchObject({code: 'AUDIT_TAMPERED', message: expect.stringContaining('fewer than the 20')})
  })
})

describe('consistencyOf', () => {
  it('gives merkle.ts\'s proof and roots, which verify, between sizes of a real log', async () => {
    const log = TestLog.temp().append(600)
    const leaves = log.fingerprints.map((f) => leafHash(Buffer.from(f, 'hex')))
    for (const [a, b] of [[1, 600], [256, 600], [257, 513], [599, 600], [600, 600]] as const) {
      const c = await consistencyOf(log.dir, a, b)
      expect(c.proof.map(hex)).toEqual(consistencyProof(leaves, a, b).map(hex))
      expect(hex(c.oldRoot)).toBe(hex(rootFromLeafHashes(leaves.slice(0, a))))
      expect(verifyConsistency(a, b, c.oldRoot, c.newRoot, c.proof)).toBe(true)
    }
    await expect(consistencyOf(log.dir, 1, 601)).rejects.toMatchObject({code: 'USAGE'})
    await expect(consistencyOf(log.dir, 0, 600)).rejects.toMatchObject({code: 'INVALID_INPUT'})
  })
})

describe('the tiles are never trusted', () => {
  it('a wrong hash inside them is found by the checkpoint\'s root, the tiles rebuilt, the proof right', async () => {
    const log = TestLog.temp().append(700)
    log.checkpoint()
    await proveEntry(log.dir, 0)
    const file = join(log.dir, 'tiles', '0.hashes')
    const bytes = readFileSync(file)
    bytes.fill(0, 32 * 300, 32 * 301)
    writeFileSync(file, bytes)
    const p = await proveEntry(log.dir, 301)
    expect(checkEntryProof(p.text, log.lines[301]!, [log.key]).ok).toBe(true)
    expect(readFileSync(file).subarray(32 * 300, 32 * 301).equals(Buffer.alloc(32))).toBe(false)
  })

  it('an offset that leads to another entry is found when the entry is read, and the tiles rebuilt', async () => {
    const log = TestLog.temp().append(700)
    log.checkpoint()
    await proveEntry(log.dir, 0)
    const file = join(log.dir, 'tiles', 'offsets')
    const offsets = readFileSync(file)
    offsets.copy(offsets, 8, 0, 8) // entries 256… now said to start where entry 0 does
    writeFileSync(file, offsets)
    const p = await proveEntry(log.dir, 300)
    expect(p.entry).toBe(log.lines[300])
    expect(checkEntryProof(p.text, p.entry, [log.key]).ok).toBe(true)
    expect(readFileSync(file).subarray(8, 16).equals(offsets.subarray(0, 8))).toBe(false)
  })

  it('lost tiles are rebuilt', async () => {
    const log = TestLog.temp().append(300)
    log.checkpoint()
    await proveEntry(log.dir, 0)
    rmSync(join(log.dir, 'tiles'), {recursive: true})
    expect(checkEntryProof((await proveEntry(log.dir, 299)).text, log.lines[299]!, [verifierKeyOf(log.origin, log.signer.publicKey)]).ok).toBe(true)
  })
})
