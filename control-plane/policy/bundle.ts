import {checkCedarDepth, checkNesting, DEFAULT_LIMITS, type Limits} from '../limits.js'
import {AirlockError} from '../errors.js'
import {canonicalJson, sha256Hex} from '../crypto/digest.js'
import {signEnvelope, type Envelope} from '../crypto/dsse.js'
import {countSigners, envelopeJson, parseEnvelope} from '../crypto/envelope.js'
import type {Signer} from '../crypto/keys.js'
import type {TrustPolicy} from '../manifests/models.js'
import {validateTree} from './engine.js'
import {scopeName, scopeOfPath, type PolicySource, type PolicyTree, type Scope} from './source.js'

export const BUNDLE_PAYLOAD_TYPE = 'application/vnd.airlock.policy-bundle.v1+json'

export interface BundlePolicy {
  id: string
  file: string
  line: number
  text: string
}

/** The payload of DESIGN.md: version (monotonic), issuedAt, expiresAt, scope, schema, policies. */
export interface BundlePayload {
  apiVersion: 'airlock/v1'
  kind: 'PolicyBundle'
  scope: string
  version: number
  issuedAt: string
  expiresAt: string
  schema: string
  policies: BundlePolicy[]
}

export interface VerifiedBundle {
  payload: BundlePayload
  signers: string[]
  digest: string
}

export function parseScope(text: string): Scope {
  const m = /^(?:(global)|org:([a-z0-9][a-z0-9-]*)|team:([a-z0-9][a-z0-9-]*)\/([a-z0-9][a-z0-9-]*)|user:([a-z0-9][a-z0-9._-]*))$/.exec(text)
  if (!m) throw new AirlockError('USAGE', `--scope: "${text}" is not global, org:ID, team:ORG/TEAM or user:ID`, {field: '--scope'})
  if (m[1]) return {kind: 'global'}
  if (m[2]) return {kind: 'org', org: m[2]}
  if (m[3]) return {kind: 'team', org: m[3], team: m[4]!}
  return {kind: 'user', user: m[5]!}
}

/** Where a scope's published bundle lives in the repository. */
export function bundlePath(scope: Scope): string {
  switch (scope.kind) {
    case 'global':
      return 'bundles/global.bundle.json'
    case 'org':
      return `bundles/orgs/${scope.org}.bundle.json`
    case 'team':
      return `bundles/teams/${scope.org}/${scope.team}.bundle.json`
    case 'user':
      return `bundles/users/${scope.user}.bundle.json`
  }
}

/** The policies of one scope's folder only: a bundle never carries another scope's policies. */
export function policiesOfScope(tree: PolicyTree, scope: Scope): PolicySource[] {
  return tree.policies.filter((p) => scopeName(p.scope) === scopeName(scope))
}

export function buildPayload(tree: PolicyTree, scope: Scope, version: number, issuedAt: Date, expiresAt: Date): BundlePayload {
  if (!tree.schema) throw new AirlockError('INVALID_INPUT', `${tree.root}: a bundle embeds the Cedar schema, and there is none (schema.cedarschema)`)
  return {
    apiVersion: 'airlock/v1',
    kind: 'PolicyBundle',
    scope: scopeName(scope),
    version,
    issuedAt: issuedAt.toISOString(),
    expiresAt: expiresAt.toISOString(),
    schema: tree.schema.text,
    policies: policiesOfScope(tree, scope).map((p) => ({id: p.id, file: p.file, line: p.line, text: p.text})),
  }
}

export function signBundle(payload: BundlePayload, signers: Signer[]): Envelope {
  return signEnvelope(BUNDLE_PAYLOAD_TYPE, Buffer.from(canonicalJson(payload)), signers)
}

