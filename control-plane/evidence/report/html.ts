/**
 * The compliance report as one self-contained HTML page an auditor opens in their own browser,
 * offline: the control matrix, the populations, a timeline of promotions and rollbacks, gate pass
 * rates as an inline SVG chart, and a "Verify signatures" button that re-verifies every receipt
 * and checkpoint in the browser against the trust.yaml keys the model carries.
 *
 * Nothing is fetched: all CSS and JavaScript are inline, and a Content-Security-Policy allows no
 * source at all (`default-src 'none'`) except the page's own script and stylesheet, by hash. Every
 * text from the model came from the repository and is HTML-escaped; the model itself is embedded
 * as JSON with `<` escaped, so no value can close the element it sits in.
 */
import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {AirlockError} from '../../errors.js'
import type {ControlRow, GateRunPoint, ReportModel} from './model.js'
import {PAGE_FUNCTIONS} from './page/rules.js'
import {PAGE_CSS} from './page/style.js'
import {PAGE_UI} from './page/ui.js'

const ESCAPES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}

/** Text for an element's content or a quoted attribute value. */
export function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/** The model as the page's JSON data block: `<` escaped so no string can end the element. */
export function modelJson(model: ReportModel): string {
  return JSON.stringify(model).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')
}

const cspHash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`

let nobleSource: string | undefined

/**
 * @noble/ed25519's ESM build as a classic script's function body returning the API the page uses.
 * The module imports nothing; its one `export {…}` statement becomes a return. The body is run
 * here once, as a function, so a build that imports or exports anything else fails here, not in
 * the auditor's browser.
 */
function nobleAsFunctionBody(): string {
  if (nobleSource !== undefined) return nobleSource
  const file = createRequire(import.meta.url).resolve('@noble/ed25519')
  const source = readFileSync(file, 'utf8')
  const exportStatement = /^export \{[^}]*\};?[ \t]*$/m
  const body = `${source.replace(exportStatement, '')}\nreturn {Point: Point, verifyAsync: verifyAsync, hashes: hashes};`
  let api: {Point?: unknown; verifyAsync?: unknown} | undefined
  try {
    api = new Function(body)() as typeof api
  } catch {
    api = undefined
  }
  if (typeof api?.Point !== 'function' || typeof api.verifyAsync !== 'function') {
    throw new AirlockError('INVALID_INPUT', `${file}: not the self-contained ESM build of @noble/ed25519 (v3) the report page inlines`, {file})
  }
  nobleSource = body
  return body
}

/**
 * The verifier alone, as classic-script statements: `noble` (the @noble/ed25519 API) and the
 * functions of rules.ts, as written there. The page runs it; tests run it in Chromium as it is.
 */
export function verifierSource(): string {
  const rules = PAGE_FUNCTIONS.map((f) => f.toString()).join('\n\n')
  return `var noble = (function () {\n${nobleAsFunctionBody()}\n})();\n${rules}\n`
}

/** The page's one script: the verifier and the button's wiring, in a closure. */
export function pageScript(): string {
  const script = `"use strict";\n(function () {\n${verifierSource()}${PAGE_UI}\nstartPage(noble);\n})();\n`
  // An inline script ends at the first `</script`; `<!--` changes how it is parsed.
  if (/<\/script|<!--/i.test(script)) throw new AirlockError('INVALID_INPUT', 'the report page script holds "</script" or "<!--"; it cannot be inlined', {})
  return script
}

// ---------------------------------------------------------------------------------------------
// Sections

const shortDigest = (d: string) => (d.length > 23 ? `${d.slice(0, 19)}…${d.slice(-4)}` : d)

/** Where an evidence reference points inside the page (a receipt or checkpoint row), if it is there. */
function anchors(model: ReportModel): Map<string, string> {
  const map = new Map<string, string>()
  model.receipts.forEach((r, i) => map.set(r.path, `receipt-${i}`))
  model.checkpoints.forEach((c, i) => map.set(c.path, `checkpoint-${i}`))
  return map
}

function refLink(path: string, anchor: Map<string, string>): string {
  const id = anchor.get(path)
  return id ? `<a href="#${id}"><code>${esc(path)}</code></a>` : `<code>${esc(path)}</code>`
}

function evidenceCell(row: ControlRow, anchor: Map<string, string>): string {
  if (row.evidence.length === 0) return '<span class="muted">none</span>'
  const items = row.evidence.map((e) => `<li>${esc(e.kind)}: ${refLink(e.ref, anchor)} — ${esc(e.summary)}${e.time ? ` <span class="muted">(${esc(e.time)})</span>` : ''}</li>`)
  return `<ul class="evidence">${items.join('')}</ul>`
}

function matrix(model: ReportModel, anchor: Map<string, string>): string {
  const rows = model.controls.map(
    (c, i) => `<tr id="control-${i}" data-framework="${esc(c.framework)}" data-control="${esc(c.id)}">
