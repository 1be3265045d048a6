// Secret-scan benchmark (issue 18): the embedded scan (secretlint's recommended preset, profiling
// off, worker threads) over a generated 100 MB tree of source-like text files with a few planted
// secrets, against ripgrep (Debian's `rg`) searching the same tree for equivalent regexes of the
// preset's rules, in the same run. Also the preset in one thread with secretlint's profiler on and
// off (what 13.x's opt-in profiling saves). The secrets are made at run time.
import {spawnSync} from 'node:child_process'
import {generateKeyPairSync, randomBytes} from 'node:crypto'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {machine, ROOT, writeSection} from './report.js'

const LOAD = loadavg()[0].toFixed(1)
const MB = Number(process.env.BENCH_SECRETS_MB ?? 100)
const FILE_BYTES = 48 * 1024
const {scanWorkTree, resolveScanKey} = await import(join(ROOT, 'dist/control-plane/gates/secrets/scan.js'))
const {Repository} = await import(join(ROOT, 'dist/control-plane/repo/repository.js'))
const {secretLintProfiler} = await import('@secretlint/profiler')

// A deterministic generator of source-like text: TypeScript, YAML, JSON and Python lines.
let seed = 42
const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
const any = (xs) => xs[Math.floor(rnd() * xs.length)]
const WORDS = ['config', 'value', 'result', 'user', 'request', 'response', 'handler', 'token', 'session', 'image', 'digest', 'channel', 'policy', 'sandbox', 'manifest', 'error', 'timeout', 'retry', 'limit', 'buffer', 'stream', 'key', 'name', 'path', 'id', 'count', 'index', 'items', 'options', 'client']
const ident = () => any(WORDS) + (rnd() < 0.5 ? any(WORDS).replace(/^./, (c) => c.toUpperCase()) : '')
const hex = (n) => Array.from({length: n}, () => '0123456789abcdef'[Math.floor(rnd() * 16)]).join('')
const LINES = {
  ts: [
    () => `import {${ident()}, ${ident()}} from './${ident()}.js'`,
    () => `export async function ${ident()}(${ident()}: string, ${ident()}: number): Promise<void> {`,
    () => `  const ${ident()} = await ${ident()}.${ident()}(${ident()}, {${ident()}: ${Math.floor(rnd() * 1000)}})`,
    () => `  if (!${ident()}) throw new Error(\`${ident()} ${ident()} is missing: \${${ident()}}\`)`,
    () => `  // ${any(WORDS)} ${any(WORDS)} ${any(WORDS)}: see ${any(WORDS)}.ts for the ${any(WORDS)}`,
    () => `  return ${ident()}.map((x) => x.${ident()}).filter(Boolean)`,
    () => `}`,
    () => `const digest = 'sha256:${hex(64)}'`,
  ],
  yaml: [
    () => `${ident()}:`,
    () => `  ${ident()}: ${any(WORDS)}-${Math.floor(rnd() * 100)}`,
    () => `  - name: ${ident()}`,
    () => `    url: https://${any(WORDS)}.example.com/${any(WORDS)}/${any(WORDS)}`,
    () => `    digest: sha256:${hex(64)}`,
  ],
  json: [() => `  "${ident()}": "${any(WORDS)} ${any(WORDS)}",`, () => `  "${ident()}": ${Math.floor(rnd() * 1e6)},`, () => `  "${ident()}": {"${ident()}": [${Math.floor(rnd() * 9)}, ${Math.floor(rnd() * 9)}]},`],
  py: [() => `def ${ident()}(self, ${ident()}=None):`, () => `    ${ident()} = self.${ident()}.get("${ident()}", ${Math.floor(rnd() * 100)})`, () => `    # ${any(WORDS)} ${any(WORDS)}`, () => `    return ${ident()}`],
}
const EXT = {ts: 'ts', yaml: 'yaml', json: 'json', py: 'py'}

function fileText(kind) {
  const lines = []
  let n = 0
  while (n < FILE_BYTES) {
    const l = any(LINES[kind])()
    lines.push(l)
    n += l.length + 1
  }
  return `${lines.join('\n')}\n`
}

