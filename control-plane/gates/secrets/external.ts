/**
 * External secret scanners, run beside the embedded one when they are on PATH: gitleaks,
 * betterleaks (a gitleaks successor with the same command line and report) and trufflehog. Each
 * is its own `tool` in the findings (one SARIF run each). Their reports reach airlock through a
 * pipe, never a file: the secret in them is turned into the keyed fingerprint at once and
 * dropped, and only rule, file, line and fingerprint are kept. A scanner that is not on PATH, or
 * fails, is said so — never skipped silently. trufflehog runs with `--no-verification`: verifying
 * would send each secret to its issuer's API.
 */
import {constants} from 'node:fs'
import {access, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {delimiter, isAbsolute, join, relative, sep} from 'node:path'
import type {Finding} from '../types.js'

export const EXTERNAL_SCANNERS = ['gitleaks', 'betterleaks', 'trufflehog'] as const
export type ExternalScannerName = (typeof EXTERNAL_SCANNERS)[number]

export interface ExternalRun {
  tool: ExternalScannerName
  /** `ran`: its findings are in; `not-on-path`: not installed here; `failed`: it ran and failed (detail says how). */
  status: 'ran' | 'not-on-path' | 'failed'
  /** One line for the gate's evidence, e.g. `gitleaks: not on PATH`, `gitleaks 8.24.0: 2 findings`. */
  detail: string
  findings: Finding[]
  version?: string
}

/** A raw hit as a report states it; `secret` is turned into a fingerprint and dropped. */
interface Hit {
  rule: string
  file: string
  line: number
  column?: number
  secret: string
}

/** Largest report read from a scanner, in bytes. */
const MAX_REPORT_BYTES = 64 * 1024 * 1024

/** The executable `name` on `PATH`, or null. */
export async function onPath(name: string, path: string | undefined = process.env.PATH): Promise<string | null> {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, name)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return null
}

/** gitleaks (and betterleaks) JSON report: an array of {RuleID, File, StartLine, StartColumn, Secret, …}. */
export function parseGitleaksReport(text: string): Hit[] {
  const trimmed = text.trim()
  if (trimmed === '') return []
  const rows = JSON.parse(trimmed) as unknown
  if (!Array.isArray(rows)) throw new Error('not a JSON array')
  return rows.map((r: Record<string, unknown>) => ({
    rule: String(r.RuleID ?? 'unknown'),
    file: String(r.File ?? ''),
    line: Number(r.StartLine ?? 1) || 1,
    ...(Number(r.StartColumn) > 0 ? {column: Number(r.StartColumn)} : {}),
    secret: String(r.Secret ?? r.Match ?? ''),
  }))
}

/** trufflehog `--json`: one object a line, {DetectorName, Raw, SourceMetadata: {Data: {Filesystem: {file, line}}}}. */
export function parseTrufflehogReport(text: string): Hit[] {
  const out: Hit[] = []
  for (const line of text.split('\n')) {
    if (!line.trim().startsWith('{')) continue
    const r = JSON.parse(line) as {DetectorName?: string; Raw?: string; RawV2?: string; SourceMetadata?: {Data?: {Filesystem?: {file?: string; line?: number}}}}
    const fs = r.SourceMetadata?.Data?.Filesystem
    if (!fs?.file) continue
    out.push({rule: String(r.DetectorName ?? 'unknown'), file: fs.file, line: Number(fs.line ?? 1) || 1, secret: String(r.Raw || r.RawV2 || '')})
  }
  return out
}

const ARGS: Record<ExternalScannerName, (dir: string, maxMb: number) => string[]> = {
  // The report goes to the pipe (/dev/stdout), never to a file; exit 0 with findings.
  gitleaks: (dir, maxMb) => ['dir', dir, '--report-format', 'json', '--report-path', '/dev/stdout', '--no-banner', '--exit-code', '0', '--log-level', 'error', '--max-target-megabytes', String(maxMb)],
  betterleaks: (dir, maxMb) => ['dir', dir, '--report-format', 'json', '--report-path', '/dev/stdout', '--no-banner', '--exit-code', '0', '--log-level', 'error', '--max-target-megabytes', String(maxMb)],
  trufflehog: (dir) => ['filesystem', dir, '--json', '--no-verification', '--no-update'],
}

