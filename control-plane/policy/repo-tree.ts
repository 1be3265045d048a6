import type {Repository} from '../repo/repository.js'
import {buildPolicyTree, type PolicyFile, type PolicyTree} from './source.js'

export const POLICIES_DIR = 'policies'

/**
 * The policy tree of a repository at a commit (git is the source of truth); null when it has
 * none. `overlay` replaces files (null: deletes them), for a change not yet committed.
 */
export async function loadPolicyTreeAt(repo: Repository, commit: string, overlay: ReadonlyMap<string, string | null> = new Map()): Promise<PolicyTree | null> {
  const texts = new Map<string, string>()
  const walk = async (dir: string): Promise<void> => {
    for (const e of await repo.listDir(commit, dir)) {
      if (e.type === 'tree') await walk(e.path)
      else if (e.type === 'blob' && (e.name.endsWith('.cedar') || e.path === `${POLICIES_DIR}/schema.cedarschema`)) texts.set(e.path, await repo.readBlob(e.oid))
    }
  }
  await walk(POLICIES_DIR)
  for (const [path, text] of overlay) {
    if (!path.startsWith(`${POLICIES_DIR}/`)) continue
    if (text === null) texts.delete(path)
    else texts.set(path, text)
  }
  const schemaPath = `${POLICIES_DIR}/schema.cedarschema`
  const schema = texts.get(schemaPath)
  const files: PolicyFile[] = [...texts].filter(([p]) => p.endsWith('.cedar')).sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, text]) => ({rel: p.slice(POLICIES_DIR.length + 1), display: p, text}))
  if (files.length === 0 && schema === undefined) return null
  return buildPolicyTree(`${POLICIES_DIR}@${commit.slice(0, 12)}`, files, schema === undefined ? null : {file: schemaPath, text: schema})
}
