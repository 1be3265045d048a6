/**
 * The audit log's events, as OCSF objects (docs/audit.md): API Activity (6003) for everything the
 * control plane does or decides, Authentication (3002) for tokens, Compliance Finding (2003) for
 * gate results. Builders are pure: the caller passes the time, the host and the tool's version;
 * the store adds `attestation_list` (the record_integrity profile) when it appends, and redacts
 * (audit/redact.ts) before anything reaches the disk.
 *
 * Checked in test/unit/audit/ocsf.test.ts against the OCSF definitions vendored in
 * test/fixtures/ocsf (required attributes, types, enums, profiles, type_uid arithmetic).
 */
import {canonicalJson, sha256Hex} from '../crypto/digest.js'
import {exitFor, type AirlockError} from '../errors.js'
import type {AuthorizationRecord, Plan} from '../plan/plan.js'
import type {Outcome} from '../pipeline/pipeline.js'

/**
 * The OCSF version the events are written against: the schema vendored for the tests. OCSF's
 * `record_integrity` profile and `attestation` object (which the log's hash chain uses) are, at
 * the vendored commit, in the unreleased 1.9.0 development line; see test/fixtures/ocsf/SOURCE.md.
 */
export const OCSF_VERSION = '1.9.0-dev'

/** One OCSF event: a plain JSON object (airlock's own fields under `unmapped.airlock`). */
export type AuditEvent = Record<string, unknown> & {
  class_uid: number
  category_uid: number
  activity_id: number
  type_uid: number
  time: number
  metadata: {version: string; product: {name: 'airlock'; vendor_name: string; version: string}; profiles: string[]}
}

export const PRODUCT_VENDOR = 'airlock'
/** Free text an event carries (a refusal's message, a reason) is cut to this many characters. */
export const MAX_EVENT_TEXT = 2048

const CATEGORY = {findings: {uid: 2, name: 'Findings'}, iam: {uid: 3, name: 'Identity & Access Management'}, application: {uid: 6, name: 'Application Activity'}} as const
const CLASS = {
  api: {uid: 6003, name: 'API Activity', category: CATEGORY.application},
  authentication: {uid: 3002, name: 'Authentication', category: CATEGORY.iam},
  compliance: {uid: 2003, name: 'Compliance Finding', category: CATEGORY.findings},
} as const

/** API Activity's activities (OCSF 6003). */
export const API_ACTIVITY = {Create: 1, Read: 2, Update: 3, Delete: 4, Other: 99} as const
export type ApiActivity = keyof typeof API_ACTIVITY

const SEVERITY = {Informational: 1, Low: 2, Medium: 3, High: 4} as const
type Severity = keyof typeof SEVERITY

/**
 * Free text cut to MAX_EVENT_TEXT. The log redacts after this, so the cut falls where a secret
 * cannot be split: after a whitespace (a token is kept whole or dropped whole), and a text with
 * none near the end is cut to nothing past its last whitespace at all.
 */
const text = (s: string): string => {
  if (s.length <= MAX_EVENT_TEXT) return s
  const space = s.slice(0, MAX_EVENT_TEXT).search(/\s\S*$/)
  return `${s.slice(0, space > 0 ? space : 0)}…`
}

/** The classification, time and metadata every event starts with. */
function header(cls: (typeof CLASS)[keyof typeof CLASS], activity: {id: number; name: string}, o: {now: Date; toolVersion: string; profiles: string[]; severity: Severity}): AuditEvent {
  return {
    activity_id: activity.id,
    activity_name: activity.name,
    category_uid: cls.category.uid,
    category_name: cls.category.name,
    class_uid: cls.uid,
    class_name: cls.name,
    type_uid: cls.uid * 100 + activity.id,
    type_name: `${cls.name}: ${activity.name}`,
    severity_id: SEVERITY[o.severity],
    severity: o.severity,
    time: o.now.getTime(),
    metadata: {
      version: OCSF_VERSION,
      product: {name: 'airlock', vendor_name: PRODUCT_VENDOR, version: o.toolVersion},
      // record_integrity: the store adds the attestation (the log's hash chain) to every event.
      profiles: ['record_integrity', ...o.profiles],
    },
  }
}

