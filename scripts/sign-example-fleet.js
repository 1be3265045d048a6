// Signs every digest the embedded example fleet (manifests/) pins, with a fresh ECDSA P-256
// image key, as `airlock image sign` would, and puts the key's public half in trust.yaml.
// The private half is thrown away: the example fleet is for planning, never for signing more.
// Run after a build: node scripts/sign-example-fleet.js
import {mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseDocument} from 'yaml'
import {generateImageKey} from '../dist/control-plane/crypto/keys.js'
import {signaturePath} from '../dist/control-plane/manifests/models.js'
import {trustEntry} from '../dist/control-plane/plan/trust-key.js'
import {signImageBundle} from '../dist/platform/images/sign.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const {key} = generateImageKey('ecdsa-p256')
const trustFile = join(root, 'manifests/trust.yaml')
const trust = parseDocument(await readFile(trustFile, 'utf8'))
const keys = trust.getIn(['spec', 'keys']).items.filter((k) => k.get('name') !== 'example-image')
keys.push(trust.createNode(trustEntry('example-image', 'image', key.publicKey, key.keyid, new Date('2026-01-01T00:00:00Z'), undefined, key.algorithm)))
trust.setIn(['spec', 'keys'], keys)
await writeFile(trustFile, trust.toString())
let count = 0
for (const file of (await readdir(join(root, 'manifests/images'))).filter((f) => f.endsWith('.yaml'))) {
  const doc = parseDocument(await readFile(join(root, 'manifests/images', file), 'utf8')).toJS()
  const digests = new Set(Object.values(doc.spec.channels).flatMap((c) => [c.digest, c.previous].filter(Boolean)))
  for (const digest of digests) {
    const path = join(root, signaturePath(doc.metadata.name, digest))
    await mkdir(dirname(path), {recursive: true})
    await writeFile(path, await signImageBundle(doc.spec.repository, digest, key))
    count++
  }
}
console.log(`signed ${count} digests with key ${key.keyid}`)
