/**
 * Evidence-gated promotion: what a channel's `requires` (the image manifest, signed desired state)
 * asks of a digest before it is pinned there, looked up by digest in the suite receipts of the
 * verified history, and the SLSA Verification Summary Attestation that records the decision.
 *
 * A receipt is evidence only when, in order:
 *  1. it is a test-result receipt (gates/types.ts) of a required suite, naming the digest among
 *     its subjects (sha256 equal, for this image), run while the digest was on the channel `on`
 *     asks for (its annotation says so, and the manifest at the commit it ran on agrees) — a
 *     receipt for another digest, image or channel proves nothing about this one;
 *  2. its signatures verify under the trust policy it was added on, as `evidence verify` judges
 *     them — a receipt signed by a key the fleet does not trust is anyone's assertion;
 *  3. its own time (finishedAt, which the ledger keeps between its base commit and the verifier's
 *     clock) is not after now — a receipt dated in the future would soak before it ran;
 *  4. it PASSED (or WARNED: passed, a shadow gate failing), and no FAILED receipt of the suite
 *     for the digest, on any channel, finished at or after it — a failure since outweighs it;
 *  5. it finished at least `soak` before now.
 * The receipt relied on is the oldest that meets 1–4, so the decision does not depend on when a
 * saved plan is applied: once it soaked, it stays soaked.
 */
import {sha256Hex} from '../crypto/digest.js'
import {TEST_RESULT_PREDICATE_TYPE, type TestResultStatement} from '../gates/types.js'
import type {Limits} from '../limits.js'
import {loadImage, loadTrust} from '../manifests/load.js'
import {EVIDENCE_DIR, TRUST_FILE, type EvidenceRequirement, type TrustPolicy} from '../manifests/models.js'
import type {Repository} from '../repo/repository.js'
import type {MissingEvidence, MissingProblem, ReliedReceipt, RequirementCheck} from './decision.js'
import {checkReceiptSignatures, listReceipts, parseReceipt, type ParsedReceipt} from './ledger.js'

/** A suite receipt at the base, as the finder judges it. */
export interface SuiteReceipt {
  path: string
  /** SHA-256 of the envelope file as committed (hex). */
  sha256: string
  statement: TestResultStatement
  finishedAt: Date
  /** Null when its signatures verify under the trust policy it was added on; else why not. */
  untrusted: string | null
  /**
   * What the image manifests pinned at the commit the suite ran on (its baseCommit), image →
   * channel → digest, for the images being promoted: a receipt's channel annotation is checked
   * against the history, not taken on its word. Absent: not read (then the annotation decides).
   */
  pinnedAtBase?: Record<string, Record<string, string>>
}

/** A pin the evidence step judges: this digest of this image about to be pinned on this channel. */
export interface GatedPin {
  image: string
  repository: string
  channel: string
  digest: string
  requires: EvidenceRequirement
}

const short = (digest: string) => `${digest.slice(0, 'sha256:'.length + 12)}…`
const PASSING = new Set(['PASSED', 'WARNED'])

/** Does the receipt name this image's digest among its subjects, and on which channel? */
function subjectFor(r: SuiteReceipt, pin: Pick<GatedPin, 'image' | 'digest'>): Array<{channel: unknown}> {
  const hex = pin.digest.slice('sha256:'.length)
  return r.statement.subject
    .filter((s) => s.digest?.sha256 === hex && (s.annotations?.image === undefined || s.annotations.image === pin.image))
    .map((s) => ({channel: s.annotations?.channel}))
}