type BundleFailure = 'BAD_SIGNATURE' | 'THRESHOLD_NOT_MET' | 'UNKNOWN_KEY' | 'KEY_NOT_VALID_AT_ISSUE' | 'LIFETIME_EXCEEDED' | 'FUTURE_DATED' | 'EXPIRED' | 'DOWNGRADE' | 'SCOPE_MISMATCH' | 'INVALID_POLICY'

function fail(code: BundleFailure, message: string, details: Record<string, unknown> = {}): AirlockError {
  return new AirlockError(code, message, details)
}

/** A span of milliseconds in days and hours, for messages. */
function formatSpan(ms: number): string {
  const days = Math.floor(ms / 86_400_000)
  const hours = Math.round((ms % 86_400_000) / 3_600_000)
  return days > 0 ? `${days}d${hours ? ` ${hours}h` : ''}` : `${Math.round(ms / 60_000)}m`
}

/** Parses a bundle file's envelope and payload shape; a file that is not one is invalid input (exit 2). */
export function parseBundle(text: string, source: string, limits: Limits = DEFAULT_LIMITS): {envelope: Envelope; payload: BundlePayload} {
  const envelope = parseEnvelope(text, source, {payloadType: BUNDLE_PAYLOAD_TYPE, limits: {maxBytes: limits.maxReceiptBytes, maxDepth: limits.maxDepth}})
  const payload = envelopeJson(envelope, source, limits.maxDepth) as unknown as BundlePayload
  const ok =
    payload.kind === 'PolicyBundle' &&
    Number.isSafeInteger(payload.version) &&
    payload.version > 0 &&
    typeof payload.scope === 'string' &&
    typeof payload.schema === 'string' &&
    Array.isArray(payload.policies) &&
    payload.policies.every((p) => p && typeof p.id === 'string' && typeof p.file === 'string' && typeof p.text === 'string' && Number.isSafeInteger(p.line)) &&
    !Number.isNaN(Date.parse(payload.issuedAt)) &&
    !Number.isNaN(Date.parse(payload.expiresAt))
  if (!ok) throw new AirlockError('INVALID_INPUT', `${source}: the payload is not an airlock policy bundle`, {file: source})
  // Cedar text reaches the policy engine only within the depth limit.
  checkNesting(payload.schema, `${source}#schema`, 'cedar', limits.maxDepth)
  for (const p of payload.policies) {
    checkNesting(p.text, `${source}#${p.id}`, 'cedar', limits.maxDepth)
    checkCedarDepth(p.text, `${source}#${p.id}`, limits.maxCedarDepth)
  }
  return {envelope, payload}
}

/**
 * Verifies a policy bundle against the trust policy at `now`, in order. Each step says which
 * attack it stops. Pure: the caller hands in the trust material, the time and the limits (whose
 * clock skew is the only one).
 */
