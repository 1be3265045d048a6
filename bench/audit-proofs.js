// `node bench/audit-proofs.js` (after `npm run build`): inclusion and consistency proofs of the
// audit log from its tiles (control-plane/audit/tiles.ts), at 100,000, 1,000,000 and 10,000,000
// entries, to show that their size and time grow with log2(n) and not with n.
//
// 1. Tiles of a 10,000,000-entry tree are built from synthetic fingerprints (the leaf hashes go
//    straight into TileTree: an events.jsonl of 10M entries would be some 4 GB, so parsing a real
//    log is measured apart, at BENCH_LOG_ENTRIES real lines, by updateTiles).
// 2. At each size: the median time of BENCH_PROOFS inclusion proofs of random entries and of as
//    many consistency proofs from random older sizes, their hash counts and bytes; the same proof
//    computed by merkle.ts from the leaf hashes in memory (a scan) at the smaller sizes, for contrast.
// 3. On a real log: a full tile build by updateTiles, an incremental one after 1,000 appends, and
//    proveEntry end to end (lock, cache check, checkpoint, entry read, proof, tlog-proof text).
//
// Prints the figures and writes the `audit-proofs` section of docs/benchmarks.md (part of
// `npm run bench`). BENCH_PROOF_SIZES=100000,1000000 (or BENCH_SIZES) leaves out the 10M tree.
import {appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {machine, median, writeSection} from './report.js'

const LOAD = loadavg().map((x) => x.toFixed(2)).join(', ')
const STARTED = new Date().toISOString().slice(0, 16).replace('T', ' ')

const dist = new URL('../dist/control-plane/audit/', import.meta.url)
const {TileTree, inclusionFromTiles, consistencyFromTiles, updateTiles} = await import(new URL('tiles.js', dist))
const {leafHash, inclusionProofAt, consistencyProofAt, verifyInclusion, verifyConsistency, MerkleLog} = await import(new URL('merkle.js', dist))
const {proveEntry} = await import(new URL('prove.js', dist))
const {serializeEntry} = await import(new URL('entry.js', dist))
const {formatCheckpoint, signNote} = await import(new URL('note.js', dist))
const {generateSigner} = await import(new URL('../crypto/keys.js', dist))

const SIZES = (process.env.BENCH_PROOF_SIZES ?? process.env.BENCH_SIZES ?? "100000,1000000,10000000").split(",").map(Number)
const HEIGHT = process.env.BENCH_HEIGHT ? Number(process.env.BENCH_HEIGHT) : undefined
const PROOFS = Number(process.env.BENCH_PROOFS ?? 2001)
const LOG_ENTRIES = Number(process.env.BENCH_LOG_ENTRIES ?? 1_000_000)
const work = mkdtempSync(join(tmpdir(), 'airlock-bench-proofs-'))
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6

/** A deterministic pseudo-random generator (xorshift32): the same indices every run. */
function rng(seed) {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 2 ** 32
  }
}

/** Synthetic fingerprint i: 32 bytes from the index, so no SHA-256 is spent making them. */
function fingerprint(i) {
  const b = Buffer.alloc(32)
  b.writeUInt32BE(i, 0)
  b.writeUInt32BE(Math.imul(i, 2654435761) >>> 0, 4)
  return b
}

console.log(`machine: ${machine()}`)
console.log(`tile height: ${HEIGHT ?? "default (2)"}`)

// 3. A real log: lines by log.ts's serializer, tiles by updateTiles, proofs by proveEntry. Run first,
// on a small heap: the 10M tree's arrays below would otherwise make its garbage collection the measure.
const dir = join(work, 'audit')
mkdirSync(join(dir, 'checkpoints'), {recursive: true})
const origin = 'airlock.audit/bench-host/0123456789abcdef'
writeFileSync(join(dir, 'origin'), `${origin}\n`)
writeFileSync(join(dir, 'events.jsonl'), '')
const merkle = new MerkleLog()
let prev = null
function appendEntries(n) {
  let chunk = []
  for (let k = 0; k < n; k++) {
    const index = merkle.size
    const {line, fingerprint: fp} = serializeEntry(
      {activity_id: 1, category_uid: 6, class_uid: 6003, type_uid: 600301, severity_id: 1, time: 1_700_000_000_000 + index, metadata: {version: '1.9.0', product: {name: 'airlock'}}, api: {operation: 'promote'}, actor: {user: {name: 'ci'}}, message: `promote agent-runner to canary (${index})`},
      {index, prev, origin},
    )
    prev = fp
    merkle.append(leafHash(Buffer.from(fp, 'hex')))
    chunk.push(line, '\n')
    if (chunk.length >= 20_000) {
      appendFileSync(join(dir, 'events.jsonl'), chunk.join(''))
      chunk = []
    }
  }
  appendFileSync(join(dir, 'events.jsonl'), chunk.join(''))
}
appendEntries(LOG_ENTRIES)
const logBytes = statSync(join(dir, 'events.jsonl')).size
const {signer} = generateSigner()
const checkpoint = () =>
  writeFileSync(join(dir, 'checkpoints', `${String(merkle.size).padStart(20, '0')}.checkpoint`), signNote(formatCheckpoint({origin, size: merkle.size, rootHash: merkle.root(), extensions: []}), [{name: origin, signer}]))