const pick = (alphabet, n) => [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('')
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const PLANTED = [
  ['src/deploy/aws.ts', `const accessKeyId = "${['AK', 'IA', pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)].join('')}"`],
  ['config/ci.env', `GITHUB_TOKEN=${['gh', 'p_', pick(ALNUM, 36)].join('')}`],
  ['keys/deploy.pem', generateKeyPairSync('ed25519').privateKey.export({type: 'pkcs8', format: 'pem'}).toString().trim()],
  ['config/db.yaml', `url: ${['postgres', '://app:', pick(ALNUM, 16), '@db.internal:5432/app'].join('')}`],
  ['src/notify.py', `SLACK = "${['xo', 'xb-', pick('0123456789', 11), '-', pick('0123456789', 12), '-', pick(ALNUM, 24)].join('')}"`],
]

// Equivalent regexes of the preset's rules (secretlint-rule-preset-recommend 13.1.0), for rg.
const PATTERNS = [
  String.raw`\b(A3T[A-Z0-9]|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16}\b`,
  String.raw`["']?(AWS|aws|Aws)?_?(SECRET|secret|Secret)_?(ACCESS|access|Access)_?(KEY|key|Key)["']?\s*(:|=>|=)\s*["']?[A-Za-z0-9/+=]{40}["']?\b`,
  String.raw`["']?(AWS|aws|Aws)?_?(ACCOUNT|account|Account)_?(ID|id|Id)?["']?\s*(:|=>|=)\s*["']?[0-9]{4}-?[0-9]{4}-?[0-9]{4}["']?\b`,
  String.raw`\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36,255}\b`,
  String.raw`\bgithub_pat_[A-Za-z0-9_]{82}\b`,
  String.raw`-----BEGIN ?([A-Z0-9 ]+ )?PRIVATE KEY( BLOCK)?-----`,
  String.raw`\bxox[baprs]-[0-9A-Za-z-]{10,}`,
  String.raw`https://hooks\.slack\.com/(services|workflows)/[A-Za-z0-9+/]{40,}`,
  String.raw`\bnpm_[A-Za-z0-9]{36}\b`,
  String.raw`//[^\s/]*registry[^\s]*:_authToken=`,
  String.raw`\bsk-(proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}`,
  String.raw`\bsk-ant-(api03|admin01)-[A-Za-z0-9_-]{80,}`,
  String.raw`[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s:/@]+@[^\s/]+`,
  String.raw`(postgres|postgresql|mysql|mongodb(\+srv)?)://[^\s:@/]+:[^\s@/]+@[^\s/]+`,
  String.raw`"type"\s*:\s*"service_account"`,
  String.raw`\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b`,
  String.raw`\b(sk|rk)_(live|test)_[A-Za-z0-9]{24,}\b`,
  String.raw`\bshp(at|ca|pa|ss)_[a-fA-F0-9]{32}\b`,
  String.raw`\blin_api_[A-Za-z0-9]{40}\b`,
  String.raw`\bhvs\.[A-Za-z0-9_-]{90,}`,
  String.raw`\bhf_[A-Za-z0-9]{34,}\b`,
  String.raw`\bgsk_[A-Za-z0-9]{52}\b`,
  String.raw`\bdapi[a-f0-9]{32}(-[0-9]+)?\b`,
  String.raw`\bops_[A-Za-z0-9_-]{40,}`,
  String.raw`\bfigd_[A-Za-z0-9_-]{40,}`,
  String.raw`\b(ntn_[A-Za-z0-9]{46}|secret_[A-Za-z0-9]{43})\b`,
  String.raw`\b(glc_[A-Za-z0-9+/]{32,}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})`,
  String.raw`\bglpat-[A-Za-z0-9_-]{20,}`,
  String.raw`\btskey-(api|auth|client)-[A-Za-z0-9]+-[A-Za-z0-9]+`,
  String.raw`\b(vcp|vci|vca|vcr|vck)_[A-Za-z0-9]{24,}`,
  String.raw`"auths"\s*:\s*\{[^}]*"auth"\s*:\s*"`,
]

const work = mkdtempSync(join(tmpdir(), 'airlock-bench-secrets-'))
try {
  // The tree: 48 KiB files in 50 folders, MB megabytes in all, plus the planted secrets.
  const files = Math.ceil((MB * 1e6) / FILE_BYTES)
  const kinds = Object.keys(LINES)
  for (let d = 0; d < 50; d++) mkdirSync(join(work, `pkg${d}`, 'src'), {recursive: true})
  for (let i = 0; i < files; i++) {
    const kind = kinds[i % kinds.length]
    writeFileSync(join(work, `pkg${i % 50}`, 'src', `${ident()}-${i}.${EXT[kind]}`), fileText(kind))
  }
  for (const [file, text] of PLANTED) {
    mkdirSync(join(work, file, '..'), {recursive: true})
    writeFileSync(join(work, file), `# ${file}\n${text}\n`)
  }
  spawnSync('git', ['init', '-q', work])
  const repo = await Repository.open(work)
  const key = resolveScanKey({anchor: 'ab'.repeat(20)})
  const bytes = Number(spawnSync('du', ['-sb', '--exclude=.git', work]).stdout.toString().split('\t')[0])

  const scan = async (threads) => {
    const start = process.hrtime.bigint()
    const r = await scanWorkTree({dir: work, repo, key, maxFileBytes: 8 * 1024 * 1024, ...(threads !== undefined ? {threads} : {})})
    return {r, s: Number(process.hrtime.bigint() - start) / 1e9}
  }
  await scan(0) // warm-up (file cache, JIT)
  const threaded = await scan()
  const single = await scan(0)
  // secretlint's profiler on, in this thread (what 12.x did by default), then off again.
  secretLintProfiler.setEnabled(true)
  const profiled = await scan(0)
  secretLintProfiler.setEnabled(false)

  const rgArgs = ['--no-config', '--hidden', '--count-matches', '--no-ignore-vcs', ...PATTERNS.flatMap((p) => ['-e', p]), work]
  const hasRg = spawnSync('rg', ['--version']).status === 0
  const rg = (extra) => {
    const start = process.hrtime.bigint()
    const out = spawnSync('rg', [...extra, ...rgArgs], {maxBuffer: 1 << 26})
    return {s: Number(process.hrtime.bigint() - start) / 1e9, hits: out.stdout.toString().split('\n').filter(Boolean).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(':') + 1)), 0)}
  }
  let rgAll = null
  let rgOne = null
  let rgVersion = 'not installed'
  if (hasRg) {
    rgVersion = spawnSync('rg', ['--version']).stdout.toString().split('\n')[0]
    rg([])
    rgAll = rg([])
    rgOne = rg(['-j1'])
  }

  const mbs = (s) => (bytes / 1e6 / s).toFixed(1)
  const found = (r) => r.findings.length
  const planted = (r) => PLANTED.filter(([f]) => r.findings.some((x) => x.file === f)).length
  const rows = [
    `| embedded scan, ${threaded.r.threads} worker threads (the gate's default here), profiler off | ${threaded.s.toFixed(2)} s | ${mbs(threaded.s)} MB/s | ${found(threaded.r)} (${planted(threaded.r)}/${PLANTED.length} planted) |`,
    `| embedded scan, this thread only, profiler off | ${single.s.toFixed(2)} s | ${mbs(single.s)} MB/s | ${found(single.r)} |`,
    `| embedded scan, this thread only, secretlint profiler on (12.x's default) | ${profiled.s.toFixed(2)} s | ${mbs(profiled.s)} MB/s | ${found(profiled.r)} |`,
    hasRg ? `| \`rg\` with ${PATTERNS.length} equivalent regexes, all cores | ${rgAll.s.toFixed(2)} s | ${mbs(rgAll.s)} MB/s | ${rgAll.hits} matches |` : `| \`rg\` | not installed at bench time | | |`,
    hasRg ? `| \`rg\`, one thread (\`-j1\`) | ${rgOne.s.toFixed(2)} s | ${mbs(rgOne.s)} MB/s | ${rgOne.hits} matches |` : '',
  ].filter(Boolean)
  writeSection(
    'secrets',
    `## Secret scan (issue 18) — ${new Date().toISOString().slice(0, 10)}

Machine: ${machine()}. \`node bench/secrets.js\` (part of \`npm run bench\`): a generated tree of ${(bytes / 1e6).toFixed(1)} MB in ${threaded.r.listed} files (48 KiB of TypeScript-, YAML-, JSON- and Python-like text each, in 50 folders) with ${PLANTED.length} planted secrets (an AWS access key id, a GitHub token, an Ed25519 private key, a PostgreSQL URL with a password, a Slack bot token), one warm-up scan, then one timed run of each. The embedded scan lists the files with git (untracked, not ignored), reads each (a file with NULs twice: as its bytes and without NULs; a file over the limit in windows), and runs secretlint's recommended preset ${'(13.1.0)'} on it; ripgrep (${rgVersion}) searches the same files for ${PATTERNS.length} regexes equivalent to the preset's rules, printing counts only. The worker threads are started by each scan, as the gate starts them, so their run includes their start-up and a cold JIT; the in-thread runs follow the warm-up scan in the same thread. Load average when it started: ${LOAD} (on ${cpus().length} cores). Goal: ≥ 50 MB/s (gitleaks publishes about 10 MiB/s on 16 vCPUs).

| what | time | throughput | findings |
| --- | ---: | ---: | ---: |
${rows.join('\n')}
`,
  )
} finally {
  rmSync(work, {recursive: true, force: true})
}
