import {AirlockError} from '../errors.js'
import {DEFAULT_LIMITS, type Limits} from '../limits.js'
import type {TrustPolicy} from '../manifests/models.js'
import type {BundlePayload} from './bundle.js'
import {loadVerifiedCache} from './pull.js'
import type {PolicySource, PolicyTree} from './source.js'

interface PrincipalEntity {
  uid: {type: string; id: string}
  attrs?: {org_id?: unknown}
  parents?: Array<{type: string; id: string}>
}

/**
 * The scopes whose bundles apply to a principal: global, its own org, its own teams, itself.
 * A principal never gets another org's or team's bundle.
 */
export function scopesFor(principal: PrincipalEntity): string[] {
  const org = typeof principal.attrs?.org_id === 'string' && principal.attrs.org_id ? principal.attrs.org_id : null
  const teams = (principal.parents ?? []).filter((p) => p.type.endsWith('::Team') && org && p.id.startsWith(`${org}/`)).map((p) => `team:${p.id}`)
  return ['global', ...(org ? [`org:${org}`] : []), ...teams, `user:${principal.uid.id}`]
}

export interface EffectivePolicy {
  tree: PolicyTree
  bundles: Array<{scope: string; version: number; digest: string}>
  skipped: Array<{scope: string; why: string}>
}

/**
 * The effective policy set from pulled bundles: the union of the principal's scopes, each
 * bundle verified again on load. Forbid wins across bundles because they are evaluated as one
 * Cedar policy set. Bundles must embed the same schema.
 */
export async function effectivePolicy(cacheDir: string, principal: PrincipalEntity, trust: TrustPolicy, now: Date, limits: Limits = DEFAULT_LIMITS): Promise<EffectivePolicy> {
  const bundles: EffectivePolicy['bundles'] = []
  const skipped: EffectivePolicy['skipped'] = []
  const payloads: BundlePayload[] = []
  for (const scope of scopesFor(principal)) {
    const cached = await loadVerifiedCache(cacheDir, scope, trust, now, limits)
    if (!cached) skipped.push({scope, why: 'no cached bundle'})
    else if ('problem' in cached) skipped.push({scope, why: cached.problem})
    else {
      payloads.push(cached.payload)
      bundles.push({scope, version: cached.payload.version, digest: cached.digest})
    }
  }
  const schema = payloads[0]?.schema ?? null
  if (payloads.some((p) => p.schema !== schema)) throw new AirlockError('INVALID_INPUT', `the cached bundles (${bundles.map((b) => b.scope).join(', ')}) embed different schemas; publish them from one policy tree`)
  const policies: PolicySource[] = []
  const seen = new Map<string, string>()
  for (const p of payloads) {
    for (const policy of p.policies) {
      if (seen.has(policy.id)) throw new AirlockError('INVALID_INPUT', `policy id ${policy.id} is in both the ${seen.get(policy.id)} and ${p.scope} bundles`)
      seen.set(policy.id, p.scope)
      policies.push({...policy, column: 1, offset: 0, scope: {kind: 'global'}})
    }
  }
  return {tree: {root: cacheDir, policies, schema: schema === null ? null : {file: `${cacheDir}#schema`, text: schema}}, bundles, skipped}
}
