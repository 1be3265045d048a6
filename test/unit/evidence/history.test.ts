/**
 * History verification, one `describe('when …')` per failure code: each builds the bad history
 * in a real repository with git plumbing (hash-object, update-index, write-tree, merge-tree),
 * dates chosen by the test, commits signed by airlock's own SSH signer with real keys. The
 * verifier's time is passed in (`now`); nothing depends on the clock moving.
 */
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {generateSigner} from '../../../control-plane/crypto/keys.js'
import {checkNewCommit, verifyHistory, type HistoryReport} from '../../../control-plane/evidence/history.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {tempDir} from '../../helpers.js'
import {at, Plumbing, receipt, trustYaml, type Entry} from './git-plumbing.js'

const NOW = new Date('2026-06-01T00:00:00Z')
/** The key a signed rotation later retires (validUntil) or removes. */
const K = generateSigner().signer
/** The key that stays. */
const J = generateSigner().signer
/** A key nobody trusts. */
const X = generateSigner().signer

const TRUST = trustYaml([{signer: K}, {signer: J}])
const RETIRED = trustYaml([{signer: K, validUntil: '2026-04-01T00:00:00Z'}, {signer: J}])
const REMOVED = trustYaml([{signer: J}])
const IMAGE = 'manifests/images/a.yaml'
const IMAGE_B = 'manifests/images/b.yaml'
const IMAGE_C = 'manifests/images/c.yaml'
const INIT_RECEIPT = 'docs/evidence/0-init.json'

const t = await tempDir('airlock-history-')
afterAll(() => t.cleanup())
let repos = 0

/**
 * A fresh repository whose root (the pinned anchor, 2026-03-01) holds trust.yaml (K and J), an
 * image, a README and init's receipt; `verify` checks a head against it at NOW.
 */
async function fleet(trust = TRUST) {
  const git = await Plumbing.init(join(t.dir, `r${++repos}`))
  const root = await git.commit({time: at('2026-03-01T00:00:00Z'), signer: K, message: 'init', change: {'manifests/trust.yaml': trust, [IMAGE]: 'v0\n', 'README.md': 'fleet\n', [INIT_RECEIPT]: receipt(null, '2026-03-01T00:00:00.000Z', [K])}})
  const verify = async (head: string, opts: {anchor?: string | null; now?: Date; verified?: string[]} = {}) =>
    verifyHistory(await Repository.open(git.dir), head, {anchor: opts.anchor === undefined ? root : opts.anchor, now: opts.now ?? NOW, limits: DEFAULT_LIMITS, ...(opts.verified ? {verified: new Set(opts.verified)} : {})})
  /** A change signed by `signer` (null: unsigned) at `iso`. */
  const change = (parent: string, iso: string, signer: typeof K | null, files: Record<string, Entry | null>, message = 'change') =>
    git.commit({parents: [parent], time: at(iso), ...(signer ? {signer} : {}), change: files, message})
  /** The clean merge of two commits, as a forge's merge button commits it (unsigned). */
  const merge = async (ours: string, theirs: string, iso: string) => git.commit({parents: [ours, theirs], tree: await git.mergeTree(ours, theirs), time: at(iso), message: 'Merge pull request'})
  return {git, root, verify, change, merge}
}

/** The fleet after a signed rotation retired K (validUntil 2026-04-01, signed by J on 04-02) and a later signed change (05-01). */
async function rotated(trust = RETIRED) {
  const f = await fleet()
  const rotation = await f.change(f.root, '2026-04-02T00:00:00Z', J, {'manifests/trust.yaml': trust}, 'retire K')
  const head = await f.change(rotation, '2026-05-01T00:00:00Z', J, {[IMAGE_B]: 'b1\n'})
  return {...f, rotation, head}
}

const codes = (r: HistoryReport) => r.problems.map((p) => p.code)

