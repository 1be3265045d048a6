/**
 * The embedded secret scanner's engine: secretlint's recommended preset over one file's text,
 * reduced on the spot to what may leave it — rule id, line, column and a keyed fingerprint
 * (HMAC-SHA256 of the secret under the fleet's scan key). The secret, secretlint's message (which
 * quotes it) and its data never leave this module.
 *
 * This file imports packages and node builtins only, in erasable TypeScript, because it is also
 * the body of the scan's worker threads (run from `dist/` as JavaScript, from sources by Node's
 * type stripping).
 */
import {createHash, createHmac} from 'node:crypto'
import {constants} from 'node:fs'
import {open, realpath} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {isMainThread, parentPort, workerData} from 'node:worker_threads'
import {lintSource} from '@secretlint/core'
import {secretLintProfiler} from '@secretlint/profiler'
import {rules as recommended} from '@secretlint/secretlint-rule-preset-recommend'

// secretlint 13 profiles every rule of every file unless told not to (performance marks kept in
// the process's timeline: ~25% slower, and memory that grows with the scan). Off in our process.
secretLintProfiler.setEnabled(false)
// secretlint's own debug output (DEBUG=@secretlint/*) names the file path and the rule options,
// never the text: we hand it no file name but the repository-relative one and no secret in options.

/** The preset and version the embedded scanner runs (named in the gate's evidence and SARIF). */
export const SECRETLINT_PRESET = '@secretlint/secretlint-rule-preset-recommend'
export const SECRETLINT_VERSION = '13.1.0'

const short = (id: string) => id.replace(/^@secretlint\/secretlint-rule-/, '')

/**
 * The preset's rules, each registered on its own (as the preset registers them), but:
 * - `aws` with its id scan on: AWS access key ids (AKIA…) are secrets here;
 * - without `filter-comments`, which honors inline `secretlint-disable` comments: they would let
 *   anyone who can write a file hide a secret from the gate (accepting a finding is the signed
 *   baseline's job), and it costs a fifth of the scan.
 */
const RULES = recommended.filter((r) => short(r.meta.id) !== 'filter-comments').map((rule) => ({id: rule.meta.id, rule, options: short(rule.meta.id) === 'aws' ? {enableIDScanRule: true} : {}}))

/**
 * What a text must contain for each rule of the preset (13.1.0) to be able to report anything: a
 * literal every one of the rule's patterns starts with or contains (case-insensitive where a
 * pattern is, or wider), read from the rules' sources. A rule is run on a text only when its
 * literal occurs, so nothing it could report is missed; the rules' regexes (unicode lookbehinds,
 * optional prefixes) are what make the scan slow, the literal searches are not. A rule not listed
 * (a later version's) always runs. test/unit/gates/secret-scan.test.ts checks the ids are the preset's.
 */
export const RULE_NEEDS: Readonly<Record<string, (text: string, file: string) => boolean>> = {
  aws: (t) => /A3T|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA|secret|account/i.test(t),
  // .p12 files by name (binary: skipped by the scan before this), .json service accounts by their
  // private_key (which JSON may spell with \u escapes).
  gcp: (t, f) => f.endsWith('.p12') || t.includes('private_key') || t.includes('\\u'),
  npm: (t) => /x-oauth-basic|_authToken=|npm_/.test(t),
  slack: (t) => /xox[a-z]-|xapp-|hooks\.slack\.com/i.test(t),
  basicauth: (t) => t.includes('://'),
  openai: (t) => t.includes('sk-'),
  anthropic: (t) => t.includes('sk-ant-'),
  groq: (t) => t.includes('gsk_'),
  huggingface: (t) => t.includes('hf_'),
  linear: (t) => t.includes('lin_api_'),
  notion: (t) => t.includes('ntn_'),
  privatekey: (t) => t.includes('PRIVATE KEY'),
  sendgrid: (t) => t.includes('SG.'),
  shopify: (t) => t.includes('shp'),
  stripe: (t) => /[rs]k_(live|test)_/.test(t),
  github: (t) => /gh[a-z]_|github_pat_/.test(t),
  gitlab: (t) => t.includes('glpat-'),
  grafana: (t) => /glc_|glsa_/.test(t),
  '1password': (t) => t.includes('ops_'),
  'database-connection-string': (t) => /mongodb|mysql|postgres/i.test(t),
  'hashicorp-vault': (t) => /hv[a-z]\./.test(t),
  vercel: (t) => /vc[a-z]_/.test(t),
  databricks: (t) => t.includes('dapi'),
  docker: (t) => t.includes('dckr_pat_'),
  figma: (t) => t.includes('figd_'),
  cloudflare: (t) => /cf[a-z]{1,2}_/.test(t),
  tailscale: (t) => t.includes('tskey-'),
}

