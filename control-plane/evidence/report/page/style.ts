/** The page's one stylesheet (inlined by html.ts; the CSP allows exactly its hash). */
export const PAGE_CSS = `
:root { color-scheme: light; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1400px; padding: 16px 24px 48px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p.meta, .muted { color: var(--muted); }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.status-evidenced { color: var(--ok); font-weight: 600; }
.status-partial { color: var(--warn); font-weight: 600; }
.status-gap { color: var(--bad); font-weight: 600; }
.op-rollback { color: var(--bad); font-weight: 600; }
.op-promote { color: var(--ok); font-weight: 600; }
ul.evidence { margin: 0; padding-left: 16px; }
.sig.ok, #verify-summary.ok { color: var(--ok); font-weight: 600; }
.sig.bad, #verify-summary.bad { color: var(--bad); font-weight: 600; }
button#verify { font-size: 15px; padding: 6px 14px; cursor: pointer; }
#verify-summary { margin-left: 12px; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #57606a; }
.counts span { margin-right: 16px; }
`
