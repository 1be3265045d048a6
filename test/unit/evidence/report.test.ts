/**
 * The compliance report's model, Markdown and OSCAL over a real fleet (report-fleet.ts): receipts
 * from the verified history only, gaps said plainly, populations, and OSCAL Assessment Results
 * that validate against NIST's 1.2.2 JSON schema (test/fixtures/oscal/).
 */
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Ajv, type ValidateFunction} from 'ajv'
import addFormats from 'ajv-formats'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {signNote} from '../../../control-plane/audit/note.js'
import {loadSigner} from '../../../control-plane/crypto/keys.js'
import {AirlockError} from '../../../control-plane/errors.js'
import {buildReport} from '../../../control-plane/evidence/report/build.js'
import {CONTROLS, controlById, oscalControlId} from '../../../control-plane/evidence/report/controls.js'
import {cell, renderMarkdown} from '../../../control-plane/evidence/report/markdown.js'
import type {ReportCheckpoint, ReportModel} from '../../../control-plane/evidence/report/model.js'
import {renderOscal, uuidV5} from '../../../control-plane/evidence/report/oscal.js'
import {CONTROL_AREAS} from '../../../control-plane/gates/claims.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {git, ROOT} from '../../helpers.js'
import {NEXT, reportFleet, type ReportFleet} from './report-fleet.js'
import {execa} from 'execa'

const SCHEMA = join(ROOT, 'test', 'fixtures', 'oscal', 'oscal_assessment-results_schema.json')
let fleet: ReportFleet
let model: ReportModel
let validate: ValidateFunction
const now = () => new Date(Date.now() + 1000)

beforeAll(async () => {
  fleet = await reportFleet()
  model = await buildReport(fleet.repo, {frameworks: ['soc2', 'hipaa', 'fedramp'], limits: DEFAULT_LIMITS, now: now(), anchor: fleet.anchor})
  // NIST's schema is draft-07 (ajv's default class); its token pattern uses \p{L}: unicode regexps.
  const ajv = new Ajv({unicodeRegExp: true, allErrors: true})
  addFormats(ajv)
  validate = ajv.compile(JSON.parse(await readFile(SCHEMA, 'utf8')))
}, 180_000)
afterAll(() => fleet.cleanup())

const row = (m: ReportModel, id: string) => m.controls.find((c) => c.id === id)!

/** A signed checkpoint note of `origin` at `size`, as audit publish would commit it. */
async function checkpoint(origin: string, size: number, publishedAt: string, seed = 'x'): Promise<ReportCheckpoint> {
  const root = createHash('sha256').update(`${origin}/${size}/${seed}`).digest('base64')
  const text = signNote(`${origin}\n${size}\n${root}\n`, [{name: origin, signer: await loadSigner({file: fleet.key})}])
  return {path: `docs/evidence/audit/${size}.checkpoint`, origin, size, root, text, publishedAt}
}

describe('the control catalogue', () => {
  it('holds the controls of the issue, each with a claim area that exists and evidence that counts', () => {
    expect(CONTROLS.map((c) => c.id)).toEqual(['CC6.1', 'CC6.6', 'CC6.7', 'CC7.2', 'CC8.1', '164.312(a)(1)', '164.312(b)', '164.312(e)(1)', '164.312(e)(2)', 'AC-3', 'AU-2', 'SC-7', 'SC-13', 'CM-3'])
    for (const c of CONTROLS) {
      expect(CONTROL_AREAS.map((a) => a.id)).toContain(c.area)
      expect(c.counts.length).toBeGreaterThan(0)
    }
    expect(CONTROLS.filter((c) => c.population === 'log').map((c) => c.id)).toEqual(['CC7.2', '164.312(b)', 'AU-2'])
    expect(CONTROLS.filter((c) => c.population === 'commits').map((c) => c.id)).toEqual(['CC8.1', 'CM-3'])
    expect(controlById('ac-3')?.title).toBe('Access Enforcement')
    expect(controlById('164.312(E)(2)')?.framework).toBe('hipaa')
    expect(controlById('AC-4')).toBeUndefined()
  })

  it('gives OSCAL token ids (never starting with a digit, no parentheses)', () => {
    expect(oscalControlId({framework: 'hipaa', id: '164.312(a)(1)'})).toBe('hipaa-164.312-a-1')
    expect(oscalControlId({framework: 'fedramp', id: 'SC-13'})).toBe('sc-13')
    expect(oscalControlId({framework: 'soc2', id: 'CC6.1'})).toBe('cc6.1')
  })
})

