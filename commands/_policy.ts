import {relative, resolve} from 'node:path'
import type {Limits} from '../control-plane/limits.js'
import type {ResolvedHead, TrustSource} from '../control-plane/pipeline/base.js'
import type {PolicyTree} from '../control-plane/policy/source.js'
import type {Repository} from '../control-plane/repo/repository.js'

/**
 * The policy tree being authored, in the work tree: --policies, else `policies/` at the
 * repository top (or here). Only `policy validate` and `policy test` read it (they check what
 * someone is writing); decisions read policies through `decisionPolicies`.
 */
export async function policyTree(flags: {policies?: string; schema?: string; repo?: string}): Promise<PolicyTree> {
  const [{findTopLevel}, {loadPolicyTree}] = await Promise.all([import('../control-plane/repo/repository.js'), import('../control-plane/policy/source.js')])
  const top = flags.repo ?? (await findTopLevel(process.cwd()).catch(() => process.cwd()))
  const root = resolve(flags.policies ?? resolve(top, 'policies'))
  return loadPolicyTree(root, {schemaFile: flags.schema && resolve(flags.schema), display: displayPath})
}

/** How files are named in messages: relative to the working directory when inside it. */
export function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs)
  return rel.startsWith('..') ? abs : rel
}

/**
 * Reads a file the user named: a regular file only (a FIFO, device, socket or folder is refused
 * at once), at most 4 MiB; a missing or unreadable one is invalid input naming it.
 */
export async function readInput(file: string, maxBytes = 4 * 1024 * 1024): Promise<string> {
  const {readRegularFile} = await import('../control-plane/repo/files.js')
  return readRegularFile(file, {maxBytes})
}

/** What every read of trust needs from the command: its reference time and limits. */
export interface ReadContext {
  limits: Limits
  now: Date
}

type HeadFlags = {repo?: string; 'trust-anchor'?: string}

/** --trust-anchor and $AIRLOCK_TRUST_ANCHOR (git config is read by the core). */
export function anchorInput(flags: {'trust-anchor'?: string}) {
  return {...(flags['trust-anchor'] !== undefined ? {flag: flags['trust-anchor']} : {}), ...(process.env.AIRLOCK_TRUST_ANCHOR ? {env: process.env.AIRLOCK_TRUST_ANCHOR} : {})}
}

export async function openRepository(dir: string | undefined): Promise<Repository> {
  const {Repository, findTopLevel} = await import('../control-plane/repo/repository.js')
  return Repository.open(dir ?? (await findTopLevel(process.cwd())))
}

const heads = new Map<string, Promise<ResolvedHead>>()

/**
 * HEAD, once its history verifies back to the pinned trust anchor (the core's one resolver);
 * verified once per command, however many of its files (a policy, the trust) are read from it.
 */
export function verifiedHead(flags: HeadFlags, ctx: ReadContext): Promise<ResolvedHead> {
  const key = `${flags.repo ?? ''}\0${flags['trust-anchor'] ?? ''}`
  let head = heads.get(key)
  if (!head) {
    head = (async () => {
      const {verifiedHead: resolveHead} = await import('../control-plane/pipeline/base.js')
      return resolveHead(await openRepository(flags.repo), {anchor: anchorInput(flags), limits: ctx.limits, now: ctx.now})
    })()
    heads.set(key, head)
  }
  return head
}

/** The trust policy a check uses: --trust FILE (the caller's own), else trust.yaml at the verified HEAD. */
export async function trustOf(flags: HeadFlags & {trust?: string}, ctx: ReadContext) {
  const [{resolveTrust}, {loadTrust}] = await Promise.all([import('../control-plane/pipeline/base.js'), import('../control-plane/manifests/load.js')])
  if (!flags.trust) {
    const head = await verifiedHead(flags, ctx)
    return {trust: await loadTrust(head.repo, head.commit, ctx.limits), source: head.source as TrustSource, head}
  }
  const file = resolve(flags.trust)
  return resolveTrust({file: {text: await readInput(file), file: displayPath(file)}, repo: () => openRepository(flags.repo), anchor: anchorInput(flags), ...ctx})
}

/**
 * The Cedar policies decisions are made with: --policies DIR (the caller's own), else
 * policies/ at the verified HEAD. Never the work tree: an edit nobody signed decides nothing.
 */
