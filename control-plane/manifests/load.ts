import {AirlockError, inputError} from '../errors.js'
import {parseDuration} from '../duration.js'
import {keyIdOf} from '../crypto/keys.js'
import type {Limits} from '../limits.js'
import {isOid, isRecord, readCache, writeCache} from '../repo/cache.js'
import {describeMode, type Repository, type TreeEntry} from '../repo/repository.js'
import {createHash, createPublicKey} from 'node:crypto'
import goldenImageSchema from './schemas/golden-image.schema.json' with {type: 'json'}
import {IMAGES_DIR, ROLES, TRUST_FILE, type GoldenImage, type ImageVerificationSpec, type Role, type TrustKey, type TrustPolicy} from './models.js'
import {checkAnchoredPattern} from './pattern.js'
import {validateKind} from './validate.js'
import {loadYaml, locate} from './yaml.js'

interface ImageDoc {
  metadata: {name: string}
  spec: {repository: string; tier: number; channels: Record<string, {digest: string; previous?: string | null; requires?: {suites: string[]; on?: string; soak?: string}}>; verification?: ImageVerificationSpec}
}

export function parseImage(text: string, file: string, oid: string, limits: Limits): GoldenImage {
  const loaded = loadYaml(text, file, limits)
  validateKind('GoldenImage', loaded)
  const value = loaded.value as ImageDoc
  const base = file.slice(file.lastIndexOf('/') + 1).replace(/\.ya?ml$/, '')
  if (value.metadata.name !== base) {
    throw inputError('SCHEMA_VIOLATION', {file, ...locate(loaded, ['metadata', 'name']), field: 'metadata.name'}, `is "${value.metadata.name}" but the file is named ${base}.yaml; one file per image, named after it`)
  }
  // No prototype: a channel named by a flag (`--to __proto__`, `--from constructor`) is only ever a key.
  const channels: GoldenImage['channels'] = Object.create(null) as GoldenImage['channels']
  for (const [name, ch] of Object.entries(value.spec.channels)) {
    channels[name] = {digest: ch.digest, previous: ch.previous ?? null}
    const req = ch.requires
    if (!req) continue
    const at = (field: string) => ({file, ...locate(loaded, ['spec', 'channels', name, 'requires', field]), field: `spec.channels.${name}.requires.${field}`})
    if (req.on !== undefined && !Object.hasOwn(value.spec.channels, req.on)) throw inputError('SCHEMA_VIOLATION', at('on'), `names channel "${req.on}", which image ${value.metadata.name} does not have (channels: ${Object.keys(value.spec.channels).join(', ')})`)
    if (req.on === name) throw inputError('SCHEMA_VIOLATION', at('on'), `is the channel itself; a digest is tested on another channel before it is pinned on ${name}`)
    channels[name]!.requires = {suites: [...req.suites], ...(req.on !== undefined ? {on: req.on} : {}), ...(req.soak !== undefined ? {soak: req.soak} : {}), soakMs: req.soak === undefined ? 0 : parseDuration(req.soak, `spec.channels.${name}.requires.soak`)}
  }
  const verification = value.spec.verification ?? null
  for (const [i, id] of (verification?.identities ?? []).entries()) {
    const path = ['spec', 'verification', 'identities', i]
    const at = (field: string) => ({file, ...locate(loaded, [...path, field]), field: `spec.verification.identities[${i}].${field}`})
    if ((id.subject === undefined) === (id.subjectRegExp === undefined)) throw inputError('SCHEMA_VIOLATION', {...at('subject'), field: `spec.verification.identities[${i}]`}, 'needs exactly one of subject (exact) or subjectRegExp (anchored pattern)')
    if (id.subjectRegExp !== undefined) {
      const problem = checkAnchoredPattern(id.subjectRegExp)
      if (problem) throw inputError('SCHEMA_VIOLATION', at('subjectRegExp'), problem)
    }
  }
  return {name: value.metadata.name, file, oid, repository: value.spec.repository, tier: value.spec.tier, channels, verification, doc: loaded.doc, text}
}

