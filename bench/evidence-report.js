// Report generation for a history with 10,000 signed receipts (`airlock evidence report`): a fleet
// of two signed commits, the second adding 10,000 signed DSSE receipts (receiptFleet), then in one process the model from the verified history (buildReport: verify every
// receipt and commit, claim levels, populations), and each rendering (Markdown, OSCAL, and HTML
// when its renderer is built), each timed; then the CLI end to end. Prints ms and writes the
// `evidence-report` section of docs/benchmarks.md (part of `npm run bench`).
//   node bench/evidence-report.js [--receipts N] [--keep]     (or BENCH_REPORT_RECEIPTS=N)
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {machine, ROOT, writeSection} from './report.js'

const LOAD = loadavg().map((x) => x.toFixed(2)).join(', ')
const STARTED = new Date().toISOString().slice(0, 16).replace('T', ' ')
const arg = process.argv.indexOf('--receipts')
const receipts = arg > 0 ? Number(process.argv[arg + 1]) : Number(process.env.BENCH_REPORT_RECEIPTS ?? 10_000)

const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6
const sha = (s) => createHash('sha256').update(s).digest('hex')
const git = (dir, args, opts = {}) => execFileSync('git', args, {cwd: dir, maxBuffer: 1 << 30, ...opts}).toString().trim()

/**
 * A fleet of two signed commits: the first (the trust anchor) holds trust.yaml with one evidence
 * key, the example Cedar policies' place and one image; the second adds `n` receipts signed by that
 * key on the first: nine in ten promote/rollback change receipts, one in ten a preflight gate run.
 */
async function receiptFleet(dir, n) {
  const [{generateSigner}, {trustEntry, newTrustDocument}, {sshSign}, {signReceipt, receiptText}] = await Promise.all([
    import(join(ROOT, 'dist/control-plane/crypto/keys.js')),
    import(join(ROOT, 'dist/control-plane/changes/add-key.js')),
    import(join(ROOT, 'dist/control-plane/crypto/sshsig.js')),
    import(join(ROOT, 'dist/control-plane/evidence/receipt.js')),
  ])
  const {signer} = generateSigner()
  const evidence = trustEntry('evidence', 'evidence', signer.publicKey, signer.keyid, new Date('2023-01-01T00:00:00Z'))
  git(tmp, ['init', '-q', '-b', 'main', dir])
  const work = join(dir, '.git', 'bench')
  mkdirSync(work, {recursive: true})
  const env = {...process.env, GIT_INDEX_FILE: join(work, 'index')}
  const commit = (files, parent, time, message) => {
    const paths = files.map(([, text], i) => (writeFileSync(join(work, String(i)), text), join(work, String(i))))
    const oids = git(dir, ['hash-object', '-w', '--stdin-paths'], {input: paths.join('\n')}).split('\n')
    if (parent) git(dir, ['read-tree', parent], {env})
    else git(dir, ['read-tree', '--empty'], {env})
    git(dir, ['update-index', '--add', '--index-info'], {env, input: files.map(([name], i) => `100644 ${oids[i]}\t${name}`).join('\n')})
    const tree = git(dir, ['write-tree'], {env})
    const who = `bench <bench@example.invalid> ${time} +0000`
    const text = `tree ${tree}\n${parent ? `parent ${parent}\n` : ''}author ${who}\ncommitter ${who}\n\n${message}\n`
    const split = text.indexOf('\n\n')
    const sig = sshSign(Buffer.from(text), signer).trimEnd().replaceAll('\n', '\n ')
    writeFileSync(join(work, 'commit'), `${text.slice(0, split)}\ngpgsig ${sig}${text.slice(split)}`)
    return git(dir, ['hash-object', '-t', 'commit', '-w', join(work, 'commit')])
  }
  const start = 1_700_000_000
  const image = `apiVersion: airlock/v1\nkind: GoldenImage\nmetadata:\n  name: agent-runner\nspec:\n  repository: registry.example.com/golden/agent-runner\n  tier: 2\n  channels:\n    canary:\n      digest: sha256:${sha('c')}\n      previous: null\n`
  const root = commit([['manifests/trust.yaml', newTrustDocument([evidence]).toString()], ['manifests/images/agent-runner.yaml', image]], null, start, 'import fleet')
  const files = []
  for (let i = 0; i < n; i++) {
    const at = new Date((start + 60 + i) * 1000).toISOString()
    const name = `docs/evidence/r-${String(i).padStart(6, '0')}.json`
    const statement =
      i % 10 === 9
        ? {_type: 'https://in-toto.io/Statement/v1', subject: [{name: 'git:refs/heads/main', digest: {gitCommit: root}}], predicateType: 'https://in-toto.io/attestation/test-result/v0.1',
           predicate: {result: i % 30 === 29 ? 'FAILED' : 'PASSED', configuration: [], passedTests: [], warnedTests: [], failedTests: [], suite: 'preflight', startedAt: at, finishedAt: at, branch: 'refs/heads/main', baseCommit: root, host: false,
             gates: [{id: 'history', status: i % 30 === 29 ? 'fail' : 'pass', reason: 'bench', mode: 'enforce', required: true, elapsedMs: 1}], tool: {name: 'airlock', version: 'bench'}}}
        : {_type: 'https://in-toto.io/Statement/v1', subject: [{name: 'registry.example.com/golden/agent-runner', digest: {sha256: sha(String(i))}}], predicateType: 'https://airlock.dev/attestations/change/v1',
           predicate: {operation: i % 5 === 4 ? 'rollback' : 'promote', summary: `promote agent-runner to canary (${i})`, reason: 'bench', requestedBy: {actor: 'ci', via: 'ci'}, planDigest: sha(`p${i}`), plannedAt: at, appliedAt: at, branch: 'refs/heads/main', baseCommit: root,
             details: {image: 'agent-runner', channel: 'canary', to: `sha256:${sha(String(i))}`}, changes: [], tool: {name: 'airlock', version: 'bench'}, result: 'applied'}}
    files.push([name, receiptText(signReceipt(statement, [signer]))])
  }
  const head = commit(files, root, start + 60 + n, 'airlock: receipts')
  git(dir, ['update-ref', 'refs/heads/main', head])
  git(dir, ['config', 'airlock.trustAnchor', root])
  git(dir, ['checkout', '-q', '-f', 'main'])
  rmSync(work, {recursive: true, force: true})
  // Packed, as a clone or a gc'd repository is.
  git(dir, ['repack', '-adq'])
  git(dir, ['prune-packed'])
  return root
}