/** Steps 1–5 for one pin, on receipts already read and signature-checked. Pure. */
export function judgeRequirement(pin: GatedPin, receipts: SuiteReceipt[], now: Date): RequirementCheck {
  const on = pin.requires.on ?? null
  const check: RequirementCheck = {image: pin.image, repository: pin.repository, channel: pin.channel, digest: pin.digest, requires: {suites: pin.requires.suites, on, soak: pin.requires.soak ?? null}, relied: [], missing: []}
  const where = on ? ` on ${on}` : ''
  for (const suite of pin.requires.suites) {
    const miss = (problem: MissingProblem, message: string, extra: Partial<MissingEvidence> = {}) =>
      check.missing.push({suite, image: pin.image, channel: pin.channel, digest: pin.digest, on, problem, message: `${suite}: ${message}`, ...extra})
    const ofSuite = receipts.filter((r) => r.statement.predicate.suite === suite)
    // 1. this digest of this image, run while it was on `on`.
    const forDigest = ofSuite.filter((r) => subjectFor(r, pin).length > 0)
    const matching = forDigest.filter((r) => on === null || subjectFor(r, pin).some((s) => s.channel === on))
    const pinnedThen = (r: SuiteReceipt) => on === null || r.pinnedAtBase === undefined || r.pinnedAtBase[pin.image]?.[on] === pin.digest
    // 2–3. signed by a trusted evidence key, not dated in the future.
    const usable = (r: SuiteReceipt) => r.untrusted === null && r.finishedAt.getTime() <= now.getTime() && pinnedThen(r)
    // A PASSED run in which no enforced gate passed (all not run: a host suite without --host) shows nothing.
    const ran = (r: SuiteReceipt) => r.statement.predicate.gates.some((g) => g.status === 'pass' && g.mode === 'enforce')
    const passing = matching.filter((r) => usable(r) && PASSING.has(r.statement.predicate.result) && ran(r)).sort((a, b) => a.finishedAt.getTime() - b.finishedAt.getTime())
    // 4. a failure of the suite for the digest, on any channel (whatever was pinned where it ran), outweighs every pass before it.
    const failing = forDigest.filter((r) => r.untrusted === null && r.finishedAt.getTime() <= now.getTime() && r.statement.predicate.result === 'FAILED').sort((a, b) => a.finishedAt.getTime() - b.finishedAt.getTime())
    const clean = passing.filter((p) => !failing.some((f) => f.finishedAt.getTime() >= p.finishedAt.getTime()))
    const chosen = clean[0]
    if (chosen && now.getTime() - chosen.finishedAt.getTime() >= pin.requires.soakMs) {
      check.relied.push({suite, path: chosen.path, digest: `sha256:${chosen.sha256}`, result: chosen.statement.predicate.result as ReliedReceipt['result'], finishedAt: chosen.finishedAt.toISOString()})
      continue
    }
    // 5. …or say exactly what is missing.
    if (chosen) {
      const readyAt = new Date(chosen.finishedAt.getTime() + pin.requires.soakMs).toISOString()
      miss('YOUNG', `the passing receipt for ${short(pin.digest)}${where} (${chosen.path}) finished at ${chosen.finishedAt.toISOString()}; the ${pin.requires.soak} soak ${pin.channel} requires ends at ${readyAt}`, {readyAt, receipts: [chosen.path]})
    } else if (passing.length > 0) {
      const last = passing[passing.length - 1]!
      const failed = failing.find((f) => f.finishedAt.getTime() >= last.finishedAt.getTime())!
      miss('FAILED_SINCE', `a FAILED receipt for ${short(pin.digest)} (${failed.path}, finished ${failed.finishedAt.toISOString()}) came after the last passing one (${last.path}); a new passing run is needed`, {receipts: [failed.path, last.path]})
    } else if (matching.some((r) => usable(r) && PASSING.has(r.statement.predicate.result))) {
      const empty = matching.filter((r) => usable(r) && PASSING.has(r.statement.predicate.result))
      miss('NOTHING_RAN', `the passing receipt(s) for ${short(pin.digest)}${where} passed no gate: every gate was not run (${empty.map((r) => r.path).join(', ')}); run the suite where its gates can run (--host on a lab host)`, {receipts: empty.map((r) => r.path)})
    } else if (matching.some((r) => r.untrusted !== null)) {
      const bad = matching.filter((r) => r.untrusted !== null)
      miss('UNTRUSTED', `the receipt(s) for ${short(pin.digest)}${where} are not evidence: ${bad.map((r) => `${r.path} (${r.untrusted})`).join('; ')}`, {receipts: bad.map((r) => r.path)})
    } else if (matching.some((r) => r.finishedAt.getTime() > now.getTime())) {
      const future = matching.filter((r) => r.finishedAt.getTime() > now.getTime())
      miss('FUTURE_DATED', `the receipt(s) for ${short(pin.digest)}${where} are dated in the future (${future.map((r) => `${r.path} finished ${r.finishedAt.toISOString()}`).join('; ')}), after ${now.toISOString()}; they are not evidence`, {receipts: future.map((r) => r.path)})
    } else if (matching.some((r) => !pinnedThen(r))) {
      const wrong = matching.filter((r) => !pinnedThen(r))
      miss('NOT_PINNED_THEN', `the receipt(s) say they ran while ${short(pin.digest)} was on ${on}, but at the commit they ran on ${on} pinned something else (${wrong.map((r) => `${r.path}: ${r.pinnedAtBase?.[pin.image]?.[on!] ? short(r.pinnedAtBase[pin.image]![on!]!) : 'no such pin'}`).join('; ')})`, {receipts: wrong.map((r) => r.path)})
    } else if (failing.length > 0 && matching.length > 0) {
      miss('ONLY_FAILED', `only FAILED receipts for ${short(pin.digest)}${where} (newest ${failing[failing.length - 1]!.path})`, {receipts: failing.map((r) => r.path)})
    } else if (forDigest.length > 0) {
      const channels = [...new Set(forDigest.flatMap((r) => subjectFor(r, pin).map((s) => String(s.channel ?? '(none)'))))].sort()
      miss('OTHER_CHANNEL', `receipts for ${short(pin.digest)} ran while it was on ${channels.join(', ')}, not on ${on}`, {receipts: forDigest.map((r) => r.path)})
    } else {
      const others = ofSuite.filter((r) => r.statement.subject.some((s) => s.annotations?.image === pin.image && (on === null || s.annotations?.channel === on)))
      if (others.length > 0) {
        const digests = [...new Set(others.flatMap((r) => r.statement.subject.filter((s) => s.annotations?.image === pin.image && typeof s.digest?.sha256 === 'string').map((s) => short(`sha256:${s.digest.sha256}`))))]
        miss('OTHER_DIGEST', `no receipt names ${short(pin.digest)}; the ${others.length} receipt(s) of ${pin.image}${where} are for other digests (${digests.join(', ')})`, {receipts: others.map((r) => r.path)})
      } else miss('NONE', `no receipt of suite ${suite} for ${short(pin.digest)}${where} in docs/evidence/ (run \`airlock gate run ${suite} --apply\` while it is${where || ' pinned'})`)
    }
  }
  return check
}

