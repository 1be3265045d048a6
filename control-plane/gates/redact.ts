/**
 * Redaction of text that goes into evidence (a `run:` gate's output excerpt): anything shaped like
 * a common secret is replaced by `[REDACTED]` before it is written. A small fixed rule set; the
 * secret scanner may supply a richer one through `setRedactionRules`.
 */
export interface RedactionRule {
  id: string
  pattern: RegExp
  /** Keep the capture group 1 (e.g. `password=`) and redact the rest of the match. */
  keepPrefix?: boolean
}

export const REDACTED = '[REDACTED]'

const DEFAULT_RULES: readonly RedactionRule[] = [
  {id: 'private-key', pattern: /-----BEGIN[ A-Z0-9]*PRIVATE KEY-----[\s\S]*?(?:-----END[ A-Z0-9]*PRIVATE KEY-----|$)/g},
  {id: 'aws-access-key-id', pattern: /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b/g},
  {id: 'github-token', pattern: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,255}\b/g},
  {id: 'github-fine-grained-token', pattern: /\bgithub_pat_[A-Za-z0-9_]{20,255}\b/g},
  {id: 'slack-token', pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}\b/g},
  {id: 'bearer', pattern: /(\bBearer\s+)[A-Za-z0-9._~+/=-]{16,}/gi, keepPrefix: true},
  {id: 'assignment', pattern: /(\b(?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key|client[_-]?secret|aws_secret_access_key)\b["']?\s*[:=]\s*["']?)[^\s"'&;,]+/gi, keepPrefix: true},
]

let rules: readonly RedactionRule[] = DEFAULT_RULES

/** Replaces the rule set (the secret-scan gate's rules); `null` restores the defaults. */
export function setRedactionRules(next: readonly RedactionRule[] | null): void {
  rules = next ?? DEFAULT_RULES
}

/** `text` with every match of a rule replaced by [REDACTED]. */
export function redact(text: string): string {
  let out = text
  for (const rule of rules) {
    rule.pattern.lastIndex = 0
    out = out.replace(rule.pattern, (match, prefix: unknown) => (rule.keepPrefix && typeof prefix === 'string' ? `${prefix}${REDACTED}` : REDACTED))
  }
  return out
}