export async function decisionPolicies(flags: HeadFlags & {policies?: string; schema?: string}, ctx: ReadContext): Promise<{tree: PolicyTree; source: TrustSource}> {
  if (flags.policies) return {tree: await policyTree(flags), source: {kind: 'file', file: displayPath(resolve(flags.policies))}}
  const [{loadPolicyTreeAt}, {AirlockError}] = await Promise.all([import('../control-plane/policy/repo-tree.js'), import('../control-plane/errors.js')])
  const head = await verifiedHead(flags, ctx)
  const tree = await loadPolicyTreeAt(head.repo, head.commit)
  if (!tree) throw new AirlockError('INVALID_INPUT', `policies/: no policies at HEAD ${head.commit.slice(0, 12)} (pass --policies DIR)`, {file: 'policies'})
  if (flags.schema) {
    const {buildPolicyTree} = await import('../control-plane/policy/source.js')
    const file = resolve(flags.schema)
    return {tree: buildPolicyTree(tree.root, tree.policies.map((p) => ({rel: p.file.replace(/^policies\//, ''), display: p.file, text: p.text})), {file: displayPath(file), text: await readInput(file)}), source: head.source}
  }
  return {tree, source: head.source}
}

/**
 * A desired-state file for a check: `--policy FILE` (the caller's own file), else `path` at a
 * HEAD whose history verifies (desired state is read from the commit, never the work tree).
 */
async function desiredStateFile(flags: HeadFlags & {policy?: string}, path: string, what: string, ctx: ReadContext): Promise<{text: string; file: string; source: TrustSource}> {
  if (flags.policy) return {text: await readInput(flags.policy, ctx.limits.maxFileBytes), file: flags.policy, source: {kind: 'file', file: flags.policy}}
  const {AirlockError} = await import('../control-plane/errors.js')
  const head = await verifiedHead(flags, ctx)
  const found = await head.repo.readFile(head.commit, path)
  if (!found) throw new AirlockError('INVALID_INPUT', `${path}: no ${what} at HEAD (pass --policy FILE)`, {file: path})
  return {text: found.text, file: path, source: head.source}
}

/** The egress policy the egress commands work on (manifests/egress.yaml, or --policy FILE). */
export async function egressPolicy(flags: HeadFlags & {policy?: string}, ctx: ReadContext) {
  const [{parseEgress}, {EGRESS_FILE}] = await Promise.all([import('../control-plane/policy/egress/egress.js'), import('../control-plane/manifests/models.js')])
  const {text, file, source} = await desiredStateFile(flags, EGRESS_FILE, 'egress policy', ctx)
  const {createHash} = await import('node:crypto')
  // The file's SHA-256: what the audit log names as the policy that decided.
  return {policy: parseEgress(text, file, ctx.limits), source, sha256: createHash('sha256').update(text).digest('hex')}
}

/** The tool policy the tool commands work on (manifests/tool-policy.yaml, or --policy FILE). */
export async function toolPolicy(flags: HeadFlags & {policy?: string}, ctx: ReadContext) {
  const [{parseToolPolicy}, {TOOL_POLICY_FILE}] = await Promise.all([import('../control-plane/policy/tools/tools.js'), import('../control-plane/manifests/models.js')])
  const {text, file, source} = await desiredStateFile(flags, TOOL_POLICY_FILE, 'tool policy', ctx)
  return {policy: parseToolPolicy(text, file, ctx.limits), source}
}

/** The pulled-bundle cache: --cache-dir, else $XDG_CACHE_HOME/airlock/bundles (~/.cache/…). */
export async function bundleCacheDir(flag: string | undefined): Promise<string> {
  const [{homedir}, {join}] = await Promise.all([import('node:os'), import('node:path')])
  return resolve(flag ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'airlock', 'bundles'))
}

/**
 * Where this host keeps state across runs (the store of used approvals): --state-dir, else
 * $AIRLOCK_STATE_DIR, else $XDG_STATE_HOME/airlock (~/.local/state/airlock).
 */
export async function stateDir(flag: string | undefined): Promise<string> {
  const [{homedir}, {join}] = await Promise.all([import('node:os'), import('node:path')])
  return resolve(flag ?? process.env.AIRLOCK_STATE_DIR ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'airlock'))
}
