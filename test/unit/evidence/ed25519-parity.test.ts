import {createPublicKey, verify} from 'node:crypto'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import * as noble from '@noble/ed25519'
import type {Browser} from 'playwright-core'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {verifyEd25519} from '../../../control-plane/crypto/keys.js'
import {verifierSource} from '../../../control-plane/evidence/report/html.js'
import {ed25519KeyProblem, ed25519Verify, nobleEngine, webCryptoEngine} from '../../../control-plane/evidence/report/page/rules.js'
import {launchChromium, RUN_CHROMIUM} from '../../chromium.js'
import {parityCases, type ParityCase} from './ed25519-parity.cases.js'

const cases = parityCases()
const bytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'))

/** airlock's own verifier (keys.ts): a key it cannot even load is a refusal. */
function airlockVerify(c: ParityCase): boolean {
  try {
    return verifyEd25519(bytes(c.publicKey), bytes(c.message), bytes(c.signature))
  } catch {
    return false
  }
}

/** OpenSSL's Ed25519 through node:crypto alone, without airlock's key rule. */
function rawNodeVerify(c: ParityCase): boolean {
  try {
    const key = createPublicKey({key: {kty: 'OKP', crv: 'Ed25519', x: Buffer.from(c.publicKey, 'hex').toString('base64url')}, format: 'jwk'})
    return verify(null, bytes(c.message), key, bytes(c.signature))
  } catch {
    return false
  }
}

describe('Ed25519: one rule in Node, in WebCrypto and in @noble/ed25519', () => {
  it('the table holds every kind of edge case, forged signatures under small-order keys included', () => {
    expect(cases.length).toBeGreaterThanOrEqual(28)
    expect(cases.filter((c) => c.name.startsWith('small-order key') && c.node).length).toBeGreaterThanOrEqual(3)
    expect(cases.some((c) => c.name.startsWith('key with a small-order component'))).toBe(true)
  })

  it("Node's crypto.verify alone answers as the table says (it accepts forgeries under small-order keys)", () => {
    expect(cases.map((c) => [c.name, rawNodeVerify(c)])).toEqual(cases.map((c) => [c.name, c.node]))
  })

  it("airlock's verifyEd25519 (crypto.verify under a key of prime order only) answers exactly as the page rule", () => {
    expect(cases.map((c) => [c.name, airlockVerify(c)])).toEqual(cases.map((c) => [c.name, c.page]))
  })

  it('the page rule with Node\'s WebCrypto and with strict noble answer as the table says', async () => {
    const webcrypto = (await webCryptoEngine())!
    for (const engine of [webcrypto, nobleEngine(noble)]) {
      const got = await Promise.all(cases.map(async (c) => [c.name, (await ed25519Verify(engine, noble, bytes(c.publicKey), bytes(c.message), bytes(c.signature))).ok]))
      expect(got, engine.name).toEqual(cases.map((c) => [c.name, c.page]))
    }
  })

  it('noble strict alone (zip215: false, no pre-check) differs from Node only where the page rule steps in', async () => {
    const raw = await Promise.all(cases.map((c) => noble.verifyAsync(bytes(c.signature), bytes(c.message), bytes(c.publicKey), {zip215: false}).catch(() => false)))
    const differ = cases.filter((c, i) => raw[i] !== c.node).map((c) => c.name)
    expect(differ.length).toBeGreaterThan(0)
    // Each difference is a key the page refuses or an R with a small-order component, which the noble engine refuses first.
    for (const c of cases.filter((c) => differ.includes(c.name))) {
      expect(ed25519KeyProblem(noble, bytes(c.publicKey)) !== '' || c.name.startsWith('R with a small-order component'), c.name).toBe(true)
    }
  })

  it('where the page and Node differ, the key is one the page refuses (and airlock\'s verifyEd25519 refuses it too)', () => {
    for (const c of cases.filter((c) => c.page !== c.node)) expect(ed25519KeyProblem(noble, bytes(c.publicKey)), c.name).not.toBe('')
  })

  describe.runIf(RUN_CHROMIUM)('in headless Chromium', () => {
    let browser: Browser
    let dir: string
    beforeAll(async () => {
      browser = await launchChromium()
      dir = await mkdtemp(join(tmpdir(), 'airlock-parity-'))
    })
    afterAll(async () => {
      await browser?.close()
      if (dir) await rm(dir, {recursive: true, force: true})
    })

    it("Chromium's WebCrypto alone answers as Node's crypto.verify, and the page rule with either engine as the table says", async () => {
      const file = join(dir, 'parity.html')
      // A page with the verifier exactly as the report inlines it (no CSP: the cases go in by evaluate).
      await writeFile(file, `<!doctype html><meta charset="utf-8"><script>${verifierSource()}\nwindow.noble = noble; window.ed25519Verify = ed25519Verify; window.webCryptoEngine = webCryptoEngine; window.nobleEngine = nobleEngine;</script>`)
      const page = await browser.newPage()
      await page.route('**', (r) => (r.request().url().startsWith('file:') ? r.continue() : r.abort()))
      await page.goto(pathToFileURL(file).href)
      const got = await page.evaluate(async (cases) => {
        // The page's globals, as the script above set them (the same functions the report inlines).
        const w = window as unknown as {webCryptoEngine: typeof webCryptoEngine; nobleEngine: typeof nobleEngine; ed25519Verify: typeof ed25519Verify; noble: typeof noble}
        const hex = (s: string) => new Uint8Array((s.match(/../g) ?? []).map((b) => parseInt(b, 16)))
        const webcrypto = (await w.webCryptoEngine())!
        const engines = [webcrypto, w.nobleEngine(w.noble)]
        const out: Array<{raw: boolean; rule: boolean[]; engines: string[]}> = []
        for (const c of cases) {
          let raw = false
          try {
            const key = await crypto.subtle.importKey('raw', hex(c.publicKey), {name: 'Ed25519'}, false, ['verify'])
            raw = await crypto.subtle.verify({name: 'Ed25519'}, key, hex(c.signature), hex(c.message))
          } catch {
            raw = false
          }
          const rule = []
          for (const e of engines) rule.push((await w.ed25519Verify(e, w.noble, hex(c.publicKey), hex(c.message), hex(c.signature))).ok)
          out.push({raw, rule, engines: engines.map((e) => e.name)})
        }
        return out
      }, cases)
      expect(got[0]!.engines).toEqual(['webcrypto', 'noble'])
      expect(got.map((g, i) => [cases[i]!.name, g.raw])).toEqual(cases.map((c) => [c.name, c.node]))
      expect(got.map((g, i) => [cases[i]!.name, ...g.rule])).toEqual(cases.map((c) => [c.name, c.page, c.page]))
    })
  })
})
