// Audit log benchmark (issue 19), standalone: `npm run build && node bench/audit.js`.
//
// 1. Durable append throughput with group commit: N appends issued `batch` at a time (each wave
//    is one write + one fdatasync under the folder lock), for several batch sizes, on a fresh log.
// 2. verifyLog throughput (MB/s of events.jsonl: every fingerprint recomputed, chain, Merkle tree,
//    checkpoint signatures and consistency) against raw node:crypto SHA-256 over the same bytes in
//    the same run: streamed over the whole file (one hash), and once per line (one hash per entry,
//    the least any per-entry check must do).
//
// Sizes: BENCH_AUDIT_EVENTS (default 200000 events for verify), BENCH_AUDIT_APPENDS (default 100000).
// Part of `npm run bench`: writes the `audit` section of docs/benchmarks.md.
import {createHash, generateKeyPairSync, hash} from 'node:crypto'
import {mkdtempSync, openSync, readSync, closeSync, rmSync, statSync} from 'node:fs'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {machine, ROOT, writeSection} from './report.js'

const LOAD = loadavg().map((x) => x.toFixed(2)).join(', ')
const STARTED = new Date().toISOString().slice(0, 16).replace('T', ' ')
const {AuditLog, checkpointLog, verifyLog} = await import(join(ROOT, 'dist/control-plane/audit/log.js'))
const {verifierKeyOf} = await import(join(ROOT, 'dist/control-plane/audit/note.js'))
const {signerFromPem} = await import(join(ROOT, 'dist/control-plane/crypto/keys.js'))

const APPENDS = Number(process.env.BENCH_AUDIT_APPENDS ?? 100_000)
const EVENTS = Number(process.env.BENCH_AUDIT_EVENTS ?? 200_000)
const scratch = mkdtempSync(join(tmpdir(), 'airlock-bench-audit-'))

/** An API Activity event of the size airlock's decisions make (about 600 bytes serialized). */
function event(i) {
  return {
    activity_id: 1, category_uid: 6, class_uid: 6003, type_uid: 600301, severity_id: 1, status_id: 1, time: 1764547200000 + i,
    metadata: {product: {name: 'airlock', vendor_name: 'airlock', version: '0.1.0'}, version: '1.3.0', uid: `req-${i}`},
    actor: {user: {name: 'ci-bot', uid: 'github:acme/fleet'}},
    api: {operation: 'promote', request: {uid: `r-${i}`}},
    resources: [{type: 'image', name: 'agent-runner', uid: 'registry.example.com/agent-runner@sha256:' + 'ab'.repeat(32)}],
    src_endpoint: {hostname: 'runner-7'},
    policy: {name: 'promote-canary', uid: 'policies/promote.cedar:12'},
    disposition_id: 1, message: 'promote agent-runner to canary: permitted',
  }
}

const now = () => performance.now()

async function appendRun(batch, total) {
  const dir = join(scratch, `append-${batch}`)
  const log = await AuditLog.open(dir)
  const t0 = now()
  for (let i = 0; i < total; i += batch) {
    const n = Math.min(batch, total - i)
    const wave = []
    for (let k = 0; k < n; k++) wave.push(log.append(event(i + k)))
    await Promise.all(wave)
  }
  const ms = now() - t0
  await log.close()
  const bytes = statSync(join(dir, 'events.jsonl')).size
  rmSync(dir, {recursive: true, force: true})
  return {batch, total, ms, perSecond: Math.round((total / ms) * 1000), bytesPerEvent: Math.round(bytes / total)}
}

console.log(`audit log benchmark — ${machine()}, load ${LOAD}`)
console.log('\n1. Durable appends (group commit: one write + one fdatasync per wave)')
const results = []
for (const batch of [1, 16, 128, 1024, 8192, 65536]) {
  const total = batch === 1 ? Math.min(APPENDS, 2000) : batch === 16 ? Math.min(APPENDS, 20_000) : APPENDS
  const r = await appendRun(batch, total)
  results.push(r)
  console.log(`   batch ${String(batch).padStart(6)}: ${String(r.perSecond).padStart(8)} events/s (${r.total} events in ${r.ms.toFixed(0)} ms, ${r.bytesPerEvent} bytes/event)`)
}

console.log(`\n2. verifyLog over ${EVENTS} events`)
const dir = join(scratch, 'verify')
const {privateKey} = generateKeyPairSync('ed25519')
const signer = signerFromPem(privateKey.export({format: 'pem', type: 'pkcs8'}).toString(), 'bench')
{
  const log = await AuditLog.open(dir)
  const step = 8192
  for (let i = 0; i < EVENTS; i += step) {
    const wave = []
    for (let k = 0; k < Math.min(step, EVENTS - i); k++) wave.push(log.append(event(i + k)))
    await Promise.all(wave)
    // A checkpoint every ~50k entries: verify checks each one's signature, root and consistency with the one before.
    if ((i + step) % 49152 === 0) {
      await log.flush()
      await checkpointLog(dir, signer, new Date())
    }
  }
  await log.close()
}
await checkpointLog(dir, signer, new Date())
const path = join(dir, 'events.jsonl')
const bytes = statSync(path).size
const mb = bytes / 1e6
const origin = (await import('node:fs')).readFileSync(join(dir, 'origin'), 'utf8').trim()
const keys = [verifierKeyOf(origin, signer.publicKey)]

