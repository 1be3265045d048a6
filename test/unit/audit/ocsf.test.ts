/**
 * Every event kind the audit log writes validates against the OCSF definitions vendored in
 * test/fixtures/ocsf (class, profiles, objects, dictionary types, enums); and the validator
 * itself catches each way an event can be wrong.
 */
import {describe, expect, it} from 'vitest'
import {
  approvalEvent,
  authenticationEvent,
  bundlePublishEvent,
  bundlePullEvent,
  checkpointEvent,
  egressDecisionEvent,
  gateFindingEvent,
  logRecoveryEvent,
  OCSF_VERSION,
  outcomeEvent,
  toolDecisionEvent,
  type AuditEvent,
} from '../../../control-plane/audit/ocsf.js'
import {redactEvent} from '../../../control-plane/audit/redact.js'
import {AirlockError} from '../../../control-plane/errors.js'
import type {AuthorizationRecord, Plan} from '../../../control-plane/plan/plan.js'
import {OcsfSchema, type ProblemKind} from './ocsf-validate.js'

const schema = new OcsfSchema()
const now = new Date('2026-12-01T10:00:00.000Z')
const host = 'ci-runner-7'
const toolVersion = '0.9.0'
const D = 'a'.repeat(64)

function plan(extra: Partial<Plan> = {}): Plan {
  return {
    apiVersion: 'airlock/v1',
    kind: 'Plan',
    operation: 'promote',
    request: {kind: 'promote', image: 'agent-base', to: 'stable'},
    summary: 'promote agent-base to stable',
    reason: 'weekly release',
    requestedBy: {actor: 'alice', via: 'cli'},
    createdAt: now.toISOString(),
    branch: 'refs/heads/main',
    baseCommit: 'b'.repeat(40),
    inputs: [],
    details: {},
    subjects: [{name: 'registry.example/agent-base', digest: {sha256: D}}],
    changes: [{path: 'manifests/images/agent-base.yaml', action: 'modify', before: 'x', after: 'y'}],
    receiptPath: 'docs/evidence/promote.json',
    digest: `sha256:${'c'.repeat(64)}`,
    ...extra,
  }
}

const auth = (decision: 'allow' | 'deny'): AuthorizationRecord => ({
  decision,
  action: 'Airlock::Action::"Promote"',
  principal: 'Airlock::User::"alice"',
  authenticated: true,
  identity: 'alice',
  resource: 'Airlock::Channel::"agent-base/stable"',
  reasons: decision === 'allow' ? ['release-managers (policies/global/promote.cedar:3)'] : [],
  errors: [],
  failedClosed: false,
  policySetDigest: `sha256:${'d'.repeat(64)}`,
  note: null,
})

const ctx = {now, actor: 'alice', host, toolVersion, mode: 'apply'}

function valid(event: AuditEvent): void {
  expect(schema.validate(event)).toEqual([])
  expect(event.type_uid).toBe(event.class_uid * 100 + event.activity_id)
  expect(event.metadata.version).toBe(OCSF_VERSION)
  expect(event.time).toBe(now.getTime())
  // Redacted as the store writes it (IP addresses too), it is still the same valid event.
  expect(schema.validate(redactEvent(event, {key: Buffer.alloc(32, 1), ipAddresses: true}))).toEqual([])
}

describe('the vendored schema', () => {
  it('is the version the events name', () => {
    expect(schema.version).toBe(OCSF_VERSION)
  })
})

