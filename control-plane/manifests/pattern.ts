import safeRegex from 'safe-regex2'
const MAX_PATTERN = 1024

/**
 * Why `pattern` is not an acceptable certificate-subject pattern, or null: it must be anchored
 * at both ends (an unanchored `github.com/acme` would match a longer identity) and compile.
 */
export function checkAnchoredPattern(pattern: string): string | null {
  if (pattern.length > MAX_PATTERN) return `longer than ${MAX_PATTERN} characters`
  if (!pattern.startsWith('^') || !pattern.endsWith('$') || pattern.endsWith('\\$')) return 'must be anchored: start with ^ and end with $'
  let re: RegExp
  try {
    re = new RegExp(pattern, 'u')
  } catch (error) {
    return `is not a valid regular expression (${(error as Error).message})`
  }
  // A pattern from the repository is matched against certificate subjects: one that can
  // backtrack (a repeated group inside a repetition) is refused rather than run.
  if (!safeRegex(re)) return 'can backtrack exponentially (nested repetition); rewrite it without a repeated group inside a repetition'
  return null
}