const tmp = mkdtempSync(join(tmpdir(), 'airlock-bench-report-'))
try {
  const fleet = join(tmp, 'fleet')
  let t = process.hrtime.bigint()
  const anchor = await receiptFleet(fleet, receipts)
  console.log(`fleet: ${receipts} signed receipts in one signed commit, made in ${ms(t).toFixed(0)} ms`)

  const [{Repository}, {buildReport}, {renderMarkdown}, {renderOscal}, {DEFAULT_LIMITS}] = await Promise.all([
    import(join(ROOT, 'dist/control-plane/repo/repository.js')),
    import(join(ROOT, 'dist/control-plane/evidence/report/build.js')),
    import(join(ROOT, 'dist/control-plane/evidence/report/markdown.js')),
    import(join(ROOT, 'dist/control-plane/evidence/report/oscal.js')),
    import(join(ROOT, 'dist/control-plane/limits.js')),
  ])
  const htmlPath = join(ROOT, 'dist/control-plane/evidence/report/html.js')
  const html = existsSync(htmlPath) ? (await import(htmlPath)).renderHtml : null
  const repo = await Repository.open(fleet)
  t = process.hrtime.bigint()
  const model = await buildReport(repo, {frameworks: ['soc2', 'hipaa', 'fedramp'], limits: DEFAULT_LIMITS, now: new Date(), anchor})
  const build = ms(t)
  t = process.hrtime.bigint()
  const md = renderMarkdown(model)
  const mdMs = ms(t)
  t = process.hrtime.bigint()
  const oscal = JSON.stringify(renderOscal(model), null, 2)
  const oscalMs = ms(t)
  let htmlLine = 'html: renderer not built'
  let htmlRow = null
  if (html) {
    t = process.hrtime.bigint()
    const page = html(model)
    const htmlMs = ms(t)
    htmlLine = `html: ${htmlMs.toFixed(0)} ms (${(page.length / 1e6).toFixed(1)} MB)`
    htmlRow = `| render HTML (\`renderHtml\`) | ${htmlMs.toFixed(0)} ms | ${(page.length / 1e6).toFixed(1)} MB |`
  }
  console.log(`model (verify ${model.receipts.length} receipts and the history, claims, populations): ${build.toFixed(0)} ms`)
  console.log(`md: ${mdMs.toFixed(1)} ms (${(md.length / 1e3).toFixed(0)} kB); oscal: ${oscalMs.toFixed(1)} ms (${(oscal.length / 1e3).toFixed(0)} kB); ${htmlLine}`)

  const cli = {}
  for (const format of ['md', 'oscal']) {
    t = process.hrtime.bigint()
    execFileSync(process.execPath, [join(ROOT, 'bin', 'run.js'), 'evidence', 'report', '--format', format, '--out', join(tmp, 'out')], {cwd: fleet, stdio: ['ignore', 'ignore', 'inherit']})
    cli[format] = ms(t)
    console.log(`cli evidence report --format ${format}: ${cli[format].toFixed(0)} ms`)
  }
  console.log(machine())
  writeSection(
    'evidence-report',
    `## Compliance report over ${receipts.toLocaleString('en')} receipts (issue 19) — ${STARTED.slice(0, 10)}

Machine: ${machine()}. \`node bench/evidence-report.js\` (part of \`npm run bench\`), started ${STARTED} UTC. Load average when it started: ${LOAD} (1, 5, 15 min; on ${cpus().length} cores). A fleet of two signed commits, the second adding ${receipts.toLocaleString('en')} signed DSSE receipts (nine in ten promote/rollback change receipts, one in ten a preflight gate run), packed as a clone has it. One run each: the report model in one process (every receipt and commit verified from the trust anchor, claim levels for SOC 2, HIPAA and FedRAMP, populations), each rendering of that model, then the command end to end as a user runs it.

| what | time | output |
| --- | ---: | ---: |
| report model (\`buildReport\`: verify ${model.receipts.length.toLocaleString('en')} receipts and the history, claims, populations) | ${build.toFixed(0)} ms | |
| render Markdown | ${mdMs.toFixed(1)} ms | ${(md.length / 1e3).toFixed(0)} kB |
| render OSCAL (JSON) | ${oscalMs.toFixed(1)} ms | ${(oscal.length / 1e3).toFixed(0)} kB |
${htmlRow ?? '| render HTML | renderer not built | |'}
| \`airlock evidence report --format md\`, whole process | ${cli.md.toFixed(0)} ms | |
| \`airlock evidence report --format oscal\`, whole process | ${cli.oscal.toFixed(0)} ms | |
`,
  )
} finally {
  // --keep: leave the fleet for a profiler (its path is printed).
  if (process.argv.includes('--keep')) console.log(`kept ${tmp}`)
  else rmSync(tmp, {recursive: true, force: true})
}
