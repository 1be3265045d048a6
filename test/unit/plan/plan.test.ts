/** plan/plan.ts: what parsePlan accepts of a saved plan, and every way it refuses one. */
import {describe, expect, it} from 'vitest'
import {digestOfJson} from '../../../control-plane/crypto/digest.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {parsePlan, sealPlan, serializePlan, type UnsignedPlan} from '../../../control-plane/plan/plan.js'

const base: UnsignedPlan = {
  apiVersion: 'airlock/v1',
  kind: 'Plan',
  operation: 'promote',
  request: {kind: 'promote', image: 'agent-runner', to: 'canary', digest: `sha256:${'a'.repeat(64)}`},
  summary: 'promote',
  reason: '',
  requestedBy: {actor: 'ci', via: 'ci'},
  createdAt: '2026-12-01T12:00:00Z',
  branch: 'refs/heads/main',
  baseCommit: 'b'.repeat(40),
  inputs: [{path: 'manifests/images/agent-runner.yaml', oid: 'c'.repeat(40)}],
  details: {},
  subjects: [],
  changes: [{path: 'manifests/images/agent-runner.yaml', action: 'modify', before: 'a', after: 'b'}],
  receiptPath: 'docs/evidence/x.json',
} as unknown as UnsignedPlan

/** A saved plan as an attacker edits it: into shapes the Plan type forbids, so loosely typed on purpose. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Hostile = any

/** A plan edited and sealed again, as an attacker with the file can. */
const resealed = (edit: (p: Hostile) => void) => {
  const p: Hostile = structuredClone(base)
  edit(p)
  return JSON.stringify({...p, digest: digestOfJson(p)})
}

describe('parsePlan', () => {
  it('reads back what serializePlan wrote', () => {
    const plan = sealPlan(base)
    expect(parsePlan(serializePlan(plan), 'p.json', DEFAULT_LIMITS)).toEqual(plan)
  })

  it('refuses an edit that was not sealed again (PLAN_TAMPERED)', () => {
    const text = serializePlan(sealPlan(base)).replace('"summary": "promote"', '"summary": "harmless"')
    expect(() => parsePlan(text, 'p.json', DEFAULT_LIMITS)).toThrowAirlockError('PLAN_TAMPERED')
  })

  it.each([
    ['unknown request kind', (p: Hostile) => (p.request.kind = 'format-disk')],
    ['request field not a string', (p: Hostile) => (p.request.image = 5)],
    ['prototype key in the request', (p: Hostile) => (p.request = JSON.parse(`{"__proto__": {}, "kind": "promote"}`))],
    ['reason not a string', (p: Hostile) => (p.reason = 5)],
    ['no requester', (p: Hostile) => (p.requestedBy = null)],
    ['bad time', (p: Hostile) => (p.createdAt = 'soon')],
    ['short base commit', (p: Hostile) => (p.baseCommit = 'abc')],
    ['branch outside refs/heads', (p: Hostile) => (p.branch = 'refs/heads/../../HEAD')],
    ['path into .git', (p: Hostile) => (p.changes[0].path = '.git/config')],
    ['absolute path', (p: Hostile) => (p.inputs[0].path = '/etc/passwd')],
  ])('refuses a resealed plan with %s (PLAN_INVALID)', (_what, edit) => {
    expect(() => parsePlan(resealed(edit), 'p.json', DEFAULT_LIMITS)).toThrowAirlockError('PLAN_INVALID')
  })

  it('refuses deep nesting and oversized files before parsing (TOO_LARGE)', () => {
    expect(() => parsePlan(`{"x": ${'['.repeat(5000)}${']'.repeat(5000)}}`, 'p.json', DEFAULT_LIMITS)).toThrowAirlockError('TOO_LARGE')
    expect(() => parsePlan(' '.repeat(DEFAULT_LIMITS.maxFileBytes + 1), 'p.json', DEFAULT_LIMITS)).toThrowAirlockError('TOO_LARGE')
  })
})
