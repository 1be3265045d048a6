/**
 * The compliance report's model (model.ts), computed once from the verified history: the receipts
 * `evidence verify` accepts (with their ledger times), the claim levels `gate report` gives, the
 * trust.yaml keys at HEAD and the audit checkpoints published into the repository. Renderers only
 * format what this returns.
 *
 * A history that does not verify gives no report (VERIFICATION_FAILED): a report over evidence
 * that does not verify would show an auditor something other than what is there.
 */
import {redactReceiptText} from '../../audit/redact.js'
import {AirlockError} from '../../errors.js'
import {claimReport, CLAIM_LEVELS, CONTROL_AREAS, type AreaClaim, type ClaimLevel} from '../../gates/claims.js'
import {TEST_RESULT_PREDICATE_TYPE, type TestResultStatement} from '../../gates/types.js'
import type {Limits} from '../../limits.js'
import {loadTrust} from '../../manifests/load.js'
import type {Repository} from '../../repo/repository.js'
import {listReceipts, parseReceipt, type ParsedReceipt} from '../ledger.js'
import {RECEIPT_PREDICATE_TYPE, type ReceiptStatement} from '../receipt.js'
import {verifyEvidence} from '../verify.js'
import {CONTROLS, type ControlDef} from './controls.js'
import type {ControlRow, EvidenceRef, Framework, GateRunPoint, Population, ReportCheckpoint, ReportKey, ReportModel, ReportReceipt, TimelineEvent} from './model.js'

export interface ReportOptions {
  frameworks: readonly Framework[]
  limits: Limits
  /** The command's reference time (generatedAt, and the verifier's clock). */
  now: Date
  /** The pinned trust anchor (resolveAnchor); without one the history does not verify. */
  anchor: string | null
  /** The signed checkpoints published under docs/evidence/audit/ (audit/published.ts). */
  checkpoints?: readonly ReportCheckpoint[]
  /** The most receipts a control names one by one (newest first); its population holds them all. */
  maxRefs?: number
}

export const DEFAULT_MAX_REFS = 50

/**
 * The report's free text (receipt summaries, gap lines) on its way into the model: the redaction
 * receipts get (typed placeholders without a keyed hash), again, for receipts written before it.
 */
export const redactFreeText = (text: string): string => redactReceiptText(text)

interface Read {
  parsed: ParsedReceipt
  statement: ReceiptStatement | TestResultStatement
}

const isChange = (r: Read): r is Read & {statement: ReceiptStatement} => r.statement.predicateType === RECEIPT_PREDICATE_TYPE
const isGate = (r: Read): r is Read & {statement: TestResultStatement} => r.statement.predicateType === TEST_RESULT_PREDICATE_TYPE
const rank = (l: ClaimLevel) => CLAIM_LEVELS.indexOf(l)

/** Builds the model at the verified HEAD. */
export async function buildReport(repo: Repository, opts: ReportOptions): Promise<ReportModel> {
  const verified = await verifyEvidence(repo, {limits: opts.limits, anchor: opts.anchor, now: opts.now})
  if (!verified.ok) {
    const first = verified.problems.slice(0, 5).map((p) => `${p.code}: ${p.message}`)
    throw new AirlockError('VERIFICATION_FAILED', `the history does not verify, so it gives no report (${verified.problems.length} problem(s); airlock evidence verify names them): ${first.join('; ')}`, {problems: verified.problems.slice(0, 20)})
  }
  const head = verified.head
  const anchor = verified.anchor.commit
  const reads = await readReceipts(repo, head, opts.limits)
  const claims = await claimReport(repo, head, {anchor, limits: opts.limits})
  const checkpoints = [...(opts.checkpoints ?? [])]
  const files = [...(await repo.treeFiles(head)).keys()].sort()
  const commits = await commitRange(repo, head, anchor)
  const ctx: RowContext = {reads, claims: claims.areas, checkpoints, files, commits, head, headTime: (await repo.readCommit(head)).time, maxRefs: opts.maxRefs ?? DEFAULT_MAX_REFS}
  return {
    generatedAt: opts.now.toISOString(),
    repository: {head, anchor},
    frameworks: [...opts.frameworks],
    controls: CONTROLS.filter((c) => opts.frameworks.includes(c.framework)).map((c) => controlRow(c, ctx)),
    receipts: reads.map(reportReceipt),
    checkpoints,
    keys: await reportKeys(repo, head, opts.limits),
    thresholds: await (async () => {
      const t = (await loadTrust(repo, head, opts.limits)).thresholds
      return {evidence: t.evidence, audit: t.audit}
    })(),
    timeline: timeline(reads),
    gateRuns: gateRuns(reads),
  }
}

/** Every receipt at HEAD, parsed, oldest first (the history verified, so every one verified). */
async function readReceipts(repo: Repository, head: string, limits: Limits): Promise<Read[]> {
  const out: Read[] = []
  for (const file of await listReceipts(repo, head)) {
    const parsed = parseReceipt(await repo.readBlob(file.oid), file.path, limits)
    out.push({parsed, statement: parsed.statement})
  }
  return out.sort((a, b) => a.parsed.time.getTime() - b.parsed.time.getTime() || a.parsed.path.localeCompare(b.parsed.path))
}

