import {hostname, userInfo} from 'node:os'
import {Flags} from '@oclif/core'
import {AirlockError} from '../control-plane/errors.js'
import type {Identity} from '../control-plane/identity/jwt.js'
import type {Repository} from '../control-plane/repo/repository.js'
import {readInput} from './_policy.js'

export const identityFlags = {
  jwt: Flags.string({description: 'act as the principal of a verified JWT/OIDC token (default: AIRLOCK_JWT)', env: 'AIRLOCK_JWT'}),
  jwks: Flags.string({description: 'with --jwt: the issuer keys, a JWKS file or https:// URL', env: 'AIRLOCK_JWKS'}),
  issuer: Flags.string({description: 'with --jwt: the expected iss', env: 'AIRLOCK_JWT_ISSUER'}),
  audience: Flags.string({description: 'with --jwt: the expected aud', env: 'AIRLOCK_JWT_AUDIENCE'}),
  ca: Flags.string({description: 'with a JWKS URL: CA certificate (PEM) its server must chain to'}),
}

type IdentityFlags = {jwt?: string; jwks?: string; issuer?: string; audience?: string; ca?: string}

/** Where an accepted or refused token is recorded (the audit log's Authentication events). */
export interface Recorder {
  record: (event: import('../control-plane/audit/log.js').AuditEvent) => Promise<unknown>
  toolVersion: string
}

/** The principal of a verified token: --jwks from a file or an https:// URL; iss and aud required. */
export async function tokenIdentity(flags: IdentityFlags, now: Date): Promise<Identity> {
  const [{identityFromJwt, parseJwks}, {httpGet}] = await Promise.all([import('../control-plane/identity/jwt.js'), import('../control-plane/net/http.js')])
  for (const f of ['jwks', 'issuer', 'audience'] as const) if (!flags[f]) throw new AirlockError('USAGE', `--jwt needs --${f}`, {field: `--${f}`})
  let text: string
  if (/^https?:\/\//.test(flags.jwks!)) {
    const ca = flags.ca ? await readInput(flags.ca) : undefined
    const r = await httpGet(new URL(flags.jwks!), {ca, timeoutMs: 10_000, maxBytes: 1 << 20}).catch((error: Error) => {
      throw new AirlockError('INVALID_TOKEN', `cannot fetch the JWKS: ${error.message}`, {field: '--jwks'})
    })
    if (r.status !== 200) throw new AirlockError('INVALID_TOKEN', `${flags.jwks}: no JWKS (HTTP 304 without a cache)`, {field: '--jwks'})
    text = r.body
  } else {
    text = await readInput(flags.jwks!)
  }
  return identityFromJwt(flags.jwt!, {jwks: parseJwks(text, flags.jwks!), issuer: flags.issuer!, audience: flags.audience!, now})
}

/**
 * Who is acting: the verified token's principal, or, for an operator at a terminal, the git
 * identity as an unauthenticated user with no roles and no MFA.
 */
export async function actingIdentity(flags: IdentityFlags, repo: Repository, now: Date, recorder?: Recorder): Promise<Identity> {
  if (flags.jwt) return recorder ? recordedTokenIdentity(flags, now, recorder) : tokenIdentity(flags, now)
  const {localIdentity} = await import('../control-plane/identity/jwt.js')
  const git = await repo.gitIdentity()
  const name = git.name || process.env.GIT_AUTHOR_NAME || userInfo().username
  const email = git.email || process.env.GIT_AUTHOR_EMAIL || `${userInfo().username}@localhost`
  return localIdentity(name, email)
}

/** tokenIdentity, with the token's acceptance or refusal recorded (Authentication 3002) before the answer is used. */
export async function recordedTokenIdentity(flags: IdentityFlags, now: Date, {record, toolVersion}: Recorder): Promise<Identity> {
  const {authenticationEvent} = await import('../control-plane/audit/ocsf.js')
  const base = {now, via: 'jwt' as const, host: hostname(), toolVersion, ...(flags.issuer ? {issuer: flags.issuer} : {}), ...(flags.audience ? {audience: flags.audience} : {})}
  let identity: Identity
  try {
    identity = await tokenIdentity(flags, now)
  } catch (error) {
    const e = error instanceof AirlockError ? error : null
    await record(authenticationEvent({...base, accepted: false, reason: e?.message ?? 'the token was refused', ...(e ? {code: e.code} : {})}))
    throw error
  }
  await record(authenticationEvent({...base, accepted: true, subject: identity.principal.id}))
  return identity
}
