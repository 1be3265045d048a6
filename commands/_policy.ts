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