export function verifyBundle(
  envelope: Envelope,
  payload: BundlePayload,
  opts: {trust: TrustPolicy; now: Date; scope?: string; minVersion?: number; source: string; ignoreExpiry?: boolean; limits?: Limits},
): VerifiedBundle {
  const {source, trust} = opts
  const limits = opts.limits ?? DEFAULT_LIMITS
  const issuedAt = new Date(payload.issuedAt)
  const now = opts.now.getTime()
  // 1. Type confusion: a receipt or any other DSSE document signed by a policy key is not a bundle.
  if (envelope.payloadType !== BUNDLE_PAYLOAD_TYPE) throw fail('BAD_SIGNATURE', `${source}: payloadType is ${envelope.payloadType}, not ${BUNDLE_PAYLOAD_TYPE}`)

  // 2. Forged or stripped signatures: each signature is checked against the policy keys of the
  //    trust policy (BAD_SIGNATURE, UNKNOWN_KEY); a bundle with no signature (GHSA-g2pf-6v5v-qcc8)
  //    can never pass.
  // 3. Compromised retired keys: a key counts only if it was valid when the bundle was issued
  //    (KEY_NOT_VALID_AT_ISSUE); a forger moving issuedAt back into it is bounded by step 5.
  // 4. A single stolen key: the policy role needs `threshold` distinct keys (THRESHOLD_NOT_MET).
  const quorum = countSigners(envelope, {trust, role: 'policy', at: issuedAt, notValid: 'KEY_NOT_VALID_AT_ISSUE', what: source})
  if (quorum.failure) throw fail(quorum.failure.code, quorum.failure.message, {keyid: quorum.failure.keyid, valid: quorum.signers.length, threshold: quorum.threshold})

  // 5. A retired key's forgery living on: a bundle may not live longer than the trust policy
  //    allows (spec.bundles.maxLifetime), so one backdated into its key's validity dies within
  //    that lifetime of the key's retirement, however far away the expiry it names.
  const lifetime = Date.parse(payload.expiresAt) - issuedAt.getTime()
  if (lifetime > trust.bundles.maxLifetimeMs) {
    throw fail('LIFETIME_EXCEEDED', `${source}: lives ${formatSpan(lifetime)} (issued ${payload.issuedAt}, expires ${payload.expiresAt}); ${trust.file} allows bundles at most ${formatSpan(trust.bundles.maxLifetimeMs)} (spec.bundles.maxLifetime)`, {
      lifetimeMs: lifetime,
      maxLifetimeMs: trust.bundles.maxLifetimeMs,
    })
  }

  // 6. A signer stretching a bundle's life forward: issuedAt may not lie beyond now plus the skew.
  if (issuedAt.getTime() > now + limits.clockSkewMs) throw fail('FUTURE_DATED', `${source}: issued in the future (${payload.issuedAt})`, {issuedAt: payload.issuedAt})

  // 7. Freeze and replay of stale policy: an expired bundle is refused. (`ignoreExpiry` is for the
  //    cached_indefinite offline mode only, which keeps a verified cache past its expiry by the
  //    operator's explicit choice.)
  if (!opts.ignoreExpiry && now >= Date.parse(payload.expiresAt)) throw fail('EXPIRED', `${source}: expired at ${payload.expiresAt}`, {expiresAt: payload.expiresAt})

  // 8. Cross-scope substitution: a bundle for another org (or a policy smuggled from another
  //    scope's folder) is refused.
  if (opts.scope !== undefined && payload.scope !== opts.scope) throw fail('SCOPE_MISMATCH', `${source}: a bundle for ${payload.scope}, expected ${opts.scope}`, {scope: payload.scope})
  const stray = payload.policies.find((p) => {
    // Where the scope folder starts (a linear search: a long file name never backtracks).
    const at = p.file.search(/(?:global|orgs|users)\//)
    const rel = at < 0 ? p.file : p.file.slice(at)
    const s = scopeOfPath(rel)
    return !s || scopeName(s) !== payload.scope
  })
  if (stray) throw fail('SCOPE_MISMATCH', `${source}: policy ${stray.id} comes from ${stray.file}, outside the ${payload.scope} folder`, {policy: stray.id})

  // 9. Rollback to an older policy: the version must not be below what the caller already has.
  if (opts.minVersion !== undefined && payload.version < opts.minVersion) throw fail('DOWNGRADE', `${source}: version ${payload.version} is older than ${opts.minVersion}`, {version: payload.version, minVersion: opts.minVersion})

  // 10. A bundle that would not evaluate as written: its policies must validate against its schema.
  const problems = validateTree({
    root: source,
    schema: {file: `${source}#schema`, text: payload.schema},
    policies: payload.policies.map((p) => ({...p, column: 1, offset: 0, scope: {kind: 'global'} as const})),
  })
  if (problems.length > 0) throw fail('INVALID_POLICY', `${source}: ${problems[0]!.policyId ?? ''} ${problems[0]!.message}`.trim(), {problems})

  return {payload, signers: quorum.signers, digest: `sha256:${sha256Hex(Buffer.from(envelope.payload, 'base64'))}`}
}