describe('a history that verifies', () => {
  it('signed changes with their receipts, and unsigned commits outside the signed folders', async () => {
    const f = await fleet()
    const c1 = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[IMAGE]: 'v1\n', 'docs/evidence/1.json': receipt(f.root, '2026-03-02T00:00:00.000Z', [K])})
    const c2 = await f.change(c1, '2026-03-03T00:00:00Z', null, {'README.md': 'more\n'})
    const report = await f.verify(c2)
    expect(report.problems).toEqual([])
    expect(report).toMatchObject({ok: true, walked: 2, signed: 1, anchor: {commit: f.root, pinned: true}, effectiveTime: at('2026-03-03T00:00:00Z')})
    expect(report.addedIn.get('docs/evidence/1.json')).toBe(c1)
    expect(report.addedIn.get(INIT_RECEIPT)).toBe(f.root)
  })

  it('an unsigned commit outside the signed folders may be dated back (an honest clock that is off)', async () => {
    const {head, change, verify} = await rotated()
    const slow = await change(head, '2026-03-10T00:00:00Z', null, {'README.md': 'typo\n'})
    expect((await verify(slow)).problems).toEqual([])
    // Its effective time stays its history's: what is signed on it is judged from there.
    expect((await verify(slow)).effectiveTime).toBe(at('2026-05-01T00:00:00Z'))
  })

  it('a commit dated within the clock skew after now', async () => {
    const {head, change, verify} = await rotated()
    const c = await change(head, new Date(NOW.getTime() + DEFAULT_LIMITS.clockSkewMs - 60_000).toISOString(), J, {[IMAGE]: 'v9\n'})
    expect((await verify(c)).problems).toEqual([])
  })
})

describe('when a receipt or a trust policy does not parse (MALFORMED)', () => {
  it('a receipt that is not JSON', async () => {
    const f = await fleet()
    const c = await f.change(f.root, '2026-03-02T00:00:00Z', K, {'docs/evidence/1.json': '{"payloadType":'})
    expect((await f.verify(c)).problems).toEqual([expect.objectContaining({code: 'MALFORMED', receipt: 'docs/evidence/1.json', commit: c})])
  })
  it('a receipt whose predicate type is not registered', async () => {
    const f = await fleet()
    const text = receipt(f.root, '2026-03-02T00:00:00.000Z', [K]).replace(/"payload": "([^"]+)"/, (_, b64: string) => `"payload": "${Buffer.from(Buffer.from(b64, 'base64').toString().replace('https://airlock.dev/attestations/change/v1', 'https://slsa.dev/provenance/v1')).toString('base64')}"`)
    const c = await f.change(f.root, '2026-03-02T00:00:00Z', K, {'docs/evidence/1.json': text})
    expect((await f.verify(c)).problems).toEqual([expect.objectContaining({code: 'MALFORMED', message: expect.stringContaining('is not one airlock accepts')})])
  })
  it("a parent's trust.yaml that does not parse: nothing is trusted after it", async () => {
    const f = await fleet()
    const broken = await f.change(f.root, '2026-03-02T00:00:00Z', K, {'manifests/trust.yaml': 'apiVersion: airlock/v1\nkind: TrustPolicy\nspec: {keys: 7}\n'})
    const next = await f.change(broken, '2026-03-03T00:00:00Z', K, {[IMAGE]: 'v1\n'})
    expect(codes(await f.verify(next))).toEqual(['MALFORMED', 'UNTRUSTED_COMMIT_SIGNER'])
  })
})

describe('when a receipt is signed by a key trust.yaml does not hold (UNKNOWN_KEY)', () => {
  it('is named', async () => {
    const f = await fleet()
    const c = await f.change(f.root, '2026-03-02T00:00:00Z', K, {'docs/evidence/1.json': receipt(f.root, '2026-03-02T00:00:00.000Z', [X])})
    expect((await f.verify(c)).problems).toEqual([expect.objectContaining({code: 'UNKNOWN_KEY', receipt: 'docs/evidence/1.json', commit: c})])
  })
})