/**
 * The commit each receipt at `head` was added on (its adding commit's first parent), as `evidence
 * verify` and `evidence show` judge it; one already at the trust anchor is judged under the
 * anchor's trust policy. One walk back along first parents for all of them (receipts are only
 * ever added, so a receipt is absent before the commit that added it).
 */
async function addedOn(repo: Repository, head: string, paths: string[], anchor: string | null): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  let left = new Set(paths)
  let at = head
  while (left.size > 0) {
    if (at === anchor) break
    const parent = (await repo.readCommit(at)).parents[0]
    if (!parent) break
    const there = new Set((await repo.listDir(parent, EVIDENCE_DIR)).map((e) => e.path))
    for (const path of left) if (!there.has(path)) out.set(path, parent)
    left = new Set([...left].filter((p) => there.has(p)))
    at = parent
  }
  // Still there at the anchor (or the first commit): judged under that commit's trust policy.
  for (const path of left) out.set(path, at)
  return out
}

/**
 * Steps 1–2 at the base: the test-result receipts `wanted` keeps, each parsed, and those `judged`
 * keeps signature-checked under the trust policy it was added on (the others are read only to say
 * what they were for). A receipt that does not parse is not evidence (in a verified base there is none).
 */
export async function readSuiteReceipts(repo: Repository, commit: string, opts: {anchor: string | null; limits: Limits; wanted: (s: TestResultStatement) => boolean; judged: (s: TestResultStatement) => boolean}): Promise<SuiteReceipt[]> {
  const found: Array<{parsed: ParsedReceipt; text: string; statement: TestResultStatement}> = []
  for (const file of await listReceipts(repo, commit)) {
    const text = await repo.readBlob(file.oid)
    let parsed: ParsedReceipt
    try {
      parsed = parseReceipt(text, file.path, opts.limits)
    } catch {
      continue
    }
    if (parsed.statement.predicateType !== TEST_RESULT_PREDICATE_TYPE) continue
    const statement = parsed.statement as TestResultStatement
    if (opts.wanted(statement)) found.push({parsed, text, statement})
  }
  const judged = found.filter((f) => opts.judged(f.statement))
  const added = await addedOn(repo, commit, judged.map((f) => f.parsed.path), opts.anchor)
  const trusts = new Map<string | null, TrustPolicy>()
  const trustAt = async (at: string) => {
    const oid = await repo.oidAt(at, TRUST_FILE)
    let t = trusts.get(oid)
    if (!t) trusts.set(oid, (t = await loadTrust(repo, at, opts.limits)))
    return t
  }
  const out: SuiteReceipt[] = []
  for (const {parsed, text, statement} of found) {
    let untrusted: string | null = 'not judged: it names none of the digests being pinned'
    if (opts.judged(statement)) {
      const {problem} = checkReceiptSignatures(parsed, await trustAt(added.get(parsed.path)!))
      untrusted = problem ? `${problem.code}: ${problem.message}` : null
    }
    out.push({path: parsed.path, sha256: sha256Hex(text), statement, finishedAt: parsed.time, untrusted})
  }
  return out
}