<td>${esc(c.framework)}</td><td><strong>${esc(c.id)}</strong></td><td>${esc(c.title)}</td><td>${esc(c.feature)}</td>
<td>${c.claimLevel === null ? '<span class="muted">no gate area</span>' : esc(c.claimLevel)}</td>
<td class="status-${esc(c.status)}">${esc(c.status)}</td>
<td>${c.gap === null ? '' : esc(c.gap)}</td>
<td>${evidenceCell(c, anchor)}</td>
<td>${c.populations.length ? c.populations.map((p, j) => `<a href="#population-${i}${j ? `-${j}` : ''}">${esc(p.count)} ${p.kind === 'log' ? 'log entries' : 'commits'}</a>`).join('<br>') : '<span class="muted">none</span>'}</td></tr>`,
  )
  const count = (s: ControlRow['status']) => model.controls.filter((c) => c.status === s).length
  return `<h2 id="matrix">Control matrix</h2>
<p class="counts"><span class="status-evidenced">${count('evidenced')} evidenced</span><span class="status-partial">${count('partial')} partial</span><span class="status-gap">${count('gap')} gap</span> of ${model.controls.length} controls</p>
<table id="control-matrix"><thead><tr><th>Framework</th><th>Control</th><th>Title</th><th>Feature</th><th>Claim level</th><th>Status</th><th>Gap</th><th>Evidence</th><th>Population</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`
}

function populations(model: ReportModel, anchor: Map<string, string>): string {
  const rows = model.controls.flatMap((c, i) =>
    c.populations.map((p, j) => {
    const cp = p.checkpoint ? `${refLink(p.checkpoint.path, anchor)}<br>origin <code>${esc(p.checkpoint.origin)}</code>, size ${esc(p.checkpoint.size)}, root <code>${esc(p.checkpoint.root)}</code>` : '<span class="status-gap">no signed checkpoint bounds it</span>'
    return `<tr id="population-${i}${j ? `-${j}` : ''}"><td>${esc(c.framework)}</td><td>${esc(c.id)}</td><td>${esc(p.kind)}</td><td><code>${esc(p.from)}</code></td><td><code>${esc(p.to)}</code></td><td>${esc(p.count)}</td><td>${cp}</td></tr>`
    }),
  )
  const body = rows.length === 0 ? '<p class="muted">No control has a population.</p>' : `<table id="populations"><thead><tr><th>Framework</th><th>Control</th><th>Kind</th><th>From</th><th>To</th><th>Count</th><th>Bounded by</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`
  return `<h2 id="populations-heading">Populations</h2>
<p class="muted">The set an auditor samples from: a range of audit-log entries or of commits, bounded by a signed checkpoint, so its completeness can be checked.</p>
${body}`
}

function timeline(model: ReportModel, anchor: Map<string, string>): string {
  const events = [...model.timeline].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))
  if (events.length === 0) return '<h2 id="timeline-heading">Promotions and rollbacks</h2><p class="muted">None recorded.</p>'
  const rows = events.map((e) => `<tr class="event" data-operation="${esc(e.operation)}"><td>${esc(e.time)}</td><td class="op-${esc(e.operation)}">${esc(e.operation)}</td><td>${esc(e.image)}</td><td>${esc(e.channel)}</td><td><code title="${esc(e.digest)}">${esc(shortDigest(e.digest))}</code></td><td>${refLink(e.receipt, anchor)}</td></tr>`)
  return `<h2 id="timeline-heading">Promotions and rollbacks</h2>