describe('when a receipt was edited after it was signed (BAD_SIGNATURE)', () => {
  it('is named', async () => {
    const f = await fleet()
    const signed = receipt(f.root, '2026-03-02T00:00:00.000Z', [K], 'promote to canary')
    const edited = signed.replace(/"payload": "([^"]+)"/, (_, b64: string) => `"payload": "${Buffer.from(Buffer.from(b64, 'base64').toString().replace('promote to canary', 'promote to stable')).toString('base64')}"`)
    const c = await f.change(f.root, '2026-03-02T00:00:00Z', K, {'docs/evidence/1.json': edited})
    expect(codes(await f.verify(c))).toEqual(['BAD_SIGNATURE'])
  })
})

describe('when a receipt is signed by a key not valid at its time (KEY_NOT_VALID_AT_SIGNING)', () => {
  it('a key retired before the receipt was signed', async () => {
    const {head, change, verify} = await rotated()
    const c = await change(head, '2026-05-02T00:00:00Z', J, {'docs/evidence/1.json': receipt(head, '2026-05-02T00:00:00.000Z', [K])})
    expect((await verify(c)).problems).toEqual([expect.objectContaining({code: 'KEY_NOT_VALID_AT_SIGNING', receipt: 'docs/evidence/1.json'})])
  })
})

describe('when a receipt has fewer signers than the evidence threshold (THRESHOLD_NOT_MET)', () => {
  it('one key of two', async () => {
    const f = await fleet(trustYaml([{signer: K}, {signer: J}], {evidence: 2}))
    const c = await f.change(f.root, '2026-03-02T00:00:00Z', K, {'docs/evidence/1.json': receipt(f.root, '2026-03-02T00:00:00.000Z', [K])})
    expect(codes(await f.verify(c))).toEqual(['THRESHOLD_NOT_MET'])
    const both = await f.change(f.root, '2026-03-02T00:00:00Z', K, {'docs/evidence/1.json': receipt(f.root, '2026-03-02T00:00:00.000Z', [K, J])})
    expect(codes(await f.verify(both))).toEqual([])
  })

  it('a change that lowers the threshold meets only the threshold it was added on', async () => {
    const f = await fleet(trustYaml([{signer: K}, {signer: J}], {evidence: 2}))
    const lowered = await f.change(f.root, '2026-03-02T00:00:00Z', K, {'manifests/trust.yaml': TRUST, 'docs/evidence/1.json': receipt(f.root, '2026-03-02T00:00:00.000Z', [K])})
    expect(codes(await f.verify(lowered))).toEqual(['THRESHOLD_NOT_MET'])
  })
})

describe('when a receipt is changed (RECEIPT_MODIFIED)', () => {
  it('even by a trusted key', async () => {
    const f = await fleet()
    const c = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[INIT_RECEIPT]: receipt(null, '2026-03-01T00:00:00.000Z', [K], 'rewritten')})
    expect((await f.verify(c)).problems).toEqual([expect.objectContaining({code: 'RECEIPT_MODIFIED', receipt: INIT_RECEIPT, commit: c})])
  })
})

describe('when a receipt is deleted (RECEIPT_DELETED)', () => {
  it('even by a trusted key', async () => {
    const f = await fleet()
    const c = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[INIT_RECEIPT]: null})
    expect((await f.verify(c)).problems).toEqual([expect.objectContaining({code: 'RECEIPT_DELETED', receipt: INIT_RECEIPT, commit: c})])
  })
})

