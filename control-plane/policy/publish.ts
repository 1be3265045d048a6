import {AirlockError} from '../errors.js'
import type {Signer} from '../crypto/keys.js'
import type {Limits} from '../limits.js'
import {keysFor, loadTrust} from '../manifests/load.js'
import {TRUST_FILE} from '../manifests/models.js'
import type {Repository} from '../repo/repository.js'
import {bundlePath, buildPayload, parseBundle, signBundle} from './bundle.js'
import {invalidPolicy, validateTree} from './engine.js'
import {scopeName, type PolicyTree, type Scope} from './source.js'

/** The bundle last published for a scope at `commit`, with its file (null: none yet). */
export async function lastBundle(repo: Repository, commit: string, scope: Scope) {
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