/**
 * Every literal of RULE_NEEDS in two regexes (case-sensitive and not), so a text is searched twice
 * rather than once per rule; the rules' own tests then run only on the few literals found.
 */
const LITERALS = /sk-ant-|sk-|gsk_|hf_|lin_api_|ntn_|PRIVATE KEY|SG\.|shp|[rs]k_(?:live|test)_|gh[a-z]_|github_pat_|glpat-|glc_|glsa_|ops_|hv[a-z]\.|vc[a-z]_|dapi|dckr_pat_|figd_|cf[a-z]{1,2}_|tskey-|x-oauth-basic|_authToken=|npm_|:\/\/|private_key|\\u/g
const LITERALS_I = /A3T|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA|secret|account|xox[a-z]-|xapp-|hooks\.slack\.com|mongodb|mysql|postgres/gi

/** The rules that can report on `text`, by short id (for tests). */
export const rulesFor = (text: string, file: string): string[] => configFor(text, file).rules.map((r) => short(r.id))

/** The rules that can report on `text` (configs cached by the set). */
const configs = new Map<string, {rules: typeof RULES}>()
function configFor(text: string, file: string): {rules: typeof RULES} {
  // What follows each literal found (24 characters), as a small text the rules' tests run on
  // instead of the whole file: a longer literal that starts with a shorter one is in it too.
  const found = new Set<string>()
  for (const re of [LITERALS, LITERALS_I]) for (const m of text.matchAll(re)) found.add(text.slice(m.index, m.index + 24))
  const probe = [...found].join('\n')
  const mask = RULES.map((r) => (RULE_NEEDS[short(r.id)]?.(probe, file) ?? true ? '1' : '0')).join('')
  let c = configs.get(mask)
  if (!c) configs.set(mask, (c = {rules: RULES.filter((_r, i) => mask[i] === '1')}))
  return c
}

/**
 * secretlint's privatekey rule wants a body of 100 characters or more, so an Ed25519 PKCS#8 key
 * (64 characters of base64 — airlock's own evidence keys) passes it. airlock's own rule finds any
 * PEM private key block the preset did not, with a body of 40 base64 characters or more.
 */
const PEM_PRIVATE_KEY = /-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----[\s\S]{1,10000}?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----/g
export const AIRLOCK_PRIVATE_KEY_RULE = 'secret/airlock/private-key'

/** One finding as the engine hands it out: nothing of the secret but its keyed fingerprint. */
export interface EngineFinding {
  /** airlock's stable rule id: `secret/<secretlint rule>/<message id>`, e.g. `secret/github/github-token`. */
  ruleId: string
  line: number
  /** 1-based. */
  column: number
  fingerprint: string
}

export type FileOutcome =
  /** `decoded`: a NUL somewhere (binary, UTF-16, UTF-32), read as its bytes and as its bytes without NULs; `windows`: larger than one read, scanned in overlapping windows. */
  | {status: 'scanned'; bytes: number; findings: EngineFinding[]; oid?: string; decoded?: 'binary'; windows?: boolean}
  | {status: 'binary' | 'large' | 'missing' | 'not-regular'; bytes: number}

const kebab = (s: string) =>
  s
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase()

/** `@secretlint/secretlint-rule-github` + `GITHUB_TOKEN` → `secret/github/github-token`. */
export function airlockRuleId(secretlintRule: string, messageId: string): string {
  return `secret/${kebab(secretlintRule.replace(/^@secretlint\/secretlint-rule-/, ''))}/${kebab(messageId)}`
}

/** HMAC-SHA256 of the secret under the scan key, hex: what names a secret without revealing it. */
export function fingerprintOf(secret: string, key: Uint8Array): string {
  return createHmac('sha256', key).update(secret, 'utf8').digest('hex')
}

