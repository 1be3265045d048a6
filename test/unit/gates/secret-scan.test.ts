/**
 * The secret-scan gate on a real temporary git repository with real planted secrets (an AWS access
 * key id, a GitHub token, a PEM private key made at run time — none of them is written in this
 * file, so the repository's own scan never sees one here): found by rule, file and line, and
 * nothing of them — the secret, its first or last four characters, its length — in any output.
 */
import {generateKeyPairSync, randomBytes} from 'node:crypto'
import {chmod, mkdir, readFile, rename, rm, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {secretLintProfiler} from '@secretlint/profiler'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {AirlockError} from '../../../control-plane/errors.js'
import {runSecretScan, secretScan} from '../../../control-plane/gates/builtins/secret-scan.js'
import {applyBaseline, hasOpaqueToken, parseSecretsBaseline, renderBaseline} from '../../../control-plane/gates/secrets/baseline.js'
import {RULE_NEEDS, rulesFor} from '../../../control-plane/gates/secrets/engine.js'
import {onPath, parseGitleaksReport, runExternal} from '../../../control-plane/gates/secrets/external.js'
import {fingerprintOf, resolveScanKey, scanText, scanWorkTree} from '../../../control-plane/gates/secrets/scan.js'
import {writeSarif} from '../../../control-plane/gates/sarif.js'
import type {GateContext, GateResult} from '../../../control-plane/gates/types.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {inSignedFolder, kindOf, SIGNED_PATHS} from '../../../control-plane/manifests/kinds.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {git, tempDir} from '../../helpers.js'

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const pick = (alphabet: string, n: number) => [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('')

// Made at run time, different on every run.
const AWS_KEY = ['AK', 'IA', pick(B32, 16)].join('')
const GH_TOKEN = ['gh', 'p_', pick(ALNUM, 36)].join('')
const PEM = generateKeyPairSync('rsa', {modulusLength: 2048}).privateKey.export({type: 'pkcs8', format: 'pem'}).toString()
const PEM_BODY = PEM.split('\n').filter((l) => l && !l.startsWith('-----')).join('')

/** What must appear in no output: each secret whole, its first and last four characters (the PEM's body's). */
const FORBIDDEN: Array<[string, string]> = [
  ['AWS key', AWS_KEY],
  ['AWS key suffix', AWS_KEY.slice(-4)],
  ['AWS key random part', AWS_KEY.slice(4, 8)],
  ['GitHub token', GH_TOKEN],
  ['GitHub token body prefix', GH_TOKEN.slice(4, 8)],
  ['GitHub token suffix', GH_TOKEN.slice(-4)],
  ['PEM', PEM.trim()],
  ['PEM body prefix', PEM_BODY.slice(0, 4)],
  ['PEM body start', PEM_BODY.slice(0, 16)],
  ['PEM body suffix', PEM_BODY.slice(-4)],
]

function expectNoSecret(label: string, text: string): void {
  for (const [what, value] of FORBIDDEN) expect(text.includes(value), `${label} holds the ${what}`).toBe(false)
  // No field that states a length, and not the PEM's length as a value.
  expect(text, `${label} states a length`).not.toMatch(/"(secret)?(length|len|size|secretLength)"\s*:/i)
  for (const n of [PEM.length, PEM.trim().length]) expect(text, `${label} holds the PEM's length`).not.toMatch(new RegExp(`[:=\\s]${n}(?![0-9])`))
}

/** The text rendering a command would print: status, reason, one line per finding. */
const asText = (r: GateResult) => [`${r.status}: ${r.reason}`, ...(r.findings ?? []).map((f) => `${f.file}:${f.line}:${f.column}: ${f.ruleId}: ${f.message}`)].join('\n')

let t: Awaited<ReturnType<typeof tempDir>>
let dir: string
let repo: Repository
let head: string
const ANCHOR = 'ab'.repeat(20)

function ctx(over: Partial<GateContext> = {}): GateContext {
  return {
    repo,
    commit: head,
    dir,
    limits: {...DEFAULT_LIMITS, maxSecretScanFileBytes: 64 * 1024},
    now: new Date('2026-01-01T00:00:00Z'),
    with: {external: false},
    signal: new AbortController().signal,
    host: false,
    anchor: ANCHOR,
    lastPassing: async () => null,
    ...over,
  }
}

beforeAll(async () => {
  delete process.env.AIRLOCK_SECRET_SCAN_KEY
  t = await tempDir('airlock-secrets-')
  dir = join(t.dir, 'repo')
  await mkdir(join(dir, 'src'), {recursive: true})
  await mkdir(join(dir, 'deploy'), {recursive: true})
  await git(t.dir, 'init', '-q', '-b', 'main', dir)
  await writeFile(join(dir, 'src/app.ts'), `export const region = 'eu-west-1'\n\n// deploy credentials\nconst accessKeyId = "${AWS_KEY}"\nexport default accessKeyId\n`)
  await writeFile(join(dir, 'deploy/id_rsa'), PEM)
  await writeFile(join(dir, 'README.md'), '# service\nno secrets here\n')
  await writeFile(join(dir, '.gitignore'), 'build/\n')
  await writeFile(join(dir, 'logo.bin'), Buffer.concat([Buffer.from([0, 1, 2, 3]), Buffer.from(`token=${GH_TOKEN}\n`)]))
  await writeFile(join(dir, 'big.log'), `${'x'.repeat(70 * 1024)}\n${GH_TOKEN}\n`)
  await git(dir, 'add', '-A')
  await git(dir, 'commit', '-qm', 'service')
  head = (await git(dir, 'rev-parse', 'HEAD')).trim()
  // Planted after the commit: untracked but not ignored (found), and in an ignored folder (not read).
  await writeFile(join(dir, 'src/config.env'), `LOG_LEVEL=info\nGITHUB_TOKEN=${GH_TOKEN}\n`)
  await mkdir(join(dir, 'build'))
  await writeFile(join(dir, 'build/out.env'), `GITHUB_TOKEN=${GH_TOKEN}\n`)
  repo = await Repository.open(dir)
}, 60_000)
afterAll(() => t.cleanup())

describe('the embedded scan', () => {
  let result: GateResult
  beforeAll(async () => {
    result = await runSecretScan(ctx())
  })

  it('finds the planted AWS key, GitHub token and private key by rule, file and line', () => {
    expect(result.status).toBe('fail')
    const found = (result.findings ?? []).map((f) => [f.tool, f.ruleId, f.file, f.line])
    expect(found).toEqual(
      expect.arrayContaining([
        ['airlock-secret-scan', 'secret/aws/aws-access-key-id', 'src/app.ts', 4],
        ['airlock-secret-scan', 'secret/github/github-token', 'src/config.env', 2],
        ['airlock-secret-scan', 'secret/privatekey/private-key', 'deploy/id_rsa', 1],
        // In a binary file's printable run, and past the first window of a file over the limit.
        ['airlock-secret-scan', 'secret/github/github-token', 'logo.bin', 1],
        ['airlock-secret-scan', 'secret/github/github-token', 'big.log', 2],
      ]),
    )
    for (const f of result.findings ?? []) expect(f.fingerprint).toMatch(/^[0-9a-f]{64}$/)
    expect(result.reason).toMatch(/^5 possible secrets in 5 files/)
  })

  it('scans untracked files git does not ignore, not ignored ones; binaries for their printable runs, files over the limit in windows, naming them', () => {
    expect((result.findings ?? []).map((f) => f.file)).not.toContain('build/out.env')
    const files = (result.evidence as {files: Record<string, unknown>}).files
    expect(files).toMatchObject({untracked: 1, skipped: {binary: 0, large: 0}, decoded: {binary: 1, windowed: 1}, largeFiles: ['big.log']})
    expect(result.reason).toMatch(/1 file with NUL bytes \(binary, UTF-16, UTF-32\) scanned as bytes and as wide text; 1 file over maxSecretScanFileBytes \(65536 bytes\) scanned in overlapping windows/)
  })

  it('says which external scanners did not run, and where the fingerprint key came from', async () => {
    const withExternal = await runSecretScan(ctx({with: {external: ['gitleaks', 'trufflehog']}}))
    // None of them is installable here (no Debian package); the real PATH is searched.
    expect(await onPath('gitleaks')).toBeNull()
    expect(withExternal.evidence).toMatchObject({external: {gitleaks: 'not on PATH', trufflehog: 'not on PATH'}, fingerprintKey: 'anchor-derived', profiler: 'off'})
    expect(withExternal.reason).toContain('gitleaks: not on PATH; trufflehog: not on PATH')
  })

  it('puts nothing of a secret in the text, the JSON, the SARIF file, the evidence or the findings', async () => {
    expectNoSecret('text', asText(result))
    expectNoSecret('JSON', JSON.stringify(result))
    expectNoSecret('evidence', JSON.stringify(result.evidence))
    expectNoSecret('findings', JSON.stringify(result.findings))
    const sarifFile = join(t.dir, 'out.sarif')
    await writeSarif(sarifFile, result.findings ?? [], {category: 'airlock/preflight/secret-scan', airlockVersion: '0.1.0'})
    expectNoSecret('SARIF', await readFile(sarifFile, 'utf8'))
    const baseline = renderBaseline((result.findings ?? []).map((f) => ({fingerprint: f.fingerprint!, ruleId: f.ruleId, file: f.file, reason: 'test fixture'})))
    expectNoSecret('baseline', baseline)
  })

  it('gives the same fingerprint on every run and another under another key', async () => {
    const again = await runSecretScan(ctx())
    expect(again.findings!.map((f) => f.fingerprint)).toEqual(result.findings!.map((f) => f.fingerprint))
    const other = await runSecretScan(ctx({anchor: 'cd'.repeat(20)}))
    const aws = (r: GateResult) => r.findings!.find((f) => f.ruleId === 'secret/aws/aws-access-key-id')!.fingerprint
    expect(aws(other)).not.toBe(aws(result))
    const anchored = resolveScanKey({anchor: ANCHOR})
    expect(aws(result)).toBe(fingerprintOf(AWS_KEY, anchored.key))
    const env = resolveScanKey({env: 'k'.repeat(40), anchor: ANCHOR})
    expect(env.source).toBe('env')
    expect(fingerprintOf(AWS_KEY, env.key)).not.toBe(aws(result))
  })

  it("finds an Ed25519 PKCS#8 key (airlock's own evidence keys), which secretlint's privatekey rule misses", async () => {
    const ed = generateKeyPairSync('ed25519').privateKey.export({type: 'pkcs8', format: 'pem'}).toString()
    const found = await scanText(`key:\n${ed}`, 'keys/evidence.key', resolveScanKey({anchor: ANCHOR}).key)
    expect(found).toEqual([expect.objectContaining({ruleId: 'secret/airlock/private-key', line: 2, column: 1})])
    expect(JSON.stringify(found)).not.toContain(ed.split('\n')[1]!.slice(0, 8))
  })

  it("has a prefilter literal for every rule of the pinned preset, and none for a rule it does not have", async () => {
    const {rules} = await import('@secretlint/secretlint-rule-preset-recommend')
    const ids = rules.map((r) => r.meta.id.replace('@secretlint/secretlint-rule-', '')).filter((id) => id !== 'filter-comments')
    expect(Object.keys(RULE_NEEDS).sort()).toEqual(ids.sort())
    // Each rule runs on a text holding only its literal (the combined search finds every one).
    const samples: Record<string, string> = {aws: 'AKIA', gcp: '"private_key"', npm: 'npm_', slack: 'XOXB-', basicauth: 'https://', openai: 'sk-', anthropic: 'sk-ant-', groq: 'gsk_', huggingface: 'hf_', linear: 'lin_api_', notion: 'ntn_', privatekey: 'PRIVATE KEY', sendgrid: 'SG.', shopify: 'shpat_', stripe: 'rk_test_', github: 'github_pat_', gitlab: 'glpat-', grafana: 'glsa_', '1password': 'ops_', 'database-connection-string': 'MongoDB', 'hashicorp-vault': 'hvb.', vercel: 'vck_', databricks: 'dapi', docker: 'dckr_pat_', figma: 'figd_', cloudflare: 'cfut_', tailscale: 'tskey-'}
    expect(Object.keys(samples).sort()).toEqual(ids.sort())
    for (const [rule, literal] of Object.entries(samples)) expect(rulesFor(`const x = "${literal}"`, 'a.txt'), rule).toContain(rule)
    expect(rulesFor('const x = 1', 'a.txt')).toEqual([])
  })

  it('ignores secretlint-disable comments: only the signed baseline accepts a finding', async () => {
    const text = `// secretlint-disable-next-line\nconst a = "${GH_TOKEN}"\nconst b = "${AWS_KEY}" // secretlint-disable-line\n`
    const found = await scanText(text, 'src/x.ts', resolveScanKey({anchor: ANCHOR}).key)
    expect(found.map((f) => `${f.ruleId}:${f.line}`).sort()).toEqual(['secret/aws/aws-access-key-id:3', 'secret/github/github-token:2'])
  })

  it('refuses a short AIRLOCK_SECRET_SCAN_KEY without showing it', () => {
    let error: unknown
    try {
      resolveScanKey({env: 'hunter2-short-key'})
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(AirlockError)
    expect((error as AirlockError).message).not.toContain('hunter2')
    expect((error as AirlockError).message).toContain('AIRLOCK_SECRET_SCAN_KEY')
  })

  it('keeps secretlint profiling off (no performance marks), on worker threads as in this one', async () => {
    expect(secretLintProfiler.isEnabled).toBe(false)
    expect(performance.getEntriesByType('mark').filter((m) => m.name.startsWith('@core>'))).toEqual([])
    const key = resolveScanKey({anchor: ANCHOR})
    const here = await scanWorkTree({dir, repo, key, maxFileBytes: 64 * 1024, threads: 0})
    const threads = await scanWorkTree({dir, repo, key, maxFileBytes: 64 * 1024, threads: 2})
    expect(threads.threads).toBe(2)
    expect(threads.findings).toEqual(here.findings)
  })

  it('never reads through a folder replaced by a link out of the work tree, and names a secret-bearing file name redacted', async () => {
    // A tracked folder swapped for a link to somewhere else (a keyless writer, or an agent, planting it).
    const outside = join(t.dir, 'outside')
    await mkdir(outside, {recursive: true})
    await writeFile(join(outside, 'app.ts'), `const k = "${GH_TOKEN}"\n`)
    await rename(join(dir, 'src'), join(t.dir, 'src-moved'))
    await symlink(outside, join(dir, 'src'))
    const named = join(dir, `notes-${AWS_KEY}.txt`)
    await writeFile(named, 'nothing secret inside\n')
    try {
      const r = await runSecretScan(ctx())
      // src/app.ts is scanned as committed (the work tree does not hold it): its AWS key, never the outside file's token.
      expect((r.findings ?? []).filter((f) => f.file.startsWith('src/')).map((f) => [f.file, f.ruleId, f.line])).toEqual([['src/app.ts', 'secret/aws/aws-access-key-id', 4]])
      expect((r.evidence as {files: {skipped: {notRegular: number}}}).files.skipped.notRegular).toBeGreaterThan(0)
      expect(r.reason).toMatch(/not a regular file in the work tree/)
      expect(JSON.stringify(r)).not.toContain(AWS_KEY.slice(4))
      expect((r.evidence as {files: {fromCommit: number}}).files.fromCommit).toBeGreaterThan(0)
    } finally {
      await rm(join(dir, 'src'))
      await rename(join(t.dir, 'src-moved'), join(dir, 'src'))
      await rm(named)
    }
  })

  it('scans UTF-16 and UTF-32 text (BOM or not, after a UTF-16 head), link targets and names, and what the commit holds whatever the work tree shows', async () => {
    const key = `AKIA${'QYLPMN5HHHFPZAM2'}`
    const wide = Buffer.concat([Buffer.from('header text for a resource table\n'.repeat(150), 'utf16le'), Buffer.from(`aws_access_key_id = ${key}\n`)])
    const line32 = `token ${GH_TOKEN}\n`
    const utf32 = Buffer.alloc(4 * line32.length)
    ;[...line32].forEach((c, i) => utf32.writeUInt32BE(c.charCodeAt(0), i * 4))
    await writeFile(join(dir, 'app.res'), wide)
    await writeFile(join(dir, 'notes32.txt'), utf32)
    await symlink(PEM, join(dir, 'id_link'))
    await writeFile(join(dir, `cfg-${GH_TOKEN}.txt`), 'x\n')
    await git(dir, 'add', 'app.res', 'notes32.txt', 'id_link', `cfg-${GH_TOKEN}.txt`)
    await git(dir, 'commit', '-qm', 'hidden forms')
    try {
      const r = await runSecretScan(ctx({commit: (await git(dir, 'rev-parse', 'HEAD')).trim()}))
      const by = (file: string) => (r.findings ?? []).filter((f) => f.file === file).map((f) => f.ruleId)
      expect(by('app.res')).toContain('secret/aws/aws-access-key-id')
      expect(by('notes32.txt')).toContain('secret/github/github-token')
      expect(by('id_link')).toContain('secret/privatekey/private-key')
      expect((r.findings ?? []).some((f) => f.file === 'cfg-[REDACTED].txt' && f.ruleId === 'secret/github/github-token')).toBe(true)
      expect(JSON.stringify(r)).not.toContain(GH_TOKEN.slice(4))
    } finally {
      await git(dir, 'rm', '-q', '-f', 'app.res', 'notes32.txt', 'id_link', `cfg-${GH_TOKEN}.txt`)
      await git(dir, 'commit', '-qm', 'no hidden forms')
    }

    const utf16 = join(dir, 'creds.env')
    await writeFile(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`GITHUB_TOKEN=${GH_TOKEN}\n`, 'utf16le')]))
    await git(dir, 'add', 'creds.env')
    await git(dir, 'commit', '-qm', 'utf-16')
    const commit = (await git(dir, 'rev-parse', 'HEAD')).trim()
    try {
      const r = await runSecretScan(ctx({commit}))
      expect((r.findings ?? []).filter((f) => f.file === 'creds.env').map((f) => [f.ruleId, f.line])).toEqual([['secret/github/github-token', 1]])
      // Hidden from the work tree: skip-worktree and a harmless file in its place; then gone altogether.
      await git(dir, 'update-index', '--skip-worktree', 'creds.env')
      await writeFile(utf16, 'nothing here\n')
      const hidden = await runSecretScan(ctx({commit}))
      expect((hidden.findings ?? []).filter((f) => f.file === 'creds.env')).toHaveLength(1)
      await rm(utf16)
      const gone = await runSecretScan(ctx({commit}))
      expect((gone.findings ?? []).filter((f) => f.file === 'creds.env')).toHaveLength(1)
    } finally {
      await git(dir, 'update-index', '--no-skip-worktree', 'creds.env')
      await git(dir, 'rm', '-q', '-f', 'creds.env')
      await git(dir, 'commit', '-qm', 'no utf-16')
    }
  })

  it('names a file it cannot read and fails, rather than pass without it', async () => {
    if (process.getuid?.() === 0) return // root reads a mode-000 file anyway
    const file = join(dir, 'src/locked.txt')
    await writeFile(file, 'nothing\n')
    await chmod(file, 0)
    try {
      const r = await runSecretScan(ctx())
      expect((r.evidence as {files: {unreadable: string[]}}).files.unreadable).toEqual(['src/locked.txt'])
    } finally {
      await chmod(file, 0o644)
    }
  })

  it('refuses unknown with: fields and bad external lists, naming the field', () => {
    expect(() => secretScan.checkWith!({paths: ['x']}, {file: 'manifests/gates.yaml', line: 7, field: 'preflight[3].with'})).toThrowAirlockError('SCHEMA_VIOLATION')
    expect(() => secretScan.checkWith!({external: ['nosuch']}, {file: 'manifests/gates.yaml', line: 7, field: 'with'})).toThrow(/with\.external\[0\]/)
    expect(() => secretScan.checkWith!({external: false, threads: 2}, {file: 'manifests/gates.yaml', field: 'with'})).not.toThrow()
  })
})

