/**
 * `builtin/secret-scan`: the embedded scanner (secretlint's recommended preset) over the work
 * tree's tracked and untracked-not-ignored files, always; gitleaks, betterleaks and trufflehog
 * beside it when they are on PATH (the result says which were not). Findings carry rule, file,
 * line and the keyed fingerprint only. Findings the secrets baseline lists — read from the
 * verified commit, never the work tree — are reported as baselined and do not fail the gate.
 *
 * `with:`
 *   external: true | false | [gitleaks, betterleaks, trufflehog]   (default true: all three)
 *   threads: N   (worker threads of the embedded scan; default: by the number of files)
 */
import {AirlockError, inputError} from '../../errors.js'
import {SECRETS_BASELINE_FILE} from '../../manifests/kinds.js'
import type {SecretsBaseline} from '../secrets/baseline.js'
import {EXTERNAL_SCANNERS, runExternal, type ExternalRun, type ExternalScannerName} from '../secrets/external.js'
import type {BuiltinGate, Finding, GateContext, GateResult} from '../types.js'

interface SecretScanWith {
  external: ExternalScannerName[]
  threads?: number
}

function readWith(value: Record<string, unknown>, where: {file: string; line?: number; field: string}): SecretScanWith {
  for (const k of Object.keys(value)) {
    if (k !== 'external' && k !== 'threads') throw inputError('SCHEMA_VIOLATION', {file: where.file, line: where.line, field: `${where.field}.${k}`}, 'is not a known field (secret-scan takes external, threads)')
  }
  let external: ExternalScannerName[] = [...EXTERNAL_SCANNERS]
  const e = value.external
  if (e === false) external = []
  else if (Array.isArray(e)) {
    for (const [i, name] of e.entries()) {
      if (!(EXTERNAL_SCANNERS as readonly unknown[]).includes(name)) throw inputError('SCHEMA_VIOLATION', {file: where.file, line: where.line, field: `${where.field}.external[${i}]`}, `must be one of ${EXTERNAL_SCANNERS.join(', ')}`)
    }
    external = [...new Set(e as ExternalScannerName[])]
  } else if (e !== undefined && e !== true) throw inputError('SCHEMA_VIOLATION', {file: where.file, line: where.line, field: `${where.field}.external`}, `must be true, false or a list of ${EXTERNAL_SCANNERS.join(', ')}`)
  const t = value.threads
  if (t !== undefined && !(Number.isInteger(t) && (t as number) >= 0 && (t as number) <= 64)) throw inputError('SCHEMA_VIOLATION', {file: where.file, line: where.line, field: `${where.field}.threads`}, 'must be an integer from 0 to 64')
  return {external, ...(t !== undefined ? {threads: t as number} : {})}
}

