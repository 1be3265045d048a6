import {AirlockError} from '../errors.js'
import {canonicalJson, sha256Hex} from '../crypto/digest.js'
import type {Limits} from '../limits.js'
import {loadTrust} from '../manifests/load.js'
import {TRUST_FILE} from '../manifests/models.js'
import type {ChangeRequest} from '../plan/plan.js'
import type {Draft} from '../pipeline/draft.js'
import {parseBundle, parseScope, verifyBundle, type BundlePayload} from '../policy/bundle.js'
import {lastBundle} from '../policy/publish.js'
import {scopeName} from '../policy/source.js'
import type {Repository} from '../repo/repository.js'

/**
 * Publishes a signed bundle under bundles/: it must verify against the base's trust policy now
 * (signatures, threshold, expiry, scope, policies) and be newer than the last published version,
 * with the policy diff against that version.
 */
export async function buildBundle(repo: Repository, commit: string, req: Extract<ChangeRequest, {kind: 'policy-bundle'}>, now: Date, limits: Limits): Promise<Draft> {
  const scope = parseScope(req.scope)
  const {path, file: lastFile, last} = await lastBundle(repo, commit, scope)
  const trust = await loadTrust(repo, commit, limits)
  const {envelope, payload} = parseBundle(req.bundle, 'the bundle')
  verifyBundle(envelope, payload, {trust, now, scope: scopeName(scope), source: 'the bundle', limits})
  if (last && payload.version <= last.version) {
    throw new AirlockError('USAGE', `--version: ${payload.version} is not above the last published version ${last.version} of ${scopeName(scope)}`, {field: '--version'})
  }
  const before = new Map((last?.policies ?? []).map((p) => [p.id, p.text]))
  const after = new Map(payload.policies.map((p) => [p.id, p.text]))
  const added = [...after.keys()].filter((id) => !before.has(id))
  const removed = [...before.keys()].filter((id) => !after.has(id))
  const changed = [...after.keys()].filter((id) => before.has(id) && before.get(id) !== after.get(id))
  return {
    operation: 'policy-bundle',
    summary: `publish ${scopeName(scope)} policy bundle v${payload.version} (${payload.policies.length} policies)`,
    details: {
      scope: scopeName(scope),
      version: payload.version,
      previousVersion: last?.version ?? 'none',
      expiresAt: payload.expiresAt,
      added: added.join(', ') || 'none',
      removed: removed.join(', ') || 'none',
      changed: changed.join(', ') || 'none',
      signers: envelope.signatures.map((s) => `${s.keyid.slice(0, 16)}…`).join(', '),
    },
    subjects: [{name: `policy-bundle:${scopeName(scope)}`, digest: {sha256: sha256Hex(canonicalJson(payload satisfies BundlePayload))}}],
    changes: [{path, action: lastFile ? 'modify' : 'create', before: lastFile?.text ?? null, after: req.bundle}],
    inputs: [
      {path, oid: lastFile?.oid ?? null},
      {path: TRUST_FILE, oid: trust.oid},
    ],
    slug: `${scopeName(scope)}-v${payload.version}`,
    pins: [],
  }
}