let t = process.hrtime.bigint()
const full = await updateTiles(dir)
const fullMs = ms(t)
appendEntries(1000)
t = process.hrtime.bigint()
const incremental = await updateTiles(dir)
const incMs = ms(t)
checkpoint()
const ends = []
const r = rng(7)
for (let k = 0; k < 201; k++) {
  const index = Math.floor(r() * merkle.size)
  const t1 = process.hrtime.bigint()
  await proveEntry(dir, index)
  ends.push(ms(t1))
}
console.log(`\n3. a real log (${LOG_ENTRIES.toLocaleString('en')} entries, ${(logBytes / 2 ** 20).toFixed(0)} MiB, lines from log.ts's serializer):`)
console.log(`  updateTiles, whole log: ${(fullMs / 1000).toFixed(2)} s (${Math.round(full.size / (fullMs / 1000)).toLocaleString('en')} entries/s, ${(logBytes / 2 ** 20 / (fullMs / 1000)).toFixed(0)} MiB/s)`)
console.log(`  updateTiles after ${incremental.added} appends: ${incMs.toFixed(1)} ms (reads only the new entries)`)
console.log(`  proveEntry end to end (lock, cache check, checkpoint, entry read, proof, text): median ${median(ends).toFixed(2)} ms over ${ends.length}`)

rmSync(dir, {recursive: true, force: true})

// 1. The tiles of 10M leaves, timed at each size on the way.
const folder = join(work, 'tiles')
mkdirSync(folder)
const tree = TileTree.open(folder, 0, HEIGHT)
const built = {}
const t0 = process.hrtime.bigint()
for (let i = 0; i < SIZES.at(-1); i++) {
  tree.appendFingerprint(fingerprint(i))
  if ((i + 1) % 1_048_576 === 0) tree.flush()
  if (SIZES.includes(i + 1)) {
    tree.flush()
    built[i + 1] = ms(t0)
  }
}
const tileBytes = readdirSync(folder).filter((f) => f.endsWith('.hashes')).map((f) => statSync(join(folder, f)).size).reduce((a, b) => a + b, 0)
console.log(`\n1. tiles from synthetic fingerprints (leaf hash + tile folding + writes; no log parsing):`)
for (const n of SIZES) console.log(`  ${n.toLocaleString('en')} entries: ${(built[n] / 1000).toFixed(1)} s cumulative, ${Math.round(n / (built[n] / 1000)).toLocaleString('en')} entries/s`)
console.log(`  on disk at ${SIZES.at(-1).toLocaleString("en")}: ${(tileBytes / 2 ** 20).toFixed(1)} MiB (${(tileBytes / SIZES.at(-1)).toFixed(2)} bytes/entry)`)

// 2. Proofs at each size (each size's tree is the prefix of the 10M one: the same tiles).
const roots = Object.fromEntries(SIZES.map((n) => [n, tree.root(n)]))
console.log(`\n2. proofs from the tiles (median of ${PROOFS} random indices / older sizes; hot page cache):`)
console.log('  size         | inclusion: hashes  bytes  median µs  p99 µs | consistency: hashes  bytes  median µs  p99 µs')
const rows = []
for (const n of SIZES) {
  const r = rng(n)
  const inc = []
  const con = []
  let incHashes = 0
  let conHashes = 0
  for (let k = 0; k < PROOFS; k++) {
    const index = Math.floor(r() * n)
    let t = process.hrtime.bigint()
    const p = inclusionFromTiles(tree, index, n)
    inc.push(ms(t) * 1000)
    incHashes = Math.max(incHashes, p.length)
    if (k < 50 && !verifyInclusion(leafHash(fingerprint(index)), index, n, p, roots[n])) throw new Error(`inclusion proof of ${index} at ${n} does not verify`)
    const old = 1 + Math.floor(r() * (n - 1))
    t = process.hrtime.bigint()
    const c = consistencyFromTiles(tree, old, n)
    con.push(ms(t) * 1000)
    conHashes = Math.max(conHashes, c.length)
    if (k < 50 && !verifyConsistency(old, n, tree.root(old), roots[n], c)) throw new Error(`consistency proof ${old}→${n} does not verify`)
  }
  const p99 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]
  const row = {n, incHashes, incMed: median(inc), incP99: p99(inc), conHashes, conMed: median(con), conP99: p99(con)}
  rows.push(row)
  console.log(
    `  ${n.toLocaleString('en').padEnd(12)} | ${String(row.incHashes).padStart(17)}  ${String(row.incHashes * 32).padStart(5)}  ${row.incMed.toFixed(1).padStart(9)}  ${row.incP99.toFixed(1).padStart(6)} |` +
      ` ${String(row.conHashes).padStart(19)}  ${String(row.conHashes * 32).padStart(5)}  ${row.conMed.toFixed(1).padStart(9)}  ${row.conP99.toFixed(1).padStart(6)}`,
  )
}
console.log('  (hashes and bytes: the largest proof met; an inclusion proof has at most ceil(log2 n) hashes of 32 bytes)')

