/**
 * JWT/OIDC → Cedar principal. Tokens are verified with jose against a JWKS, with an allow-list
 * of asymmetric algorithms (so `alg: none` and HS* signed with a public key are refused), and
 * exp/nbf/iss/aud checked at the command's `now`.
 */
import type {JSONWebKeySet, JWTPayload} from 'jose'
import {AirlockError} from '../errors.js'
import {checkNesting} from '../limits.js'
import {identityText, optionalIdentityText} from './text.js'

export const TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'EdDSA']

export interface CedarEntity {
  uid: {type: string; id: string}
  attrs: Record<string, unknown>
  parents: Array<{type: string; id: string}>
}

/** Who acts, as Cedar sees them, and how that is known. */
export interface Identity {
  principal: {type: string; id: string}
  /** The user entity and the org/team entities it belongs to. */
  entities: CedarEntity[]
  authenticated: boolean
  /** Where the identity came from: the token's issuer and subject, or the local git identity. */
  source: string
}

export function parseJwks(text: string, source: string): JSONWebKeySet {
  checkNesting(text, source, 'json')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new AirlockError('INVALID_INPUT', `${source}: the JWKS is not JSON`, {file: source})
  }
  const keys = (value as {keys?: unknown})?.keys
  if (!Array.isArray(keys) || keys.length === 0) throw new AirlockError('INVALID_INPUT', `${source}: a JWKS needs a non-empty "keys" list`, {file: source})
  return value as JSONWebKeySet
}

function stringList(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string')
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean)
  return []
}

/** The Cedar User (and its Org/Team parents) for verified claims. */
export function entitiesForClaims(claims: JWTPayload, authenticated: boolean): Identity['entities'] {
  const org = typeof claims.org_id === 'string' ? optionalIdentityText(claims.org_id, 'the token\'s org_id claim') : ''
  const teams = stringList(claims.teams).map((t) => identityText(t, 'the token\'s teams claim')).map((t) => (t.includes('/') ? t : `${org}/${t}`))
  const mfa = claims.mfa_verified === true || stringList(claims.amr).includes('mfa')
  const parents = [...(org ? [{type: 'AgentKernel::Org', id: org}] : []), ...teams.map((id) => ({type: 'AgentKernel::Team', id}))]
  return [
    {
      uid: {type: 'AgentKernel::User', id: identityText(claims.sub, 'the token\'s sub claim')},
      attrs: {email: typeof claims.email === 'string' ? optionalIdentityText(claims.email, 'the token\'s email claim') : '', org_id: org, roles: authenticated ? stringList(claims.roles) : [], mfa_verified: authenticated && mfa},
      parents,
    },
    ...(org ? [{uid: {type: 'AgentKernel::Org', id: org}, attrs: {}, parents: []}] : []),
    ...teams.map((id) => ({uid: {type: 'AgentKernel::Team', id}, attrs: {}, parents: org ? [{type: 'AgentKernel::Org', id: org}] : []})),
  ]
}

export async function identityFromJwt(token: string, opts: {jwks: JSONWebKeySet; issuer: string; audience: string; now: Date}): Promise<Identity> {
  // jose only here, where a token is verified: a command run without --jwt does not load it.
  const {createLocalJWKSet, jwtVerify} = await import('jose')
  let payload: JWTPayload
  try {
    ;({payload} = await jwtVerify(token, createLocalJWKSet(opts.jwks), {
      algorithms: TOKEN_ALGORITHMS,
      issuer: opts.issuer,
      audience: opts.audience,
      currentDate: opts.now,
      requiredClaims: ['sub', 'exp'],
    }))
  } catch (error) {
    const e = error as {code?: string; message?: string}
    throw new AirlockError('INVALID_TOKEN', `the token was refused: ${e.message ?? String(error)}`, {reason: e.code ?? 'ERR_JWT_INVALID'})
  }
  const entities = entitiesForClaims(payload, true)
  return {principal: entities[0]!.uid, entities, authenticated: true, source: `${identityText(payload.iss, 'the token\'s iss claim')} ${entities[0]!.uid.id}`}
}

/** An operator at a terminal: the git identity, unauthenticated, with no roles and no MFA. */
export function localIdentity(rawName: string, rawEmail: string): Identity {
  const name = optionalIdentityText(rawName, 'git config user.name')
  const email = optionalIdentityText(rawEmail, 'git config user.email')
  const sub = `local:${email || name || 'unknown'}`
  return {principal: {type: 'AgentKernel::User', id: sub}, entities: entitiesForClaims({sub, email}, false), authenticated: false, source: `git identity ${name} <${email}> (unauthenticated)`}
}

/** Entities with the identity's own replacing any of the same uid (the token is authoritative). */
export function withIdentity(entities: unknown[], identity: Identity): unknown[] {
  const key = (e: {uid?: {type?: string; id?: string}}) => `${e.uid?.type}\u0000${e.uid?.id}`
  const mine = new Map(identity.entities.map((e) => [key(e), e]))
  const user = key(identity.entities[0]!)
  const kept = (entities as Array<{uid?: {type?: string; id?: string}}>).filter((e) => key(e) !== user)
  const present = new Set(kept.map(key))
  return [...kept, identity.entities[0]!, ...[...mine.entries()].filter(([k]) => k !== user && !present.has(k)).map(([, e]) => e)]
}