/** The image manifest files at `commit` (regular files, one per image name, within the limit). */
async function imageEntries(repo: Repository, commit: string, limits: Limits): Promise<TreeEntry[]> {
  const entries = (await repo.listDir(commit, IMAGES_DIR)).filter((e) => e.type === 'blob' && /\.ya?ml$/.test(e.name))
  if (entries.length > limits.maxImages) throw new AirlockError('TOO_LARGE', `${IMAGES_DIR}: ${entries.length} images, the limit is ${limits.maxImages}`)
  const names = new Map<string, string>()
  for (const e of entries) {
    if (e.mode !== '100644' && e.mode !== '100755') throw new AirlockError('INVALID_INPUT', `${e.path}: is ${describeMode(e.mode)}, not a regular file`, {file: e.path, mode: e.mode})
    const name = e.name.replace(/\.ya?ml$/, '')
    const other = names.get(name)
    if (other) throw duplicateImage(name, other, e.path)
    names.set(name, e.path)
  }
  return entries
}

/** Every image manifest at `commit`, validated; one bad file fails the whole read. */
export async function loadImages(repo: Repository, commit: string, limits: Limits): Promise<GoldenImage[]> {
  const images: GoldenImage[] = []
  for (const e of await imageEntries(repo, commit, limits)) images.push(parseImage(await repo.readBlob(e.oid), e.path, e.oid, limits))
  return images
}

/** What `status` shows of an image: what its manifest pins, without the document. */
export type ImageSummary = Pick<GoldenImage, 'name' | 'file' | 'repository' | 'tier'> & {channels: Record<string, {digest: string; previous: string | null}>}

const SUMMARY_CACHE = 'image-summaries.json'
/** Bump when parseImage's checks change (the GoldenImage schema is part of the key by its digest). */
const SUMMARY_RULES = 'image-summaries-1'
let summaryVersion: string | undefined

/**
 * The cache's version: its rules, the GoldenImage schema (by digest) and the limits parsing
 * depends on. A manifest validated under other rules or limits is validated again.
 */
function summaryKey(limits: Limits): string {
  summaryVersion ??= `${SUMMARY_RULES}:${createHash('sha256').update(JSON.stringify(goldenImageSchema)).digest('hex').slice(0, 16)}`
  return `${summaryVersion}:${limits.maxFileBytes}:${limits.maxYamlAliases}:${limits.maxDepth}`
}

function validSummaries(body: unknown): body is Record<string, Omit<ImageSummary, 'file'>> {
  if (!isRecord(body)) return false
  for (const [key, v] of Object.entries(body)) {
    const oid = key.slice(0, 40)
    const name = key.slice(41)
    if (!isOid(oid) || key[40] !== ':' || !name || !isRecord(v) || typeof v.name !== 'string' || v.name !== name.replace(/\.ya?ml$/, '') || typeof v.repository !== 'string' || !Number.isSafeInteger(v.tier)) return false
    if (!isRecord(v.channels)) return false
    for (const ch of Object.values(v.channels)) {
      if (!isRecord(ch) || typeof ch.digest !== 'string' || !(ch.previous === null || typeof ch.previous === 'string')) return false
    }
  }
  return true
}

/**
 * Every image at `commit`, as loadImages reads and validates it, summarised for `status`. Each
 * manifest is parsed and validated once per clone: the summary of a valid one is kept under
 * .git/airlock/ by its blob id and file name (repo/cache.ts), the rules and the limits.
 */
export async function loadImageSummaries(repo: Repository, commit: string, limits: Limits): Promise<ImageSummary[]> {
  const entries = await imageEntries(repo, commit, limits)
  const version = summaryKey(limits)
  const cached = (await readCache(repo.gitdir, SUMMARY_CACHE, version, validSummaries)) ?? {}
  const used: Record<string, Omit<ImageSummary, 'file'>> = {}
  let missed = false
  const out: ImageSummary[] = []
  for (const e of entries) {
    const key = `${e.oid}:${e.name}`
    let summary = Object.hasOwn(cached, key) ? cached[key] : undefined
    if (!summary) {
      missed = true
      const img = parseImage(await repo.readBlob(e.oid), e.path, e.oid, limits)
      summary = {name: img.name, repository: img.repository, tier: img.tier, channels: Object.fromEntries(Object.entries(img.channels).map(([n, ch]) => [n, {digest: ch.digest, previous: ch.previous}]))}
    }
    used[key] = summary
    // No prototype, as parseImage's channels: a channel's name is only ever a key.
    const channels = Object.create(null) as ImageSummary['channels']
    for (const [n, ch] of Object.entries(summary.channels)) channels[n] = {digest: ch.digest, previous: ch.previous}
    out.push({name: summary.name, file: e.path, repository: summary.repository, tier: summary.tier, channels})
  }
  // What is kept is what HEAD holds: the file never grows with history.
  if (missed || Object.keys(cached).length !== entries.length) await writeCache(repo.gitdir, SUMMARY_CACHE, version, used)
  return out
}

