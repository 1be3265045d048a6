import {createHash} from 'node:crypto'
import * as noble from '@noble/ed25519'
import {beforeAll, describe, expect, it} from 'vitest'
import {verifierKeyOf, verifyNote} from '../../../control-plane/audit/note.js'
import {countSigners} from '../../../control-plane/crypto/envelope.js'
import {emptyTrust} from '../../../control-plane/manifests/load.js'
import {gateChart, passRate, renderHtml} from '../../../control-plane/evidence/report/html.js'
import {base64Canonical, base64Lenient, nobleEngine, verifyCheckpoint, verifyReceipt, webCryptoEngine, type Ed25519Engine, type PageKey} from '../../../control-plane/evidence/report/page/rules.js'
import {checkpointOf, flipPayloadBit, forgeRoot, INJECTION, keyOf, makeFixture, ORIGIN, receiptOf} from './report-html.fixture.js'

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`
const between = (html: string, open: RegExp, close: string) => {
  const m = open.exec(html)!
  return html.slice(m.index + m[0].length, html.indexOf(close, m.index + m[0].length))
}

describe('renderHtml', () => {
  const {model} = makeFixture()
  const html = renderHtml(model)

  it('is self-contained: nothing loaded from elsewhere, no link, image, frame or stylesheet URL', () => {
    expect(html).not.toMatch(/\s(src|href|action|srcset|xlink:href)\s*=\s*["']?\s*(https?:|\/\/|data:|file:)/i)
    expect(html).not.toMatch(/<(link|img|iframe|object|embed|base)\b/i)
    expect(html).not.toMatch(/url\(/i)
    expect(html).not.toMatch(/@import/i)
    // Every href is an anchor inside the page.
    for (const [, href] of html.matchAll(/href="([^"]*)"/g)) expect(href).toMatch(/^#[a-z]+-\d+$/)
  })

  it('has a strict CSP that allows exactly its inline script and stylesheet, and no style attribute it would block', () => {
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)![1]!.replace(/&#39;/g, "'")
    const script = between(html, /<script>/, '</script>')
    const style = between(html, /<style>/, '</style>')
    expect(csp).toBe(`default-src 'none'; script-src ${sha256(script)}; style-src ${sha256(style)}; base-uri 'none'; form-action 'none'`)
    expect(html.match(/<script>/g)).toHaveLength(1)
    // Attributes of the elements outside the scripts (escaped text holds no '<', so these are all the tags).
    const tags = html.slice(0, html.indexOf('<script type="application/json"')).match(/<[a-z][^>]*>/gi)!
    expect(tags.length).toBeGreaterThan(50)
    for (const tag of tags) expect(tag.replace(/"[^"]*"/g, '""')).not.toMatch(/\s(style|on[a-z]+)\s*=/i)
  })

  it('renders repository text as text: markup in a title, a gap, a summary, an image or suite name is escaped', () => {
    const body = html.slice(0, html.indexOf('<script type="application/json"'))
    expect(body).not.toContain('<script>window.__pwned')
    expect(body).not.toContain('<img')
    expect(body).toContain('&lt;script&gt;window.__pwned = 1&lt;/script&gt;')
    expect(body).toContain('&lt;/script&gt;&lt;script&gt;window.__pwned = 3')
  })

  it('embeds the model as JSON with < escaped, so it reads back exactly and no value closes the element', () => {
    const json = between(html, /<script type="application\/json" id="model">/, '</script>')
    expect(json).not.toContain('<')
    expect(json).toContain('\\u003cscript>')
    expect(JSON.parse(json)).toEqual(model)
  })

  it('shows one matrix row per control, with its status, claim level, gap and evidence linked to its row', () => {
    const rows = [...html.matchAll(/<tr id="control-(\d+)" data-framework="([^"]+)" data-control="([^"]+)">/g)].map((m) => `${m[2]} ${m[3]}`)
    expect(rows).toEqual(['soc2 CC8.1', 'hipaa 164.312(b)', 'fedramp SC-7'])
    expect(html).toContain('<td class="status-gap">gap</td>')
    expect(html).toContain('<a href="#receipt-0"><code>docs/evidence/20260201T000000Z-promote-a.json</code></a>')
    expect(html).toContain('<a href="#checkpoint-1"><code>docs/evidence/audit/checkpoint-00000025</code></a>')
    expect(html).toContain('<tr id="population-1">')
    expect(html).toContain('no signed checkpoint bounds it')
  })

  it('lists promotions and rollbacks in time order', () => {
    expect([...html.matchAll(/<tr class="event" data-operation="(\w+)">/g)].map((m) => m[1])).toEqual(['promote', 'rollback'])
  })

  it('draws one point per gate run at its pass rate (a gate not run counts against it), one line per suite', () => {
    const svg = gateChart(model.gateRuns)
    expect([...svg.matchAll(/data-rate="([0-9.]+)"/g)].map((m) => Number(m[1]))).toEqual([0.75, 1, 0.75])
    expect(svg.match(/<polyline /g)).toHaveLength(2)
    expect(passRate({...model.gateRuns[0]!, passed: 0, failed: 0, notRun: 0})).toBe(0)
    expect(gateChart([])).toContain('No gate runs recorded')
  })

  it('is the same bytes for the same model', () => {
    expect(renderHtml(model)).toBe(html)
  })
})

describe("the page rules, run in Node, agree with airlock's own verifiers", () => {
  /** Node 22's WebCrypto has Ed25519 (OpenSSL underneath), so both engines run here too. */
  const engines: Array<[string, () => Promise<Ed25519Engine | null>]> = [
    ['webcrypto', webCryptoEngine],
    ['noble', async () => nobleEngine(noble)],
  ]
  const {model, evidence, audit, stranger} = makeFixture()

  /** What countSigners says of a receipt, for the same keys at the same time (threshold one). */
  function nodeReceipt(receipt: (typeof model.receipts)[number], keys: PageKey[]) {
    const trust = {
      ...emptyTrust(),
      keys: keys.map((k) => ({id: k.keyid, name: k.keyid.slice(0, 8), algorithm: 'ed25519' as const, publicKey: Buffer.from(k.publicKey, 'base64'), roles: k.roles as Array<'evidence'>, validFrom: new Date(k.validFrom ?? 0), ...(k.validUntil ? {validUntil: new Date(k.validUntil)} : {})})),
    }
    const q = countSigners(receipt.envelope, {trust, role: 'evidence', at: new Date(receipt.time), threshold: 1, notValid: 'KEY_NOT_VALID_AT_SIGNING', what: receipt.path})
    return q.failure?.code ?? 'OK'
  }

  const receiptCases: Array<[string, () => {receipt: (typeof model.receipts)[number]; keys: PageKey[]}, string, RegExp]> = [
    ['a signed receipt', () => ({receipt: model.receipts[0]!, keys: model.keys}), 'OK', /^$/],
    ['a payload bit flipped', () => ({receipt: flipPayloadBit(model.receipts[0]!), keys: model.keys}), 'BAD_SIGNATURE', /does not verify: the signature does not match/],
    ['signed by a key not in trust.yaml', () => ({receipt: receiptOf('x.json', '2026-02-01T00:00:00.000Z', 'r', [stranger]), keys: model.keys}), 'UNKNOWN_KEY', /not an evidence key/],
    ['signed by an audit key (wrong role)', () => ({receipt: receiptOf('x.json', '2026-02-01T00:00:00.000Z', 'r', [audit]), keys: model.keys}), 'UNKNOWN_KEY', /not an evidence key/],
    ['signed after the key was retired', () => ({receipt: model.receipts[2]!, keys: [keyOf(evidence, ['evidence'], '2026-01-01T00:00:00.000Z', '2026-02-03T00:00:00.000Z')]}), 'KEY_NOT_VALID_AT_SIGNING', /not valid at 2026-02-03/],
    ['signed before the key was valid', () => ({receipt: model.receipts[0]!, keys: [keyOf(evidence, ['evidence'], '2026-02-01T00:00:00.001Z')]}), 'KEY_NOT_VALID_AT_SIGNING', /not valid at/],
    ['one good and one forged signature', () => ({receipt: {...model.receipts[0]!, envelope: {...model.receipts[0]!.envelope, signatures: [...model.receipts[0]!.envelope.signatures, {keyid: evidence.keyid, sig: 'A'.repeat(86) + '=='}]}}, keys: model.keys}), 'OK', /^$/],
    ['no signature', () => ({receipt: {...model.receipts[0]!, envelope: {...model.receipts[0]!.envelope, signatures: []}}, keys: model.keys}), 'THRESHOLD_NOT_MET', /carries no signature/],
  ]

  for (const [name, make] of engines) {
    describe(`with the ${name} engine`, () => {
      let engine: Ed25519Engine
      beforeAll(async () => {
        engine = (await make())!
      })

      it('is that engine (the WebCrypto self-test passes)', () => expect(engine?.name).toBe(name))
      for (const [name, make, nodeCode, why] of receiptCases) {
        it(`a receipt ${name}: ${nodeCode}`, async () => {
          const {receipt, keys} = make()
          expect(nodeReceipt(receipt, keys)).toBe(nodeCode)
          const verdict = await verifyReceipt(receipt, keys, engine, noble)
          expect(verdict.ok).toBe(nodeCode === 'OK')
          expect(verdict.why).toMatch(why)
        })
      }

      it("a receipt or checkpoint with fewer signers than trust.yaml's threshold fails, as countSigners and the pipeline say", async () => {
        const {model} = makeFixture()
        const receipt = await verifyReceipt(model.receipts[0]!, model.keys, engine, noble, 2)
        expect(receipt).toMatchObject({ok: false, why: expect.stringMatching(/signed by 1 evidence key\(s\) valid then; trust.yaml asks for 2/)})
        const checkpoint = await verifyCheckpoint(model.checkpoints[0]!, model.keys, engine, noble, 2)
        expect(checkpoint).toMatchObject({ok: false, why: expect.stringMatching(/signed by 1 audit key\(s\); trust.yaml asks for 2/)})
      })

      const nodeNote = (text: string, origin: string, keys: PageKey[]) => {
        try {
          verifyNote(text, keys.filter((k) => k.roles.includes('audit')).map((k) => verifierKeyOf(origin, Buffer.from(k.publicKey, 'base64'))))
          return 'OK'
        } catch (e) {
          return (e as {code: string}).code
        }
      }
      const checkpointCases: Array<[string, () => (typeof model.checkpoints)[number], string, RegExp]> = [
        ['a signed checkpoint', () => model.checkpoints[0]!, 'OK', /^$/],
        ['with its root changed after signing', () => forgeRoot(model.checkpoints[0]!), 'BAD_SIGNATURE', /does not verify/],
        ['signed by a stranger under the origin', () => checkpointOf('c', 3, stranger), 'UNKNOWN_KEY', /signed by none of the 1 audit keys/],
        ['signed by the evidence key (wrong role)', () => checkpointOf('c', 3, evidence), 'UNKNOWN_KEY', /signed by none/],
        ['with a witness cosignature the page does not know', () => ({...model.checkpoints[0]!, text: model.checkpoints[0]!.text + `\u2014 witness.example ${Buffer.alloc(68, 7).toString('base64')}\n`}), 'OK', /^$/],
        ['with the signature line re-encoded non-canonically', () => ({...model.checkpoints[0]!, text: model.checkpoints[0]!.text.replace(/=\n$/, '\n')}), 'MALFORMED', /not canonical base64|not a signed note/],
      ]
      for (const [name, make, nodeCode, why] of checkpointCases) {
        it(`a checkpoint ${name}: ${nodeCode}`, async () => {
          const cp = make()
          expect(nodeNote(cp.text, cp.origin, model.keys)).toBe(nodeCode)
          const verdict = await verifyCheckpoint(cp, model.keys, engine, noble)
          expect(verdict.ok).toBe(nodeCode === 'OK')
          expect(verdict.why).toMatch(why)
        })
      }

      it('a checkpoint from another log (origin) is refused though its signature is good', async () => {
        const other = checkpointOf('c', 3, audit, 'airlock.audit/host-2/fedcba9876543210')
        const verdict = await verifyCheckpoint({...other, origin: ORIGIN}, model.keys, engine, noble)
        expect(verdict).toMatchObject({ok: false, why: expect.stringMatching(/signed for origin "airlock.audit\/host-2/)})
      })

      it('a checkpoint listed with a size or root other than the signed ones is refused', async () => {
        expect((await verifyCheckpoint({...model.checkpoints[0]!, size: 11}, model.keys, engine, noble)).why).toMatch(/tree size 10, not 11/)
        expect((await verifyCheckpoint({...model.checkpoints[0]!, root: model.checkpoints[1]!.root}, model.keys, engine, noble)).why).toMatch(/root hash/)
      })

      it('an audit key of the wrong length refuses the checkpoint whole, as verifyNote does (KEY_INVALID)', async () => {
        const short = {...keyOf(stranger, ['audit']), publicKey: Buffer.alloc(31, 1).toString('base64')}
        expect(nodeNote(model.checkpoints[0]!.text, ORIGIN, [...model.keys, short])).toBe('KEY_INVALID')
        expect(await verifyCheckpoint(model.checkpoints[0]!, [...model.keys, short], engine, noble)).toMatchObject({ok: false, why: expect.stringMatching(/has 31 bytes, not 32/)})
      })

      it('a checkpoint published after its audit key was retired is refused', async () => {
        const keys = [keyOf(audit, ['audit'], '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z')]
        expect((await verifyCheckpoint(model.checkpoints[0]!, keys, engine, noble)).why).toMatch(/signed by none of the 0 audit keys valid at 2026-03-01/)
      })
    })
  }

  it('decodes base64 as Node does (lenient, for envelopes) and canonically (for notes)', () => {
    for (const s of ['QUJD', 'QU=JD', 'QU JD', 'QUJ', 'QUJDRA', 'QUJDRA=', 'Q', 'QUJDR', 'QUJD!RA==', 'QU-_', 'QUJD=RA==', 'QQ==QQ==', 'QR==', '', '\u00e9QUJD']) {
      expect(Buffer.from(base64Lenient(s)).toString('hex'), s).toBe(Buffer.from(s, 'base64').toString('hex'))
    }
    expect(base64Canonical('QQ==')).toEqual(Uint8Array.of(0x41))
    for (const s of ['QR==', 'QQ', 'QQ=', 'Q-==', ' QQ==']) expect(base64Canonical(s), s).toBeNull()
  })

})