/** The baseline at the verified commit (null: none); a bad one is the gate's failure, named. */
async function loadBaseline(ctx: GateContext): Promise<{baseline: SecretsBaseline | null; uncommitted: boolean}> {
  const found = await ctx.repo.readFile(ctx.commit, SECRETS_BASELINE_FILE)
  const uncommitted = (await ctx.repo.uncommitted([SECRETS_BASELINE_FILE]).catch(() => [])).length > 0
  const {parseSecretsBaseline} = await import('../secrets/baseline.js')
  return {baseline: found ? await parseSecretsBaseline(found.text, SECRETS_BASELINE_FILE, ctx.limits) : null, uncommitted}
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

export async function runSecretScan(ctx: GateContext): Promise<GateResult> {
  const w = readWith(ctx.with, {file: 'manifests/gates.yaml', field: 'with'})
  // secretlint and its rules load only when a scan runs.
  const [{secretLintProfiler}, {applyBaseline}, {resolveScanKey, scanWorkTree, SCAN_KEY_ENV}] = await Promise.all([import('@secretlint/profiler'), import('../secrets/baseline.js'), import('../secrets/scan.js')])
  const key = resolveScanKey({env: process.env[SCAN_KEY_ENV], anchor: ctx.anchor ?? (await ctx.repo.config('airlock.trustAnchor')) ?? null})
  let baseline: SecretsBaseline | null
  let uncommitted: boolean
  try {
    ;({baseline, uncommitted} = await loadBaseline(ctx))
  } catch (error) {
    if (!(error instanceof AirlockError)) throw error
    return {status: 'fail', reason: `the secrets baseline does not load: ${error.message}`, evidence: {baseline: {file: SECRETS_BASELINE_FILE, error: error.code}, fingerprintKey: key.source, keyId: key.id}}
  }
  const report = await scanWorkTree({dir: ctx.dir, repo: ctx.repo, commit: ctx.commit, key, maxFileBytes: ctx.limits.maxSecretScanFileBytes, signal: ctx.signal, ...(w.threads !== undefined ? {threads: w.threads} : {})})
  const files = new Set((await ctx.repo.unignoredFiles()).map((f) => f.path))
  const external: ExternalRun[] = []
  for (const tool of w.external) external.push(await runExternal(tool, {dir: ctx.dir, key: key.key, files, maxFileBytes: ctx.limits.maxSecretScanFileBytes, signal: ctx.signal}))
  const all: Finding[] = [...report.findings, ...external.flatMap((r) => r.findings)]
  const baselined = applyBaseline(all, baseline, key.id)
  // A file's own name can hold a secret: what leaves the scanner names it redacted.
  const {redact} = await import('../redact.js')
  const applied = {...baselined, findings: baselined.findings.map((f) => ({...f, file: redact(f.file)}))}
  const failing = applied.findings.filter((f) => !f.suppression)
  const inFiles = new Set(failing.map((f) => f.file)).size
  const tools = [`${report.tool} (${report.engine}): ${plural(report.findings.length, 'finding')}`, ...external.map((r) => r.detail)]
  const notes: string[] = []
  if (applied.baselined > 0) notes.push(`${applied.baselined} baselined`)
  if (baseline && !applied.sameKey) notes.push(`the baseline was made under key ${baseline.keyId}, not this scan's ${key.id}: it matches nothing`)
  if (report.skipped.large > 0) notes.push(`${plural(report.skipped.large, 'file')} over maxSecretScanFileBytes (${ctx.limits.maxSecretScanFileBytes} bytes) not scanned`)
  if (report.skipped.unreadable > 0) notes.push(`${plural(report.skipped.unreadable, 'file')} could not be read`)
  if (report.fromCommit > 0) notes.push(`${plural(report.fromCommit, 'file')} scanned as committed, the work tree not holding ${report.fromCommit === 1 ? 'it' : 'them'} as committed`)
  if (report.decoded.binary > 0) notes.push(`${plural(report.decoded.binary, 'file')} with NUL bytes (binary, UTF-16, UTF-32) scanned as bytes and as wide text`)
  if (report.decoded.windowed > 0) notes.push(`${plural(report.decoded.windowed, 'file')} over maxSecretScanFileBytes (${ctx.limits.maxSecretScanFileBytes} bytes) scanned in overlapping windows`)
  if (report.skipped.notRegular > 0) notes.push(`${plural(report.skipped.notRegular, 'path')} not a regular file in the work tree (a link, a FIFO, a folder linked elsewhere) not read`)
  const status = failing.length > 0 || report.skipped.unreadable > 0 ? 'fail' : 'pass'
  const head =
    failing.length > 0
      ? `${plural(failing.length, 'possible secret')} in ${plural(inFiles, 'file')}`
      : report.skipped.unreadable > 0
        ? `${plural(report.skipped.unreadable, 'file')} could not be read, so not scanned`
        : `no secrets in ${plural(report.scanned, 'file')} (${(report.bytes / (1024 * 1024)).toFixed(1)} MiB)`
  return {
    status,
    reason: [head, ...notes, tools.join('; ')].join('; '),
    evidence: {
      engine: report.engine,
      profiler: secretLintProfiler.isEnabled ? 'on' : 'off',
      files: {fromCommit: report.fromCommit, decoded: report.decoded, listed: report.listed, untracked: report.untracked, scanned: report.scanned, bytes: report.bytes, skipped: report.skipped, largeFiles: report.largeFiles, unreadable: report.unreadable},
      limits: {maxSecretScanFileBytes: ctx.limits.maxSecretScanFileBytes},
      threads: report.threads,
      fingerprintKey: key.source,
      keyId: key.id,
      baseline: {file: SECRETS_BASELINE_FILE, present: baseline !== null, entries: baseline?.entries.length ?? 0, baselined: applied.baselined, sameKey: applied.sameKey, unused: applied.unused, uncommittedEdits: uncommitted},
      external: Object.fromEntries(external.map((r) => [r.tool, r.status === 'not-on-path' ? 'not on PATH' : r.detail])),
      findings: {total: applied.findings.length, failing: failing.length, byRule: countBy(applied.findings.map((f) => f.ruleId))},
    },
    findings: applied.findings,
  }
}

function countBy(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of keys.sort()) out[k] = (out[k] ?? 0) + 1
  return out
}

export const secretScan: BuiltinGate = {
  name: 'secret-scan',
  description: 'secretlint recommended preset over tracked and untracked-not-ignored files, plus gitleaks/betterleaks/trufflehog when on PATH; findings as rule, file, line and keyed fingerprint only; the signed .airlock-secrets-baseline accepts known ones',
  checkWith: (value, where) => void readWith(value, where),
  run: runSecretScan,
}

export default secretScan
