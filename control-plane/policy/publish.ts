import {AirlockError} from '../errors.js'
import {canonicalJson, sha256Hex} from '../crypto/digest.js'
import type {Signer} from '../crypto/keys.js'
import {receiptPathFor} from '../evidence/receipt.js'
import type {Limits} from '../limits.js'
import {keysFor, loadTrust} from '../manifests/load.js'
import {TRUST_FILE} from '../manifests/models.js'
import {sealPlan, type Plan, type Requester} from '../plan/plan.js'
import {planBase} from '../promote/channel-change.js'
import type {Repository} from '../repo/repository.js'
import {bundlePath, buildPayload, parseBundle, signBundle, type BundlePayload} from './bundle.js'
import {invalidPolicy, validateTree} from './engine.js'
import {scopeName, type PolicyTree, type Scope} from './source.js'

/**
 * Plans publishing the policies of one scope as a signed bundle under bundles/: the next
 * version, signed now by every given policy key, with the policy diff against the last
 * published bundle of that scope.
 */
export async function planBundle(
  repo: Repository,
  req: {tree: PolicyTree; scope: Scope; expiresInMs: number; signers: Signer[]; version?: number; reason: string; requestedBy: Requester; now: Date; limits: Limits},
): Promise<Plan> {
  const problems = validateTree(req.tree)
  if (problems.length > 0) throw invalidPolicy(problems)
  const base = await planBase(repo)
  const path = bundlePath(req.scope)
  const lastFile = await repo.readFile(base.commit, path)
  const last: BundlePayload | null = lastFile ? parseBundle(lastFile.text, path).payload : null
  const version = req.version ?? (last ? last.version + 1 : 1)
  if (last && version <= last.version) {
    throw new AirlockError('USAGE', `--version: ${version} is not above the last published version ${last.version} of ${scopeName(req.scope)}`, {field: '--version'})
  }
  const trust = await loadTrust(repo, base.commit, req.limits)
  const policyKeys = new Set(keysFor(trust, 'policy', req.now).map((k) => k.id))
  const untrusted = req.signers.find((s) => !policyKeys.has(s.keyid))
  if (untrusted) throw new AirlockError('KEY_INVALID', `--key: ${untrusted.keyid.slice(0, 16)}… is not a policy key valid now in ${TRUST_FILE}; its bundle would not verify`, {keyid: untrusted.keyid})
  const payload = buildPayload(req.tree, req.scope, version, req.now, new Date(req.now.getTime() + req.expiresInMs))
  if (payload.policies.length === 0) throw new AirlockError('INVALID_INPUT', `no policies in the ${scopeName(req.scope)} folder of ${req.tree.root}`, {scope: scopeName(req.scope)})
  const after = `${JSON.stringify(signBundle(payload, req.signers), null, 2)}\n`

  const before = new Map((last?.policies ?? []).map((p) => [p.id, p.text]))
  const now = new Map(payload.policies.map((p) => [p.id, p.text]))
  const added = [...now.keys()].filter((id) => !before.has(id))
  const removed = [...before.keys()].filter((id) => !now.has(id))
  const changed = [...now.keys()].filter((id) => before.has(id) && before.get(id) !== now.get(id))
  const unsigned = {
    apiVersion: 'airlock/v1' as const,
    kind: 'Plan' as const,
    operation: 'policy-bundle' as const,
    summary: `publish ${scopeName(req.scope)} policy bundle v${version} (${payload.policies.length} policies)`,
    reason: req.reason,
    requestedBy: req.requestedBy,
    createdAt: req.now.toISOString(),
    branch: base.branch,
    baseCommit: base.commit,
    inputs: [
      {path, oid: lastFile?.oid ?? null},
      {path: TRUST_FILE, oid: trust.oid},
    ],
    details: {
      scope: scopeName(req.scope),
      version,
      previousVersion: last?.version ?? 'none',
      expiresAt: payload.expiresAt,
      added: added.join(', ') || 'none',
      removed: removed.join(', ') || 'none',
      changed: changed.join(', ') || 'none',
      signers: req.signers.map((s) => `${s.keyid.slice(0, 16)}…`).join(', '),
    },
    subjects: [{name: `policy-bundle:${scopeName(req.scope)}`, digest: {sha256: sha256Hex(canonicalJson(payload))}}],
    changes: [{path, action: lastFile ? ('modify' as const) : ('create' as const), before: lastFile?.text ?? null, after}],
  }
  return sealPlan({...unsigned, receiptPath: receiptPathFor(unsigned, `${scopeName(req.scope)}-v${version}`)})
}