describe('published audit checkpoints are append-only, even for a trusted key', () => {
  const CP = 'docs/evidence/audit/airlock.audit_h_0011223344556677/00000000000000000002.checkpoint'
  it('a deleted one is RECEIPT_DELETED, a changed one RECEIPT_MODIFIED; a new one beside them is fine', async () => {
    const f = await fleet()
    const c1 = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[CP]: 'checkpoint v1\n'})
    expect(codes(await f.verify(c1))).toEqual([])
    const deleted = await f.change(c1, '2026-03-03T00:00:00Z', K, {[CP]: null})
    expect((await f.verify(deleted)).problems).toEqual([expect.objectContaining({code: 'RECEIPT_DELETED', receipt: CP, commit: deleted})])
    const changed = await f.change(c1, '2026-03-03T00:00:00Z', K, {[CP]: 'checkpoint v2\n'})
    expect((await f.verify(changed)).problems).toEqual([expect.objectContaining({code: 'RECEIPT_MODIFIED', receipt: CP, commit: changed})])
    const added = await f.change(c1, '2026-03-03T00:00:00Z', K, {[CP.replace('0002.', '0005.')]: 'checkpoint v3\n'})
    expect(codes(await f.verify(added))).toEqual([])
  })
})

describe('when a receipt names another base than the one it was added on (BASE_MISMATCH)', () => {
  it('a receipt replayed onto another commit', async () => {
    const f = await fleet()
    const c1 = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[IMAGE]: 'v1\n'})
    const c2 = await f.change(c1, '2026-03-03T00:00:00Z', K, {'docs/evidence/1.json': receipt(f.root, '2026-03-03T00:00:00.000Z', [K])})
    expect(codes(await f.verify(c2))).toEqual(['BASE_MISMATCH'])
  })
})

describe('when a change to a signed folder is not signed (UNSIGNED_COMMIT)', () => {
  it('is named, and what builds on it does not verify either', async () => {
    const f = await fleet()
    const c1 = await f.change(f.root, '2026-03-02T00:00:00Z', null, {[IMAGE]: 'evil\n'})
    const c2 = await f.change(c1, '2026-03-03T00:00:00Z', K, {[IMAGE]: 'v2\n'})
    const report = await f.verify(c2)
    expect(report.problems).toEqual([expect.objectContaining({code: 'UNSIGNED_COMMIT', commit: c1})])
    expect([...report.unverified].sort()).toEqual([c1, c2].sort())
  })
})

describe('when a commit signature does not match the commit (BAD_COMMIT_SIGNATURE)', () => {
  it('a signature made over other content', async () => {
    const f = await fleet()
    const c = await f.git.commit({parents: [f.root], time: at('2026-03-02T00:00:00Z'), signer: K, signOver: (text) => text.replace('change', 'other'), change: {[IMAGE]: 'v1\n'}})
    expect(codes(await f.verify(c))).toEqual(['BAD_COMMIT_SIGNATURE'])
  })
})

describe("when a commit is signed by a key its parent's trust.yaml does not hold (UNTRUSTED_COMMIT_SIGNER)", () => {
  it('a commit that adds its own key', async () => {
    const f = await fleet()
    const c = await f.change(f.root, '2026-03-02T00:00:00Z', X, {'manifests/trust.yaml': trustYaml([{signer: K}, {signer: J}, {signer: X}])})
    expect((await f.verify(c)).problems).toEqual([expect.objectContaining({code: 'UNTRUSTED_COMMIT_SIGNER', commit: c})])
  })
})

describe('when the history ends at a shallow boundary (HISTORY_INCOMPLETE)', () => {
  it('is not a pass', async () => {
    const f = await fleet()
    const c1 = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[IMAGE]: 'v1\n'})
    const c2 = await f.change(c1, '2026-03-03T00:00:00Z', K, {[IMAGE]: 'v2\n'})
    await writeFile(join(f.git.dir, '.git', 'shallow'), `${c1}\n`)
    const report = await f.verify(c2)
    expect(codes(report)).toEqual(['HISTORY_INCOMPLETE'])
    expect(report.ok).toBe(false)
  })
})