/** One image by name at `commit`; an unknown name is an input error listing what exists. */
export async function loadImage(repo: Repository, commit: string, name: string, limits: Limits): Promise<GoldenImage> {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
    throw new AirlockError('UNKNOWN_IMAGE', `image "${name}" is not a valid image name`, {image: name})
  }
  const [yaml, yml] = await Promise.all(['yaml', 'yml'].map((ext) => repo.readFile(commit, `${IMAGES_DIR}/${name}.${ext}`)))
  if (yaml && yml) throw duplicateImage(name, `${IMAGES_DIR}/${name}.yaml`, `${IMAGES_DIR}/${name}.yml`)
  if (yaml) return parseImage(yaml.text, `${IMAGES_DIR}/${name}.yaml`, yaml.oid, limits)
  if (yml) return parseImage(yml.text, `${IMAGES_DIR}/${name}.yml`, yml.oid, limits)
  const known = (await repo.listDir(commit, IMAGES_DIR)).map((e) => e.name.replace(/\.ya?ml$/, ''))
  throw new AirlockError('UNKNOWN_IMAGE', `no image "${name}" in ${IMAGES_DIR}/ (known: ${known.slice(0, 10).join(', ') || 'none'}${known.length > 10 ? ', …' : ''})`, {image: name})
}

/** Two files for one image: which one is meant is not for airlock to guess. */
function duplicateImage(name: string, a: string, b: string): AirlockError {
  return new AirlockError('SCHEMA_VIOLATION', `${b}: image "${name}" is also defined by ${a}; one file per image (remove one of them)`, {file: b, image: name, other: a})
}

/**
 * The image a reference names at `commit`: `IMAGE@sha256:…` by name, `repo@sha256:…` by its
 * repository. A reference that names no managed image is an input error.
 */
export async function findImageByRef(repo: Repository, commit: string, name: string | undefined, limits: Limits): Promise<GoldenImage> {
  if (!name) throw new AirlockError('UNKNOWN_IMAGE', 'REF: give IMAGE@sha256:… or repo@sha256:… of an image in manifests/images/', {field: 'REF'})
  if (!name.includes('/')) return loadImage(repo, commit, name, limits)
  const found = (await loadImages(repo, commit, limits)).find((i) => i.repository === name)
  if (!found) throw new AirlockError('UNKNOWN_IMAGE', `REF: no image in ${IMAGES_DIR}/ has repository ${name}`, {field: 'REF', repository: name})
  return found
}

interface TrustDoc {
  spec: {
    org?: string
    keys: Array<{id: string; name?: string; algorithm: TrustKey['algorithm']; publicKey: string; roles: Role[]; validFrom: string; validUntil?: string}>
    thresholds: Partial<Record<Role, number>>
    bundles?: {maxLifetime?: string}
  }
}