function status(ok: boolean, detail?: {code?: string; message?: string}): Record<string, unknown> {
  return {
    status_id: ok ? 1 : 2,
    status: ok ? 'Success' : 'Failure',
    ...(detail?.code ? {status_code: detail.code} : {}),
    ...(detail?.message ? {status_detail: text(detail.message)} : {}),
  }
}

/**
 * A decision's outcome in the security_control profile's terms: the action taken (Allowed /
 * Denied) and the disposition (Allowed / Blocked, or Challenge when a human approval is needed).
 */
type Verdict = 'allow' | 'deny' | 'needs_approval'
function control(verdict: Verdict, policy: {uid: string; name: string; version?: string; desc?: string}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const allowed = verdict === 'allow'
  const disposition = allowed ? {id: 1, name: 'Allowed'} : verdict === 'needs_approval' ? {id: 23, name: 'Challenge'} : {id: 2, name: 'Blocked'}
  return {
    action_id: allowed ? 1 : 2,
    action: allowed ? 'Allowed' : 'Denied',
    disposition_id: disposition.id,
    disposition: disposition.name,
    is_alert: !allowed,
    policy: {...policy, is_applied: true},
    ...extra,
  }
}

function apiActivity(
  activity: ApiActivity,
  o: {now: Date; toolVersion: string; host: string; actor: Record<string, unknown>; operation: string; ok: boolean; detail?: {code?: string; message?: string}; profiles?: string[]; severity?: Severity; activityName?: string},
): AuditEvent {
  const id = API_ACTIVITY[activity]
  const name = activity === 'Other' ? (o.activityName ?? 'Other') : activity
  return {
    ...header(CLASS.api, {id, name}, {now: o.now, toolVersion: o.toolVersion, profiles: o.profiles ?? [], severity: o.severity ?? (o.ok ? 'Informational' : 'Medium')}),
    ...status(o.ok, o.detail),
    actor: o.actor,
    api: {operation: o.operation},
    src_endpoint: {hostname: o.host},
  }
}

const airlockActor = (): Record<string, unknown> => ({app_name: 'airlock'})
const userActor = (name: string, uid?: string): Record<string, unknown> => ({user: {name, ...(uid ? {uid} : {})}, app_name: 'airlock'})

// ---------------------------------------------------------------------------------------------
// Pipeline outcomes

/** Operations that are not plans of the pipeline (repair, audit publish…) name their activity here too. */
const OPERATION_ACTIVITY: Record<string, ApiActivity> = {
  promote: 'Update',
  rollback: 'Update',
  'trust-add-key': 'Create',
  init: 'Create',
  'policy-bundle': 'Create',
  'image-sign': 'Create',
  'image-fetch-signature': 'Create',
  'gate-receipt': 'Create',
  'audit-publish': 'Create',
  repair: 'Update',
}

/** A hand edit (`change`) creates, deletes or updates, by what its files do. */
export function activityOf(operation: string, changes: Plan['changes'] = []): ApiActivity {
  if (operation === 'change' && changes.length > 0) {
    if (changes.every((c) => c.action === 'create')) return 'Create'
    if (changes.every((c) => c.action === 'delete')) return 'Delete'
    return 'Update'
  }
  return OPERATION_ACTIVITY[operation] ?? 'Other'
}

export interface OutcomeContext {
  now: Date
  /** Who asked (the requester's actor), as the command resolved it. */
  actor: string
  host: string
  toolVersion: string
  /** How far the run was asked to go: plan, save, apply, stage. */
  mode: string
  /** The operation, when the outcome carries no plan (a refusal before one was made). */
  operation?: string
  /** Inside a rollback drill's throwaway clone: the drill's id (a rehearsal, not a change of the fleet). */
  drill?: string
}

/** The deciding policies of an authorization: `id (file:line)` → {uid: id, name: the whole reference}. */
function decidingPolicies(a: AuthorizationRecord): Array<{uid: string; name: string}> {
  const list = a.reasons.length ? a.reasons : a.failedClosed ? a.errors : []
  return list.map((r) => ({uid: r.replace(/\s*\(.*\)$/, ''), name: r}))
}

