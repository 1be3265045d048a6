/**
 * Evidence sampling: the documented procedure (checked against a plain, materialized Fisher–Yates),
 * recomputable (same inputs, same sample), seeded by the bound (another root, another sample), and
 * each way a request cannot be sampled refused with its code.
 */
import {createHash} from 'node:crypto'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {signNote} from '../../../control-plane/audit/note.js'
import {generateSigner, loadSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import {AirlockError} from '../../../control-plane/errors.js'
import {drawIndexes, sampleControl, type SampleOptions} from '../../../control-plane/evidence/report/sample.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {git, tempDir} from '../../helpers.js'
import {commitRange} from '../../../control-plane/evidence/report/build.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {reportFleet, type ReportFleet} from './report-fleet.js'

/** The procedure as SAMPLE_PROCEDURE says it, over the whole array. */
function plainFisherYates(seed: Uint8Array, id: string, count: number, n: number): number[] {
  const a = Array.from({length: count}, (_, k) => k)
  for (let i = 0; i < n; i++) {
    const c = Buffer.alloc(8)
    c.writeBigUInt64BE(BigInt(i))
    const h = BigInt(`0x${createHash('sha256').update(Buffer.concat([seed, Buffer.from(id), c])).digest('hex')}`)
    const j = i + Number(h % BigInt(count - i))
    ;[a[i], a[j]] = [a[j]!, a[i]!]
  }
  return a.slice(0, n)
}

const root = (s: string) => createHash('sha256').update(s).digest()
const code = async (p: Promise<unknown>) => ((await p.catch((e: unknown) => e)) as AirlockError).code

describe('drawIndexes', () => {
  it('is the documented procedure, drawn without materializing the population', () => {
    for (const count of [1, 2, 7, 100, 1000]) expect(drawIndexes(root('r'), 'AU-2', count, 10)).toEqual(plainFisherYates(root('r'), 'AU-2', count, Math.min(10, count)))
  })

  it('same inputs give the same sample; another root, control or size prefix another', () => {
    const a = drawIndexes(root('r'), 'AU-2', 1_000_000, 25)
    expect(drawIndexes(root('r'), 'AU-2', 1_000_000, 25)).toEqual(a)
    expect(drawIndexes(root('other'), 'AU-2', 1_000_000, 25)).not.toEqual(a)
    expect(drawIndexes(root('r'), 'CC7.2', 1_000_000, 25)).not.toEqual(a)
    // A larger sample begins with the smaller one: draw i depends on i only.
    expect(drawIndexes(root('r'), 'AU-2', 1_000_000, 40).slice(0, 25)).toEqual(a)
  })

  it('draws distinct members in range, all of them when asked for more than there are', () => {
    const huge = drawIndexes(root('r'), 'AU-2', 2 ** 52, 1000)
    expect(new Set(huge).size).toBe(1000)
    expect(huge.every((i) => Number.isSafeInteger(i) && i >= 0 && i < 2 ** 52)).toBe(true)
    expect(drawIndexes(root('r'), 'AU-2', 5, 50).sort()).toEqual([0, 1, 2, 3, 4])
  })

  it('refuses a size below 1 (USAGE) and a population size that is not a count (INVALID_INPUT)', () => {
    expect(() => drawIndexes(root('r'), 'AU-2', 5, 0)).toThrow(expect.objectContaining({code: 'USAGE'}))
    expect(() => drawIndexes(root('r'), 'AU-2', -1, 1)).toThrow(expect.objectContaining({code: 'INVALID_INPUT'}))
    expect(() => drawIndexes(root('r'), 'AU-2', 2 ** 60, 1)).toThrow(expect.objectContaining({code: 'INVALID_INPUT'}))
  })
})

describe('commitRange', () => {
  it("is git's ANCHOR..HEAD sorted by id, also when a merge reaches history older than the anchor", async () => {
    const t = await tempDir()
    try {
      const g = (...args: string[]) => git(t.dir, ...args)
      await g('init', '-q', '-b', 'main')
      const c = async (m: string) => (await g('commit', '-q', '--allow-empty', '-m', m), g('rev-parse', 'HEAD'))
      const c0 = await c('c0')
      const anchor = await c('c1')
      await c('c2')
      await g('checkout', '-q', '-b', 'old', c0)
      await c('b1')
      await g('checkout', '-q', 'main')
      await g('merge', '-q', '--no-ff', '-m', 'merge old', 'old')
      const head = await g('rev-parse', 'HEAD')
      const range = await commitRange(await Repository.open(t.dir), head, anchor)
      const expected = (await g('rev-list', `${anchor}..${head}`)).split('\n').sort()
      expect(expected).toHaveLength(3)
      expect(range.map((r) => r.oid)).toEqual(expected)
    } finally {
      await t.cleanup()
    }
  })
})

describe('sampleControl on a fleet', () => {
  let fleet: ReportFleet
  let key: Signer
  const ORIGIN = 'airlock.audit/host-a/0123456789abcdef'
  beforeAll(async () => {
    fleet = await reportFleet()
    key = await loadSigner({file: fleet.key})
  }, 180_000)
  afterAll(() => fleet.cleanup())

  const opts = (extra: Partial<SampleOptions>): SampleOptions => ({control: 'CM-3', size: 3, limits: DEFAULT_LIMITS, now: new Date(Date.now() + 1000), anchor: fleet.anchor, ...extra})
  const note = (size: number, seed: string, signer = key, origin = ORIGIN) => signNote(`${origin}\n${size}\n${root(seed).toString('base64')}\n`, [{name: origin, signer}])

  it('draws commits of anchor..HEAD, seeded by the head commit, the same each time', async () => {
    const a = await sampleControl(fleet.repo, opts({}))
    const range = (await git(fleet.dir, 'rev-list', `${fleet.anchor}..HEAD`)).split('\n').sort()
    expect(a).toMatchObject({control: 'CM-3', seedFrom: 'head commit', seed: fleet.head, population: {kind: 'commits', count: range.length, to: fleet.head}})
    expect(a.members).toHaveLength(3)
    expect(a.members).toEqual(a.indexes.map((i) => range[i]))
    expect(a.indexes).toEqual(drawIndexes(Buffer.from(fleet.head, 'hex'), 'CM-3', range.length, 3))
    expect(await sampleControl(fleet.repo, opts({}))).toEqual(a)
    expect(new Set(a.members).size).toBe(3)
  })

  it('draws log indexes within a checkpoint signed by an audit key, seeded by its root', async () => {
    const a = await sampleControl(fleet.repo, opts({control: 'AU-2', size: 5, checkpointText: note(1000, 'one')}))
    expect(a).toMatchObject({seedFrom: 'checkpoint root', seed: root('one').toString('base64'), population: {kind: 'log', from: '0', to: '999', count: 1000, checkpoint: {origin: ORIGIN, size: 1000}}})
    expect(a.members).toEqual(a.indexes.map(String))
    expect(a.indexes).toEqual(drawIndexes(root('one'), 'AU-2', 1000, 5))
    const b = await sampleControl(fleet.repo, opts({control: 'AU-2', size: 5, checkpointText: note(1000, 'two')}))
    expect(b.indexes).not.toEqual(a.indexes)
  })

  it('uses the one published checkpoint when no file is given', async () => {
    const text = note(50, 'pub')
    const checkpoints = [{path: 'docs/evidence/audit/50.checkpoint', origin: ORIGIN, size: 50, root: root('pub').toString('base64'), text, publishedAt: '2026-01-01T00:00:00Z'}]
    const a = await sampleControl(fleet.repo, opts({control: '164.312(b)', checkpoints}))
    expect(a.population).toMatchObject({count: 50, checkpoint: {path: 'docs/evidence/audit/50.checkpoint'}})
    expect(a.indexes).toEqual(drawIndexes(root('pub'), '164.312(b)', 50, 3))
    const two = [...checkpoints, {...checkpoints[0]!, origin: 'airlock.audit/host-b/0123456789abcdef'}]
    expect(await code(sampleControl(fleet.repo, opts({control: 'AU-2', checkpoints: two})))).toBe('USAGE')
  })

  describe('when it cannot be sampled', () => {
    it('an unknown control (USAGE)', async () => expect(await code(sampleControl(fleet.repo, opts({control: 'AC-99'})))).toBe('USAGE'))
    it('a control with no population (USAGE)', async () => expect(await code(sampleControl(fleet.repo, opts({control: 'AC-3'})))).toBe('USAGE'))
    it('a log control with no checkpoint published or given (INVALID_INPUT)', async () => expect(await code(sampleControl(fleet.repo, opts({control: 'AU-2'})))).toBe('INVALID_INPUT'))
    it('a checkpoint signed by a key trust.yaml does not hold (AUDIT_CHECKPOINT_INVALID)', async () => {
      expect(await code(sampleControl(fleet.repo, opts({control: 'AU-2', checkpointText: note(10, 'x', generateSigner().signer)})))).toBe('AUDIT_CHECKPOINT_INVALID')
    })
    it('a checkpoint whose signed text was changed (AUDIT_CHECKPOINT_INVALID)', async () => {
      const forged = note(10, 'x').replace('\n10\n', '\n11\n')
      expect(await code(sampleControl(fleet.repo, opts({control: 'AU-2', checkpointText: forged})))).toBe('AUDIT_CHECKPOINT_INVALID')
    })
    it('a checkpoint of an empty log (INVALID_INPUT)', async () => {
      const empty = signNote(`${ORIGIN}\n0\n${createHash('sha256').update('').digest('base64')}\n`, [{name: ORIGIN, signer: key}])
      expect(await code(sampleControl(fleet.repo, opts({control: 'AU-2', checkpointText: empty})))).toBe('INVALID_INPUT')
    })
    it('a history that does not verify (VERIFICATION_FAILED)', async () => {
      expect(await code(sampleControl(fleet.repo, opts({anchor: null})))).toBe('VERIFICATION_FAILED')
    })
  })
})