function reportReceipt(r: Read): ReportReceipt {
  const e = r.parsed.envelope
  return {
    path: r.parsed.path,
    envelope: {payloadType: e.payloadType, payload: e.payload, signatures: e.signatures.map((s) => ({keyid: s.keyid, sig: s.sig}))},
    kind: isGate(r) ? 'gate' : isChange(r) ? 'change' : r.parsed.kind.label(r.statement),
    time: r.parsed.time.toISOString(),
  }
}

/** The trust.yaml keys at HEAD of role evidence or audit (Ed25519, raw public key in base64). */
async function reportKeys(repo: Repository, head: string, limits: Limits): Promise<ReportKey[]> {
  const trust = await loadTrust(repo, head, limits)
  return trust.keys
    .filter((k) => k.algorithm === 'ed25519' && k.roles.some((r) => r === 'evidence' || r === 'audit'))
    .map((k) => ({keyid: k.id, publicKey: Buffer.from(k.publicKey).toString('base64'), roles: [...k.roles], validFrom: k.validFrom.toISOString(), validUntil: k.validUntil?.toISOString() ?? null}))
}

function timeline(reads: Read[]): TimelineEvent[] {
  return reads.filter(isChange).flatMap((r): TimelineEvent[] => {
    const p = r.statement.predicate
    if (p.operation !== 'promote' && p.operation !== 'rollback') return []
    const d = p.details as {image?: unknown; channel?: unknown; to?: unknown}
    return [{time: r.parsed.time.toISOString(), operation: p.operation, image: String(d.image ?? ''), channel: String(d.channel ?? ''), digest: String(d.to ?? ''), receipt: r.parsed.path}]
  })
}

const gateCounts = (s: TestResultStatement) => {
  const g = s.predicate.gates
  return {passed: g.filter((x) => x.status === 'pass').length, failed: g.filter((x) => x.status === 'fail').length, notRun: g.filter((x) => x.status === 'not_run').length}
}

function gateRuns(reads: Read[]): GateRunPoint[] {
  return reads.filter(isGate).map((r) => ({time: r.parsed.time.toISOString(), suite: r.statement.predicate.suite, ...gateCounts(r.statement), result: r.statement.predicate.result, receipt: r.parsed.path}))
}

/**
 * The commits of anchor..HEAD (reachable from HEAD, not from the anchor), sorted by id: the change
 * population, in the order `git rev-list ANCHOR..HEAD | sort` gives, so an auditor recomputes it.
 */
export async function commitRange(repo: Repository, head: string, anchor: string | null): Promise<Array<{oid: string; time: number}>> {
  // git's ANCHOR..HEAD: reachable from HEAD and not from the anchor (a merge may reach older history).
  const walk = async (from: string, skip: Set<string>, visit: (oid: string, time: number) => void) => {
    const seen = new Set<string>()
    const queue = [from]
    for (let i = 0; i < queue.length; i++) {
      const oid = queue[i]!
      if (skip.has(oid) || seen.has(oid)) continue
      seen.add(oid)
      const c = await repo.readCommit(oid)
      visit(oid, c.time)
      queue.push(...c.parents)
    }
  }
  const before = new Set<string>()
  if (anchor) await walk(anchor, new Set(), (oid) => before.add(oid))
  const out: Array<{oid: string; time: number}> = []
  await walk(head, before, (oid, time) => out.push({oid, time}))
  return out.sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0))
}

interface RowContext {
  reads: Read[]
  claims: AreaClaim[]
  checkpoints: ReportCheckpoint[]
  files: string[]
  commits: Array<{oid: string; time: number}>
  head: string
  headTime: number
  maxRefs: number
}

/** The newest published checkpoint of each origin (largest tree, then latest published). */
export function newestPerOrigin(checkpoints: readonly ReportCheckpoint[]): ReportCheckpoint[] {
  const by = new Map<string, ReportCheckpoint>()
  for (const c of checkpoints) {
    const had = by.get(c.origin)
    if (!had || c.size > had.size || (c.size === had.size && c.publishedAt > had.publishedAt)) by.set(c.origin, c)
  }
  return [...by.values()].sort((a, b) => a.origin.localeCompare(b.origin))
}

const bound = (c: ReportCheckpoint) => ({path: c.path, origin: c.origin, size: c.size, root: c.root})

