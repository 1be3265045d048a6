/**
 * Redaction of text that goes into evidence (a `run:` gate's output excerpt): anything shaped like
 * a common secret or personal data is replaced by `[REDACTED]` before it is written. The rules are
 * the one table every writer of evidence shares (audit/redact.ts); excerpts add its heuristics for
 * command output — a PEM body without its BEGIN line, any long mixed-case-and-digit run (a
 * generated secret). It over-redacts rather than under-redacts; the excerpt is for reading, its
 * digest and byte count are the evidence.
 */
import {redactWith, type RedactionPass, type RuleScope} from '../audit/redact.js'

export const REDACTED = '[REDACTED]'

const excerptPass: RedactionPass = {scopes: new Set<RuleScope>(['secret', 'personal', 'excerpt']), placeholder: () => REDACTED}

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
  return redactWith(text, excerptPass)
}
