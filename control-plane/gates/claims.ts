/**
 * Claim levels (`airlock gate report`): per control area, the highest level the fleet's signed
 * suite receipts support — never higher than they show.
 *
 *   implemented        the area has gates in manifests/gates.yaml at the verified HEAD
 *   static-validated   a passing preflight receipt in which the area's gates passed
 *   host-validated     a passing receipt of a run on a lab host (--host) in which every gate
 *                      needing the host passed, and the area's gates too
 *   production-ready   host-validated, plus a rollback drill within its target and a passing
 *                      post-session run, both on a digest the host-validated run covered
 *
 * Only receipts in the verified history whose signatures verify under the trust policy they were
 * added on count, with their ledger times. A receipt supports a level only while no later receipt
 * of the same suite failed a gate of the area (a failure since outweighs it). What a gate is (which
 * builtin, whether it needs a host) is read from the gates file at the commit the suite ran on, not
 * from the receipt's word.
 */
import type {Limits} from '../limits.js'
import type {Repository} from '../repo/repository.js'
import {readSuiteReceipts, type SuiteReceipt} from '../evidence/promotion.js'
import {BUILTINS} from './builtins/index.js'
import {loadGateSuites, type GateSuites} from './suite.js'
import type {GateSpec} from './types.js'

export const CLAIM_LEVELS = ['none', 'implemented', 'static-validated', 'host-validated', 'production-ready'] as const
export type ClaimLevel = (typeof CLAIM_LEVELS)[number]

/** The control areas, and which gates speak to each. */
export const CONTROL_AREAS: ReadonlyArray<{id: string; title: string; covers: (g: GateSpec) => boolean}> = [
  {id: 'history-evidence', title: 'Signed history and evidence', covers: (g) => g.uses === 'builtin/history' || g.uses === 'builtin/audit-integrity'},
  {id: 'image-supply-chain', title: 'Signed, digest-pinned images', covers: (g) => g.uses === 'builtin/image-verify' || g.uses === 'builtin/digest-align'},
  {id: 'policy', title: 'Policy (Cedar, tool, egress, sandbox specs, scripts)', covers: (g) => g.uses === 'builtin/static-validate' || g.uses === 'builtin/tool-policy-hash'},
  {id: 'secrets', title: 'No secrets in the repository', covers: (g) => g.uses === 'builtin/secret-scan'},
  {id: 'isolation', title: 'Sandbox isolation on the host (run: gates needing a lab host)', covers: (g) => g.run !== undefined && g.requires.includes('host')},
  {id: 'recovery', title: 'Rollback recovery', covers: (g) => g.uses === 'builtin/rollback-drill'},
  {id: 'other', title: 'Other checks (run: gates)', covers: (g) => g.run !== undefined && !g.requires.includes('host')},
]

export interface AreaClaim {
  area: string
  title: string
  level: ClaimLevel
  /** The gates of the area at HEAD (`suite/id`). */
  gates: string[]
  /** The receipts the level rests on (paths under docs/evidence/). */
  receipts: string[]
  /** What would raise it, in one line (null at production-ready). */
  next: string | null
}

export interface ClaimReport {
  commit: string
  receipts: {total: number; trusted: number; untrusted: Array<{path: string; why: string}>}
  areas: AreaClaim[]
}

const PASSING = new Set(['PASSED', 'WARNED'])
const digests = ({r}: {r: SuiteReceipt}) => new Set(r.statement.subject.filter((s) => s.annotations?.image !== undefined && typeof s.digest?.sha256 === 'string').map((s) => s.digest.sha256!))
const shares = (a: Set<string>, b: Set<string>) => [...a].some((d) => b.has(d))

/** A receipt with the gate specs of its suite at the commit it ran on. */
interface Judged {
  r: SuiteReceipt
  specs: Map<string, GateSpec>
}

/** The records of `r` for gates of the area (enforced ones; shadow gates never support a claim). */
function areaRecords(j: Judged, covers: (g: GateSpec) => boolean) {
  return j.r.statement.predicate.gates.filter((rec) => rec.mode === 'enforce' && j.specs.has(rec.id) && covers(j.specs.get(rec.id)!))
}

/**
 * The area's gates all passed in `j` (at least one ran), and no later receipt of the suite failed
 * one of them. `static`: its gates that need a host may be not run (a preflight without --host).
 */
function supports(j: Judged, all: Judged[], covers: (g: GateSpec) => boolean, mode: 'static' | 'all' = 'all'): boolean {
  const records = areaRecords(j, covers).filter((rec) => !(mode === 'static' && rec.status === 'not_run' && j.specs.get(rec.id)!.requires.includes('host')))
  if (records.length === 0 || records.some((rec) => rec.status !== 'pass')) return false
  const suite = j.r.statement.predicate.suite
  return !all.some((k) => k.r.statement.predicate.suite === suite && k.r.finishedAt.getTime() >= j.r.finishedAt.getTime() && k !== j && areaRecords(k, covers).some((rec) => rec.status === 'fail'))
}