function authorizationControl(a: AuthorizationRecord): Record<string, unknown> {
  const policies = decidingPolicies(a)
  const first = policies[0] ?? {uid: a.policySetDigest ?? 'default-deny', name: a.note ?? (a.decision === 'deny' ? 'no policy permits it (default deny)' : 'policy set')}
  return control(a.decision, {...first, ...(a.policySetDigest ? {version: a.policySetDigest} : {})}, {
    authorizations: (policies.length ? policies : [first]).map((p) => ({decision: a.decision, policy: p})),
  })
}

/**
 * The event of one pipeline outcome (the record step: applied, planned, saved, staged, noop,
 * refused). A refusal is a Failure whose status_code is the error's code; an authorization
 * decision on the plan adds the security_control profile (action, disposition, deciding policies).
 */
export function outcomeEvent(outcome: Outcome, ctx: OutcomeContext): AuditEvent {
  const plan = outcome.plan
  const operation = plan?.operation ?? ctx.operation ?? 'unknown'
  const error: AirlockError | null = outcome.status === 'refused' ? outcome.error : outcome.status === 'planned' ? outcome.refusal : null
  const auth = plan?.authorization
  const event = apiActivity(activityOf(operation, plan?.changes), {
    now: ctx.now,
    toolVersion: ctx.toolVersion,
    host: ctx.host,
    actor: userActor(ctx.actor, auth?.principal),
    operation,
    ok: error === null,
    ...(error ? {detail: {code: error.code, message: error.message}} : {}),
    profiles: auth ? ['security_control'] : [],
  })
  const applied = outcome.status === 'applied' ? outcome.applied : null
  event.api = {
    operation,
    ...(plan ? {request: {uid: plan.digest}} : {}),
    response: {code: error ? exitFor(error) : 0, message: outcome.status, ...(error ? {error: error.code, error_message: text(error.message)} : {})},
  }
  event.message = `${operation} ${outcome.status}${error ? `: ${error.code}` : ''}`
  // What the change is about: its subjects (image digests) and the Cedar resource it was authorized on.
  const resources = [
    ...(plan?.subjects ?? []).map((s) => ({name: s.name, uid: Object.entries(s.digest).map(([alg, hex]) => `${alg}:${hex}`)[0] ?? s.name, type: 'subject'})),
    ...(auth ? [{uid: auth.resource, type: 'cedar resource'}] : []),
  ]
  if (resources.length) event.resources = resources
  if (auth) Object.assign(event, authorizationControl(auth))
  event.unmapped = {
    airlock: {
      operation,
      outcome: outcome.status,
      mode: ctx.mode,
      ...(ctx.drill ? {drill: ctx.drill} : {}),
      ...(plan
        ? {
            base_commit: plan.baseCommit,
            plan_digest: plan.digest,
            reason: plan.reason,
            requested_by: plan.requestedBy,
            receipt_path: plan.receiptPath,
            subjects: plan.subjects,
            changes: plan.changes.map((c) => ({path: c.path, action: c.action})),
            ...(auth ? {authorization: {principal: auth.principal, action: auth.action, resource: auth.resource, decision: auth.decision, policies: auth.reasons, authenticated: auth.authenticated}} : {}),
          }
        : {}),
      ...(applied ? {commit: applied.commit, receipt: applied.receipt} : {}),
      ...(outcome.status === 'saved' ? {saved_to: outcome.savedTo} : {}),
      ...(error ? {error: {code: error.code}} : {}),
    },
  }
  return event
}

// ---------------------------------------------------------------------------------------------
// Authentication

export interface AuthenticationInput {
  now: Date
  accepted: boolean
  subject?: string
  issuer?: string
  audience?: string
  reason?: string
  /** Why it was refused, as an error code (e.g. the AirlockError's), when there is one. */
  code?: string
  /** Where the token was presented: the CLI's --token (JWT/OIDC) or the policy server. */
  via: 'jwt' | 'policy-serve'
  host: string
  toolVersion: string
}

