import {describe, expect, it} from 'vitest'
import {generateSigner} from '../../../control-plane/crypto/keys.js'
import {renderEvidenceIndex} from '../../../control-plane/evidence/index-md.js'
import {parseReceipt} from '../../../control-plane/evidence/ledger.js'
import {receiptText, signReceipt, type ReceiptStatement} from '../../../control-plane/evidence/receipt.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {kindOf} from '../../../control-plane/manifests/kinds.js'
import {emptyTrust} from '../../../control-plane/manifests/load.js'

const {signer} = generateSigner()

function receipt(name: string, appliedAt: string, summary: string) {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{name: 'registry.example.com/golden/agent-runner', digest: {sha256: 'ab'.repeat(32)}}],
    predicateType: 'https://airlock.dev/attestations/change/v1',
    predicate: {operation: 'promote', summary, appliedAt, baseCommit: null, changes: []},
  } as unknown as ReceiptStatement
  return parseReceipt(receiptText(signReceipt(statement, [signer])), `docs/evidence/${name}`, DEFAULT_LIMITS)
}

describe('the evidence index (docs/evidence/README.md)', () => {
  const trust = {...emptyTrust(), keys: [{id: signer.keyid, name: 'ops', algorithm: 'ed25519' as const, publicKey: signer.publicKey, roles: ['evidence' as const], validFrom: new Date('2026-01-01T00:00:00Z')}]}

  it('lists receipts by time with their subjects and signer key ids, and the evidence keys to verify them with', () => {
    const md = renderEvidenceIndex({receipts: [receipt('b.json', '2026-02-02T00:00:00Z', 'second'), receipt('a.json', '2026-03-01T00:00:00Z', 'third'), receipt('c.json', '2026-01-02T00:00:00Z', 'first')], trust, commit: 'f'.repeat(40), anchor: 'e'.repeat(40)})
    const rows = md.split('\n').filter((l) => l.startsWith('| ['))
    expect(rows.map((r) => /\*\*promote\*\*: (\w+)/.exec(r)?.[1])).toEqual(['first', 'second', 'third'])
    expect(rows[0]).toContain('| 2026-01-02T00:00:00Z |')
    expect(rows[0]).toContain('registry.example.com/golden/agent-runner sha256:abababababab…')
    expect(rows[0]).toContain(`\`${signer.keyid.slice(0, 16)}…\``)
    expect(md).toContain(`airlock evidence verify --trust-anchor ${'e'.repeat(40)}`)
    expect(md).toContain(`| \`${signer.keyid}\` | ops | \`${Buffer.from(signer.publicKey).toString('base64')}\` | 2026-01-01T00:00:00Z |`)
  })

  it('keeps text from a receipt inside its cell: no column break, code span, link or line break', () => {
    const md = renderEvidenceIndex({receipts: [receipt('x.json', '2026-01-02T00:00:00Z', 'a | b `c` [d](e)\n| forged | row |')], trust, commit: 'f'.repeat(40)})
    const row = md.split('\n').find((l) => l.startsWith('| ['))!
    expect(row).toContain('a \\| b \\`c\\` \\[d\\](e) \\| forged \\| row \\|')
    expect(md.split('\n').filter((l) => l.startsWith('| ['))).toHaveLength(1)
  })

  it('is a kind a signed change may carry (Documentation), unlike any other file directly in docs/evidence/ but receipts', () => {
    expect(kindOf('docs/evidence/README.md')?.kind).toBe('Documentation')
    expect(kindOf('docs/evidence/.gitkeep')?.kind).toBe('Documentation')
    expect(kindOf('docs/evidence/x.json')?.kind).toBe('Receipt')
    expect(kindOf('docs/evidence/notes.md')).toBeNull()
    expect(kindOf('docs/README.md')).toBeNull()
  })
})
