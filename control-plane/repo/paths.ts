import {AirlockError} from '../errors.js'

/**
 * A repository-relative path in git's canonical form. Absolute paths, `.`/`..`/empty segments,
 * `.git`, backslashes and NUL are refused: every path airlock reads or writes stays inside the
 * work tree and means exactly one file.
 */
export function repoPath(path: string, field = 'path'): string {
  const bad = path.length === 0 || path.includes('\\') || path.includes('\0') || path.startsWith('/') || path.split('/').some((s) => s === '' || s === '.' || s === '..' || s.toLowerCase() === '.git')
  if (bad) throw new AirlockError('PATH_OUTSIDE_REPO', `${field}: "${path}" is not a path inside the repository`, {field, path})
  return path
}