<table id="timeline"><thead><tr><th>Time</th><th>Operation</th><th>Image</th><th>Channel</th><th>Digest</th><th>Receipt</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`
}

/** Suite colours; red is kept for FAILED runs. */
const PALETTE = ['#0969da', '#1a7f37', '#8250df', '#9a6700', '#1b7c83', '#57606a']

/** A run's pass rate: passed over all gates that were to run (a gate not run is not a pass). */
export function passRate(run: GateRunPoint): number {
  const total = run.passed + run.failed + run.notRun
  return total === 0 ? 0 : run.passed / total
}

/** Gate pass rates over time, one line a suite, as inline SVG (presentation attributes only: the CSP allows no style attribute). */
export function gateChart(runs: GateRunPoint[]): string {
  if (runs.length === 0) return '<p class="muted">No gate runs recorded.</p>'
  const W = 760
  const H = 260
  const m = {l: 44, r: 16, t: 12, b: 36}
  const times = runs.map((r) => Date.parse(r.time)).filter((t) => !Number.isNaN(t))
  const t0 = Math.min(...times)
  const t1 = Math.max(...times)
  const x = (time: string) => {
    const t = Date.parse(time)
    return t1 === t0 || Number.isNaN(t) ? m.l + (W - m.l - m.r) / 2 : m.l + ((t - t0) / (t1 - t0)) * (W - m.l - m.r)
  }
  const y = (rate: number) => m.t + (1 - rate) * (H - m.t - m.b)
  const grid = [0, 0.25, 0.5, 0.75, 1].map((v) => `<line x1="${m.l}" x2="${W - m.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#d0d7de" stroke-width="1"/><text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v * 100}%</text>`)
  const suites = [...new Set(runs.map((r) => r.suite))].sort()
  const series = suites.map((suite, i) => {
    const color = PALETTE[i % PALETTE.length]!
    const points = runs.filter((r) => r.suite === suite).sort((a, b) => Date.parse(a.time) - Date.parse(b.time))
    const line = points.map((p) => `${x(p.time).toFixed(1)},${y(passRate(p)).toFixed(1)}`).join(' ')
    const dots = points.map(
      (p) => `<circle class="run" cx="${x(p.time).toFixed(1)}" cy="${y(passRate(p)).toFixed(1)}" r="4" fill="${p.result === 'FAILED' ? '#cf222e' : color}" stroke="${color}" data-suite="${esc(suite)}" data-rate="${passRate(p).toFixed(4)}"><title>${esc(`${suite} at ${p.time}: ${p.result}, ${p.passed} passed, ${p.failed} failed, ${p.notRun} not run (${p.receipt})`)}</title></circle>`,
    )
    return `<g class="series" data-suite="${esc(suite)}"><polyline points="${line}" fill="none" stroke="${color}" stroke-width="2"/>${dots.join('')}</g>`
  })
  const legend = suites.map((s, i) => `<g transform="translate(${m.l + i * 160},${H - 8})"><rect width="10" height="10" y="-9" fill="${PALETTE[i % PALETTE.length]}"/><text x="14">${esc(s.length > 22 ? `${s.slice(0, 21)}…` : s)}</text></g>`)
  const first = new Date(t0).toISOString().slice(0, 10)
  const last = new Date(t1).toISOString().slice(0, 10)
  return `<svg class="chart" id="gate-chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Gate pass rate over time, by suite">
${grid.join('\n')}
<text x="${m.l}" y="${H - m.b + 14}">${esc(first)}</text><text x="${W - m.r}" y="${H - m.b + 14}" text-anchor="end">${esc(last)}</text>
${series.join('\n')}
${legend.join('\n')}
</svg>`
}

function gates(model: ReportModel, anchor: Map<string, string>): string {
  const rows = [...model.gateRuns]
    .sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))
    .map((r) => `<tr><td>${esc(r.time)}</td><td>${esc(r.suite)}</td><td>${esc(r.result)}</td><td>${esc(r.passed)}</td><td>${esc(r.failed)}</td><td>${esc(r.notRun)}</td><td>${(passRate(r) * 100).toFixed(0)}%</td><td>${refLink(r.receipt, anchor)}</td></tr>`)
  return `<h2 id="gates-heading">Gate pass rates over time</h2>
