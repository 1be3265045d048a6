import {relative, resolve} from 'node:path'
import type {PolicyTree} from '../control-plane/policy/source.js'

/** Finds the policy tree: --policies, else `policies/` at the repository top (or here). */
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

/** The trust policy from --trust, else manifests/trust.yaml at the repository top (read from disk). */
export async function trustFromFlags(flags: {trust?: string; repo?: string}, limits: import('../control-plane/limits.js').Limits) {
  const [{findTopLevel}, {parseTrust}] = await Promise.all([import('../control-plane/repo/repository.js'), import('../control-plane/manifests/load.js')])
  const file = resolve(flags.trust ?? resolve(flags.repo ?? (await findTopLevel(process.cwd())), 'manifests/trust.yaml'))
  return parseTrust(await readInput(file), displayPath(file), null, limits)
}

type Limits = import('../control-plane/limits.js').Limits
type HeadFlags = {repo?: string; 'trust-anchor'?: string}

type Head = {repo: import('../control-plane/repo/repository.js').Repository; commit: string}
const heads = new Map<string, Promise<Head>>()

/**
 * The repository and its HEAD commit, once HEAD's history verifies back to the trust anchor;
 * verified once per command, however many of its files (a policy, the trust) are read from it.
 */
export function verifiedHead(flags: HeadFlags, limits: Limits, now: Date = new Date()): Promise<Head> {
  const key = `${flags.repo ?? ''}\0${flags['trust-anchor'] ?? ''}`
  let head = heads.get(key)
  if (!head) {
    head = (async () => {
      const [{findTopLevel, Repository}, {verifiedHead}] = await Promise.all([import('../control-plane/repo/repository.js'), import('../control-plane/pipeline/base.js')])
      const repo = await Repository.open(flags.repo ?? (await findTopLevel(process.cwd())))
      return {repo, commit: await verifiedHead(repo, {...(flags['trust-anchor'] ? {anchor: flags['trust-anchor']} : {}), limits, now})}
    })()
    heads.set(key, head)
  }
  return head
}

/** Whose approval keys count: --trust FILE, else trust.yaml at the verified HEAD. */
export async function approvalTrust(flags: HeadFlags & {trust?: string}, limits: Limits) {
  if (flags.trust) return trustFromFlags(flags, limits)
  const [{loadTrust}, {repo, commit}] = await Promise.all([import('../control-plane/manifests/load.js'), verifiedHead(flags, limits)])
  return loadTrust(repo, commit, limits)
}

/**
 * A desired-state file for a check: `--policy FILE` (the caller's own file), else `path` at a
 * HEAD whose history verifies (desired state is read from the commit, never the work tree).
 */
async function desiredStateFile(flags: HeadFlags & {policy?: string}, path: string, what: string, limits: Limits): Promise<{text: string; file: string}> {
  if (flags.policy) return {text: await readInput(flags.policy, limits.maxFileBytes), file: flags.policy}
  const {AirlockError} = await import('../control-plane/errors.js')
  const {repo, commit} = await verifiedHead(flags, limits)
  const found = await repo.readFile(commit, path)
  if (!found) throw new AirlockError('INVALID_INPUT', `${path}: no ${what} at HEAD (pass --policy FILE)`, {file: path})
  return {text: found.text, file: path}
}

/** The egress policy the egress commands work on (manifests/egress.yaml, or --policy FILE). */
export async function egressPolicy(flags: HeadFlags & {policy?: string}, limits: Limits) {
  const [{parseEgress}, {EGRESS_FILE}] = await Promise.all([import('../control-plane/policy/egress/egress.js'), import('../control-plane/manifests/models.js')])
  const {text, file} = await desiredStateFile(flags, EGRESS_FILE, 'egress policy', limits)
  return parseEgress(text, file, limits)
}

/** The tool policy the tool commands work on (manifests/tool-policy.yaml, or --policy FILE). */
export async function toolPolicy(flags: HeadFlags & {policy?: string}, limits: Limits) {
  const [{parseToolPolicy}, {TOOL_POLICY_FILE}] = await Promise.all([import('../control-plane/policy/tools/tools.js'), import('../control-plane/manifests/models.js')])
  const {text, file} = await desiredStateFile(flags, TOOL_POLICY_FILE, 'tool policy', limits)
  return parseToolPolicy(text, file, limits)
}

/** The pulled-bundle cache: --cache-dir, else $XDG_CACHE_HOME/airlock/bundles (~/.cache/…). */
export async function bundleCacheDir(flag: string | undefined): Promise<string> {
  const [{homedir}, {join}] = await Promise.all([import('node:os'), import('node:path')])
  return resolve(flag ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'airlock', 'bundles'))
}
