import {posix} from 'node:path'
import {AirlockError} from '../errors.js'

/**
 * A repository-relative path, in git's form. Absolute paths, `..` escapes, `.git` and
 * backslashes are refused: every path airlock writes must stay inside the work tree.
 */
export function repoPath(path: string, field = 'path'): string {
  const p = path.replaceAll('\\', '/')
  const normal = posix.normalize(p)
  if (
    p.length === 0 ||
    posix.isAbsolute(p) ||
    normal === '..' ||
    normal.startsWith('../') ||
    normal.split('/').some((s) => s === '.git' || s === '') ||
    path.includes('\\') ||
    path.includes('\0')
  ) {
    throw new AirlockError('PATH_OUTSIDE_REPO', `${field}: "${path}" is not a path inside the repository`, {field, path})
  }
  return normal
}