describe('when a second root is merged in (MULTIPLE_ROOTS)', () => {
  it("an attacker's root with its own trust.yaml", async () => {
    const f = await fleet()
    const other = await f.git.commit({time: at('2026-03-02T00:00:00Z'), signer: X, change: {'manifests/trust.yaml': trustYaml([{signer: X}]), [IMAGE]: 'evil\n'}})
    const m = await f.git.commit({parents: [f.root, other], time: at('2026-03-03T00:00:00Z'), signer: X, change: {[IMAGE]: 'evil\n'}})
    expect((await f.verify(m)).problems).toContainEqual(expect.objectContaining({code: 'MULTIPLE_ROOTS', commit: other}))
  })
})

describe('when the pinned anchor is not in the history (ANCHOR_NOT_IN_HISTORY)', () => {
  it('a head beside the anchor', async () => {
    const f = await fleet()
    const anchor = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[IMAGE]: 'v1\n'})
    const beside = await f.change(f.root, '2026-03-03T00:00:00Z', K, {[IMAGE_B]: 'b\n'})
    const report = await f.verify(beside, {anchor})
    expect(codes(report)).toEqual(['ANCHOR_NOT_IN_HISTORY'])
    expect(report.unverified.has(beside)).toBe(true)
  })
})

describe('when a signed change builds on history before the anchor (UNANCHORED_PARENT)', () => {
  it('a side branch off a commit before the anchor, merged in', async () => {
    const f = await fleet()
    const anchor = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[IMAGE]: 'v1\n'})
    const side = await f.change(f.root, '2026-03-03T00:00:00Z', K, {[IMAGE_B]: 'b\n'})
    const m = await f.merge(anchor, side, '2026-03-04T00:00:00Z')
    expect((await f.verify(m, {anchor})).problems).toEqual([expect.objectContaining({code: 'UNANCHORED_PARENT', commit: side})])
  })
})

describe('when a commit object is missing or malformed (BROKEN_OBJECT)', () => {
  it('a parent that is not in the repository', async () => {
    const f = await fleet()
    const c = await f.git.commit({parents: [f.root, '1'.repeat(40)], time: at('2026-03-02T00:00:00Z'), signer: K, change: {[IMAGE]: 'v1\n'}})
    const report = await f.verify(c)
    expect(report.problems).toContainEqual(expect.objectContaining({code: 'BROKEN_OBJECT', commit: '1'.repeat(40)}))
    expect(report.ok).toBe(false)
  })
})

describe('when a signed folder is not a folder (NOT_A_FOLDER)', () => {
  it('manifests/images as a symbolic link', async () => {
    const f = await fleet()
    const c = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[IMAGE]: null, 'manifests/images': {mode: '120000', content: '/etc'}})
    expect((await f.verify(c)).problems).toContainEqual(expect.objectContaining({code: 'NOT_A_FOLDER', commit: c}))
  })
})

describe('when a signed change is dated before its history (BACKDATED)', () => {
  it('a retired key signing a commit dated back into its validity', async () => {
    const {head, change, verify} = await rotated()
    const forged = await change(head, '2026-03-20T00:00:00Z', K, {[IMAGE]: 'evil\n'})
    const report = await verify(forged)
    expect(report.problems[0]).toMatchObject({code: 'BACKDATED', commit: forged})
    // Judged at its history's time, the key is retired.
    expect(codes(report)).toEqual(['BACKDATED', 'UNTRUSTED_COMMIT_SIGNER'])
  })

  it('an unsigned commit dated back in between launders nothing', async () => {
    const {head, change, verify} = await rotated()
    const between = await change(head, '2026-03-10T00:00:00Z', null, {'README.md': 'innocent\n'})
    const forged = await change(between, '2026-03-20T00:00:00Z', K, {[IMAGE]: 'evil\n'})
    expect((await verify(forged)).problems[0]).toMatchObject({code: 'BACKDATED', commit: forged})
  })

  it('nor does one that was verified before (a cache boundary)', async () => {
    const {head, change, verify} = await rotated()
    const between = await change(head, '2026-03-10T00:00:00Z', null, {'README.md': 'innocent\n'})
    expect((await verify(between)).ok).toBe(true)
    const forged = await change(between, '2026-03-20T00:00:00Z', K, {[IMAGE]: 'evil\n'})
    const report = await verify(forged, {verified: [between]})
    expect(report.walked).toBe(1)
    expect(report.problems[0]).toMatchObject({code: 'BACKDATED', commit: forged})
  })

  it('a receipt dated before the commit it was added on', async () => {
    const {head, change, verify} = await rotated()
    const c = await change(head, '2026-05-02T00:00:00Z', J, {'docs/evidence/1.json': receipt(head, '2026-04-20T00:00:00.000Z', [J])})
    expect((await verify(c)).problems).toEqual([expect.objectContaining({code: 'BACKDATED', receipt: 'docs/evidence/1.json', commit: c})])
  })
})

