/**
 * Identities and free text are data, never syntax. One normalizer for everything a person or a
 * token says about itself (`--actor`, AIRLOCK_ACTOR, CI actors, git's user.name and user.email,
 * OIDC claims) and for free text (`--reason`) before any of it reaches a commit header, a
 * trailer, a reflog line or a Cedar entity. Both are redacted here, before any of it reaches a
 * plan, a receipt or a commit (audit/redact.ts): a secret pasted into `--reason` or `--actor` is a
 * typed placeholder from then on.
 */
import {redactReceiptText, redactSecretsOnly} from '../audit/redact.js'
import {AirlockError} from '../errors.js'

/** What git refuses in a name or an email (fsck: missingEmail, badTimezone…), and line breaks of any kind. */
// eslint-disable-next-line no-control-regex
const NOT_IN_IDENTITY = /[\u0000-\u001f\u007f-\u009f<>\u2028\u2029]/u
// eslint-disable-next-line no-control-regex
const NOT_IN_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/u

export const MAX_IDENTITY_LENGTH = 256
export const MAX_REASON_LENGTH = 4096

function describe(ch: string): string {
  const cp = ch.codePointAt(0)!
  return ch === '<' || ch === '>' ? `"${ch}"` : `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`
}

/**
 * A name, login, subject or email as it may appear in a git identity line: trimmed, non-empty,
 * at most 256 characters, no line breaks, NUL, other control characters or angle brackets.
 * `source` names where it came from (`--actor`, `AIRLOCK_ACTOR`, `git config user.name`, …).
 * A secret in it (a token pasted as an actor) is redacted; personal data is not: an identity is
 * who acted, and the receipt must say so.
 */
export function identityText(value: unknown, source: string): string {
  if (typeof value !== 'string') throw new AirlockError('INVALID_INPUT', `${source}: must be a string`, {field: source})
  const text = redactSecretsOnly(value.normalize('NFC').trim())
  if (text === '') throw new AirlockError('INVALID_INPUT', `${source}: must not be empty`, {field: source})
  if (text.length > MAX_IDENTITY_LENGTH) throw new AirlockError('INVALID_INPUT', `${source}: longer than ${MAX_IDENTITY_LENGTH} characters`, {field: source})
  const bad = NOT_IN_IDENTITY.exec(text)
  if (bad) {
    throw new AirlockError('INVALID_INPUT', `${source}: ${describe(bad[0])} is not allowed in an identity (no line breaks, control characters or angle brackets)`, {
      field: source,
      character: describe(bad[0]),
    })
  }
  return text
}

/** As identityText, for optional values: undefined and '' stay as they are. */
export function optionalIdentityText(value: unknown, source: string): string {
  return value === undefined || value === '' ? '' : identityText(value, source)
}

/**
 * Free text such as a reason: line breaks normalized to \n, trimmed, secrets and personal data
 * redacted (typed placeholders without a hash: a receipt is read fleet-wide), then at most 4,096
 * characters, no NUL or control characters other than tab and newline. Redacting again changes
 * nothing, so a saved plan's reason passes through unchanged.
 */
export function freeText(value: unknown, source: string): string {
  if (typeof value !== 'string') throw new AirlockError('INVALID_INPUT', `${source}: must be a string`, {field: source})
  const text = redactReceiptText(value.normalize('NFC').replace(/\r\n?/g, '\n').trim())
  if (text.length > MAX_REASON_LENGTH) throw new AirlockError('INVALID_INPUT', `${source}: longer than ${MAX_REASON_LENGTH} characters (once redacted)`, {field: source})
  const bad = NOT_IN_TEXT.exec(text)
  if (bad) throw new AirlockError('INVALID_INPUT', `${source}: ${describe(bad[0])} is not allowed (control characters other than tab and newline)`, {field: source, character: describe(bad[0])})
  return text
}

/**
 * Free text as a commit message body: every line is indented by two spaces, so no line of it
 * can start a trailer (`Key: value`), a scissors or patch divider (`---`) or a comment (`#`),
 * and the text can never be mistaken for the trailer block that follows it.
 */
export function messageBody(text: string): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? '' : `  ${line}`))
    .join('\n')
}
