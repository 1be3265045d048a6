/**
 * The secrets baseline, `.airlock-secrets-baseline` at the repository root (kind SecretsBaseline):
 * known secret-scan findings, each named by its keyed fingerprint with a reason, that are reported
 * as baselined and do not fail the gate. It is signed desired state: changed only through the
 * pipeline (`airlock change`, authorized as ChangeDesiredState on SecretsBaseline), and the gate
 * reads it from the verified commit, never from the work tree.
 *
 * It never holds a secret: the schema allows 64-hex fingerprints only, every other string is
 * checked for opaque high-entropy runs, the secret scan runs over its own text, and no error about
 * it quotes a value.
 */
import {AirlockError, inputError} from '../../errors.js'
import type {Limits} from '../../limits.js'
import {validateKind} from '../../manifests/validate.js'
import {loadYaml, locate, type LoadedYaml} from '../../manifests/yaml.js'
import type {Finding} from '../types.js'
import {scanText} from './engine.js'

export {SECRETS_BASELINE_FILE} from '../../manifests/kinds.js'

export interface BaselineEntry {
  fingerprint: string
  ruleId?: string
  file?: string
  reason: string
}

export interface SecretsBaseline {
  file: string
  keyId?: string
  entries: BaselineEntry[]
}

/** The key the baseline's own text is scanned under: only whether something is found matters. */
const CHECK_KEY = new Uint8Array(32)

/** Runs of this many characters or more, letters and digits mixed, are judged by their entropy. */
const OPAQUE_MIN = 20
/** Bits per character from which such a run is an opaque token (random base62 of 20 chars: ~4.2). */
const OPAQUE_BITS = 3.6

function entropy(s: string): number {
  const counts = new Map<string, number>()
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1)
  let h = 0
  for (const n of counts.values()) h -= (n / s.length) * Math.log2(n / s.length)
  return h
}

/** Where the first run that looks like a token (long, letters and digits mixed, high entropy) starts in `text`, or null. */
export function firstOpaqueToken(text: string): number | null {
  for (const m of text.matchAll(/[A-Za-z0-9+/=_-]{20,}/g)) {
    const run = m[0]
    if (run.length >= OPAQUE_MIN && /[0-9]/.test(run) && /[A-Za-z]/.test(run) && entropy(run) >= OPAQUE_BITS) return m.index
  }
  return null
}

/** Does `text` hold a run that looks like a token? */
export const hasOpaqueToken = (text: string): boolean => firstOpaqueToken(text) !== null

/**
 * Parses and checks a baseline; a refusal names file, line and field, never the value.
 * Order: the secret scan over the raw text first (a secret anywhere, even in a comment or a field
 * the schema would refuse, is SECRET_IN_BASELINE), then YAML and the schema (with the value
 * withheld from the message), then opaque tokens in the free-text fields.
 */
export async function parseSecretsBaseline(text: string, file: string, limits: Limits): Promise<SecretsBaseline> {
  if (Buffer.byteLength(text) > limits.maxFileBytes) throw inputError('TOO_LARGE', {file}, `file is ${Buffer.byteLength(text)} bytes, the limit is ${limits.maxFileBytes}`)
  const found = await scanText(text, file, CHECK_KEY)
  if (found.length > 0) {
    const f = found[0]!
    throw inputError('SECRET_IN_BASELINE', {file, line: f.line, column: f.column}, `holds what the secret scan reports as a secret (${f.ruleId}); a baseline lists fingerprints only — remove it (value not shown)`, {ruleId: f.ruleId})
  }
  let loaded: LoadedYaml
  try {
    loaded = loadYaml(text, file, limits)
    validateKind('SecretsBaseline', loaded)
  } catch (error) {
    // Schema messages may quote the offending value; a baseline's values are withheld.
    if (error instanceof AirlockError && (error.code === 'SCHEMA_VIOLATION' || error.code === 'BAD_DIGEST' || error.code === 'INVALID_INPUT')) {
      const d = error.details as {line?: number; column?: number; field?: string}
      throw inputError('SCHEMA_VIOLATION', {file, line: d.line, column: d.column, field: d.field}, `${describeField(d.field)} (value not shown)`)
    }
    throw error
  }
  const value = loaded.value as {keyId?: string; entries: BaselineEntry[]}
  for (const [i, e] of value.entries.entries()) {
    for (const field of ['ruleId', 'file', 'reason'] as const) {
      const v = e[field]
      if (v !== undefined && hasOpaqueToken(v)) {
        throw inputError('SECRET_IN_BASELINE', {file, ...locate(loaded, ['entries', i, field]), field: `entries[${i}].${field}`}, 'holds a long opaque token, which may be a secret; a baseline lists fingerprints, rule ids, paths and plain-words reasons only (value not shown)')
      }
    }
  }
  // Anywhere else — comments included — no opaque token either (fingerprints and the key id set aside).
  const masked = text.replace(/\b[0-9a-f]{64}\b|\b[0-9a-f]{16}\b/g, (m) => ' '.repeat(m.length))
  const opaque = firstOpaqueToken(masked)
  if (opaque !== null) {
    const before = masked.slice(0, opaque)
    const line = before.split('\n').length
    throw inputError('SECRET_IN_BASELINE', {file, line, column: opaque - before.lastIndexOf('\n')}, 'holds a long opaque token, which may be a secret; a baseline lists fingerprints, rule ids, paths and plain-words reasons only (value not shown)')
  }
  const seen = new Map<string, number>()
  for (const [i, e] of value.entries.entries()) {
    const before = seen.get(e.fingerprint)
    if (before !== undefined) throw inputError('SCHEMA_VIOLATION', {file, ...locate(loaded, ['entries', i, 'fingerprint']), field: `entries[${i}].fingerprint`}, `the same fingerprint as entries[${before}]`)
    seen.set(e.fingerprint, i)
  }
  return {file, ...(value.keyId ? {keyId: value.keyId} : {}), entries: value.entries}
}