describe('outcome events (API Activity 6003)', () => {
  it('an applied promotion with an allow decision: Update, Success, security_control with the deciding policy', () => {
    const e = outcomeEvent({status: 'applied', plan: plan({authorization: auth('allow')}), applied: {commit: 'e'.repeat(40), receipt: 'docs/evidence/promote.json', planDigest: 'x'}}, ctx)
    valid(e)
    expect(e).toMatchObject({class_uid: 6003, activity_id: 3, status_id: 1, action_id: 1, disposition_id: 1, policy: {uid: 'release-managers'}, api: {operation: 'promote', request: {uid: `sha256:${'c'.repeat(64)}`}}})
    expect(e.metadata.profiles).toContain('security_control')
    expect(e.resources).toEqual([{name: 'registry.example/agent-base', uid: `sha256:${D}`, type: 'subject'}, {uid: 'Airlock::Channel::"agent-base/stable"', type: 'cedar resource'}])
    expect((e.unmapped as {airlock: Record<string, unknown>}).airlock).toMatchObject({commit: 'e'.repeat(40), base_commit: 'b'.repeat(40), reason: 'weekly release'})
  })

  it('a denied authorization planned: Failure, Denied/Blocked, the refusal code as status_code', () => {
    const denial = new AirlockError('DENIED', 'policy denies promote')
    const e = outcomeEvent({status: 'planned', plan: plan({authorization: auth('deny')}), refusal: denial, checkFailed: false}, {...ctx, mode: 'plan'})
    valid(e)
    expect(e).toMatchObject({status_id: 2, status_code: 'DENIED', action_id: 2, action: 'Denied', disposition_id: 2, is_alert: true})
  })

  it('a refusal before any plan: Failure with the operation from the context', () => {
    const e = outcomeEvent({status: 'refused', plan: null, error: new AirlockError('STALE_PLAN', 'HEAD moved')}, {...ctx, operation: 'rollback'})
    valid(e)
    expect(e).toMatchObject({activity_id: 3, status_id: 2, status_code: 'STALE_PLAN', api: {operation: 'rollback', response: {code: 3, error: 'STALE_PLAN'}}})
    expect(e.metadata.profiles).not.toContain('security_control')
  })

  it('a hand edit deleting files is a Delete; an operation without a mapping is Other', () => {
    const del = outcomeEvent({status: 'noop', plan: plan({operation: 'change', changes: [{path: 'manifests/x.yaml', action: 'delete', before: 'a', after: null}]})}, ctx)
    valid(del)
    expect(del.activity_id).toBe(4)
    const other = outcomeEvent({status: 'refused', plan: null, error: new AirlockError('USAGE', 'bad flag')}, {...ctx, operation: 'weird'})
    valid(other)
    expect(other).toMatchObject({activity_id: 99, activity_name: 'Other'})
  })

  it('with the attestation the store adds (record_integrity), it still validates', () => {
    const e = outcomeEvent({status: 'saved', plan: plan(), savedTo: '/tmp/plan.json'}, ctx)
    const fp = (v: string) => ({algorithm_id: 3, value: v})
    const attested = {attestation_list: [{fingerprint: fp('1'.repeat(64)), chain_uid: 'airlock.audit/h/0123456789abcdef', prev_event: {fingerprint: fp('2'.repeat(64)), uid: '4'}, uid: '5'}], ...e}
    expect(schema.validate(attested)).toEqual([])
  })
})

describe('authentication events (3002)', () => {
  it('an accepted token', () => {
    const e = authenticationEvent({now, accepted: true, subject: 'repo:org/fleet:ref:refs/heads/main', issuer: 'https://token.actions.githubusercontent.com', audience: 'airlock', via: 'jwt', host, toolVersion})
    valid(e)
    expect(e).toMatchObject({class_uid: 3002, category_uid: 3, activity_id: 1, status_id: 1, auth_protocol_id: 4})
  })
  it('a failed token, with no subject to believe', () => {
    const e = authenticationEvent({now, accepted: false, reason: 'signature does not verify', via: 'policy-serve', host, toolVersion})
    valid(e)
    expect(e).toMatchObject({status_id: 2, status_detail: 'signature does not verify', user: {name: 'unknown'}})
  })
})

describe('gate findings (Compliance Finding 2003)', () => {
  const base = {now, suite: 'preflight', run: {commit: 'f'.repeat(40), result: 'FAILED', host}, toolVersion}
  it('a failed gate is compliance Fail', () => {
    const e = gateFindingEvent({...base, gate: {id: 'history', uses: 'builtin/history', status: 'fail', reason: 'unsigned commit', mode: 'enforce', required: true}})
    valid(e)
    expect(e).toMatchObject({class_uid: 2003, category_uid: 2, compliance: {control: 'history', status_id: 3, status: 'Fail'}, severity_id: 4})
  })
  it('a passed gate, a shadow failure (Warning) and a gate that did not run (Other: Not Run)', () => {
    for (const [status, mode, id] of [['pass', 'enforce', 1], ['fail', 'shadow', 2], ['not_run', 'enforce', 99]] as const) {
      const e = gateFindingEvent({...base, gate: {id: 'g', run: 'make test', status, reason: 'r', mode, required: false}})
      valid(e)
      expect((e.compliance as {status_id: number}).status_id).toBe(id)
    }
  })
})