/** The secret a secretlint message is about: the longest of its data values found in the text, else its range. */
function secretOf(content: string, m: {range: readonly [number, number]; data?: Record<string, unknown>}): string {
  let best = ''
  for (const v of Object.values(m.data ?? {})) if (typeof v === 'string' && v.length > best.length && content.includes(v)) best = v
  return best || content.slice(m.range[0], m.range[1])
}

/** Scans one text. `file` is for secretlint's file-name rules only (e.g. `.p12`, `.npmrc`). */
export async function scanText(content: string, file: string, key: Uint8Array): Promise<EngineFinding[]> {
  const dot = file.lastIndexOf('.')
  const result = await lintSource({
    source: {content, filePath: file, contentType: 'text', ext: dot > file.lastIndexOf('/') ? file.slice(dot) : ''},
    options: {config: configFor(content, file) as never, noPhysicFilePath: true, maskSecrets: true},
  })
  const out: EngineFinding[] = []
  for (const m of result.messages) {
    out.push({
      ruleId: airlockRuleId(m.ruleId, m.messageId ?? m.ruleId),
      line: Math.max(1, m.loc.start.line),
      column: Math.max(0, m.loc.start.column) + 1,
      fingerprint: fingerprintOf(secretOf(content, m as never), key),
    })
  }
  if (content.includes('PRIVATE KEY')) {
    const seen = new Set(out.filter((f) => f.ruleId.startsWith('secret/privatekey/')).map((f) => f.line))
    for (const m of content.matchAll(PEM_PRIVATE_KEY)) {
      const before = content.slice(0, m.index)
      const line = before.split('\n').length
      // A real key's body is 40 base64 characters or more (Ed25519 PKCS#8: 64); a shorter one is a placeholder.
      const body = m[0].replace(/-----(BEGIN|END)[^-]*-----/g, '').replace(/^[A-Za-z-]+:.*$/gm, '').replace(/[^A-Za-z0-9+/=]/g, '')
      if (seen.has(line) || body.length < 40) continue
      out.push({ruleId: AIRLOCK_PRIVATE_KEY_RULE, line, column: m.index - before.lastIndexOf('\n'), fingerprint: fingerprintOf(m[0], key)})
    }
  }
  return out
}

/**
 * Reads and scans one work-tree file, whole: regular files only, read in windows of at most
 * `maxBytes`; a file with NULs (binary, UTF-16, UTF-32) read both as its bytes and without them. Neither
 * the file nor a folder on its way may be a link out of the work tree (a folder replaced by a
 * link to ~/.aws would put someone's real secret's fingerprint in a receipt): the folder must be
 * where the path says, and the file is opened without following a link and without blocking (a
 * FIFO), then judged by what was opened.
 */
export async function scanFile(abs: string, file: string, maxBytes: number, key: Uint8Array): Promise<FileOutcome> {
  const root = abs.endsWith(`/${file}`) ? abs.slice(0, -(file.length + 1)) : null
  if (root === null) return {status: 'not-regular', bytes: 0}
  if (dirname(file) !== '.') {
    const [realDir, realRoot] = await Promise.all([realpath(dirname(abs)).catch(() => null), realpath(root).catch(() => null)])
    if (realDir === null) return {status: 'missing', bytes: 0}
    if (realRoot === null || realDir !== join(realRoot, dirname(file))) return {status: 'not-regular', bytes: 0}
  }
  let fh
  try {
    fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    return {status: (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'not-regular', bytes: 0}
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) return {status: 'not-regular', bytes: 0}
    return await scanWindows(
      st.size,
      async (start, length) => {
        const buf = Buffer.alloc(length)
        let n = 0
        while (n < length) {
          const {bytesRead} = await fh.read(buf, n, length - n, start + n)
          if (bytesRead === 0) break
          n += bytesRead
        }
        return buf.subarray(0, n)
      },
      file,
      maxBytes,
      key,
    )
  } finally {
    await fh.close()
  }
}

/** A committed blob, scanned as a work-tree file is (the commit's content, whatever the work tree holds). */
export function scanBytes(bytes: Buffer, file: string, maxBytes: number, key: Uint8Array): Promise<FileOutcome & {status: 'scanned'}> {
  return scanWindows(bytes.length, async (start, length) => bytes.subarray(start, start + length), file, maxBytes, key)
}