/** A token accepted or refused: Authentication (3002), Logon, OpenID (the tokens are OIDC JWTs). */
export function authenticationEvent(i: AuthenticationInput): AuditEvent {
  return {
    ...header(CLASS.authentication, {id: 1, name: 'Logon'}, {now: i.now, toolVersion: i.toolVersion, profiles: [], severity: i.accepted ? 'Informational' : 'Medium'}),
    ...status(i.accepted, i.accepted ? undefined : {...(i.code ? {code: i.code} : {}), message: i.reason ?? 'the token was refused'}),
    message: `token ${i.accepted ? 'accepted' : 'refused'} (${i.via})`,
    auth_protocol_id: 4,
    auth_protocol: 'OpenID',
    // A refused token may have no subject that can be believed: the user is then unknown.
    user: i.subject ? {name: i.subject, uid: i.subject} : {name: 'unknown'},
    service: {name: i.via === 'policy-serve' ? 'airlock policy server' : 'airlock', ...(i.audience ? {uid: i.audience} : {})},
    dst_endpoint: {hostname: i.host},
    unmapped: {airlock: {via: i.via, ...(i.issuer ? {issuer: i.issuer} : {}), ...(i.audience ? {audience: i.audience} : {}), ...(i.reason ? {reason: i.reason} : {})}},
  }
}

// ---------------------------------------------------------------------------------------------
// Gate results

export interface GateFindingInput {
  now: Date
  suite: string
  gate: {id: string; uses?: string; run?: string; status: 'pass' | 'fail' | 'not_run'; reason: string; mode: string; required: boolean}
  run: {commit: string | null; result: string; host: string}
  toolVersion: string
}

const GATE_STATUS = {pass: {id: 1, name: 'Pass'}, fail: {id: 3, name: 'Fail'}, not_run: {id: 99, name: 'Not Run'}} as const

/**
 * One gate's result: Compliance Finding (2003), Create. The control is the gate; a gate that could
 * not run is `Not Run` (compliance status Other), never a pass; a failing shadow gate is a warning.
 */
export function gateFindingEvent(i: GateFindingInput): AuditEvent {
  const shadowFail = i.gate.status === 'fail' && i.gate.mode === 'shadow'
  const st = shadowFail ? {id: 2, name: 'Warning'} : GATE_STATUS[i.gate.status]
  const severity: Severity = i.gate.status === 'pass' ? 'Informational' : i.gate.status === 'not_run' ? 'Low' : i.gate.required && !shadowFail ? 'High' : 'Medium'
  return {
    ...header(CLASS.compliance, {id: 1, name: 'Create'}, {now: i.now, toolVersion: i.toolVersion, profiles: [], severity}),
    status_id: 1,
    status: 'New',
    message: `${i.suite}/${i.gate.id}: ${i.gate.status}`,
    finding_info: {uid: `${i.suite}/${i.gate.id}@${i.run.commit ?? 'worktree'}`, title: `${i.suite} gate ${i.gate.id}`, desc: text(i.gate.reason), created_time: i.now.getTime()},
    compliance: {control: i.gate.id, standards: [`airlock gate suite ${i.suite}`], status_id: st.id, status: st.name, status_details: [text(i.gate.reason)]},
    ...(i.run.commit ? {resources: [{uid: i.run.commit, type: 'git commit'}]} : {}),
    unmapped: {airlock: {suite: i.suite, gate: i.gate, run: i.run}},
  }
}

// ---------------------------------------------------------------------------------------------
// Tool, egress and approval decisions

/** The policy file that decided, by path and content hash. */
export interface PolicyRef {
  file: string
  sha256: string
}

interface DecisionBase {
  now: Date
  host: string
  toolVersion: string
  /** Who or what asked (a session, an agent, an operator). */
  actor: string
  policy: PolicyRef
  /** The rule that decided, as written in the policy file. */
  rule: string
}

/** A tool call's parameters as evidence: their RFC 8785 SHA-256 and size, never the values. */
export function parametersDigest(parameters: unknown): {sha256: string; size: number} {
  const json = canonicalJson(parameters ?? null)
  return {sha256: sha256Hex(json), size: Buffer.byteLength(json)}
}