describe('buildReport', () => {
  it('reads the verified history: receipts with their ledger times, keys at HEAD, timeline, gate runs', async () => {
    expect(model.repository).toEqual({head: fleet.head, anchor: fleet.anchor})
    const listed = (await git(fleet.dir, 'ls-files', 'docs/evidence/*.json')).split('\n').filter(Boolean)
    expect(model.receipts.map((r) => r.path).sort()).toEqual(listed.sort())
    expect(model.receipts.map((r) => r.kind).sort()).toEqual(['change', 'change', 'change', 'change', 'change', 'gate'])
    expect(model.timeline.map((t) => [t.operation, t.image, t.channel])).toEqual([['promote', 'agent-runner', 'canary'], ['rollback', 'agent-runner', 'canary']])
    expect(model.timeline[0]!.digest).toBe(NEXT)
    expect(model.gateRuns).toEqual([expect.objectContaining({suite: 'preflight', passed: 2, failed: 0, notRun: 0, result: 'PASSED'})])
    const trust = await readFile(join(fleet.dir, 'manifests', 'trust.yaml'), 'utf8')
    expect(model.keys).toHaveLength(1)
    expect(trust).toContain(`publicKey: ${model.keys[0]!.publicKey}`)
    expect(model.keys[0]!.roles).toEqual(['evidence', 'audit'])
  })

  it('states the gap of log controls with no published checkpoint, and has no population for them', () => {
    for (const id of ['AU-2', 'CC7.2', '164.312(b)']) {
      expect(row(model, id)).toMatchObject({status: 'gap', populations: []})
      expect(row(model, id).gap).toContain('no audit checkpoint has been published')
    }
  })

  it('evidences change controls with receipts and the host-validated history claim; population anchor..HEAD', async () => {
    const cm3 = row(model, 'CM-3')
    expect(cm3).toMatchObject({status: 'evidenced', claimLevel: 'host-validated', gap: null})
    expect(cm3.evidence.filter((e) => e.kind === 'receipt').map((e) => e.summary.split(':')[0])).toEqual(['change', 'rollback', 'promote', 'image-sign', 'init'])
    expect(cm3.evidence.filter((e) => e.kind === 'gate')).toHaveLength(1)
    const count = Number(await git(fleet.dir, 'rev-list', '--count', `${fleet.anchor}..HEAD`))
    expect(cm3.populations).toEqual([expect.objectContaining({kind: 'commits', to: fleet.head, count, checkpoint: null})])
    expect(await git(fleet.dir, 'rev-list', `${fleet.anchor}..HEAD`)).toContain(cm3.populations[0]!.from)
  })

  it('marks a control partial when its gate area has no gate, and says so', () => {
    const ac3 = row(model, 'AC-3')
    expect(ac3.status).toBe('partial')
    expect(ac3.claimLevel).toBe('none')
    expect(ac3.gap).toContain('no gate covers the policy area')
    // The receipts that record Cedar's decision (not init's: nothing to authorize against yet); the policies at HEAD count too.
    expect(ac3.evidence.filter((e) => e.kind === 'receipt').map((e) => e.summary.split(':')[0])).toEqual(['change', 'rollback', 'promote', 'image-sign'])
    expect(ac3.evidence.some((e) => e.kind === 'policy' && e.ref === 'policies/global/control-plane.cedar')).toBe(true)
  })

  it('keeps to the frameworks asked for, and caps the receipts a control names', async () => {
    const only = await buildReport(fleet.repo, {frameworks: ['fedramp'], limits: DEFAULT_LIMITS, now: now(), anchor: fleet.anchor, maxRefs: 2})
    expect(only.controls.map((c) => c.id)).toEqual(['AC-3', 'AU-2', 'SC-7', 'SC-13', 'CM-3'])
    expect(row(only, 'CM-3').evidence.filter((e) => e.kind === 'receipt')).toHaveLength(2)
  })

  it('bounds log populations by the newest published checkpoint of each origin', async () => {
    const checkpoints = [await checkpoint('airlock.audit/a', 5, '2026-01-01T00:00:00Z'), await checkpoint('airlock.audit/a', 9, '2026-01-02T00:00:00Z'), await checkpoint('airlock.audit/b', 3, '2026-01-02T00:00:00Z')]
    const m = await buildReport(fleet.repo, {frameworks: ['fedramp'], limits: DEFAULT_LIMITS, now: now(), anchor: fleet.anchor, checkpoints})
    const au2 = row(m, 'AU-2')
    expect(au2.populations.map((p) => [p.checkpoint!.origin, p.from, p.to, p.count])).toEqual([['airlock.audit/a', '0', '8', 9], ['airlock.audit/b', '0', '2', 3]])
    expect(au2.populations[0]!.checkpoint!.root).toBe(checkpoints[1]!.root)
    expect(au2.status).toBe('evidenced')
    expect(au2.evidence.filter((e) => e.kind === 'checkpoint').map((e) => e.ref)).toEqual(['docs/evidence/audit/9.checkpoint', 'docs/evidence/audit/3.checkpoint'])
    expect(m.checkpoints).toHaveLength(3)
  })

  it('refuses a history that does not verify (VERIFICATION_FAILED): a receipt edited after it was committed', async () => {
    const copy = `${fleet.dir}-tampered`
    await execa('cp', ['-a', fleet.dir, copy])
    const receipt = model.timeline[0]!.receipt
    const text = await readFile(join(copy, receipt), 'utf8')
    const {writeFile} = await import('node:fs/promises')
    await writeFile(join(copy, receipt), text.replace(/"payload": "./, '"payload": "A'))
    await git(copy, 'commit', '-qam', 'edit a receipt')
    const error = await buildReport(await Repository.open(copy), {frameworks: ['soc2'], limits: DEFAULT_LIMITS, now: now(), anchor: fleet.anchor}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AirlockError)
    expect((error as AirlockError).code).toBe('VERIFICATION_FAILED')
    const codes = ((error as AirlockError).details.problems as Array<{code: string; receipt?: string}>).map((p) => p.code)
    expect(codes).toContain('RECEIPT_MODIFIED')
  })

  it('refuses without a pinned trust anchor (VERIFICATION_FAILED naming ANCHOR_NOT_PINNED)', async () => {
    const error = await buildReport(fleet.repo, {frameworks: ['soc2'], limits: DEFAULT_LIMITS, now: now(), anchor: null}).catch((e: unknown) => e)
    expect((error as AirlockError).code).toBe('VERIFICATION_FAILED')
    expect((error as AirlockError).message).toContain('ANCHOR_NOT_PINNED')
  })
})

describe('renderMarkdown', () => {
  it('has the matrix per framework, the gaps, populations with how to sample, the timeline and pass rates', () => {
    const md = renderMarkdown(model)
    for (const h of ['## SOC 2', '## HIPAA Security Rule', '## FedRAMP', '## Gaps', '## Populations and sampling', '## Timeline of promotions and rollbacks', '## Gate pass rates']) expect(md).toContain(h)
    expect(md).toMatch(/^\| AU-2 \| Event Logging \| GAP \| host-validated \| 1 gate \| no audit checkpoint has been published/m)
    expect(md).toMatch(/^\| CM-3 \| Configuration Change Control \| evidenced \| host-validated \| 5 receipts, 1 gate \|  \|$/m)
    expect(md).toContain('`airlock evidence sample --control CM-3 --size N`')
    expect(md).toMatch(/^\| \S+ \| promote \| agent-runner \| canary \| `sha256:a1a1/m)
    expect(md).toMatch(/^\| preflight \| 1 \| 1 \(100%\) \| 2\/2 \|/m)
  })

  it('keeps text from the model inside its cell: pipes, newlines and markup escaped', () => {
    expect(cell('a | b\nc <script>')).toBe('a \\| b c \\<script\\>')
    const hostile = {...model, controls: [{...row(model, 'AC-3'), gap: 'x | y\n# heading'}]}
    const md = renderMarkdown(hostile)
    expect(md).toContain('x \\| y \\# heading')
    expect(md).not.toMatch(/^# heading/m)
  })
})

/** The parts of an OSCAL Assessment Results document these tests read (the NIST schema checks the rest). */
interface OscalView {
  'assessment-results': {
    uuid: string
    metadata: {'oscal-version': string}
    'import-ap'?: unknown
    results: Array<{
      findings: Array<{target: {'target-id': string; type: string; status: {state: string; remarks?: string}}}>
      observations: Array<{title: string; methods: string[]; collected: string; 'relevant-evidence': Array<{href: string}>}>
      'reviewed-controls': {'control-selections': Array<{'include-controls': Array<{'control-id': string}>}>}
    }>
  }
}
const oscalOf = (m: typeof model): OscalView => renderOscal(m) as unknown as OscalView

describe('renderOscal', () => {
  it('validates against NIST OSCAL 1.2.2 assessment-results schema', () => {
    const doc = renderOscal(model)
    expect(validate(doc), JSON.stringify(validate.errors?.slice(0, 5))).toBe(true)
    const ar = (doc as unknown as OscalView)['assessment-results']
    expect(ar.metadata['oscal-version']).toBe('1.2.2')
    const result = ar.results[0]!
    expect(result.findings).toHaveLength(14)
    const au2 = result.findings.find((f) => f.target['target-id'] === 'au-2_smt')!
    expect(au2.target).toMatchObject({type: 'statement-id', status: {state: 'not-satisfied'}})
    expect(au2.target.status.remarks).toContain('no audit checkpoint has been published')
    expect(result.findings.find((f) => f.target['target-id'] === 'cm-3_smt')!.target.status.state).toBe('satisfied')
    // One observation per piece of evidence, pointing at its repository path.
    const paths = new Set(model.controls.flatMap((c) => c.evidence.map((e) => e.ref)))
    expect(new Set(result.observations.map((o) => o['relevant-evidence'][0]!.href))).toEqual(paths)
    expect(result.observations.find((o) => o.title.startsWith('gate '))!.methods).toEqual(['TEST'])
  })

  it('the same history gives the same document; another head, other uuids', () => {
    expect(JSON.stringify(renderOscal(model))).toBe(JSON.stringify(renderOscal(structuredClone(model))))
    const other = oscalOf({...model, repository: {...model.repository, head: 'f'.repeat(40)}})
    expect(other['assessment-results'].uuid).not.toBe(oscalOf(model)['assessment-results'].uuid)
  })

  it('uuids are RFC 9562 version 5 (checked against a known vector)', () => {
    // Python: uuid.uuid5(uuid.NAMESPACE_DNS, 'python.org')
    expect(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'python.org')).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d')
  })

  describe('when the document is broken, the schema rejects it', () => {
    const broken = (edit: (ar: OscalView['assessment-results']) => void) => {
      const doc = structuredClone(oscalOf(model))
      edit(doc['assessment-results'])
      return validate(doc)
    }
    it('a finding state OSCAL does not have', () => expect(broken((ar) => (ar.results[0]!.findings[0]!.target.status.state = 'error'))).toBe(false))
    it('no import-ap', () => expect(broken((ar) => delete ar['import-ap'])).toBe(false))
    it('a version-1 uuid', () => expect(broken((ar) => (ar.uuid = 'c232ab00-9414-11ec-b3c8-9f6bdeced846'))).toBe(false))
    it('a control id that is not a token', () => expect(broken((ar) => (ar.results[0]!['reviewed-controls']['control-selections'][0]!['include-controls'][0]!['control-id'] = '164.312(b)'))).toBe(false))
    it('a collected time without a time zone', () => expect(broken((ar) => (ar.results[0]!.observations[0]!.collected = '2026-01-01T00:00:00'))).toBe(false))
  })

  it('the vendored schema is the NIST release asset recorded in SOURCE.md', async () => {
    const bytes = await readFile(SCHEMA)
    const source = await readFile(join(ROOT, 'test', 'fixtures', 'oscal', 'SOURCE.md'), 'utf8')
    expect(source).toContain(createHash('sha256').update(bytes).digest('hex'))
    expect(JSON.parse(bytes.toString()).$id).toBe('http://csrc.nist.gov/ns/oscal/1.2.2/oscal-ar-schema.json')
  })
})
