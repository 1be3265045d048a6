// Generates a benchmark fleet repository with git fast-import: `images` image manifests in a
// first commit, then `commits - 1` commits that each move one channel of one image. Nine in
// ten carry airlock's trailers (as airlock's own commits do); one in ten is a plain edit, so
// both ways `status` finds a last change are exercised. The result is fully packed.
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join, relative} from 'node:path'

const ROOT = join(import.meta.dirname, '..')

const digest = (s) => `sha256:${createHash('sha256').update(s).digest('hex')}`
const name = (i) => `img-${String(i).padStart(5, '0')}`

function manifest(i, canary, stable, prevCanary, prevStable) {
  return `apiVersion: airlock/v1
kind: GoldenImage
metadata:
  name: ${name(i)}
spec:
  repository: registry.example.com/golden/${name(i)}
  tier: 2
  channels:
    canary:
      digest: ${canary}
      previous: ${prevCanary ?? 'null'}
    stable:
      digest: ${stable}
      previous: ${prevStable ?? 'null'}
`
}

/** Rewrites main with every commit SSH-signed by `signer` (fast-import cannot sign). */
async function signHistory(dir, signer, sshSign) {
  const oids = execFileSync('git', ['rev-list', '--reverse', 'main'], {cwd: dir}).toString().trim().split('\n')
  const batch = spawnSync('git', ['cat-file', '--batch'], {cwd: dir, input: `${oids.join('\n')}\n`, maxBuffer: 1 << 30}).stdout
  const mapped = new Map()
  const objects = []
  let at = 0
  for (const oid of oids) {
    const nl = batch.indexOf(10, at)
    const size = Number(batch.toString('utf8', at, nl).split(' ')[2])
    let text = batch.toString('utf8', nl + 1, nl + 1 + size)
    at = nl + 1 + size + 1
    text = text.replace(/^parent ([0-9a-f]{40})$/gm, (_, p) => `parent ${mapped.get(p)}`)
    const split = text.indexOf('\n\n')
    const sig = sshSign(Buffer.from(text), signer).trimEnd().replaceAll('\n', '\n ')
    const signed = Buffer.from(`${text.slice(0, split)}\ngpgsig ${sig}${text.slice(split)}`)
    const id = createHash('sha1').update(`commit ${signed.length}\0`).update(signed).digest('hex')
    mapped.set(oid, id)
    objects.push(signed)
  }
  // Written by one hash-object process (its ids are the ones computed above).
  const tmp = join(dir, '.git', 'signed-commits')
  mkdirSync(tmp, {recursive: true})
  objects.forEach((o, i) => writeFileSync(join(tmp, String(i)), o))
  execFileSync('git', ['hash-object', '-t', 'commit', '-w', '--stdin-paths'], {cwd: dir, input: objects.map((_, i) => join(tmp, String(i))).join('\n')})
  rmSync(tmp, {recursive: true, force: true})
  execFileSync('git', ['update-ref', 'refs/heads/main', mapped.get(oids.at(-1))], {cwd: dir})
}

/**
 * One more commit, signed as airlock signs, adding the receipts the trailers name (signed DSSE
 * change receipts on its parent), so a generated fleet's history has the evidence a real one
 * has and \`status\` finds each change's receipt.
 */
async function addReceipts(dir, {signer, sshSign, receipts, names, time}) {
  const parent = execFileSync('git', ['rev-parse', 'main'], {cwd: dir}).toString().trim()
  const tmp = join(dir, '.git', 'receipts')
  mkdirSync(tmp, {recursive: true})
  const at = new Date(time * 1000).toISOString()
  names.forEach((name, i) => {
    const plan = {operation: 'promote', summary: name, reason: '', requestedBy: {actor: 'ci', via: 'ci'}, digest: digest(name), createdAt: at, branch: 'refs/heads/main', baseCommit: parent, details: {}, subjects: [], changes: []}
    writeFileSync(join(tmp, String(i)), receipts.receiptText(receipts.signReceipt(receipts.receiptStatement(plan, new Date(at), 'bench'), [signer])))
  })
  const oids = execFileSync('git', ['hash-object', '-w', '--stdin-paths'], {cwd: dir, input: names.map((_, i) => join(tmp, String(i))).join('\n')}).toString().trim().split('\n')
  const index = join(tmp, 'index')
  const env = {...process.env, GIT_INDEX_FILE: index}
  execFileSync('git', ['read-tree', 'main'], {cwd: dir, env})
  execFileSync('git', ['update-index', '--add', '--index-info'], {cwd: dir, env, input: names.map((n, i) => `100644 ${oids[i]}\t${n}`).join('\n')})
  const tree = execFileSync('git', ['write-tree'], {cwd: dir, env}).toString().trim()
  const who = `bench <bench@example.invalid> ${time} +0000`
  const text = `tree ${tree}\nparent ${parent}\nauthor ${who}\ncommitter ${who}\n\nairlock: receipts of the promotions above\n`
  const split = text.indexOf('\n\n')
  const sig = sshSign(Buffer.from(text), signer).trimEnd().replaceAll('\n', '\n ')
  writeFileSync(join(tmp, 'commit'), `${text.slice(0, split)}\ngpgsig ${sig}${text.slice(split)}`)
  const commit = execFileSync('git', ['hash-object', '-t', 'commit', '-w', join(tmp, 'commit')], {cwd: dir}).toString().trim()
  execFileSync('git', ['update-ref', 'refs/heads/main', commit], {cwd: dir})
  rmSync(tmp, {recursive: true, force: true})
}

const POLICIES = join(ROOT, 'policies')

function policyFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? policyFiles(path) : [path]
  })
}

export async function generateFleet(dir, {images, commits}) {
  mkdirSync(dir, {recursive: true})
  // Every commit is signed by the fleet's evidence key, as airlock's own commits are, so the
  // history verifies from the root and plans are built on a verified base as in a real fleet.
  const [{generateImageKey, generateSigner}, {signImageBundle}, {trustEntry, newTrustDocument}, {sshSign}, receipts] = await Promise.all([
    import(join(ROOT, 'dist/control-plane/crypto/keys.js')),
    import(join(ROOT, 'dist/platform/images/sign.js')),
    import(join(ROOT, 'dist/control-plane/changes/add-key.js')),
    import(join(ROOT, 'dist/control-plane/crypto/sshsig.js')),
    import(join(ROOT, 'dist/control-plane/evidence/receipt.js')),
  ])
  const {signer} = generateSigner()
  const evidence = trustEntry('evidence', 'evidence', signer.publicKey, signer.keyid, new Date('2023-01-01T00:00:00Z'))
  execFileSync('git', ['init', '-q', '-b', 'main', dir])
  const child = spawn('git', ['fast-import', '--quiet'], {cwd: dir, stdio: ['pipe', 'inherit', 'inherit']})
  const done = new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`fast-import ${code}`)))))
  let buf = []
  const out = (s) => {
    buf.push(s)
    if (buf.length > 2000) {
      child.stdin.write(buf.join(''))
      buf = []
    }
  }
  const data = (s) => out(`data ${Buffer.byteLength(s)}\n${s}\n`)
  const state = Array.from({length: images}, (_, i) => ({canary: digest(`${i}-c0`), stable: digest(`${i}-s0`), prevCanary: null, prevStable: null, gen: 0}))
  let time = 1_700_000_000
  out('commit refs/heads/main\ncommitter bench <bench@example.invalid> ' + time + ' +0000\n')
  data('import fleet\n')
  out(`M 100644 inline manifests/trust.yaml\n`)
  data(newTrustDocument([evidence]).toString())
  // The example Cedar policies, so promote plans are authorized as in a real fleet.
  for (const file of policyFiles(POLICIES)) {
    out(`M 100644 inline policies/${relative(POLICIES, file)}\n`)
    data(readFileSync(file, 'utf8'))
  }
  for (let i = 0; i < images; i++) {
    const s = state[i]
    out(`M 100644 inline manifests/images/${name(i)}.yaml\n`)
    data(manifest(i, s.canary, s.stable, s.prevCanary, s.prevStable))
  }
  out('\n')
  let seed = 42
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  for (let c = 1; c < commits; c++) {
    const i = rand(images)
    const s = state[i]
    const channel = rand(2) === 0 ? 'canary' : 'stable'
    s.gen++
    const next = digest(`${i}-${channel}-${s.gen}`)
    if (channel === 'canary') [s.prevCanary, s.canary] = [s.canary, next]
    else [s.prevStable, s.stable] = [s.stable, next]
    time += 60
    const airlockMade = c % 10 !== 0
    const msg = airlockMade
      ? `airlock: promote ${name(i)} to ${channel}\n\nAirlock-Operation: promote\nAirlock-Image: ${name(i)}\nAirlock-Channel: ${channel}\nAirlock-Digest: ${next}\nAirlock-Receipt: docs/evidence/r-${c}.json\nAirlock-Requested-By: ci\n`
      : `hand edit of ${name(i)}\n`
    out(`commit refs/heads/main\ncommitter bench <bench@example.invalid> ${time} +0000\n`)
    data(msg)
    out(`M 100644 inline manifests/images/${name(i)}.yaml\n`)
    data(manifest(i, s.canary, s.stable, s.prevCanary, s.prevStable))
    out('\n')
  }
  // A last commit as a signing pipeline leaves it: an image key in trust.yaml and a bundle for
  // every image's canary digest, so promote plans verify a signature as in a real fleet.
  const {key} = generateImageKey('ecdsa-p256')
  out(`commit refs/heads/main\ncommitter bench <bench@example.invalid> ${time + 60} +0000\n`)
  data('sign canary digests\n')
  out('M 100644 inline manifests/trust.yaml\n')
  data(newTrustDocument([evidence, trustEntry('image', 'image', key.publicKey, key.keyid, new Date('2023-01-01T00:00:00Z'), undefined, key.algorithm)]).toString())
  for (let i = 0; i < images; i++) {
    out(`M 100644 inline manifests/signatures/${name(i)}/${state[i].canary.replace(':', '-')}.sigstore.json\n`)
    data(await signImageBundle(`registry.example.com/golden/${name(i)}`, state[i].canary, key))
  }
  out('\n')
  child.stdin.end(buf.join(''))
  await done
  await signHistory(dir, signer, sshSign)
  await addReceipts(dir, {signer, sshSign, receipts, names: Array.from({length: commits - 1}, (_, i) => i + 1).filter((c) => c % 10 !== 0).map((c) => `docs/evidence/r-${c}.json`), time: time + 120})
  // Trust starts at the first commit, pinned as \`airlock init\` pins it.
  execFileSync('git', ['config', 'airlock.trustAnchor', execFileSync('git', ['rev-list', '--max-parents=0', 'main'], {cwd: dir}).toString().trim()], {cwd: dir})
  execFileSync('git', ['checkout', '-q', '-f', 'main'], {cwd: dir})
  execFileSync('git', ['repack', '-adq'], {cwd: dir})
  execFileSync('git', ['prune-packed'], {cwd: dir})
}