const policyOf = (p: PolicyRef, rule: string) => ({uid: `sha256:${p.sha256}`, name: p.file, desc: rule})

export interface ToolDecisionInput extends DecisionBase {
  tool: string
  decision: Verdict
  /** The call's parameters: only their digest and size are kept. */
  parameters: unknown
}

/** A tool call allowed, denied or held for approval (6003 Other "Tool Call", security_control). */
export function toolDecisionEvent(i: ToolDecisionInput): AuditEvent {
  const params = parametersDigest(i.parameters)
  const event = apiActivity('Other', {now: i.now, toolVersion: i.toolVersion, host: i.host, actor: userActor(i.actor), operation: `tool ${i.tool}`, ok: i.decision === 'allow', activityName: 'Tool Call', profiles: ['security_control'], detail: i.decision === 'allow' ? undefined : {code: i.decision === 'deny' ? 'DENIED' : 'APPROVAL_REQUIRED', message: `${i.rule}`}})
  Object.assign(event, control(i.decision, policyOf(i.policy, i.rule)), {
    message: `tool ${i.tool}: ${i.decision} by ${i.rule}`,
    resources: [{name: i.tool, type: 'tool'}],
    unmapped: {airlock: {tool: i.tool, decision: i.decision, rule: i.rule, policy: i.policy, parameters: params}},
  })
  return event
}

export interface EgressDecisionInput extends DecisionBase {
  destination: {host: string; port: number}
  decision: 'allow' | 'deny'
}

/** A destination allowed or denied by the egress policy (6003 Other "Egress", security_control; the rule as firewall_rule). */
export function egressDecisionEvent(i: EgressDecisionInput): AuditEvent {
  const event = apiActivity('Other', {now: i.now, toolVersion: i.toolVersion, host: i.host, actor: userActor(i.actor), operation: 'egress', ok: i.decision === 'allow', activityName: 'Egress', profiles: ['security_control'], detail: i.decision === 'allow' ? undefined : {code: 'DENIED', message: i.rule}})
  Object.assign(event, control(i.decision, policyOf(i.policy, i.rule), {firewall_rule: {name: i.rule, uid: `${i.policy.file}#${i.rule}`}}), {
    message: `egress to ${i.destination.host}:${i.destination.port}: ${i.decision} by ${i.rule}`,
    dst_endpoint: {hostname: i.destination.host, port: i.destination.port},
    unmapped: {airlock: {destination: i.destination, decision: i.decision, rule: i.rule, policy: i.policy}},
  })
  return event
}

export interface ApprovalInput extends Omit<DecisionBase, 'rule'> {
  /** issued: signed by an approver; consumed: used by a call (once); replayed: presented again and refused. */
  kind: 'issued' | 'consumed' | 'replayed'
  tool: string
  /** The approval's identity (its nonce) and what it names: the parameters' digest, never the values. */
  nonce: string
  paramsDigest: string
  approvedBy: string
  expiresAt: string
  rule?: string
}

const APPROVAL_ACTIVITY: Record<ApprovalInput['kind'], ApiActivity> = {issued: 'Create', consumed: 'Update', replayed: 'Other'}

/** An approval issued, consumed or replayed (6003, security_control: a replay is denied). */
export function approvalEvent(i: ApprovalInput): AuditEvent {
  const ok = i.kind !== 'replayed'
  const rule = i.rule ?? (ok ? `approval ${i.kind}` : 'approval already used')
  const event = apiActivity(APPROVAL_ACTIVITY[i.kind], {now: i.now, toolVersion: i.toolVersion, host: i.host, actor: userActor(i.actor), operation: `tool-approval ${i.kind}`, ok, activityName: 'Replay', profiles: ['security_control'], detail: ok ? undefined : {code: 'APPROVAL_REPLAYED', message: rule}})
  Object.assign(event, control(ok ? 'allow' : 'deny', policyOf(i.policy, rule)), {
    message: `approval ${i.nonce} for ${i.tool} ${i.kind}`,
    resources: [{name: i.tool, type: 'tool'}],
    unmapped: {airlock: {approval: {kind: i.kind, nonce: i.nonce, tool: i.tool, params_digest: i.paramsDigest, approved_by: i.approvedBy, expires_at: i.expiresAt}, policy: i.policy, rule}},
  })
  return event
}