/** Finds and judges the evidence for every gated pin at the base. */
export async function findEvidence(repo: Repository, commit: string, pins: GatedPin[], opts: {anchor: string | null; limits: Limits; now: Date}): Promise<RequirementCheck[]> {
  const suites = new Set(pins.flatMap((p) => p.requires.suites))
  const hexes = new Set(pins.map((p) => p.digest.slice('sha256:'.length)))
  const images = new Set(pins.map((p) => p.image))
  // The digest, or (to say which digests it was run for instead) the image.
  const wanted = (s: TestResultStatement) => suites.has(s.predicate.suite) && s.subject.some((x) => hexes.has(String(x.digest?.sha256)) || images.has(String(x.annotations?.image)))
  const judged = (s: TestResultStatement) => s.subject.some((x) => hexes.has(String(x.digest?.sha256)))
  const receipts = await readSuiteReceipts(repo, commit, {anchor: opts.anchor, limits: opts.limits, wanted, judged})
  // What was pinned where the suites ran (each commit read once).
  const byCommit = new Map<string, Record<string, Record<string, string>>>()
  for (const r of receipts) {
    if (r.untrusted !== null) continue
    const at = r.statement.predicate.baseCommit
    let pinned = byCommit.get(at)
    if (!pinned) {
      pinned = {}
      for (const image of images) {
        const found = await loadImage(repo, at, image, opts.limits).catch(() => null)
        if (found) pinned[image] = Object.fromEntries(Object.entries(found.channels).map(([name, ch]) => [name, ch.digest]))
      }
      byCommit.set(at, pinned)
    }
    r.pinnedAtBase = pinned
  }
  return pins.map((p) => judgeRequirement(p, receipts, opts.now))
}