describe('decisions (6003 with security_control)', () => {
  const policy = {file: 'manifests/tool-policy.yaml', sha256: D}
  it('a denied tool call keeps only the parameters’ digest and size', () => {
    const e = toolDecisionEvent({now, host, toolVersion, actor: 'session-42', policy, rule: 'spec.deny[0] shell.exec', tool: 'shell.exec', decision: 'deny', parameters: {cmd: 'cat /etc/shadow', token: 'hunter2'}})
    valid(e)
    expect(e).toMatchObject({activity_id: 99, activity_name: 'Tool Call', action_id: 2, disposition: 'Blocked', policy: {name: policy.file, desc: 'spec.deny[0] shell.exec'}})
    const json = JSON.stringify(e)
    expect(json).not.toContain('hunter2')
    expect(json).not.toContain('/etc/shadow')
    expect((e.unmapped as {airlock: {parameters: {size: number; sha256: string}}}).airlock.parameters).toEqual({sha256: expect.stringMatching(/^[0-9a-f]{64}$/), size: '{"cmd":"cat /etc/shadow","token":"hunter2"}'.length})
  })
  it('a tool call held for approval is a Challenge', () => {
    const e = toolDecisionEvent({now, host, toolVersion, actor: 's', policy, rule: 'spec.allow[1] deploy (approval)', tool: 'deploy', decision: 'needs_approval', parameters: []})
    valid(e)
    expect(e).toMatchObject({action_id: 2, disposition_id: 23, disposition: 'Challenge'})
  })
  it('egress allowed and denied, the rule as firewall_rule', () => {
    for (const decision of ['allow', 'deny'] as const) {
      const e = egressDecisionEvent({now, host, toolVersion, actor: 's', policy: {file: 'manifests/egress.yaml', sha256: D}, rule: 'spec.allow[2] *.pypi.org', destination: {host: 'files.pypi.org', port: 443}, decision})
      valid(e)
      expect(e).toMatchObject({dst_endpoint: {hostname: 'files.pypi.org', port: 443}, firewall_rule: {name: 'spec.allow[2] *.pypi.org'}, action_id: decision === 'allow' ? 1 : 2})
    }
  })
  it('approvals issued, consumed and replayed', () => {
    const ids = {issued: 1, consumed: 3, replayed: 99}
    for (const kind of ['issued', 'consumed', 'replayed'] as const) {
      const e = approvalEvent({now, host, toolVersion, actor: 'bob', policy, kind, tool: 'deploy', nonce: 'AAAAAAAAAAAAAAAAAAAAAA', paramsDigest: `sha256:${D}`, approvedBy: 'carol', expiresAt: '2026-12-01T11:00:00.000Z'})
      valid(e)
      expect(e).toMatchObject({activity_id: ids[kind], status_id: kind === 'replayed' ? 2 : 1, action_id: kind === 'replayed' ? 2 : 1})
    }
  })
})

describe('policy bundles', () => {
  it('a pull and a publish (6003 Read, Create), refusals as failures with their code', () => {
    const base = {now, host, toolVersion, scope: 'org:acme', version: 3, digest: `sha256:${D}`}
    const pull = bundlePullEvent({...base, server: 'oci://127.0.0.1:5000/p:org-acme', effective: 'fetched', reason: 'v3 verified', failure: null})
    valid(pull)
    expect(pull).toMatchObject({activity_id: 2, status_id: 1, api: {operation: 'policy pull'}})
    const pub = bundlePublishEvent({...base, destination: 'oci://127.0.0.1:5000/p', effective: 'published', reason: 'pushed org-acme', failure: null})
    valid(pub)
    expect(pub).toMatchObject({activity_id: 1, type_uid: 600301, api: {operation: 'policy publish'}, unmapped: {airlock: {destination: 'oci://127.0.0.1:5000/p', version: 3}}})
    const refused = bundlePublishEvent({...base, destination: 'oci://r/p', effective: 'refused', reason: 'older', failure: {code: 'DOWNGRADE', message: 'older'}})
    valid(refused)
    expect(refused).toMatchObject({status_id: 2, status_code: 'DOWNGRADE'})
  })
})