/** Judges each area from the receipts (already signature-checked) and the gates file at HEAD. Pure. */
export function judgeClaims(head: GateSuites | null, receipts: Judged[]): AreaClaim[] {
  const trusted = receipts.filter((j) => j.r.untrusted === null && PASSING.has(j.r.statement.predicate.result))
  const byAge = [...trusted].sort((a, b) => a.r.finishedAt.getTime() - b.r.finishedAt.getTime())
  const all = receipts.filter((j) => j.r.untrusted === null)
  return CONTROL_AREAS.flatMap(({id, title, covers}): AreaClaim[] => {
    const gates = head ? [...head.suites].flatMap(([suite, specs]) => specs.filter(covers).map((g) => `${suite}/${g.id}`)) : []
    const claim = (level: ClaimLevel, used: Judged[], next: string | null): AreaClaim[] => [{area: id, title, level, gates, receipts: used.map((j) => j.r.path), next}]
    // `other` is whatever run: gates a fleet adds: no row when it has none.
    if (gates.length === 0) return id === 'other' ? [] : claim('none', [], `add a gate for it to ${head?.file ?? 'manifests/gates.yaml'}`)
    // Preflight's word, or (an area whose gates are all in other suites, as the drill in postsession) that suite's.
    const inPreflight = (head?.suites.get('preflight') ?? []).some(covers)
    const statics = byAge.filter((j) => (!inPreflight || j.r.statement.predicate.suite === 'preflight') && supports(j, all, covers, 'static'))
    const needsHost = (j: Judged) => j.r.statement.predicate.gates.filter((rec) => j.specs.get(rec.id)?.requires.includes('host'))
    const hosted = byAge.filter((j) => j.r.statement.predicate.host && needsHost(j).length > 0 && needsHost(j).every((rec) => rec.status === 'pass') && supports(j, all, covers))
    // production-ready: a host-validated run, a drill within target and a post-session pass on a digest it covered.
    // The newest trusted word on each counts: a drill that failed since, or a postsession run that failed since, outweighs an earlier pass.
    const newest = (pick: (j: Judged) => boolean) => all.filter(pick).sort((a, b) => a.r.finishedAt.getTime() - b.r.finishedAt.getTime()).pop()
    const isDrill = (j: Judged, rec: {id: string}) => j.specs.get(rec.id)?.uses === 'builtin/rollback-drill'
    for (const h of [...hosted].reverse()) {
      const on = digests(h)
      const drill = newest((j) => shares(digests(j), on) && j.r.statement.predicate.gates.some((rec) => rec.mode === 'enforce' && isDrill(j, rec) && rec.status !== 'not_run'))
      const drillPassed = drill?.r.statement.predicate.gates.filter((rec) => rec.mode === 'enforce' && isDrill(drill, rec)).every((rec) => rec.status === 'pass')
      const post = newest((j) => j.r.statement.predicate.suite === 'postsession' && shares(digests(j), on))
      if (drill && drillPassed && post && PASSING.has(post.r.statement.predicate.result)) return claim('production-ready', [...new Set([h, drill, post])], null)
    }
    if (hosted.length > 0) return claim('host-validated', [hosted[hosted.length - 1]!], 'a passing rollback drill within target and a passing postsession run on a digest the host run covered (airlock postsession --host --apply)')
    if (statics.length > 0) return claim('static-validated', [statics[statics.length - 1]!], 'a passing run on a lab host (airlock preflight --host --apply)')
    const suites = [...new Set(gates.map((g) => g.split('/')[0]!))]
    const hostOnly = head !== null && [...head.suites.values()].flat().filter(covers).every((g) => g.requires.includes('host'))
    const suite = inPreflight ? 'preflight' : suites[0]!
    const command = suite === 'preflight' || suite === 'postsession' ? `airlock ${suite}` : `airlock gate run ${suite}`
    return claim('implemented', [], hostOnly ? 'a passing run on a lab host (airlock preflight --host --apply)' : `a passing ${inPreflight ? 'preflight' : suites.join(' or ')} receipt (${command} --apply)`)
  })
}

/** The report at a verified HEAD: the suite receipts of its history, each judged under the trust it was added on. */
export async function claimReport(repo: Repository, commit: string, opts: {anchor: string | null; limits: Limits}): Promise<ClaimReport> {
  const receipts = await readSuiteReceipts(repo, commit, {anchor: opts.anchor, limits: opts.limits, wanted: () => true, judged: () => true})
  const suitesAt = new Map<string, Promise<GateSuites | null>>()
  const gatesAt = (at: string) => {
    let s = suitesAt.get(at)
    // A gates file that no longer parses (a builtin since removed) supports nothing.
    if (!s) suitesAt.set(at, (s = loadGateSuites(repo, at, opts.limits, BUILTINS).catch(() => null)))
    return s
  }
  const judged: Judged[] = []
  for (const r of receipts) {
    const base = r.statement.predicate.baseCommit
    const file = /^[0-9a-f]{40}$/.test(base) ? await gatesAt(base) : null
    const specs = new Map((file?.suites.get(r.statement.predicate.suite) ?? []).map((g) => [g.id, g]))
    judged.push({r, specs})
  }
  const untrusted = receipts.filter((r) => r.untrusted !== null).map((r) => ({path: r.path, why: r.untrusted!}))
  return {commit, receipts: {total: receipts.length, trusted: receipts.length - untrusted.length, untrusted}, areas: judgeClaims(await gatesAt(commit), judged)}
}
