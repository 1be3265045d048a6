/**
 * SARIF 2.1.0 for gate findings (secret scan, sandbox check, policy checks), as GitHub code
 * scanning reads it (`github/codeql-action/upload-sarif`):
 * - one run per tool, each with its own `automationDetails.id` (`<category>/<tool>/`), so uploads
 *   of several tools and suites never replace each other;
 * - `tool.driver` with name, version, informationUri and the metadata of every rule it reports
 *   (shortDescription, fullDescription, help, defaultConfiguration.level); stable rule ids;
 * - `partialFingerprints["airlockFingerprint/v1"]`: the finding's fingerprint (a secret's keyed
 *   HMAC, never the secret) or a hash of tool, rule, file and message;
 * - every result located in a repository file: a relative `artifactLocation.uri` with
 *   `uriBaseId: "%SRCROOT%"` and `region.startLine` ≥ 1 (a finding without a line points at line 1);
 * - a baselined finding carries `suppressions: [{kind: "external", justification}]`;
 * - within GitHub's upload limits: at most 25,000 results a run (errors kept first), 20 runs, and
 *   10 MB gzipped; what is cut is counted in the run's `properties.airlock.truncated`.
 */
import {createHash} from 'node:crypto'
import {gzipSync} from 'node:zlib'
import {AirlockError} from '../errors.js'
import {writeFileAtomic} from '../repo/files.js'
import type {Finding} from './types.js'
import type {SandboxFinding} from '../../platform/sandbox/check.js'
import type {PolicyProblem} from '../policy/engine.js'
import type {ToolFinding} from '../policy/tools/tools.js'

export const SARIF_SCHEMA_URI = 'https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json'
export const SARIF_VERSION = '2.1.0'
export const FINGERPRINT_KEY = 'airlockFingerprint/v1'

/** GitHub code scanning's upload limits (docs: "SARIF support for code scanning", upload limits). */
export const SARIF_LIMITS: Readonly<{maxResultsPerRun: number; maxRuns: number; maxGzipBytes: number}> = Object.freeze({maxResultsPerRun: 25_000, maxRuns: 20, maxGzipBytes: 10 * 1024 * 1024})

export type Level = Finding['level']

export interface RuleInfo {
  shortDescription: string
  fullDescription?: string
  help?: string
  helpUri?: string
  level?: Level
}

export interface ToolInfo {
  name: string
  version: string
  informationUri: string
}

export interface SarifOptions {
  /** What the runs' `automationDetails.id` start with, e.g. `airlock/preflight/secret-scan`; the tool name and `/` are appended. */
  category: string
  /** airlock's version (the version of airlock's own tools). */
  airlockVersion: string
  /** Tool metadata beyond the defaults (external scanners' versions, …). */
  tools?: Record<string, Partial<ToolInfo>>
  /** Rule metadata beyond the defaults. */
  rules?: Record<string, RuleInfo>
  limits?: Partial<{maxResultsPerRun: number; maxRuns: number; maxGzipBytes: number}>
}

const AIRLOCK_URI = 'https://airlock.dev/'

const DEFAULT_TOOLS: Record<string, Omit<ToolInfo, 'version'> & {version?: string}> = {
  'airlock-secret-scan': {name: 'airlock-secret-scan', informationUri: 'https://github.com/secretlint/secretlint/tree/master/packages/%40secretlint/secretlint-rule-preset-recommend'},
  gitleaks: {name: 'gitleaks', informationUri: 'https://github.com/gitleaks/gitleaks'},
  betterleaks: {name: 'betterleaks', informationUri: 'https://github.com/betterleaks/betterleaks'},
  trufflehog: {name: 'trufflehog', informationUri: 'https://github.com/trufflesecurity/trufflehog'},
  'airlock-sandbox-check': {name: 'airlock-sandbox-check', informationUri: AIRLOCK_URI},
  'airlock-policy': {name: 'airlock-policy', informationUri: AIRLOCK_URI},
  'airlock-tool-policy': {name: 'airlock-tool-policy', informationUri: AIRLOCK_URI},
}

const words = (id: string) => id.split('/').slice(1).join(' ').replace(/[-_]+/g, ' ').trim()