describe("when something is dated beyond the verifier's clock (FUTURE_DATED)", () => {
  const later = (ms: number) => new Date(NOW.getTime() + ms).toISOString()
  it('a signed commit', async () => {
    const {head, change, verify} = await rotated()
    const c = await change(head, later(DEFAULT_LIMITS.clockSkewMs + 60_000), J, {[IMAGE]: 'v9\n'})
    expect((await verify(c)).problems).toEqual([expect.objectContaining({code: 'FUTURE_DATED', commit: c})])
  })
  it('an unsigned commit (it would hold back every signed change after it)', async () => {
    const {head, change, verify} = await rotated()
    const c = await change(head, later(86_400_000), null, {'README.md': 'from the future\n'})
    expect(codes(await verify(c))).toEqual(['FUTURE_DATED'])
  })
  it('a receipt', async () => {
    const {head, change, verify} = await rotated()
    const c = await change(head, '2026-05-02T00:00:00Z', J, {'docs/evidence/1.json': receipt(head, later(3_600_000), [J])})
    expect((await verify(c)).problems).toEqual([expect.objectContaining({code: 'FUTURE_DATED', receipt: 'docs/evidence/1.json'})])
  })
})

describe('when no anchor is pinned (ANCHOR_NOT_PINNED)', () => {
  it('the history is still walked from its root, but nothing verifies', async () => {
    const f = await fleet()
    const c1 = await f.change(f.root, '2026-03-02T00:00:00Z', K, {[IMAGE]: 'v1\n'})
    const c2 = await f.change(c1, '2026-03-03T00:00:00Z', null, {[IMAGE]: 'evil\n'})
    const report = await f.verify(c2, {anchor: null})
    expect(report.ok).toBe(false)
    expect(report.anchor).toEqual({commit: f.root, pinned: false})
    expect(codes(report)).toEqual(['ANCHOR_NOT_PINNED', 'UNSIGNED_COMMIT'])
    expect(report.problems[0]!.message).toMatch(/--trust-anchor COMMIT, AIRLOCK_TRUST_ANCHOR, or git config airlock\.trustAnchor; `airlock trust pin COMMIT`/)
    expect(report.unverified.has(c1)).toBe(true)
    // Verified tips count for nothing without a pinned anchor.
    expect(codes(await f.verify(c1, {anchor: null, verified: [c1]}))).toEqual(['ANCHOR_NOT_PINNED'])
  })
})