const PARSE: Record<ExternalScannerName, (text: string) => Hit[]> = {gitleaks: parseGitleaksReport, betterleaks: parseGitleaksReport, trufflehog: parseTrufflehogReport}

/** A report's path as a repository path, or null when it is outside `dir`. */
function repoRelative(dir: string, file: string): string | null {
  const rel = isAbsolute(file) ? relative(dir, file) : file.startsWith(`${dir}${sep}`) ? file.slice(dir.length + 1) : file.replace(/^\.\//, '')
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return null
  return rel.split(sep).join('/')
}

export interface ExternalOptions {
  dir: string
  key: Uint8Array
  /** The files the embedded scan lists (tracked, untracked not ignored): hits elsewhere (ignored files) are dropped. */
  files: ReadonlySet<string>
  maxFileBytes: number
  signal?: AbortSignal
  /** PATH to look the scanners up on (default: the process's). */
  path?: string
}

/** Runs one external scanner; never throws for the scanner's sake (its failure is the result). */
export async function runExternal(tool: ExternalScannerName, opts: ExternalOptions): Promise<ExternalRun> {
  const bin = await onPath(tool, opts.path)
  if (!bin) return {tool, status: 'not-on-path', detail: `${tool}: not on PATH`, findings: []}
  const env = {...process.env, ...(opts.path !== undefined ? {PATH: opts.path} : {})}
  // Its working directory is an empty private folder: nothing it might write lands in the repository.
  const cwd = await mkdtemp(join(tmpdir(), 'airlock-scan-'))
  try {
    const {execa} = await import('execa')
    const {fingerprintOf} = await import('./engine.js')
    const version = await execa(bin, ['version'], {cwd, env, reject: false, timeout: 10_000, maxBuffer: 4096, ...(opts.signal ? {cancelSignal: opts.signal} : {})})
    const v = /\d+\.\d+\.\d+/.exec(String(version.stdout))?.[0]
    const r = await execa(bin, ARGS[tool](opts.dir, Math.max(1, Math.ceil(opts.maxFileBytes / (1024 * 1024)))), {cwd, env, reject: false, maxBuffer: MAX_REPORT_BYTES, stripFinalNewline: false, ...(opts.signal ? {cancelSignal: opts.signal} : {})})
    const name = v ? `${tool} ${v}` : tool
    // Never its stderr or stdout in a message: either may quote a secret.
    if (r.isCanceled) return {tool, status: 'failed', detail: `${name}: cancelled`, findings: [], ...(v ? {version: v} : {})}
    if (r.isMaxBuffer) return {tool, status: 'failed', detail: `${name}: report over ${MAX_REPORT_BYTES} bytes`, findings: [], ...(v ? {version: v} : {})}
    if (r.exitCode !== 0 && !(tool === 'trufflehog' && r.exitCode === 183)) return {tool, status: 'failed', detail: `${name}: exited ${r.exitCode ?? r.signal ?? 'abnormally'}`, findings: [], ...(v ? {version: v} : {})}
    let hits: Hit[]
    try {
      hits = PARSE[tool](String(r.stdout))
    } catch {
      return {tool, status: 'failed', detail: `${name}: report is not the JSON expected`, findings: [], ...(v ? {version: v} : {})}
    }
    const findings: Finding[] = []
    for (const h of hits) {
      const file = repoRelative(opts.dir, h.file)
      if (file === null || !opts.files.has(file)) continue
      const fingerprint = fingerprintOf(h.secret, opts.key)
      const ruleId = `${tool}/${h.rule.toLowerCase().replace(/[^a-z0-9._-]+/g, '-')}`
      findings.push({tool, ruleId, level: 'error', message: `possible secret (${ruleId}); value not shown, fingerprint ${fingerprint.slice(0, 16)}`, file, line: h.line, ...(h.column ? {column: h.column} : {}), fingerprint})
    }
    return {tool, status: 'ran', detail: `${name}: ${findings.length} finding(s)`, findings, ...(v ? {version: v} : {})}
  } finally {
    await rm(cwd, {recursive: true, force: true})
  }
}
