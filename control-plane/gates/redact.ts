/**
 * Redaction of text that goes into evidence (a `run:` gate's output excerpt): anything shaped like
 * a common secret is replaced by `[REDACTED]` before it is written: known token shapes, PEM keys
 * (also a body without its BEGIN line), credentials in URLs and assignments, and any long
 * mixed-case-and-digit run (a generated secret). It over-redacts rather than under-redacts; the
 * excerpt is for reading, its digest and byte count are the evidence.
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
  // A PEM body without its BEGIN line (cut off, or printed alone): base64 lines of a key's width.
  // (Mixed case: a hex digest or commit id on a line of its own is evidence, not a key.)
  {id: 'pem-body', pattern: /^(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[a-z])[A-Za-z0-9+/]{40,}={0,2}$/gm},
  {id: 'aws-access-key-id', pattern: /(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}/g},
  {id: 'github-token', pattern: /(?<![A-Za-z0-9])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,255}/g},
  {id: 'github-fine-grained-token', pattern: /(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,255}/g},
  {id: 'slack-token', pattern: /(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}/g},
  {id: 'api-key-sk', pattern: /(?<![A-Za-z0-9])sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}/g},
  {id: 'url-credentials', pattern: /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]+:)[^\s@/]+(?=@)/gi, keepPrefix: true},
  {id: 'bearer', pattern: /(\bBearer\s+)[A-Za-z0-9._~+/=-]{16,}/gi, keepPrefix: true},
  {id: 'assignment', pattern: /(\b[A-Za-z_]*(?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key)[A-Za-z_]*["']?\s*[:=]\s*["']?)[^\s"'&;,]+/gi, keepPrefix: true},
  // Anything else shaped like a generated secret: 32+ characters mixing upper case, lower case and
  // digits (a hex digest, all lower case, is kept).
  {id: 'high-entropy', pattern: /(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[A-Z])(?=[A-Za-z0-9+/_-]*[a-z])[A-Za-z0-9+/_-]{32,}={0,2}/g},
]

const rules: readonly RedactionRule[] = DEFAULT_RULES

/**
 * Output as a reader sees its characters, so nothing hidden splits a secret from its rule:
 * terminal escape sequences removed, CR and other C0/C1 controls (but newline and tab) removed,
 * zero-width and direction-format characters removed, and compatibility forms folded (NFKC:
 * full-width letters become ASCII). Redact after this, then sanitize for the terminal.
 */
export function plainText(text: string): string {
  return text
    .replace(/\u001b\[[0-?]*[ -/]*[@-~]/g, '')
    .replace(/\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?/g, '')
    .replace(/\u001b[@-_]?/g, '')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '')
    .replace(/[\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0]/g, '')
    .normalize('NFKC')
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
