import {createHmac} from 'node:crypto'
import {exportJWK, exportSPKI, generateKeyPair, SignJWT} from 'jose'
import {describe, expect, it} from 'vitest'
import {identityFromJwt, localIdentity, withIdentity} from '../../../control-plane/identity/jwt.js'

const NOW = new Date('2026-06-01T12:00:00Z')
const ISS = 'https://token.actions.example'
const AUD = 'airlock'
const at = (d: Date) => Math.floor(d.getTime() / 1000)

async function issuer(alg: 'RS256' | 'ES256' | 'EdDSA') {
  const {publicKey, privateKey} = await generateKeyPair(alg, {extractable: true})
  const jwk = {...(await exportJWK(publicKey)), kid: `k-${alg}`, alg}
  const sign = (claims: Record<string, unknown>, over: {exp?: number; nbf?: number; aud?: string; iss?: string} = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({alg, kid: jwk.kid})
      .setIssuer(over.iss ?? ISS)
      .setAudience(over.aud ?? AUD)
      .setSubject('ci-acme')
      .setIssuedAt(at(NOW) - 60)
      .setNotBefore(over.nbf ?? at(NOW) - 60)
      .setExpirationTime(over.exp ?? at(NOW) + 600)
      .sign(privateKey)
  return {jwks: {keys: [jwk]}, sign, publicKey}
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

describe('identity from a JWT', () => {
  it.each(['RS256', 'ES256', 'EdDSA'] as const)('maps a verified %s token to a Cedar user with org, teams, roles and MFA', async (alg) => {
    const iss = await issuer(alg)
    const token = await iss.sign({email: 'ci@acme.example', org_id: 'acme', teams: ['platform'], roles: ['ci'], amr: ['pwd', 'mfa']})
    const id = await identityFromJwt(token, {jwks: iss.jwks, issuer: ISS, audience: AUD, now: NOW})
    expect(id.principal).toEqual({type: 'AgentKernel::User', id: 'ci-acme'})
    expect(id.authenticated).toBe(true)
    expect(id.entities[0]).toEqual({
      uid: {type: 'AgentKernel::User', id: 'ci-acme'},
      attrs: {email: 'ci@acme.example', org_id: 'acme', roles: ['ci'], mfa_verified: true},
      parents: [{type: 'AgentKernel::Org', id: 'acme'}, {type: 'AgentKernel::Team', id: 'acme/platform'}],
    })
  })

  describe('when the token must be refused', () => {
    it('alg none', async () => {
      const iss = await issuer('RS256')
      const token = `${b64({alg: 'none'})}.${b64({sub: 'x', iss: ISS, aud: AUD, exp: at(NOW) + 60})}.`
      await expect(identityFromJwt(token, {jwks: iss.jwks, issuer: ISS, audience: AUD, now: NOW})).rejects.toMatchObject({code: 'INVALID_TOKEN'})
    })
    it('HS256 signed with the public key as the secret (algorithm confusion)', async () => {
      const iss = await issuer('RS256')
      const secret = await exportSPKI(iss.publicKey)
      const body = `${b64({alg: 'HS256', kid: 'k-RS256'})}.${b64({sub: 'admin', iss: ISS, aud: AUD, exp: at(NOW) + 60, roles: ['release-manager']})}`
      const token = `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`
      await expect(identityFromJwt(token, {jwks: iss.jwks, issuer: ISS, audience: AUD, now: NOW})).rejects.toMatchObject({code: 'INVALID_TOKEN'})
    })
    it('expired', async () => {
      const iss = await issuer('ES256')
      const token = await iss.sign({}, {exp: at(NOW) - 1})
      await expect(identityFromJwt(token, {jwks: iss.jwks, issuer: ISS, audience: AUD, now: NOW})).rejects.toMatchObject({code: 'INVALID_TOKEN', details: {reason: 'ERR_JWT_EXPIRED'}})
    })
    it('not yet valid', async () => {
      const iss = await issuer('ES256')
      const token = await iss.sign({}, {nbf: at(NOW) + 3600})
      await expect(identityFromJwt(token, {jwks: iss.jwks, issuer: ISS, audience: AUD, now: NOW})).rejects.toMatchObject({code: 'INVALID_TOKEN'})
    })
    it('for another audience', async () => {
      const iss = await issuer('ES256')
      const token = await iss.sign({}, {aud: 'some-other-service'})
      await expect(identityFromJwt(token, {jwks: iss.jwks, issuer: ISS, audience: AUD, now: NOW})).rejects.toMatchObject({code: 'INVALID_TOKEN', details: {reason: 'ERR_JWT_CLAIM_VALIDATION_FAILED'}})
    })
    it('from another issuer', async () => {
      const iss = await issuer('ES256')
      const token = await iss.sign({}, {iss: 'https://evil.example'})
      await expect(identityFromJwt(token, {jwks: iss.jwks, issuer: ISS, audience: AUD, now: NOW})).rejects.toMatchObject({code: 'INVALID_TOKEN'})
    })
    it('signed by a key not in the JWKS', async () => {
      const a = await issuer('ES256')
      const b = await issuer('ES256')
      await expect(identityFromJwt(await b.sign({}), {jwks: a.jwks, issuer: ISS, audience: AUD, now: NOW})).rejects.toMatchObject({code: 'INVALID_TOKEN'})
    })
  })

  it('makes a local operator an unauthenticated user with no roles and no MFA', () => {
    const id = localIdentity('Dana', 'dana@acme.example')
    expect(id).toMatchObject({authenticated: false, principal: {id: 'local:dana@acme.example'}})
    expect(id.entities[0]!.attrs).toMatchObject({roles: [], mfa_verified: false})
  })

  it('lets the token replace an entity of the same uid from the entities file', async () => {
    const iss = await issuer('EdDSA')
    const id = await identityFromJwt(await iss.sign({org_id: 'acme', roles: ['ci']}), {jwks: iss.jwks, issuer: ISS, audience: AUD, now: NOW})
    const merged = withIdentity([{uid: {type: 'AgentKernel::User', id: 'ci-acme'}, attrs: {roles: ['release-manager']}, parents: []}, {uid: {type: 'AgentKernel::Org', id: 'acme'}, attrs: {}, parents: []}], id) as Array<{uid: {id: string}; attrs: {roles?: string[]}}>
    expect(merged.filter((e) => e.uid.id === 'ci-acme')).toHaveLength(1)
    expect(merged.find((e) => e.uid.id === 'ci-acme')!.attrs.roles).toEqual(['ci'])
    expect(merged.filter((e) => e.uid.id === 'acme')).toHaveLength(1)
  })
})