// ---------------------------------------------------------------------------------------------
// Policy bundles pulled by a host

export interface BundlePullInput {
  now: Date
  host: string
  toolVersion: string
  server: string
  scope: string
  /** What holds after the pull: fetched, unchanged, cached, default or deny-all. */
  effective: string
  reason: string
  version: number | null
  digest: string | null
  failure: {code: string; message: string} | null
}

/** A signed policy bundle pulled (6003 Read): which version now holds, or why the host fell back. */
export function bundlePullEvent(i: BundlePullInput): AuditEvent {
  const ok = i.failure === null && i.effective !== 'deny-all'
  const event = apiActivity('Read', {now: i.now, toolVersion: i.toolVersion, host: i.host, actor: airlockActor(), operation: 'policy pull', ok, ...(ok ? {} : {detail: {code: i.failure?.code ?? 'DENY_ALL', message: text(i.failure?.message ?? i.reason)}})})
  event.message = `policy bundle ${i.scope}: ${i.effective}${i.version !== null ? ` v${i.version}` : ''}`
  event.resources = [{name: i.scope, type: 'policy bundle', ...(i.digest ? {uid: i.digest} : {})}]
  event.unmapped = {airlock: {server: i.server, scope: i.scope, effective: i.effective, reason: text(i.reason), version: i.version, digest: i.digest, ...(i.failure ? {failure: {code: i.failure.code}} : {})}}
  return event
}

/** A signed policy bundle pushed to a registry (6003 Create): where, which version, or why refused. */
export function bundlePublishEvent(i: Omit<BundlePullInput, 'server'> & {destination: string}): AuditEvent {
  const ok = i.failure === null
  const event = apiActivity('Create', {now: i.now, toolVersion: i.toolVersion, host: i.host, actor: airlockActor(), operation: 'policy publish', ok, ...(ok ? {} : {detail: {code: i.failure?.code ?? 'REFUSED', message: text(i.failure?.message ?? i.reason)}})})
  event.message = `policy bundle publish ${i.scope}: ${i.effective}${i.version !== null ? ` v${i.version}` : ''}`
  event.resources = [{name: i.scope, type: 'policy bundle', ...(i.digest ? {uid: i.digest} : {})}]
  event.unmapped = {airlock: {destination: i.destination, scope: i.scope, effective: i.effective, reason: text(i.reason), version: i.version, digest: i.digest, ...(i.failure ? {failure: {code: i.failure.code}} : {})}}
  return event
}

// ---------------------------------------------------------------------------------------------
// The log's own events

/** A torn last line moved aside by the store before its next append (6003 Other "Recover"). */
export function logRecoveryEvent(i: {now: Date; offset: number; length: number; sha256: string; path?: string; host: string; toolVersion: string}): AuditEvent {
  const event = apiActivity('Other', {now: i.now, toolVersion: i.toolVersion, host: i.host, actor: airlockActor(), operation: 'audit recover', ok: true, activityName: 'Recover', severity: 'Medium'})
  event.message = `a torn tail of ${i.length} bytes at offset ${i.offset} was moved aside`
  // The key `audit verify` lists recoveries by (store.ts RECOVERY_MARKER).
  event.unmapped = {airlock_log_recovery: {offset: i.offset, length: i.length, sha256: i.sha256, path: i.path ?? `torn/${i.offset}.partial`}}
  return event
}

/** A checkpoint signed over the log (6003 Create). */
export function checkpointEvent(i: {now: Date; origin: string; size: number; root: string; host: string; toolVersion: string; keyid?: string}): AuditEvent {
  const event = apiActivity('Create', {now: i.now, toolVersion: i.toolVersion, host: i.host, actor: airlockActor(), operation: 'audit checkpoint', ok: true})
  event.message = `checkpoint of ${i.origin} at size ${i.size}`
  event.unmapped = {airlock: {checkpoint: {origin: i.origin, size: i.size, root: i.root, ...(i.keyid ? {keyid: i.keyid} : {})}}}
  return event
}