/**
 * Reads `size` bytes in windows of at most `maxBytes` (even, so UTF-16 stays aligned), each
 * overlapping the last by OVERLAP bytes so a secret across a boundary is whole in one of them: a
 * file larger than a window is scanned all the same, never skipped. Also the git blob id of what
 * was read, so a caller can tell whether it is what a commit holds.
 */
async function scanWindows(size: number, read: (start: number, length: number) => Promise<Buffer>, file: string, maxBytes: number, key: Uint8Array): Promise<FileOutcome & {status: 'scanned'}> {
  const window = Math.max(2 * OVERLAP, maxBytes - (maxBytes % 2))
  const found = new Map<string, EngineFinding>()
  const hash = createHash('sha1').update(`blob ${size}\0`)
  let pos = 0
  let newlines = 0
  let total = 0
  let kind: TextKind = 'text'
  for (;;) {
    const readStart = pos === 0 ? 0 : pos - OVERLAP
    const bytes = await read(readStart, Math.min(window, size - readStart))
    // Lines before this window: those counted so far, less those in the overlap read again.
    const before = newlines - countNewlines(bytes.subarray(0, pos - readStart))
    hash.update(bytes.subarray(pos - readStart))
    total += Math.max(0, bytes.length - (pos - readStart))
    const decoded = textsOf(bytes)
    if (decoded.kind !== 'text') kind = decoded.kind
    for (const text of decoded.texts) {
      for (const f of await scanText(text, file, key)) {
        const g = {...f, line: f.line + before}
        found.set(`${g.ruleId}\0${g.line}\0${g.fingerprint}`, g)
      }
    }
    newlines = before + countNewlines(bytes)
    if (bytes.length === 0 || readStart + bytes.length >= size) break
    pos = readStart + bytes.length
  }
  // A file that changed size while read has no id to compare (it is not what any commit holds).
  const oid = total === size ? hash.digest('hex') : ''
  return {status: 'scanned', bytes: size, findings: [...found.values()], oid, ...(kind !== 'text' ? {decoded: kind} : {}), ...(size > maxBytes ? {windows: true} : {})}
}

/** Bytes each window of a large file shares with the one before. */
const OVERLAP = 64 * 1024

type TextKind = 'text' | 'binary'

const countNewlines = (b: Buffer) => {
  let n = 0
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++
  return n
}

/**
 * The texts a scanner reads in `bytes`. Without a NUL anywhere in the window: UTF-8 text. With
 * one, no single decoding is trusted (a UTF-16 head can hide ASCII after it, UTF-32 looks like
 * binary): two readings, each byte for byte with every control byte but tab and newlines as a
 * space — the bytes as they are (ASCII runs in binary data), and the bytes with every NUL
 * removed (ASCII in UTF-16 or UTF-32 of either byte order, BOM or not). Newlines stay where they
 * are in both, so lines are counted as in the file.
 */
function textsOf(bytes: Buffer): {texts: string[]; kind: TextKind} {
  if (!bytes.includes(0)) return {texts: [bytes.toString('utf8')], kind: 'text'}
  const printable = (b: number) => (b < 9 || b === 11 || b === 12 || (b > 13 && b < 32) || b === 127 ? 32 : b)
  const asIs = Buffer.from(bytes.map(printable)).toString('latin1')
  const wide = Buffer.from(bytes.filter((b) => b !== 0).map(printable)).toString('latin1')
  return {texts: [asIs, wide], kind: 'binary'}
}

/** A worker's job and answer. */
export interface WorkerJob {
  id: number
  abs: string
  file: string
  maxBytes: number
}
export type WorkerAnswer = {id: number; outcome: FileOutcome} | {id: number; error: string}

// The worker thread: scans the files it is sent with the key it was started with.
if (!isMainThread && parentPort && (workerData as {airlockSecretScan?: boolean} | null)?.airlockSecretScan) {
  const key = new Uint8Array((workerData as {key: Uint8Array}).key)
  const port = parentPort
  port.on('message', (job: WorkerJob) => {
    scanFile(job.abs, job.file, job.maxBytes, key).then(
      (outcome) => port.postMessage({id: job.id, outcome} satisfies WorkerAnswer),
      // The error's class only: a message could quote the file's content.
      (error: unknown) => port.postMessage({id: job.id, error: (error as {code?: string}).code ?? (error as Error)?.name ?? 'error'} satisfies WorkerAnswer),
    )
  })
}
