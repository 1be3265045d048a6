/**
 * The layout and proof format of published checkpoints (audit/published.ts): origin slugs are
 * path-safe and injective, the consistency file reads back what was written and refuses anything
 * else at its line, and a checkpoint file must lie where its origin and size put it.
 */
import {describe, expect, it} from 'vitest'
import {generateSigner} from '../../../control-plane/crypto/keys.js'
import {consistencyProof, leafHash, rootFromLeafHashes, verifyConsistency} from '../../../control-plane/audit/merkle.js'
import {formatCheckpoint, signNote} from '../../../control-plane/audit/note.js'
import {checkpointPath, consistencyPath, CONSISTENCY_HEADER, decodeHash, formatConsistency, originSlug, parseConsistency, readCheckpointFile} from '../../../control-plane/audit/published.js'
import {kindOf} from '../../../control-plane/manifests/kinds.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'

const ORIGIN = 'airlock.audit/runner-1/0123456789abcdef'
const leaves = (n: number, seed = 0) => Array.from({length: n}, (_, i) => leafHash(Uint8Array.from({length: 32}, (_, j) => (i * 7 + j + seed) & 0xff)))

function note(origin: string, n: number): string {
  const {signer} = generateSigner()
  return signNote(formatCheckpoint({origin, size: n, rootHash: rootFromLeafHashes(leaves(n)), extensions: []}), [{name: origin, signer}])
}

describe('origin slugs', () => {
  it('keep an origin readable: / becomes _, lower-case letters, digits, dots and dashes stay', () => {
    expect(originSlug(ORIGIN)).toBe('airlock.audit_runner-1_0123456789abcdef')
    expect(checkpointPath(ORIGIN, 7)).toBe('docs/evidence/audit/airlock.audit_runner-1_0123456789abcdef/00000000000000000007.checkpoint')
    expect(consistencyPath(ORIGIN, 7)).toBe('docs/evidence/audit/airlock.audit_runner-1_0123456789abcdef/00000000000000000007.consistency')
  })

  it('are injective and never a dot folder, upper case or a path separator', () => {
    const origins = ['a/b', 'a_b', 'a~5fb', 'A/b', 'a/B', '..', '.x', 'x.', 'ü/ü', 'a b', 'a\\b']
    const slugs = origins.map(originSlug)
    expect(new Set(slugs).size).toBe(origins.length)
    for (const s of slugs) {
      expect(s).toMatch(/^[a-z0-9._~-]+$/)
      expect(s.startsWith('.')).toBe(false)
    }
    expect(originSlug('..')).toBe('~2e.')
  })

  it('refuse an origin too long for a folder name', () => {
    expect(() => originSlug('x'.repeat(201))).toThrowAirlockError('AUDIT_CHECKPOINT_INVALID')
  })

  it('make paths the kinds table knows, written only by audit-publish and never deleted', () => {
    const cp = kindOf(checkpointPath(ORIGIN, 3))!
    const proof = kindOf(consistencyPath(ORIGIN, 3))!
    expect([cp.kind, cp.editable, cp.deletable, cp.writtenBy]).toEqual(['AuditCheckpoint', false, false, 'audit-publish'])
    expect([proof.kind, proof.editable, proof.deletable, proof.writtenBy]).toEqual(['AuditConsistencyProof', false, false, 'audit-publish'])
    expect(kindOf('docs/evidence/audit/x/7.checkpoint')).toBeNull()
    expect(kindOf('docs/evidence/audit/UPPER/00000000000000000007.checkpoint')).toBeNull()
  })
})

describe('the consistency proof file', () => {
  const proof = consistencyProof(leaves(13), 5, 13)

  it('reads back what it writes, and the proof verifies', () => {
    const text = formatConsistency({oldSize: 5, newSize: 13, proof})
    expect(text.split('\n').slice(0, 3)).toEqual([CONSISTENCY_HEADER, '5', '13'])
    const back = parseConsistency(text, 'f')
    expect(back.oldSize).toBe(5)
    expect(back.newSize).toBe(13)
    expect(verifyConsistency(5, 13, rootFromLeafHashes(leaves(5)), rootFromLeafHashes(leaves(13)), back.proof)).toBe(true)
  })

  const good = formatConsistency({oldSize: 5, newSize: 13, proof})
  const lines = good.split('\n')
  const cases: Array<[string, string, number]> = [
    ['another header', good.replace(CONSISTENCY_HEADER, 'airlock.audit.consistency/v2'), 1],
    ['a size with a leading zero', [lines[0], '05', ...lines.slice(2)].join('\n'), 2],
    ['an old size of 0', [lines[0], '0', ...lines.slice(2)].join('\n'), 3],
    ['a new size not above the old', [lines[0], '13', '5', ...lines.slice(3)].join('\n'), 3],
    ['a hash that is not base64', [...lines.slice(0, 3), '!!!', ...lines.slice(4)].join('\n'), 4],
    ['a 31-byte hash', [...lines.slice(0, 4), Buffer.alloc(31).toString('base64'), ...lines.slice(5)].join('\n'), 5],
    ['no final newline', good.slice(0, -1), lines.length - 1],
  ]
  for (const [what, text, line] of cases) {
    it(`refuses ${what} (MALFORMED at line ${line})`, () => {
      let error: unknown
      try {
        parseConsistency(text, 'p.consistency')
      } catch (e) {
        error = e
      }
      expect(error).toBeDefined()
      expect(() => parseConsistency(text, 'p.consistency')).toThrowAirlockError('MALFORMED')
      expect((error as {details: {line: number}}).details.line).toBe(line)
    })
  }

  it('decodes only canonical 32-byte base64', () => {
    const h = Buffer.alloc(32, 7).toString('base64')
    expect(decodeHash(h)).not.toBeNull()
    expect(decodeHash(h.replace(/=$/, ''))).toBeNull()
    expect(decodeHash(`${h.slice(0, 42)}B=`)).toBeNull()
  })
})

describe('a checkpoint file', () => {
  it('reads where its origin and size put it', () => {
    const text = note(ORIGIN, 4)
    expect(readCheckpointFile(checkpointPath(ORIGIN, 4), text, DEFAULT_LIMITS)).toMatchObject({origin: ORIGIN, size: 4})
  })

  it('is refused under another size or another origin\'s folder, or when it is not a signed checkpoint', () => {
    const text = note(ORIGIN, 4)
    for (const path of [checkpointPath(ORIGIN, 5), checkpointPath('airlock.audit/other/0000', 4)]) {
      expect(() => readCheckpointFile(path, text, DEFAULT_LIMITS)).toThrowAirlockError('AUDIT_CHECKPOINT_INVALID')
    }
    expect(() => readCheckpointFile(checkpointPath(ORIGIN, 4), text.split('\n\n')[0]!, DEFAULT_LIMITS)).toThrowAirlockError('AUDIT_CHECKPOINT_INVALID')
  })
})