export function parseTrust(text: string, file: string, oid: string | null, limits: Limits): TrustPolicy {
  const loaded = loadYaml(text, file, limits)
  validateKind('TrustPolicy', loaded)
  const value = loaded.value as TrustDoc
  const keys: TrustKey[] = []
  const seen = new Set<string>()
  for (const [i, k] of value.spec.keys.entries()) {
    const at = (field: string) => ({file, ...locate(loaded, ['spec', 'keys', i, field]), field: `spec.keys[${i}].${field}`})
    const publicKey = Buffer.from(k.publicKey, 'base64')
    const problem = keyProblem(k.algorithm, publicKey, k.roles)
    if (problem) throw inputError('SCHEMA_VIOLATION', at(problem.field), problem.message)
    if (keyIdOf(publicKey) !== k.id) throw inputError('SCHEMA_VIOLATION', at('id'), `does not match the public key (its id is ${keyIdOf(publicKey)})`)
    if (seen.has(k.id)) throw inputError('SCHEMA_VIOLATION', at('id'), 'the same key is listed twice')
    seen.add(k.id)
    const validFrom = new Date(k.validFrom)
    const validUntil = k.validUntil === undefined ? undefined : new Date(k.validUntil)
    if (Number.isNaN(validFrom.getTime())) throw inputError('SCHEMA_VIOLATION', at('validFrom'), 'is not a valid time')
    if (validUntil && (Number.isNaN(validUntil.getTime()) || validUntil <= validFrom)) throw inputError('SCHEMA_VIOLATION', at('validUntil'), 'must be a valid time after validFrom')
    keys.push({id: k.id, ...(k.name ? {name: k.name} : {}), algorithm: k.algorithm, publicKey, roles: k.roles, validFrom, ...(validUntil ? {validUntil} : {})})
  }
  const t = value.spec.thresholds
  // A bundle lives at most this long (expiresAt − issuedAt): a retired key's backdated forgery dies with it.
  let maxLifetimeMs: number
  try {
    maxLifetimeMs = parseDuration(value.spec.bundles?.maxLifetime ?? '30d', 'spec.bundles.maxLifetime')
  } catch {
    throw inputError('SCHEMA_VIOLATION', {file, ...locate(loaded, ['spec', 'bundles', 'maxLifetime']), field: 'spec.bundles.maxLifetime'}, 'is not a duration like 30d or 720h')
  }
  return {file, oid, org: value.spec.org ?? '', keys, thresholds: Object.fromEntries(ROLES.map((r) => [r, t[r] ?? 1])) as Record<Role, number>, bundles: {maxLifetimeMs}, doc: loaded.doc}
}

/** What is wrong with a trust.yaml key's bytes or roles for its algorithm, if anything. */
function keyProblem(algorithm: TrustKey['algorithm'], publicKey: Buffer, roles: Role[]): {field: string; message: string} | null {
  if (algorithm === 'ed25519') return publicKey.length === 32 ? null : {field: 'publicKey', message: `an Ed25519 public key is 32 bytes, this is ${publicKey.length}`}
  try {
    const key = createPublicKey({key: publicKey, format: 'der', type: 'spki'})
    if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return {field: 'publicKey', message: `is a ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ''} key, not ECDSA P-256`}
  } catch {
    return {field: 'publicKey', message: 'is not a DER SubjectPublicKeyInfo (base64) of an ECDSA P-256 key'}
  }
  // Evidence, policy bundles and audit checkpoints are Ed25519 DSSE; ECDSA signs images only.
  return roles.every((r) => r === 'image') ? null : {field: 'roles', message: 'an ecdsa-p256 key may only hold the image role'}
}

/** The trust policy of a repository without trust.yaml: no key is trusted (so no bundle lives at all). */
export function emptyTrust(): TrustPolicy {
  return {file: TRUST_FILE, oid: null, org: '', keys: [], thresholds: Object.fromEntries(ROLES.map((r) => [r, 1])) as Record<Role, number>, bundles: {maxLifetimeMs: 0}, doc: null}
}

/** `manifests/trust.yaml` at `commit`; a repository without one trusts no key. */
export async function loadTrust(repo: Repository, commit: string | null, limits: Limits): Promise<TrustPolicy> {
  const found = commit ? await repo.readFile(commit, TRUST_FILE) : undefined
  if (!found) return emptyTrust()
  return parseTrust(found.text, TRUST_FILE, found.oid, limits)
}

/** Keys holding `role` and valid at `at` (validFrom ≤ at < validUntil). */
export function keysFor(trust: TrustPolicy, role: Role, at: Date): TrustKey[] {
  return trust.keys.filter((k) => k.roles.includes(role) && k.validFrom <= at && (!k.validUntil || at < k.validUntil))
}
