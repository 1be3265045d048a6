import {AirlockError} from '../errors.js'
import {canonicalJson, sha256Hex} from '../crypto/digest.js'
import type {Signer} from '../crypto/keys.js'
import type {Limits} from '../limits.js'
import {keysFor, loadTrust} from '../manifests/load.js'
import {TRUST_FILE} from '../manifests/models.js'
import type {ChangeRequest} from '../plan/plan.js'
import type {Draft} from '../pipeline/draft.js'
import type {Repository} from '../repo/repository.js'
import {bundlePath, buildPayload, parseBundle, parseScope, signBundle, verifyBundle, type BundlePayload} from './bundle.js'
import {invalidPolicy, validateTree} from './engine.js'
import {scopeName, type PolicyTree, type Scope} from './source.js'

async function lastBundle(repo: Repository, commit: string, scope: Scope) {
  const path = bundlePath(scope)
  const file = await repo.readFile(commit, path)
  return {path, file, last: file ? parseBundle(file.text, path).payload : null}
}

/**
 * Signs the policies of one scope as the next bundle version (or `version`), by every given
 * policy key, for the request the pipeline then verifies and plans.
 */
export async function signPolicyBundle(
  repo: Repository,
  req: {tree: PolicyTree; scope: Scope; expiresInMs: number; signers: Signer[]; version?: number; now: Date; limits: Limits},
): Promise<string> {
  const problems = validateTree(req.tree)
  if (problems.length > 0) throw invalidPolicy(problems)
  const {commit} = await repo.base()
  const {last} = await lastBundle(repo, commit, req.scope)
  const version = req.version ?? (last ? last.version + 1 : 1)
  const trust = await loadTrust(repo, commit, req.limits)
  const policyKeys = new Set(keysFor(trust, 'policy', req.now).map((k) => k.id))
  const untrusted = req.signers.find((s) => !policyKeys.has(s.keyid))
  if (untrusted) throw new AirlockError('KEY_INVALID', `--key: ${untrusted.keyid.slice(0, 16)}… is not a policy key valid now in ${TRUST_FILE}; its bundle would not verify`, {keyid: untrusted.keyid})
  const payload = buildPayload(req.tree, req.scope, version, req.now, new Date(req.now.getTime() + req.expiresInMs))
  if (payload.policies.length === 0) throw new AirlockError('INVALID_INPUT', `no policies in the ${scopeName(req.scope)} folder of ${req.tree.root}`, {scope: scopeName(req.scope)})
  return `${JSON.stringify(signBundle(payload, req.signers), null, 2)}\n`
}

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
  verifyBundle(envelope, payload, {trust, now, scope: scopeName(scope), source: 'the bundle'})
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