/** The control's populations: one log range per origin, or the commit range anchor..HEAD. */
function populations(def: ControlDef, ctx: RowContext): Population[] {
  if (def.population === 'log') return newestPerOrigin(ctx.checkpoints).filter((c) => c.size > 0).map((c) => ({kind: 'log', from: '0', to: String(c.size - 1), count: c.size, checkpoint: bound(c)}))
  if (def.population === 'commits' && ctx.commits.length > 0) {
    const oldest = ctx.commits.reduce((a, b) => (b.time < a.time || (b.time === a.time && b.oid < a.oid) ? b : a))
    const headAt = new Date(ctx.headTime * 1000).toISOString()
    const after = ctx.checkpoints.filter((c) => c.publishedAt >= headAt).sort((a, b) => b.publishedAt.localeCompare(a.publishedAt))[0]
    return [{kind: 'commits', from: oldest.oid, to: ctx.head, count: ctx.commits.length, checkpoint: after ? bound(after) : null}]
  }
  return []
}

function receiptRefs(def: ControlDef, ctx: RowContext): EvidenceRef[] {
  const matching = ctx.reads.filter(isChange).filter((r) => def.receipts.keep(r.statement.predicate))
  return matching
    .slice(-ctx.maxRefs)
    .reverse()
    .map((r) => ({kind: 'receipt', ref: r.parsed.path, summary: redactFreeText(`${r.statement.predicate.operation}: ${r.statement.predicate.summary}`), time: r.parsed.time.toISOString()}))
}

function gateRefs(claim: AreaClaim | undefined, ctx: RowContext): EvidenceRef[] {
  if (!claim) return []
  const byPath = new Map(ctx.reads.map((r) => [r.parsed.path, r]))
  return claim.receipts.flatMap((path): EvidenceRef[] => {
    const r = byPath.get(path)
    if (!r || !isGate(r)) return []
    const n = gateCounts(r.statement)
    const summary = `${r.statement.predicate.suite} ${r.statement.predicate.result}${r.statement.predicate.host ? ' on a lab host' : ''}: ${n.passed} passed, ${n.failed} failed, ${n.notRun} not run; supports ${claim.area} at ${claim.level}`
    return [{kind: 'gate', ref: path, summary: redactFreeText(summary), time: r.parsed.time.toISOString()}]
  })
}

function policyRefs(def: ControlDef, ctx: RowContext): EvidenceRef[] {
  // Read at HEAD: the time is HEAD's commit time, so the same history gives the same report.
  const time = new Date(ctx.headTime * 1000).toISOString()
  return ctx.files.filter((f) => def.policies.some((p) => (p.endsWith('/') ? f.startsWith(p) : f === p))).map((f) => ({kind: 'policy', ref: f, summary: `at HEAD ${ctx.head.slice(0, 12)}`, time}))
}

function checkpointRefs(ctx: RowContext): EvidenceRef[] {
  return newestPerOrigin(ctx.checkpoints).map((c) => ({kind: 'checkpoint', ref: c.path, summary: redactFreeText(`${c.origin}: ${c.size} entries, root ${c.root}`), time: c.publishedAt}))
}

/** What is missing, said plainly, for each kind of evidence a control counts. */
function missingText(kind: EvidenceRef['kind'], def: ControlDef, claim: AreaClaim | undefined): string {
  switch (kind) {
    case 'checkpoint':
      return 'no audit checkpoint has been published (airlock audit publish --apply)'
    case 'receipt':
      return def.receipts.missing
    case 'policy':
      return `no ${def.policies.join(' or ')} at HEAD`
    case 'gate':
      return claim && claim.gates.length > 0 ? `no passing gate receipt supports the ${claim.area} area (${claim.next ?? 'run its gates'})` : `no gate covers the ${def.area} area in manifests/gates.yaml`
  }
}

function controlRow(def: ControlDef, ctx: RowContext): ControlRow {
  const claim = def.area ? ctx.claims.find((a) => a.area === def.area) : undefined
  const refs: Record<EvidenceRef['kind'], EvidenceRef[]> = {
    receipt: def.counts.includes('receipt') ? receiptRefs(def, ctx) : [],
    gate: def.counts.includes('gate') ? gateRefs(claim, ctx) : [],
    checkpoint: def.counts.includes('checkpoint') ? checkpointRefs(ctx) : [],
    policy: def.counts.includes('policy') ? policyRefs(def, ctx) : [],
  }
  const evidence = def.counts.flatMap((k) => refs[k])
  const missing = def.counts.filter((k) => refs[k].length === 0)
  const level: ClaimLevel | null = def.area ? (claim?.level ?? 'none') : null
  const reasons = missing.map((k) => missingText(k, def, claim))
  if (level !== null && rank(level) < rank('host-validated') && !missing.includes('gate')) {
    const title = CONTROL_AREAS.find((a) => a.id === def.area)?.title ?? def.area
    reasons.push(`the ${title} claim is ${level}: no host-validated run`)
  }
  const status: ControlRow['status'] = missing.includes(def.counts[0]!) ? 'gap' : reasons.length > 0 ? 'partial' : 'evidenced'
  return {
    framework: def.framework,
    id: def.id,
    title: def.title,
    feature: def.feature,
    claimLevel: level,
    status,
    gap: reasons.length > 0 ? redactFreeText(reasons.join('; ')) : null,
    evidence,
    populations: populations(def, ctx),
  }
}