function rawStream() {
  const fd = openSync(path, 'r')
  const buf = Buffer.allocUnsafe(1 << 20)
  const h = createHash('sha256')
  let n
  let pos = 0
  while ((n = readSync(fd, buf, 0, buf.length, pos)) > 0) {
    h.update(buf.subarray(0, n))
    pos += n
  }
  closeSync(fd)
  return h.digest('hex')
}
function rawPerLine() {
  const fd = openSync(path, 'r')
  const buf = Buffer.allocUnsafe(1 << 20)
  let carry = Buffer.alloc(0)
  let n
  let pos = 0
  let lines = 0
  while ((n = readSync(fd, buf, 0, buf.length, pos)) > 0) {
    const data = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n)
    let at = 0
    let nl
    while ((nl = data.indexOf(0x0a, at)) >= 0) {
      hash('sha256', data.subarray(at, nl), 'buffer')
      lines++
      at = nl + 1
    }
    carry = Buffer.from(data.subarray(at))
    pos += n
  }
  closeSync(fd)
  return lines
}

const best = async (f, runs = 3) => {
  let ms = Infinity
  let out
  for (let i = 0; i < runs; i++) {
    const t0 = now()
    out = await f()
    ms = Math.min(ms, now() - t0)
  }
  return {ms, out}
}
const stream = await best(rawStream)
const perLine = await best(rawPerLine)
const verified = await best(() => verifyLog(dir, {keys, now: new Date()}))
if (!verified.out.ok) throw new Error(`the benchmark log does not verify: ${JSON.stringify(verified.out.problems[0])}`)
const rate = (ms) => mb / (ms / 1000)
console.log(`   events.jsonl: ${mb.toFixed(1)} MB, ${verified.out.size} entries, ${verified.out.checkpoints.length} checkpoints`)
console.log(`   raw SHA-256, whole file streamed: ${rate(stream.ms).toFixed(0)} MB/s (${stream.ms.toFixed(0)} ms)`)
console.log(`   raw SHA-256, one hash per line:   ${rate(perLine.ms).toFixed(0)} MB/s (${perLine.ms.toFixed(0)} ms)`)
console.log(`   verifyLog:                        ${rate(verified.ms).toFixed(0)} MB/s (${verified.ms.toFixed(0)} ms; ${Math.round(verified.out.size / (verified.ms / 1000))} entries/s)`)
console.log(`   verifyLog / raw streamed: ${(stream.ms / verified.ms).toFixed(2)}×; verifyLog / raw per line: ${(perLine.ms / verified.ms).toFixed(2)}×`)
rmSync(scratch, {recursive: true, force: true})

const APPEND_TARGET = 50_000
const bestAppend = results.reduce((a, b) => (b.perSecond > a.perSecond ? b : a))
const VERIFY_TARGET = 0.5
const ratio = stream.ms / verified.ms
const met = (ok) => (ok ? '**met**' : '**not met**')
writeSection(
  'audit',
  `## Audit log: appends and verify (issue 19) — ${STARTED.slice(0, 10)}

Machine: ${machine()}. \`node bench/audit.js\` (part of \`npm run bench\`), started ${STARTED} UTC. Load average when it started: ${LOAD} (1, 5, 15 min; on ${cpus().length} cores). Appends go through \`AuditLog.append\` on a fresh log in the temporary folder (${tmpdir()}), issued a wave at a time: each wave is one write and one \`fdatasync\` under the folder lock (group commit), so an event counts only once it is on disk. Events are API Activity (6003) decisions of about 600 bytes as given; a line as written (redacted, with its \`attestation_list\`) is the bytes/event column.

| appends in flight (wave) | events | time | events/s | bytes/event |
| ---: | ---: | ---: | ---: | ---: |
${results.map((r) => `| ${r.batch.toLocaleString('en')} | ${r.total.toLocaleString('en')} | ${r.ms.toFixed(0)} ms | ${r.perSecond.toLocaleString('en')} | ${r.bytesPerEvent} |`).join('\n')}

Target ≥ ${APPEND_TARGET.toLocaleString('en')} durable events/s: ${met(bestAppend.perSecond >= APPEND_TARGET)} — ${bestAppend.perSecond.toLocaleString('en')} events/s at ${bestAppend.batch.toLocaleString('en')} in flight (one at a time, each waiting for its own \`fdatasync\`: ${results[0].perSecond.toLocaleString('en')} events/s).

\`verifyLog\` (what \`airlock audit verify\` runs: every entry's fingerprint recomputed, the hash chain, the RFC 6962 tree, every checkpoint's signature, root and consistency with the one before) over ${verified.out.size.toLocaleString('en')} entries (${mb.toFixed(1)} MB, ${verified.out.checkpoints.length} checkpoints), against raw \`node:crypto\` SHA-256 over the same file in the same process; best of 3 each, hot page cache.

| what | time | MB/s | ratio to raw streamed |
| --- | ---: | ---: | ---: |
| raw SHA-256, the whole file streamed (one hash) | ${stream.ms.toFixed(0)} ms | ${rate(stream.ms).toFixed(0)} | 1.00× |
| raw SHA-256, one hash per line (the least a per-entry check does) | ${perLine.ms.toFixed(0)} ms | ${rate(perLine.ms).toFixed(0)} | ${(stream.ms / perLine.ms).toFixed(2)}× |
| \`verifyLog\` | ${verified.ms.toFixed(0)} ms | ${rate(verified.ms).toFixed(0)} | ${ratio.toFixed(2)}× |

Target \`audit verify\` ≥ ${VERIFY_TARGET}× raw SHA-256: ${met(ratio >= VERIFY_TARGET)} — ${ratio.toFixed(2)}× of the streamed hash (${rate(verified.ms).toFixed(0)} against ${rate(stream.ms).toFixed(0)} MB/s; ${(perLine.ms / verified.ms).toFixed(2)}× of one hash per line, ${Math.round(verified.out.size / (verified.ms / 1000)).toLocaleString('en')} entries/s).
`,
)