function describeField(field: string | undefined): string {
  if (!field) return 'does not match the SecretsBaseline schema'
  if (/\.fingerprint$/.test(field)) return 'must be a 64-hex fingerprint (HMAC-SHA256, as the secret-scan gate reports it)'
  if (/\.keyId$|^keyId$/.test(field)) return 'must be a 16-hex key id (as the secret-scan gate reports it)'
  if (/\.ruleId$/.test(field)) return 'must be a rule id such as secret/github/github-token'
  if (/\.reason$/.test(field)) return 'must be one line of 3 to 500 characters'
  if (/\.file$/.test(field)) return 'must be a repository path on one line'
  return 'does not match the SecretsBaseline schema'
}

/** A baseline's text as `airlock change` would commit it: entries sorted by file, rule and fingerprint. */
export function renderBaseline(entries: BaselineEntry[], keyId?: string): string {
  const q = (s: string) => JSON.stringify(s)
  const sorted = [...entries].sort((a, b) => `${a.file ?? ''}\0${a.ruleId ?? ''}\0${a.fingerprint}`.localeCompare(`${b.file ?? ''}\0${b.ruleId ?? ''}\0${b.fingerprint}`))
  const lines = ['apiVersion: airlock/v1', 'kind: SecretsBaseline', ...(keyId ? [`keyId: ${q(keyId)}`] : []), sorted.length ? 'entries:' : 'entries: []']
  for (const e of sorted) {
    lines.push(`  - fingerprint: ${q(e.fingerprint)}`)
    if (e.ruleId) lines.push(`    ruleId: ${q(e.ruleId)}`)
    if (e.file) lines.push(`    file: ${q(e.file)}`)
    lines.push(`    reason: ${q(e.reason)}`)
  }
  return `${lines.join('\n')}\n`
}

export interface BaselineApplied {
  findings: Finding[]
  /** Findings the baseline covers (reported, not failing). */
  baselined: number
  /** Whether the baseline was made under the key in use (false: its entries can match nothing). */
  sameKey: boolean
  /** Entries that matched no finding (stale: the secret is gone or moved under another key). */
  unused: number
}

/**
 * Marks findings whose fingerprint the baseline lists: level `note`, with the entry's reason as a
 * suppression. A baseline made under another key (`keyId` differs) matches nothing.
 */
export function applyBaseline(findings: Finding[], baseline: SecretsBaseline | null, keyId: string): BaselineApplied {
  const sameKey = !baseline?.keyId || baseline.keyId === keyId
  const byFp = new Map((sameKey ? (baseline?.entries ?? []) : []).map((e) => [e.fingerprint, e]))
  const used = new Set<string>()
  let baselined = 0
  const out = findings.map((f) => {
    const e = f.fingerprint ? byFp.get(f.fingerprint) : undefined
    if (!e || (e.ruleId && e.ruleId !== f.ruleId && f.tool === 'airlock-secret-scan')) return f
    used.add(e.fingerprint)
    baselined++
    return {...f, level: 'note' as const, message: `baselined: ${f.message}`, suppression: {kind: 'baseline' as const, justification: e.reason}}
  })
  return {findings: out, baselined, sameKey, unused: (baseline?.entries.length ?? 0) - used.size}
}