/** Metadata for a rule no table describes, from its id and tool. */
function defaultRule(ruleId: string, tool: string, level: Level): RuleInfo {
  if (tool === 'airlock-secret-scan' || tool === 'gitleaks' || tool === 'betterleaks' || tool === 'trufflehog') {
    return {
      shortDescription: `Possible secret: ${words(ruleId) || ruleId}`,
      fullDescription: `A value that ${tool === 'airlock-secret-scan' ? "secretlint's recommended rule" : `${tool}'s rule`} ${ruleId} recognizes as a secret. The result names the file, line and the keyed fingerprint (HMAC-SHA256 under the fleet's scan key) only; the value is never reported.`,
      help: 'Remove the secret from the file and rotate it (it is in git history once committed). If it is a known false positive, add its fingerprint with a reason to .airlock-secrets-baseline and commit that through `airlock change`.',
      level,
    }
  }
  if (ruleId.startsWith('sandbox/')) {
    return {shortDescription: `Sandbox spec breaks the hardening baseline: ${words(ruleId)}`, fullDescription: `airlock sandbox check rule ${ruleId}: the sandbox spec field named in the result breaks the hardening baseline.`, help: 'Change the field named in the message, then run `airlock sandbox check`.', level}
  }
  if (ruleId.startsWith('tool-policy/')) {
    return {shortDescription: `Tool policy problem: ${words(ruleId)}`, fullDescription: `The tool policy has a problem (${ruleId}) that makes the tool named in the result denied.`, help: 'Fix the field named in the message, then run `airlock tool check`.', level}
  }
  if (ruleId.startsWith('policy/')) {
    return {shortDescription: `Cedar policy problem: ${words(ruleId)}`, fullDescription: `The Cedar policies do not validate against their schema (${ruleId}).`, help: 'Fix the policy at the location given, then run `airlock policy validate`.', level}
  }
  return {shortDescription: ruleId, fullDescription: `Rule ${ruleId} of ${tool}.`, help: `See ${tool}'s documentation for ${ruleId}.`, level}
}

const RANK: Record<Level, number> = {error: 0, warning: 1, note: 2}

/** A repository path as a SARIF relative URI (each segment percent-encoded; never absolute, never `..`). */
export function artifactUri(file: string): string {
  const parts = file.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.')
  if (parts.some((p) => p === '..')) throw new AirlockError('INVALID_INPUT', `${file}: a finding's file must be inside the repository`, {file})
  return parts.map((p) => encodeURIComponent(p)).join('/')
}

function fingerprintFor(f: Finding): string {
  return f.fingerprint ?? createHash('sha256').update([f.tool, f.ruleId, f.file, f.message].join('\0')).digest('hex')
}

type SarifLog = {$schema: string; version: string; runs: Array<Record<string, unknown>>}

function buildRun(tool: string, findings: Finding[], opts: SarifOptions, cap: number): Record<string, unknown> {
  const base = DEFAULT_TOOLS[tool] ?? {name: tool, informationUri: AIRLOCK_URI}
  const info: ToolInfo = {name: base.name, version: base.version ?? opts.airlockVersion, informationUri: base.informationUri, ...opts.tools?.[tool]}
  const sorted = [...findings].sort((a, b) => RANK[a.level] - RANK[b.level] || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || (a.line ?? 1) - (b.line ?? 1) || (a.ruleId < b.ruleId ? -1 : a.ruleId > b.ruleId ? 1 : 0))
  const kept = sorted.slice(0, cap)
  const ruleIds = [...new Set(kept.map((f) => f.ruleId))].sort()
  const ruleIndex = new Map(ruleIds.map((id, i) => [id, i]))
  const rules = ruleIds.map((id) => {
    const level = kept.filter((f) => f.ruleId === id).reduce<Level>((best, f) => (RANK[f.level] < RANK[best] ? f.level : best), 'note')
    const r = opts.rules?.[id] ?? defaultRule(id, tool, level)
    return {
      id,
      name: id.split('/').map((s) => s.replace(/(^|[-_])([a-z0-9])/g, (_m, _d, c: string) => c.toUpperCase())).join(''),
      shortDescription: {text: r.shortDescription},
      fullDescription: {text: r.fullDescription ?? r.shortDescription},
      help: {text: r.help ?? r.shortDescription},
      ...(r.helpUri ? {helpUri: r.helpUri} : {}),
      defaultConfiguration: {level: r.level ?? level},
    }
  })
  const results = kept.map((f) => {
    const region: Record<string, number> = {startLine: Math.max(1, Math.floor(f.line ?? 1))}
    if (f.line && f.column && f.column >= 1) region.startColumn = Math.floor(f.column)
    return {
      ruleId: f.ruleId,
      ruleIndex: ruleIndex.get(f.ruleId)!,
      level: f.level,
      message: {text: f.message},
      locations: [{physicalLocation: {artifactLocation: {uri: artifactUri(f.file), uriBaseId: '%SRCROOT%'}, region}}],
      partialFingerprints: {[FINGERPRINT_KEY]: fingerprintFor(f)},
      ...(f.suppression ? {suppressions: [{kind: 'external', state: 'accepted', justification: f.suppression.justification}]} : {}),
    }
  })
  return {
    tool: {driver: {name: info.name, version: info.version, informationUri: info.informationUri, rules}},
    automationDetails: {id: `${opts.category.replace(/\/+$/, '')}/${tool}/`},
    columnKind: 'utf16CodeUnits',
    results,
    ...(kept.length < findings.length ? {properties: {airlock: {truncated: {results: findings.length, kept: kept.length, limit: cap}}}} : {}),
  }
}

/**
 * The SARIF log of `findings`: one run per tool (in order of first appearance), capped to GitHub's
 * limits. Tools past the 20th are left out and counted in the last run's properties.
 */
export function toSarif(findings: Finding[], opts: SarifOptions): SarifLog {
  const limits: {maxResultsPerRun: number; maxRuns: number; maxGzipBytes: number} = {...SARIF_LIMITS, ...opts.limits}
  const byTool = new Map<string, Finding[]>()
  for (const f of findings) byTool.set(f.tool, [...(byTool.get(f.tool) ?? []), f])
  const tools = [...byTool.keys()]
  const dropped = tools.slice(limits.maxRuns)
  let cap: number = limits.maxResultsPerRun
  for (;;) {
    const runs = tools.slice(0, limits.maxRuns).map((t) => buildRun(t, byTool.get(t)!, opts, cap))
    if (dropped.length > 0) {
      const last = runs[runs.length - 1]!
      last.properties = {...(last.properties as object), airlock: {...((last.properties as {airlock?: object})?.airlock ?? {}), droppedTools: dropped}}
    }
    const log: SarifLog = {$schema: SARIF_SCHEMA_URI, version: SARIF_VERSION, runs}
    // Within the compressed-size limit, halving the results a run may keep until it fits.
    if (gzipSync(JSON.stringify(log)).length <= limits.maxGzipBytes || cap <= 1) return log
    cap = Math.max(1, Math.floor(Math.min(cap, Math.max(...runs.map((r) => (r.results as unknown[]).length))) / 2))
  }
}

/** Writes the SARIF log of `findings` to `file` (a temporary file renamed into place). */
export async function writeSarif(file: string, findings: Finding[], opts: SarifOptions): Promise<SarifLog> {
  const log = toSarif(findings, opts)
  await writeFileAtomic(file, `${JSON.stringify(log, null, 2)}\n`)
  return log
}

// Converters: other checks' findings as gate Findings (one SARIF run per tool).

const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase()
const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex')

/** `airlock sandbox check` findings (rule, file, line, field). */
export function sandboxFindings(findings: SandboxFinding[]): Finding[] {
  return findings.map((f) => ({
    tool: 'airlock-sandbox-check',
    ruleId: `sandbox/${f.rule}`,
    level: 'error' as const,
    message: `${f.field}: ${f.message}`,
    file: f.file,
    ...(f.line ? {line: f.line} : {}),
    ...(f.column ? {column: f.column} : {}),
    fingerprint: hash('sandbox', f.rule, f.file, f.field),
  }))
}

/** Cedar validation problems (`policy validate`): located in the policy file, or `fallbackFile` (e.g. policies/schema.cedarschema). */
export function policyFindings(problems: PolicyProblem[], fallbackFile = 'policies/schema.cedarschema'): Finding[] {
  return problems.map((p) => ({
    tool: 'airlock-policy',
    ruleId: 'policy/cedar-validation',
    level: 'error' as const,
    message: `${p.policyId ? `policy ${p.policyId}: ` : ''}${p.message}${p.help ? ` (${p.help})` : ''}`,
    file: p.file ?? fallbackFile,
    ...(p.line ? {line: p.line} : {}),
    ...(p.column ? {column: p.column} : {}),
    fingerprint: hash('policy', p.file ?? fallbackFile, p.policyId ?? '', p.message),
  }))
}

/** Tool-policy findings (`tool check`): code, tool, file, line, field. */
export function toolPolicyFindings(findings: ToolFinding[]): Finding[] {
  return findings.map((f) => ({
    tool: 'airlock-tool-policy',
    ruleId: `tool-policy/${kebab(f.code)}`,
    level: 'error' as const,
    message: `${f.tool}: ${f.field}: ${f.message}`,
    file: f.file,
    ...(f.line ? {line: f.line} : {}),
    ...(f.column ? {column: f.column} : {}),
    fingerprint: hash('tool-policy', f.code, f.tool, f.file, f.field),
  }))
}
