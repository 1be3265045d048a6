import type {Identity} from '../identity/jwt.js'
import type {Limits} from '../limits.js'
import {loadTrust} from '../manifests/load.js'
import type {AuthorizationRecord} from '../plan/plan.js'
import {loadPolicyTreeAt} from '../policy/repo-tree.js'
import type {Repository} from '../repo/repository.js'

/**
 * May this principal move this channel? Evaluated with the repository's own policies at the
 * base commit, before anything is planned. No policies means no permit, so deny (default deny).
 */
export async function authorizeChange(
  repo: Repository,
  commit: string,
  req: {action: 'Promote' | 'Rollback'; image: string; channel: string; identity: Identity; reason: string; limits: Limits},
): Promise<AuthorizationRecord> {
  // The Cedar engine (a wasm module) loads only when there are policies to evaluate.
  const {formatUid, PolicyEngine} = await import('../policy/engine.js')
  const resource = {type: 'AgentKernel::Channel', id: `${req.image}/${req.channel}`}
  const base = {
    action: req.action,
    principal: formatUid(req.identity.principal),
    authenticated: req.identity.authenticated,
    identity: req.identity.source,
    resource: formatUid(resource),
  }
  const tree = await loadPolicyTreeAt(repo, commit)
  if (!tree || tree.policies.length === 0) {
    return {...base, decision: 'deny', reasons: [], errors: [], failedClosed: false, policySetDigest: null, note: 'the repository has no policies/ at this commit; nothing is permitted'}
  }
  // No strict validation here (that is `policy validate`, in CI): a syntax error still stops the
  // engine with located messages, and a type error is an evaluation error, which fails closed.
  const trust = await loadTrust(repo, commit, req.limits)
  const d = PolicyEngine.create(tree).authorize({
    principal: req.identity.principal,
    action: {type: 'AgentKernel::Action', id: req.action},
    resource,
    context: req.reason ? {reason: req.reason} : {},
    entities: [...req.identity.entities, {uid: resource, attrs: {image: req.image, name: req.channel, org_id: trust.org}, parents: []}],
  })
  return {
    ...base,
    decision: d.decision,
    reasons: d.reasons.map((r) => `${r.id} (${r.file}:${r.line})`),
    errors: d.errors.map((e) => `${e.id}: ${e.message}`),
    failedClosed: d.failedClosed,
    policySetDigest: d.policySetDigest,
    note: null,
  }
}
