/**
 * The compliance report page in real headless Chromium, opened from a file with every network
 * request aborted: it shows the matrix, and its "Verify signatures" button verifies every receipt
 * and checkpoint, with WebCrypto's Ed25519 and with @noble/ed25519, and marks exactly the tampered
 * ones FAILED.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import type {Browser, Page} from 'playwright-core'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {renderHtml} from '../../control-plane/evidence/report/html.js'
import type {ReportModel} from '../../control-plane/evidence/report/model.js'
import {launchChromium, RUN_CHROMIUM} from '../chromium.js'
import {flipPayloadBit, forgeRoot, makeFixture, receiptOf} from '../unit/evidence/report-html.fixture.js'

interface Opened {
  page: Page
  /** Requests the page tried to make other than loading its own file. */
  attempted: string[]
  /** CSP violations and page errors: none is expected. */
  problems: string[]
}

interface Rows {
  summary: {verified: string | null; failed: string | null; engine: string | null; error: string | null; text: string}
  receipts: Array<{status: string | null; text: string}>
  checkpoints: Array<{status: string | null; text: string}>
}

describe.runIf(RUN_CHROMIUM)('the HTML compliance report in headless Chromium', () => {
  let browser: Browser
  let dir: string
  const fixture = makeFixture()
  const {model, stranger} = fixture
  /** One tampered receipt (a payload bit), one signed by a key not in trust.yaml, one forged checkpoint. */
  const tampered: ReportModel = {
    ...model,
    receipts: [model.receipts[0]!, flipPayloadBit(model.receipts[1]!), receiptOf(model.receipts[2]!.path, model.receipts[2]!.time, 'gates', [stranger])],
    checkpoints: [forgeRoot(model.checkpoints[0]!), model.checkpoints[1]!],
  }

  beforeAll(async () => {
    browser = await launchChromium()
    dir = await mkdtemp(join(tmpdir(), 'airlock-report-'))
    await writeFile(join(dir, 'report.html'), renderHtml(model))
    await writeFile(join(dir, 'tampered.html'), renderHtml(tampered))
  })
  afterAll(async () => {
    await browser?.close()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  async function open(name: string, opts: {query?: string; noWebCryptoEd25519?: boolean} = {}): Promise<Opened> {
    const context = await browser.newContext()
    const page = await context.newPage()
    const href = pathToFileURL(join(dir, name)).href
    const attempted: string[] = []
    const problems: string[] = []
    await context.route('**', (route) => {
      const url = route.request().url()
      if (url.split('?')[0] === href) return route.continue()
      attempted.push(url)
      return route.abort()
    })
    page.on('request', (r) => {
      if (r.url().split('?')[0] !== href) attempted.push(r.url())
    })
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`)
    })
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP: ${e.violatedDirective} ${e.blockedURI}`))
    })
    if (opts.noWebCryptoEd25519) {
      // A browser without Ed25519 in WebCrypto (SHA digests still there), as older Safari and Firefox were.
      await page.addInitScript(() => {
        const subtle = crypto.subtle
        const importKey = subtle.importKey.bind(subtle)
        const refuse = (alg: unknown) => (typeof alg === 'string' ? alg : (alg as {name?: string})?.name)?.toLowerCase() === 'ed25519'
        Object.defineProperty(subtle, 'importKey', {value: (...args: Parameters<SubtleCrypto['importKey']>) => (refuse(args[2]) ? Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError')) : importKey(...args))})
      })
    }
    await page.goto(href + (opts.query ?? ''))
    return {page, attempted, problems}
  }

  async function verify(page: Page): Promise<Rows> {
    await page.click('#verify')
    await page.waitForFunction(() => {
      const s = document.getElementById('verify-summary')!
      return s.hasAttribute('data-failed') || s.hasAttribute('data-error')
    })
    return page.evaluate(() => {
      const rows = (sel: string) => [...document.querySelectorAll(sel)].map((r) => ({status: r.getAttribute('data-status'), text: r.querySelector('.sig')!.textContent!}))
      const s = document.getElementById('verify-summary')!
      return {
        summary: {verified: s.getAttribute('data-verified'), failed: s.getAttribute('data-failed'), engine: s.getAttribute('data-engine'), error: s.getAttribute('data-error'), text: s.textContent!},
        receipts: rows('#receipts tbody tr'),
        checkpoints: rows('#checkpoints tbody tr'),
      }
    })
  }

  it('opens from a file with no request made, shows the matrix, runs no injected markup, and verifies every signature with WebCrypto', async () => {
    const {page, attempted, problems} = await open('report.html')
    const matrix = await page.$$eval('#control-matrix tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].slice(0, 6).map((td) => td.textContent!.trim())))
    expect(matrix).toEqual(model.controls.map((c) => [c.framework, c.id, c.title, c.feature, c.claimLevel ?? 'no gate area', c.status]))
    expect(await page.locator('#gate-chart circle.run').count()).toBe(model.gateRuns.length)
    expect(await page.locator('#timeline tbody tr').count()).toBe(model.timeline.length)
    // The markup planted in titles, gaps and names is text on the page, never elements or script.
    expect(await page.evaluate(() => (window as unknown as {__pwned?: number}).__pwned)).toBeUndefined()
    expect(await page.locator('body img').count()).toBe(0)
    expect(await page.locator('#control-matrix').textContent()).toContain('<script>window.__pwned = 1</script>')

    const rows = await verify(page)
    expect(rows.summary).toMatchObject({verified: '5', failed: '0', engine: 'webcrypto', error: null})
    expect(rows.summary.text).toMatch(/^5 verified, 0 FAILED, of 5 signed documents/)
    expect(rows.receipts.map((r) => r.status)).toEqual(['verified', 'verified', 'verified'])
    expect(rows.checkpoints.map((r) => r.status)).toEqual(['verified', 'verified'])
    expect(rows.checkpoints[0]!.text).toMatch(/^verified \(airlock\.audit\/host-1\/0123456789abcdef\+[0-9a-f]{8}\)$/)
    expect(attempted).toEqual([])
    expect(problems).toEqual([])
  })

  for (const [how, opts] of [
    ['WebCrypto', {}],
    ['@noble/ed25519, forced by ?engine=noble', {query: '?engine=noble'}],
    ['@noble/ed25519, where the browser has no WebCrypto Ed25519', {noWebCryptoEd25519: true}],
  ] as const) {
    it(`marks exactly the tampered receipts and the forged checkpoint FAILED, with ${how}`, async () => {
      const {page, attempted, problems} = await open('tampered.html', opts)
      const rows = await verify(page)
      expect(rows.summary).toMatchObject({verified: '2', failed: '3', engine: how === 'WebCrypto' ? 'webcrypto' : 'noble', error: null})
      expect(rows.receipts.map((r) => r.status)).toEqual(['verified', 'failed', 'failed'])
      expect(rows.receipts[1]!.text).toMatch(/^FAILED \(the signature by [0-9a-f]{16}… does not verify: the signature does not match\)$/)
      expect(rows.receipts[2]!.text).toBe(`FAILED (signed by ${stranger.keyid.slice(0, 16)}…, which is not an evidence key in trust.yaml)`)
      expect(rows.checkpoints.map((r) => r.status)).toEqual(['failed', 'verified'])
      expect(rows.checkpoints[0]!.text).toMatch(/^FAILED \(the signature by airlock\.audit\/host-1\/0123456789abcdef\+[0-9a-f]{8} does not verify/)
      expect(attempted).toEqual([])
      expect(problems).toEqual([])
    })
  }

  it('the untampered page verifies everything with noble too', async () => {
    const {page} = await open('report.html', {noWebCryptoEd25519: true})
    expect((await verify(page)).summary).toMatchObject({verified: '5', failed: '0', engine: 'noble'})
  })
})
