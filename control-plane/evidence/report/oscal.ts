/**
 * The report as OSCAL Assessment Results 1.2.2 (`airlock evidence report --format oscal`): one
 * result whose reviewed controls are the report's, a finding per control (satisfied only when
 * evidenced) and an observation per piece of evidence pointing at its repository path.
 *
 * Every uuid is a version-5 UUID (RFC 9562 §5.5) of the head commit and what it names, so the
 * same history gives the same document, byte for byte, whenever it is generated.
 */
import {createHash} from 'node:crypto'
import {CONTROLS, oscalControlId} from './controls.js'
import type {ControlRow, EvidenceRef, ReportModel} from './model.js'
import {FRAMEWORK_TITLES} from './markdown.js'

export const OSCAL_VERSION = '1.2.2'
/** airlock's namespace for its own OSCAL props (a URI, as OSCAL asks; never fetched). */
export const AIRLOCK_NS = 'https://airlock.dev/ns/oscal'
/** The v5 namespace of every uuid airlock writes: uuidv5(URL namespace, AIRLOCK_NS). */
const URL_NAMESPACE = '6ba7b811-9dad-11d1-80b4-00c04fd430c8'

/** RFC 9562 version-5 UUID: SHA-1 of the namespace's bytes and the name, version and variant set. */
export function uuidV5(namespace: string, name: string): string {
  const h = createHash('sha1').update(Buffer.from(namespace.replace(/-/g, ''), 'hex')).update(name, 'utf8').digest()
  h[6] = (h[6]! & 0x0f) | 0x50
  h[8] = (h[8]! & 0x3f) | 0x80
  const x = h.subarray(0, 16).toString('hex')
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`
}

const NAMESPACE = uuidV5(URL_NAMESPACE, AIRLOCK_NS)

/** The href an auditor resolves in a clone of the repository at the head commit. */
const href = (ref: string) => ref.split('/').map(encodeURIComponent).join('/')

const METHOD: Record<EvidenceRef['kind'], 'EXAMINE' | 'TEST'> = {receipt: 'EXAMINE', policy: 'EXAMINE', checkpoint: 'EXAMINE', gate: 'TEST'}

/** A description must not be empty (OSCAL markup-multiline); model text is plain. */
const text = (s: string) => (s.trim() === '' ? '(none)' : s)

export function renderOscal(model: ReportModel): Record<string, unknown> {
  const head = model.repository.head
  const id = (what: string) => uuidV5(NAMESPACE, `${head}:${what}`)
  const observations = new Map<string, Record<string, unknown>>()
  for (const c of model.controls) {
    for (const e of c.evidence) {
      const key = `${e.kind}:${e.ref}`
      if (observations.has(key)) continue
      observations.set(key, {
        uuid: id(`observation:${key}`),
        title: `${e.kind} ${e.ref}`,
        description: text(e.summary),
        methods: [METHOD[e.kind]],
        types: ['control-objective'],
        collected: e.time ?? model.generatedAt,
        'relevant-evidence': [{href: href(e.ref), description: `${e.ref} in the repository at commit ${head}`}],
      })
    }
  }
  const findings = model.controls.map((c) => finding(c, id))
  const result = {
    uuid: id('result'),
    title: 'airlock evidence report',
    description: `Controls judged from the verified history at commit ${head} (trust anchor ${model.repository.anchor ?? 'none'}): signed receipts, gate claim levels and published audit checkpoints.`,
    start: model.receipts[0]?.time ?? model.generatedAt,
    end: model.generatedAt,
    'reviewed-controls': {
      'control-selections': model.frameworks.map((f) => ({
        description: FRAMEWORK_TITLES[f],
        props: [{name: 'framework', ns: AIRLOCK_NS, value: f}],
        'include-controls': CONTROLS.filter((c) => c.framework === f).map((c) => ({'control-id': oscalControlId(c)})),
      })),
    },
    ...(observations.size > 0 ? {observations: [...observations.values()]} : {}),
    ...(findings.length > 0 ? {findings} : {}),
  }
  return {
    'assessment-results': {
      uuid: id('assessment-results'),
      metadata: {
        title: 'airlock compliance report',
        'last-modified': model.generatedAt,
        version: head,
        'oscal-version': OSCAL_VERSION,
        props: [{name: 'head-commit', ns: AIRLOCK_NS, value: head}],
      },
      'import-ap': {href: 'assessment-plan.json', remarks: 'airlock writes no assessment plan: the controls assessed are the reviewed-controls of the result, each mapped to airlock evidence by the catalogue in control-plane/evidence/report/controls.ts.'},
      results: [result],
    },
  }
}

function finding(c: ControlRow, id: (what: string) => string): Record<string, unknown> {
  const control = oscalControlId(c)
  const related = c.evidence.map((e) => ({'observation-uuid': id(`observation:${e.kind}:${e.ref}`)}))
  return {
    uuid: id(`finding:${c.framework}:${c.id}`),
    title: `${c.id} ${c.title}`,
    description: text(c.feature),
    props: [
      {name: 'control', ns: AIRLOCK_NS, value: c.id},
      {name: 'status', ns: AIRLOCK_NS, value: c.status},
      ...(c.claimLevel ? [{name: 'claim-level', ns: AIRLOCK_NS, value: c.claimLevel}] : []),
    ],
    target: {
      type: 'statement-id',
      'target-id': `${control}_smt`,
      status: {state: c.status === 'evidenced' ? 'satisfied' : 'not-satisfied', ...(c.gap ? {remarks: c.gap} : {})},
    },
    ...(related.length > 0 ? {'related-observations': related} : {}),
  }
}
