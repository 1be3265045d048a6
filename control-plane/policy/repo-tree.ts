import type {Repository} from '../repo/repository.js'
import {buildPolicyTree, type PolicyFile, type PolicyTree} from './source.js'

export const POLICIES_DIR = 'policies'

/** The policy tree of a repository at a commit (git is the source of truth); null when it has none. */
export async function loadPolicyTreeAt(repo: Repository, commit: string): Promise<PolicyTree | null> {
  const files: PolicyFile[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const e of await repo.listDir(commit, dir)) {
      if (e.type === 'tree') await walk(e.path)
      else if (e.type === 'blob' && e.name.endsWith('.cedar')) files.push({rel: e.path.slice(POLICIES_DIR.length + 1), display: e.path, text: await repo.readBlob(e.oid)})
    }
  }
  await walk(POLICIES_DIR)
  const schema = await repo.readFile(commit, `${POLICIES_DIR}/schema.cedarschema`)
  if (files.length === 0 && !schema) return null
  return buildPolicyTree(`${POLICIES_DIR}@${commit.slice(0, 12)}`, files, schema ? {file: `${POLICIES_DIR}/schema.cedarschema`, text: schema.text} : null)
}
