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

/**
 * The egress policy the egress commands work on: --policy FILE, else manifests/egress.yaml at
 * HEAD (desired state is read from the commit, never the work tree).
 */
export async function egressPolicy(flags: {policy?: string; repo?: string}, limits: import('../control-plane/limits.js').Limits) {
  const [{parseEgress}, {EGRESS_FILE}, {AirlockError}, {findTopLevel, Repository}] = await Promise.all([
    import('../control-plane/policy/egress/egress.js'),
    import('../control-plane/manifests/models.js'),
    import('../control-plane/errors.js'),
    import('../control-plane/repo/repository.js'),
  ])
  if (flags.policy) return parseEgress(await readInput(flags.policy, limits.maxFileBytes), flags.policy, limits)
  const repo = await Repository.open(flags.repo ?? (await findTopLevel(process.cwd())))
  const found = await repo.readFile((await repo.base()).commit, EGRESS_FILE)
  if (!found) throw new AirlockError('INVALID_INPUT', `${EGRESS_FILE}: no egress policy at HEAD (pass --policy FILE)`, {file: EGRESS_FILE})
  return parseEgress(found.text, EGRESS_FILE, limits)
}

/** The pulled-bundle cache: --cache-dir, else $XDG_CACHE_HOME/airlock/bundles (~/.cache/…). */
export async function bundleCacheDir(flag: string | undefined): Promise<string> {
  const [{homedir}, {join}] = await Promise.all([import('node:os'), import('node:path')])
  return resolve(flag ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'airlock', 'bundles'))
}
