import type {EntityUid} from '../policy/engine.js'
import type {Identity} from '../identity/jwt.js'
import type {Limits} from '../limits.js'
import {loadTrust, parseImage} from '../manifests/load.js'
import {kindOf} from '../manifests/kinds.js'
import type {AuthorizationRecord, PlannedChange} from '../plan/plan.js'
import {loadPolicyTreeAt} from '../policy/repo-tree.js'
import type {Repository} from '../repo/repository.js'
import type {Draft} from './draft.js'

/** The Cedar resource a change to `path` is authorized as (ChangeDesiredState on its kind, from the kinds table). */
export function resourceOfPath(path: string, text: string | null): string {
  return kindOf(path, text)?.resource ?? 'Repository'
}

/** Channels whose pin (digest or rollback target) an image manifest change touches; all of a new or removed image's. */
function channelsTouched(change: PlannedChange, limits: Limits): string[] {
  const read = (text: string | null) => {
    if (text === null) return {}
    try {
      return parseImage(text, change.path, '', limits).channels
    } catch {
      return {}
    }
  }
  const before = read(change.before)
  const after = read(change.after)
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((ch) => JSON.stringify(before[ch]) !== JSON.stringify(after[ch]))
}

export interface Ask {
  action: string
  resource: EntityUid
  attrs: Record<string, unknown>
}

/** An action on a channel of an image (Promote, Rollback, Override). */
export function channelAsk(action: string, image: string, channel: string): Ask {
  return {action, resource: {type: 'AgentKernel::Channel', id: `${image}/${channel}`}, attrs: {image, name: channel}}
}

/** What to ask Cedar: the draft's own asks, the channel move, or ChangeDesiredState once per kind of file touched. */
function asks(draft: Draft, limits: Limits): Ask[] {
  // A kind of change with an action of its own (publishing an audit checkpoint).
  if (draft.asks) return draft.asks
  // Recording a gate suite's result: ChangeDesiredState on the GateResult kind (the receipt is all it writes).
  if (draft.statement) return [{action: 'ChangeDesiredState', resource: {type: 'AgentKernel::DesiredState', id: 'GateResult'}, attrs: {kind: 'GateResult', channels: []}}]
  if (draft.channel) {
    const {action, image, channel} = draft.channel
    return [channelAsk(action, image, channel)]
  }
  const byKind = new Map<string, Set<string>>()
  for (const c of draft.changes) {
    const kind = resourceOfPath(c.path, c.after ?? c.before)
    const channels = byKind.get(kind) ?? new Set<string>()
    if (kind === 'GoldenImage') for (const ch of channelsTouched(c, limits)) channels.add(ch)
    byKind.set(kind, channels)
  }
  return [...byKind].map(([kind, channels]) => ({action: 'ChangeDesiredState', resource: {type: 'AgentKernel::DesiredState', id: kind}, attrs: {kind, channels: [...channels].sort()}}))
}

/**
 * May this principal make this change? Evaluated with the repository's own policies at the base
 * commit (never the policies a change brings), before anything is planned. No policies means no
 * permit, so deny (default deny). Several asks (kinds of file) must all be allowed.
 */
export async function authorizeDraft(repo: Repository, commit: string, draft: Draft, req: {identity: Identity; reason: string; limits: Limits}): Promise<AuthorizationRecord> {
  return authorizeAsks(repo, commit, asks(draft, req.limits), req)
}

/** Each ask with the repository's own policies at `commit`; all must be allowed (the first refusal decides). */
export async function authorizeAsks(repo: Repository, commit: string, list: Ask[], req: {identity: Identity; reason: string; limits: Limits}): Promise<AuthorizationRecord> {
  // The Cedar engine (a wasm module) loads only when there are policies to evaluate.
  const {formatUid, PolicyEngine} = await import('../policy/engine.js')
  const base = {
    action: [...new Set(list.map((a) => a.action))].join(', '),
    principal: formatUid(req.identity.principal),
    authenticated: req.identity.authenticated,
    identity: req.identity.source,
    resource: list.map((a) => formatUid(a.resource)).join(', '),
  }
  const tree = await loadPolicyTreeAt(repo, commit)
  if (!tree || tree.policies.length === 0) {
    return {...base, decision: 'deny', reasons: [], errors: [], failedClosed: false, policySetDigest: null, note: 'the repository has no policies/ at this commit; nothing is permitted'}
  }
  // No strict validation here (that is `policy validate`, in CI): a syntax error still stops the
  // engine with located messages, and a type error is an evaluation error, which fails closed.
  const trust = await loadTrust(repo, commit, req.limits)
  const engine = PolicyEngine.create(tree)
  const record: AuthorizationRecord = {...base, decision: 'allow', reasons: [], errors: [], failedClosed: false, policySetDigest: null, note: null}
  for (const ask of list) {
    const d = engine.authorize({
      principal: req.identity.principal,
      action: {type: 'AgentKernel::Action', id: ask.action},
      resource: ask.resource,
      context: req.reason ? {reason: req.reason} : {},
      entities: [...req.identity.entities, {uid: ask.resource, attrs: {...ask.attrs, org_id: trust.org}, parents: []}],
    })
    record.policySetDigest = d.policySetDigest
    record.failedClosed ||= d.failedClosed
    record.errors.push(...d.errors.map((e) => `${e.id}: ${e.message}`))
    const reasons = d.reasons.map((r) => `${r.id} (${r.file}:${r.line})`)
    if (d.decision === 'deny') {
      // The first refusal decides; its reasons are the ones shown.
      if (record.decision === 'allow') record.reasons = reasons
      record.decision = 'deny'
      if (list.length > 1) record.note = `denied for ${formatUid(ask.resource)}`
    } else if (record.decision === 'allow') record.reasons.push(...reasons.filter((r) => !record.reasons.includes(r)))
  }
  return record
}

/**
 * One record for two decisions on the same principal (the channel move, then Override of its
 * missing evidence): allowed only if both are; a refusal's reasons are the ones shown.
 */
export function mergeAuthorizations(first: AuthorizationRecord, then: AuthorizationRecord): AuthorizationRecord {
  const deny = first.decision === 'deny' ? first : then.decision === 'deny' ? then : null
  return {
    ...first,
    decision: deny ? 'deny' : 'allow',
    action: `${first.action}, ${then.action}`,
    reasons: deny ? deny.reasons : [...new Set([...first.reasons, ...then.reasons])],
    errors: [...first.errors, ...then.errors],
    failedClosed: first.failedClosed || then.failedClosed,
    policySetDigest: then.policySetDigest ?? first.policySetDigest,
    note: deny ? (deny === then ? `${then.action} denied${then.note ? `: ${then.note}` : ''}` : deny.note) : (first.note ?? then.note),
  }
}