<p class="muted">Pass rate = gates passed ÷ gates that were to run (a gate that could not run counts against it). A red dot is a FAILED run.</p>
${gateChart(model.gateRuns)}
${rows.length ? `<details><summary>The runs (${rows.length})</summary><table id="gate-runs"><thead><tr><th>Time</th><th>Suite</th><th>Result</th><th>Passed</th><th>Failed</th><th>Not run</th><th>Pass rate</th><th>Receipt</th></tr></thead><tbody>${rows.join('\n')}</tbody></table></details>` : ''}`
}

function signatures(model: ReportModel): string {
  const receipts = model.receipts.map((r, i) => `<tr id="receipt-${i}" data-status="unverified"><td><code>${esc(r.path)}</code></td><td>${esc(r.kind)}</td><td>${esc(r.time)}</td><td>${r.envelope.signatures.map((s) => `<code>${esc(s.keyid.slice(0, 16))}…</code>`).join(' ')}</td><td class="sig">not yet verified</td></tr>`)
  const checkpoints = model.checkpoints.map((c, i) => `<tr id="checkpoint-${i}" data-status="unverified"><td><code>${esc(c.path)}</code></td><td><code>${esc(c.origin)}</code></td><td>${esc(c.size)}</td><td><code>${esc(c.root)}</code></td><td>${esc(c.publishedAt)}</td><td class="sig">not yet verified</td></tr>`)
  const keys = model.keys.map((k) => `<tr><td><code>${esc(k.keyid)}</code></td><td>${esc(k.roles.join(', '))}</td><td>${esc(k.validFrom ?? '—')}</td><td>${esc(k.validUntil ?? '—')}</td><td><code>${esc(k.publicKey)}</code></td></tr>`)
  return `<h2 id="signatures">Signatures</h2>
<p>Receipts are DSSE envelopes signed with a key of role <em>evidence</em> valid at the receipt's ledger time; checkpoints are C2SP signed notes signed with a key of role <em>audit</em>, named for the log's origin, valid when published. The button checks every signature here, in this browser, against the keys below (from trust.yaml at <code>${esc(model.repository.head)}</code>); nothing is sent anywhere.</p>
<p><button id="verify" type="button" disabled>Verify signatures</button><span id="verify-summary">Not verified yet.</span></p>
<h3>Receipts (${model.receipts.length})</h3>
<table id="receipts"><thead><tr><th>Receipt</th><th>Kind</th><th>Time</th><th>Signed by</th><th>Signature</th></tr></thead><tbody>${receipts.join('\n')}</tbody></table>
<h3>Checkpoints (${model.checkpoints.length})</h3>
<table id="checkpoints"><thead><tr><th>Checkpoint</th><th>Origin</th><th>Size</th><th>Root</th><th>Published</th><th>Signature</th></tr></thead><tbody>${checkpoints.join('\n')}</tbody></table>
<h3>Keys</h3>
<table id="keys"><thead><tr><th>Key id</th><th>Roles</th><th>Valid from</th><th>Valid until</th><th>Public key</th></tr></thead><tbody>${keys.join('\n')}</tbody></table>`
}

/** The whole page. Pure: the same model gives the same bytes. */
export function renderHtml(model: ReportModel): string {
  const script = pageScript()
  const csp = `default-src 'none'; script-src ${cspHash(script)}; style-src ${cspHash(PAGE_CSS)}; base-uri 'none'; form-action 'none'`
  const anchor = anchors(model)
  const frameworks = model.frameworks.map((f) => esc(f)).join(', ')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>airlock compliance report — ${frameworks}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<h1>airlock compliance report</h1>
<p class="meta">Frameworks: ${frameworks} · generated ${esc(model.generatedAt)} · repository HEAD <code>${esc(model.repository.head)}</code> · trust anchor ${model.repository.anchor ? `<code>${esc(model.repository.anchor)}</code>` : '<span class="status-gap">none</span>'}</p>
${matrix(model, anchor)}
${populations(model, anchor)}
${timeline(model, anchor)}
${gates(model, anchor)}
${signatures(model)}
<script type="application/json" id="model">${modelJson(model)}</script>
<script>${script}</script>
</body>
</html>
`
}