describe('an external scanner', () => {
  it('a gitleaks report becomes findings with rule, file, line and fingerprint only', async () => {
    // A stand-in for the gitleaks binary, which is not installable here (no Debian package): it
    // prints a report recorded in gitleaks 8's JSON format for the planted key, as `gitleaks dir`
    // writes it to --report-path.
    const bin = join(t.dir, 'fakebin')
    await mkdir(bin, {recursive: true})
    const report = [
      {
        RuleID: 'aws-access-token',
        Description: 'Identified a pattern that may indicate AWS credentials, risking unauthorized cloud resource access and data breaches on AWS platforms.',
        StartLine: 4,
        EndLine: 4,
        StartColumn: 22,
        EndColumn: 41,
        Match: AWS_KEY,
        Secret: AWS_KEY,
        File: '@DIR@/src/app.ts',
        SymlinkFile: '',
        Commit: '',
        Entropy: 3.9,
        Author: '',
        Email: '',
        Date: '',
        Message: '',
        Tags: [],
        Fingerprint: 'src/app.ts:aws-access-token:4',
      },
      {RuleID: 'generic-api-key', StartLine: 1, Secret: GH_TOKEN, Match: GH_TOKEN, File: '@DIR@/build/out.env', Fingerprint: 'build/out.env:generic-api-key:1'},
    ]
    await writeFile(join(t.dir, 'gitleaks-report.json'), JSON.stringify(report, null, 1))
    await writeFile(join(bin, 'gitleaks'), `#!/bin/sh\nif [ "$1" = version ]; then echo 8.24.0; exit 0; fi\nsed "s#@DIR@#$2#g" '${join(t.dir, 'gitleaks-report.json')}'\n`)
    await chmod(join(bin, 'gitleaks'), 0o755)
    const key = resolveScanKey({anchor: ANCHOR})
    const files = new Set((await repo.unignoredFiles()).map((f) => f.path))
    const run = await runExternal('gitleaks', {dir, key: key.key, files, maxFileBytes: 1 << 20, path: `${bin}:${process.env.PATH}`})
    expect(run).toMatchObject({tool: 'gitleaks', status: 'ran', version: '8.24.0', detail: 'gitleaks 8.24.0: 1 finding(s)'})
    // The hit in an ignored file is dropped; the other is the same secret the embedded scan fingerprints.
    expect(run.findings).toEqual([expect.objectContaining({tool: 'gitleaks', ruleId: 'gitleaks/aws-access-token', file: 'src/app.ts', line: 4, column: 22, fingerprint: fingerprintOf(AWS_KEY, key.key)})])
    expectNoSecret('gitleaks findings', JSON.stringify(run))
    const absent = await runExternal('betterleaks', {dir, key: key.key, files, maxFileBytes: 1 << 20, path: bin})
    expect(absent).toMatchObject({status: 'not-on-path', detail: 'betterleaks: not on PATH', findings: []})
    expect(parseGitleaksReport('')).toEqual([])
  })
})

