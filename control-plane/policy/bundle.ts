import {checkNesting} from '../limits.js'
import {AirlockError} from '../errors.js'
import {canonicalJson, sha256Hex} from '../crypto/digest.js'
import {checkEnvelopeSignatures, signEnvelope, type Envelope} from '../crypto/dsse.js'
import type {Signer} from '../crypto/keys.js'
import type {TrustPolicy} from '../manifests/models.js'
import {validateTree} from './engine.js'
import {scopeName, scopeOfPath, type PolicySource, type PolicyTree, type Scope} from './source.js'

export const BUNDLE_PAYLOAD_TYPE = 'application/vnd.airlock.policy-bundle.v1+json'
/** Tolerated clock difference between the issuer and the verifier. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000

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

function fail(code: 'BAD_SIGNATURE' | 'THRESHOLD_NOT_MET' | 'UNKNOWN_KEY' | 'KEY_NOT_VALID_AT_ISSUE' | 'EXPIRED' | 'DOWNGRADE' | 'SCOPE_MISMATCH' | 'INVALID_POLICY', message: string, details: Record<string, unknown> = {}): AirlockError {
  return new AirlockError(code, message, details)
}

/** Parses a bundle file's envelope and payload shape; a file that is not one is invalid input (exit 2). */
export function parseBundle(text: string, source: string): {envelope: Envelope; payload: BundlePayload} {
  checkNesting(text, source, 'json')
  let envelope: Envelope
  try {
    envelope = JSON.parse(text) as Envelope
  } catch {
    throw new AirlockError('INVALID_INPUT', `${source}: not JSON (truncated or corrupted bundle)`, {file: source})
  }
  if (!envelope || typeof envelope.payload !== 'string' || typeof envelope.payloadType !== 'string' || !Array.isArray(envelope.signatures)) {
    throw new AirlockError('INVALID_INPUT', `${source}: not a DSSE envelope`, {file: source})
  }
  for (const [i, s] of envelope.signatures.entries()) {
    for (const field of ['keyid', 'sig'] as const) {
      if (typeof (s as unknown as Record<string, unknown> | null)?.[field] !== 'string') {
        throw new AirlockError('INVALID_INPUT', `${source}: signatures[${i}].${field} must be a string`, {file: source, field: `signatures[${i}].${field}`})
      }
    }
  }
  let payload: BundlePayload
  try {
    payload = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as BundlePayload
  } catch {
    throw new AirlockError('INVALID_INPUT', `${source}: the payload is not JSON`, {file: source})
  }
  const ok =
    payload?.kind === 'PolicyBundle' &&
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
  checkNesting(payload.schema, `${source}#schema`, 'cedar')
  for (const p of payload.policies) checkNesting(p.text, `${source}#${p.id}`, 'cedar')
  return {envelope, payload}
}

/**
 * Verifies a policy bundle against the trust policy at `now`, in order. Each step says which
 * attack it stops. Pure: the caller hands in the trust material and the time.
 */
export function verifyBundle(
  envelope: Envelope,
  payload: BundlePayload,
  opts: {trust: TrustPolicy; now: Date; scope?: string; minVersion?: number; source: string; ignoreExpiry?: boolean},
): VerifiedBundle {
  const {source} = opts
  // 1. Type confusion: a receipt or any other DSSE document signed by a policy key is not a bundle.
  if (envelope.payloadType !== BUNDLE_PAYLOAD_TYPE) throw fail('BAD_SIGNATURE', `${source}: payloadType is ${envelope.payloadType}, not ${BUNDLE_PAYLOAD_TYPE}`)

  // 2. Forged or stripped signatures: each signature is checked against the policy keys of the
  //    trust policy; a bundle with no signature (GHSA-g2pf-6v5v-qcc8) can never pass.
  if (envelope.signatures.length === 0) throw fail('THRESHOLD_NOT_MET', `${source}: the bundle carries no signature`)
  const policyKeys = opts.trust.keys.filter((k) => k.roles.includes('policy'))
  const checks = checkEnvelopeSignatures(envelope, (id) => policyKeys.find((k) => k.id === id)?.publicKey)
  const bad = checks.find((c) => c.reason === 'BAD_SIGNATURE')
  if (bad) throw fail('BAD_SIGNATURE', `${source}: the signature by ${bad.keyid.slice(0, 16)}… does not match the bundle (edited after signing?)`, {keyid: bad.keyid})
  const valid = checks.filter((c) => c.valid).map((c) => c.keyid)

  // 3. Compromised retired keys: a key counts only if it was valid when the bundle was issued.
  const issuedAt = new Date(payload.issuedAt)
  const current = valid.filter((id) => {
    const k = policyKeys.find((key) => key.id === id)!
    return k.validFrom <= issuedAt && (!k.validUntil || issuedAt < k.validUntil)
  })
  // 4. A single stolen key: the policy role needs `threshold` distinct keys.
  const threshold = opts.trust.thresholds.policy
  if (current.length < threshold) {
    const unknown = checks.find((c) => c.reason === 'UNKNOWN_KEY')
    if (current.length === 0 && valid.length > 0) throw fail('KEY_NOT_VALID_AT_ISSUE', `${source}: signed by keys not valid at issuedAt ${payload.issuedAt}`, {keyids: valid})
    if (current.length === 0 && unknown) throw fail('UNKNOWN_KEY', `${source}: signed by ${unknown.keyid.slice(0, 16)}…, which is not a policy key in the trust policy`, {keyid: unknown.keyid})
    throw fail('THRESHOLD_NOT_MET', `${source}: ${current.length} valid policy signature(s), ${threshold} needed`, {valid: current.length, threshold})
  }

  // 5. Freeze and replay of stale policy: an expired bundle (or one issued in the future) is refused.
  //    (`ignoreExpiry` is for the cached_indefinite offline mode only, which keeps a verified
  //    cache past its expiry by the operator's explicit choice.)
  const now = opts.now.getTime()
  if (!opts.ignoreExpiry && now >= Date.parse(payload.expiresAt)) throw fail('EXPIRED', `${source}: expired at ${payload.expiresAt}`, {expiresAt: payload.expiresAt})
  if (Date.parse(payload.issuedAt) > now + CLOCK_SKEW_MS) throw fail('EXPIRED', `${source}: issued in the future (${payload.issuedAt})`, {issuedAt: payload.issuedAt})

  // 6. Cross-scope substitution: a bundle for another org (or a policy smuggled from another
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

  // 7. Rollback to an older policy: the version must not be below what the caller already has.
  if (opts.minVersion !== undefined && payload.version < opts.minVersion) throw fail('DOWNGRADE', `${source}: version ${payload.version} is older than ${opts.minVersion}`, {version: payload.version, minVersion: opts.minVersion})

  // 8. A bundle that would not evaluate as written: its policies must validate against its schema.
  const problems = validateTree({
    root: source,
    schema: {file: `${source}#schema`, text: payload.schema},
    policies: payload.policies.map((p) => ({...p, column: 1, offset: 0, scope: {kind: 'global'} as const})),
  })
  if (problems.length > 0) throw fail('INVALID_POLICY', `${source}: ${problems[0]!.policyId ?? ''} ${problems[0]!.message}`.trim(), {problems})

  return {payload, signers: current, digest: `sha256:${sha256Hex(Buffer.from(envelope.payload, 'base64'))}`}
}