// The same proofs computed by merkle.ts over the leaf hashes in memory (what a scan costs).
console.log('\n   the same proof by merkle.ts from leaf hashes held in memory (recomputes every subtree; median of 3):')
const scans = []
for (const n of SIZES.slice(0, 2)) {
  const leaves = Array.from({length: n}, (_, i) => leafHash(fingerprint(i)))
  const at = (i) => leaves[i]
  const inc = []
  const con = []
  for (let k = 0; k < 3; k++) {
    let t = process.hrtime.bigint()
    inclusionProofAt(at, n, Math.floor(n / 3) + k)
    inc.push(ms(t))
    t = process.hrtime.bigint()
    consistencyProofAt(at, Math.floor(n / 3) + k, n)
    con.push(ms(t))
  }
  scans.push({n, inc: median(inc), con: median(con)})
  console.log(`  ${n.toLocaleString('en').padEnd(12)} inclusion ${median(inc).toFixed(0)} ms, consistency ${median(con).toFixed(0)} ms`)
}
tree.close()
rmSync(folder, {recursive: true, force: true})

rmSync(work, {recursive: true, force: true})
const fmtN = (n) => n.toLocaleString('en')
writeSection(
  'audit-proofs',
  `## Audit log: inclusion and consistency proofs (issue 19) — ${STARTED.slice(0, 10)}

Machine: ${machine()}. \`node bench/audit-proofs.js\` (part of \`npm run bench\`), started ${STARTED} UTC. Load average when it started: ${LOAD} (1, 5, 15 min; on ${cpus().length} cores). Proofs are read from the tiles (control-plane/audit/tiles.ts, tile height ${HEIGHT ?? 'default (2)'}): the tree of ${fmtN(SIZES.at(-1))} leaves is built from synthetic fingerprints (an events.jsonl that long would be about 4 GB; parsing a real log is measured apart, below). At each size, the median and 99th percentile of ${fmtN(PROOFS)} inclusion proofs of random entries and as many consistency proofs from random older sizes, each checked against the root; hashes and bytes are the largest proof met.

| entries | inclusion: hashes | bytes | median | p99 | consistency: hashes | bytes | median | p99 |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows.map((r) => `| ${fmtN(r.n)} | ${r.incHashes} | ${r.incHashes * 32} | ${r.incMed.toFixed(1)} µs | ${r.incP99.toFixed(1)} µs | ${r.conHashes} | ${r.conHashes * 32} | ${r.conMed.toFixed(1)} µs | ${r.conP99.toFixed(1)} µs |`).join('\n')}

Size and time grow with log2(n): ${rows.length > 1 ? `from ${fmtN(rows[0].n)} to ${fmtN(rows.at(-1).n)} entries (${(rows.at(-1).n / rows[0].n).toFixed(0)}× more) an inclusion proof goes from ${rows[0].incHashes} to ${rows.at(-1).incHashes} hashes and its median time from ${rows[0].incMed.toFixed(1)} to ${rows.at(-1).incMed.toFixed(1)} µs` : 'one size measured'}. For contrast, the same proof computed by merkle.ts from the leaf hashes in memory (every subtree recomputed, median of 3): ${scans.map((x) => `${fmtN(x.n)} entries: inclusion ${x.inc.toFixed(0)} ms, consistency ${x.con.toFixed(0)} ms`).join('; ')}.

| building the tiles | time |
| --- | ---: |
${SIZES.map((n) => `| ${fmtN(n)} synthetic leaves (cumulative: leaf hash, tile folding, writes) | ${(built[n] / 1000).toFixed(1)} s (${fmtN(Math.round(n / (built[n] / 1000)))} entries/s) |`).join('\n')}
| tiles on disk at ${fmtN(SIZES.at(-1))} | ${(tileBytes / 2 ** 20).toFixed(1)} MiB (${(tileBytes / SIZES.at(-1)).toFixed(2)} bytes/entry) |
| \`updateTiles\` over a real log of ${fmtN(LOG_ENTRIES)} entries (${(logBytes / 2 ** 20).toFixed(0)} MiB, lines from log.ts's serializer) | ${(fullMs / 1000).toFixed(2)} s (${fmtN(Math.round(full.size / (fullMs / 1000)))} entries/s) |
| \`updateTiles\` after ${fmtN(incremental.added)} more appends (reads only the new entries) | ${incMs.toFixed(1)} ms |
| \`proveEntry\` end to end (lock, cache check, checkpoint, entry read, proof, tlog-proof text), median of ${ends.length} | ${median(ends).toFixed(2)} ms |
`,
)
console.log(`\n${JSON.stringify({tiles: built, tileBytes, proofs: rows, realLog: {entries: LOG_ENTRIES, bytes: logBytes, fullMs, incrementalMs: incMs, proveEntryMedianMs: median(ends)}})}`)