describe('when a clean merge brings in a change a parent no longer trusts (UNTRUSTED_COMMIT_SIGNER)', () => {
  it('a retired key branching off an old commit where it was valid, dated there', async () => {
    const {root, head, change, merge, verify} = await rotated()
    const side = await change(root, '2026-03-02T00:00:00Z', K, {[IMAGE_C]: 'evil\n'})
    expect((await verify(side)).ok).toBe(true)
    const m = await merge(head, side, '2026-05-10T00:00:00Z')
    expect((await verify(m)).problems).toEqual([expect.objectContaining({code: 'UNTRUSTED_COMMIT_SIGNER', commit: m, message: expect.stringContaining(`brings commit ${side.slice(0, 12)}`)})])
    // The same when the side branch was verified (and remembered) on its own before.
    expect(codes(await verify(m, {verified: [side, head]}))).toEqual(['UNTRUSTED_COMMIT_SIGNER'])
  })

  it('a key removed from trust.yaml', async () => {
    const {root, head, change, merge, verify} = await rotated(REMOVED)
    const side = await change(root, '2026-05-05T00:00:00Z', K, {[IMAGE_C]: 'evil\n'})
    const m = await merge(head, side, '2026-05-10T00:00:00Z')
    expect(codes(await verify(m))).toEqual(['UNTRUSTED_COMMIT_SIGNER'])
  })

  it('whichever parent the merge lists first (the old branch first, main second)', async () => {
    for (const policy of [undefined, REMOVED]) {
      const {root, head, change, merge, verify} = await rotated(policy)
      const side = await change(root, '2026-03-02T00:00:00Z', K, {[IMAGE_C]: 'evil\n'})
      const m = await merge(side, head, '2026-05-10T00:00:00Z')
      expect((await verify(m)).problems).toEqual([expect.objectContaining({code: 'UNTRUSTED_COMMIT_SIGNER', commit: m, message: expect.stringContaining(`brings commit ${side.slice(0, 12)}`)})])
    }
  })

  it('a branch signed by a key the first parent trusts merges; what the first parent already has is not brought in', async () => {
    const f = await fleet()
    // K signs on main while valid; the side branch is brought up to date with it by a merge.
    const early = await f.change(f.root, '2026-03-10T00:00:00Z', K, {'manifests/images/d.yaml': 'd\n'})
    const rotation = await f.change(early, '2026-04-02T00:00:00Z', J, {'manifests/trust.yaml': RETIRED})
    const head = await f.change(rotation, '2026-05-01T00:00:00Z', J, {[IMAGE_B]: 'b1\n'})
    const side = await f.change(f.root, '2026-03-05T00:00:00Z', J, {[IMAGE_C]: 'c\n'})
    const updated = await f.merge(side, early, '2026-03-12T00:00:00Z')
    const m = await f.merge(head, updated, '2026-05-10T00:00:00Z')
    const report = await f.verify(m)
    expect(report.problems).toEqual([])
    expect(report.ok).toBe(true)
  })
})

describe('checkNewCommit: the per-commit checks apply runs on the commit it is about to publish', () => {
  it('passes a signed change on a trusted parent, and names a backdated one', async () => {
    const {head, change, git} = await rotated()
    const repo = await Repository.open(git.dir)
    const good = await change(head, '2026-05-02T00:00:00Z', J, {[IMAGE]: 'v2\n', 'docs/evidence/1.json': receipt(head, '2026-05-02T00:00:00.000Z', [J])})
    expect(await checkNewCommit(repo, good, {limits: DEFAULT_LIMITS, now: NOW})).toEqual([])
    const forged = await change(head, '2026-03-20T00:00:00Z', K, {[IMAGE]: 'evil\n'})
    // A fresh reader: one command's reader lists each object folder once, before this commit was written.
    expect((await checkNewCommit(await Repository.open(git.dir), forged, {limits: DEFAULT_LIMITS, now: NOW})).map((p) => p.code)).toEqual(['BACKDATED', 'UNTRUSTED_COMMIT_SIGNER'])
  })

  it('a first commit is vouched for by the trust policy it creates', async () => {
    const f = await fleet()
    const repo = await Repository.open(f.git.dir)
    expect(await checkNewCommit(repo, f.root, {limits: DEFAULT_LIMITS, now: NOW})).toEqual([])
    const unknown = await f.git.commit({time: at('2026-03-01T00:00:00Z'), signer: X, change: {'manifests/trust.yaml': TRUST, [IMAGE]: 'v0\n'}})
    expect((await checkNewCommit(await Repository.open(f.git.dir), unknown, {limits: DEFAULT_LIMITS, now: NOW})).map((p) => p.code)).toEqual(['UNTRUSTED_COMMIT_SIGNER'])
  })
})