describe('the log’s own events', () => {
  it('a recovered torn tail and a checkpoint', () => {
    const r = logRecoveryEvent({now, offset: 4096, length: 17, sha256: D, host, toolVersion})
    valid(r)
    expect(r).toMatchObject({activity_id: 99, activity_name: 'Recover'})
    const c = checkpointEvent({now, origin: 'airlock.audit/h/0123456789abcdef', size: 10, root: 'AAAA', host, toolVersion})
    valid(c)
    expect(c).toMatchObject({activity_id: 1, unmapped: {airlock: {checkpoint: {size: 10}}}})
  })
})

describe('the validator', () => {
  const good = () => structuredClone(checkpointEvent({now, origin: 'o', size: 1, root: 'r', host, toolVersion})) as Record<string, any>
  const kinds = (e: unknown): ProblemKind[] => schema.validate(e).map((p) => p.kind)

  it('a missing required attribute (top level, and inside an object)', () => {
    const e = good()
    delete e.src_endpoint
    expect(kinds(e)).toEqual(['missing'])
    const f = good()
    delete f.api.operation
    expect(schema.validate(f)).toEqual([expect.objectContaining({kind: 'missing', path: 'api.operation'})])
    const g = good()
    delete g.metadata.product
    expect(schema.validate(g)).toEqual([expect.objectContaining({kind: 'missing', path: 'metadata.product'})])
  })
  it('a wrong type: a string for an integer, a number for a string, an object for an array, a bad hostname-less endpoint', () => {
    const e = good()
    e.severity_id = '1'
    expect(kinds(e)).toEqual(['type'])
    const f = good()
    f.api.operation = 7
    expect(kinds(f)).toEqual(['type'])
    const g = good()
    g.metadata.profiles = 'record_integrity'
    expect(kinds(g)).toContain('type')
    const h = good()
    h.time = 1.5
    expect(kinds(h)).toEqual(['type'])
    const i = good()
    i.src_endpoint = {ip: '999.1.1.1'}
    expect(kinds(i)).toEqual(['type'])
  })
  it('a bad enum value, and a caption that does not match its _id', () => {
    const e = good()
    e.severity_id = 42
    expect(kinds(e)).toEqual(['enum'])
    const f = good()
    f.status = 'Failure'
    expect(schema.validate(f)).toEqual([expect.objectContaining({kind: 'sibling', path: 'status'})])
    const g = good()
    g.activity_id = 99
    g.type_uid = 600399
    delete g.type_name
    delete g.activity_name
    expect(kinds(g)).toEqual(['sibling'])
  })
  it('an unknown attribute (top level and nested); the same data under unmapped is fine', () => {
    const e = good()
    e.airlock_commit = 'x'
    expect(kinds(e)).toEqual(['unknown'])
    const f = good()
    f.api.commit = 'x'
    expect(kinds(f)).toEqual(['unknown'])
    const g = good()
    g.unmapped.airlock_commit = {any: ['thing']}
    expect(kinds(g)).toEqual([])
  })
  it('a profile attribute without its profile, and a profile the class does not take', () => {
    const e = good()
    e.action_id = 1
    expect(kinds(e)).toEqual(['profile'])
    const f = good()
    f.metadata.profiles = ['record_integrity', 'incident']
    expect(kinds(f)).toEqual(['profile'])
  })
  it('classification: a wrong type_uid, a wrong category, an unknown class, an empty endpoint (constraint)', () => {
    const e = good()
    e.type_uid = 600303
    expect(kinds(e)).toEqual(['classification'])
    const f = good()
    f.category_uid = 3
    expect(kinds(f)).toEqual(['classification'])
    const g = good()
    g.class_uid = 6999
    expect(kinds(g)).toEqual(['classification'])
    const h = good()
    h.src_endpoint = {port: 22}
    expect(kinds(h)).toEqual(['constraint'])
  })
  it('a metadata.version other than the vendored schema’s', () => {
    const e = good()
    e.metadata.version = '1.2.0'
    expect(kinds(e)).toEqual(['version'])
  })
})