describe('the secrets baseline', () => {
  it('is signed desired state: its own kind, a signed path, checked by the kinds table', () => {
    expect(kindOf('.airlock-secrets-baseline')?.kind).toBe('SecretsBaseline')
    expect(kindOf('.airlock-secrets-baseline')?.resource).toBe('SecretsBaseline')
    expect(inSignedFolder('.airlock-secrets-baseline')).toBe(true)
    expect(inSignedFolder('src/.airlock-secrets-baseline')).toBe(false)
    expect(SIGNED_PATHS).toContain('.airlock-secrets-baseline')
  })

  it('a committed baseline lets its findings pass, reported as baselined; a work-tree edit alone does not', async () => {
    const first = await runSecretScan(ctx())
    // One entry a fingerprint: the same token in three files is one secret.
    const unique = [...new Map(first.findings!.map((f) => [f.fingerprint!, f])).values()]
    const entries = unique.map((f) => ({fingerprint: f.fingerprint!, ruleId: f.ruleId, file: f.file, reason: 'test fixture, revoked'}))
    const text = renderBaseline(entries, resolveScanKey({anchor: ANCHOR}).id)
    await writeFile(join(dir, '.airlock-secrets-baseline'), text)
    const uncommitted = await runSecretScan(ctx())
    expect(uncommitted.status).toBe('fail')
    expect(uncommitted.evidence).toMatchObject({baseline: {present: false, uncommittedEdits: true}})
    await git(dir, 'add', '.airlock-secrets-baseline')
    await git(dir, 'commit', '-qm', 'baseline')
    const commit = (await git(dir, 'rev-parse', 'HEAD')).trim()
    const passed = await runSecretScan(ctx({commit}))
    expect(passed.status, passed.reason).toBe('pass')
    expect(passed.reason).toMatch(/^no secrets in .*; 5 baselined/)
    expect(passed.findings!.every((f) => f.level === 'note' && f.suppression?.justification === 'test fixture, revoked')).toBe(true)
    // Under another key the baseline matches nothing, and says so.
    const other = await runSecretScan(ctx({commit, anchor: 'cd'.repeat(20)}))
    expect(other.status).toBe('fail')
    expect(other.reason).toMatch(/the baseline was made under key [0-9a-f]{16}, not this scan's [0-9a-f]{16}/)
    await git(dir, 'rm', '-q', '.airlock-secrets-baseline')
    await git(dir, 'commit', '-qm', 'no baseline')
  })

  it('refuses a baseline holding a secret, naming file and line, never the value', async () => {
    const fp = 'a'.repeat(64)
    for (const [text, line] of [
      [`apiVersion: airlock/v1\nkind: SecretsBaseline\nentries:\n  - fingerprint: "${fp}"\n    reason: "the key was ${GH_TOKEN}"\n`, 5],
      [`apiVersion: airlock/v1\nkind: SecretsBaseline\nentries:\n  - fingerprint: "${AWS_KEY}"\n    reason: fixture\n`, 4],
      // A key hidden in comments, where secretlint's rule does not see a PEM (airlock's own rule does).
      [`apiVersion: airlock/v1\nkind: SecretsBaseline\n# ${PEM.split('\n').join('\n# ')}\nentries: []\n`, 3],
    ] as const) {
      const error = await parseSecretsBaseline(text, '.airlock-secrets-baseline', DEFAULT_LIMITS).then(
        () => null,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(AirlockError)
      expect((error as AirlockError).code).toBe('SECRET_IN_BASELINE')
      expect((error as AirlockError).message).toMatch(new RegExp(`^\\.airlock-secrets-baseline:${line}:`))
      expectNoSecret('refusal', JSON.stringify({message: (error as AirlockError).message, details: (error as AirlockError).details}))
    }
  })

  it('allows 64-hex fingerprints only and no opaque token anywhere, without echoing the value', async () => {
    const opaque = pick(ALNUM, 24) + '7'
    const notHex = await parseSecretsBaseline(`apiVersion: airlock/v1\nkind: SecretsBaseline\nentries:\n  - fingerprint: "${opaque}"\n    reason: fixture\n`, '.airlock-secrets-baseline', DEFAULT_LIMITS).catch((e: AirlockError) => e)
    expect(notHex).toMatchObject({code: 'SCHEMA_VIOLATION'})
    expect((notHex as AirlockError).message).toMatch(/^\.airlock-secrets-baseline:4:\d+: entries\[0\]\.fingerprint: must be a 64-hex fingerprint/)
    expect((notHex as AirlockError).message).not.toContain(opaque)
    const inReason = await parseSecretsBaseline(`apiVersion: airlock/v1\nkind: SecretsBaseline\nentries:\n  - fingerprint: "${'b'.repeat(64)}"\n    reason: "password ${opaque}"\n`, '.airlock-secrets-baseline', DEFAULT_LIMITS).catch((e: AirlockError) => e)
    expect(inReason).toMatchObject({code: 'SECRET_IN_BASELINE', details: {field: 'entries[0].reason', line: 5}})
    expect((inReason as AirlockError).message).not.toContain(opaque)
    expect(hasOpaqueToken('a known false positive in test/fixtures/long-file-name-here.yaml')).toBe(false)
    const ok = await parseSecretsBaseline(renderBaseline([{fingerprint: 'c'.repeat(64), ruleId: 'secret/github/github-token', file: 'test/fixtures/tokens.txt', reason: 'a revoked token kept as a fixture'}]), '.airlock-secrets-baseline', DEFAULT_LIMITS)
    expect(ok.entries).toHaveLength(1)
    expect(applyBaseline([{tool: 'gitleaks', ruleId: 'gitleaks/x', level: 'error', message: 'm', file: 'a', fingerprint: 'c'.repeat(64)}], ok, 'whatever').baselined).toBe(1)
  })
})
