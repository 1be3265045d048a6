import {createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject} from 'node:crypto'
import {ed25519} from '@noble/curves/ed25519.js'
import {AirlockError} from '../errors.js'
import {sha256Hex} from './digest.js'
import {readPrivateFile} from './keyfile.js'

/** Something that can make Ed25519 signatures, known by its key id. */
export interface Signer {
  readonly keyid: string
  readonly publicKey: Uint8Array
  sign(data: Uint8Array): Uint8Array
}

/** A key id is the SHA-256 of the raw 32-byte Ed25519 public key, in hex. */
export function keyIdOf(publicKey: Uint8Array): string {
  return sha256Hex(publicKey)
}

export function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new AirlockError('KEY_INVALID', `an Ed25519 public key has 32 bytes, this one has ${raw.length}`)
  return createPublicKey({key: {kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url')}, format: 'jwk'})
}

function rawPublicOf(key: KeyObject): Uint8Array {
  const jwk = key.export({format: 'jwk'})
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.x) throw new AirlockError('KEY_INVALID', 'the key is not an Ed25519 key')
  return Buffer.from(jwk.x, 'base64url')
}

function signerOf(privateKey: KeyObject): Signer {
  const publicKey = rawPublicOf(createPublicKey(privateKey))
  return {
    keyid: keyIdOf(publicKey),
    publicKey,
    sign: (data) => sign(null, data, privateKey),
  }
}

/** Key objects of the few keys a history is signed with, made once each (a walk verifies thousands of signatures); null: a key nothing verifies under. */
const verifyingKeys = new Map<string, KeyObject | null>()

/**
 * Why an Ed25519 public key verifies nothing: not a canonical encoding of a curve point, a
 * small-order point, or a point with a small-order component. OpenSSL (and so Node, and Chromium's
 * WebCrypto) accepts such keys, and forged signatures verify under them; the compliance report's
 * page applies the same rule in the browser (evidence/report/page/rules.ts), so a signature never
 * passes in one and fails in the other. Keys made by `keys generate` always pass.
 */
export function ed25519KeyProblem(publicKey: Uint8Array): string | null {
  if (publicKey.length !== 32) return `an Ed25519 public key has 32 bytes, this one has ${publicKey.length}`
  let point: ReturnType<typeof ed25519.Point.fromBytes>
  try {
    point = ed25519.Point.fromBytes(publicKey, false)
  } catch {
    return 'the key is not a canonical encoding of a curve point'
  }
  if (point.isSmallOrder()) return 'the key is a small-order point'
  if (!point.isTorsionFree()) return 'the key has a small-order component'
  return null
}

/** Ed25519 (RFC 8032) as Node verifies it, under a key of prime order only (ed25519KeyProblem). */
export function verifyEd25519(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false
  const id = Buffer.from(publicKey).toString('hex')
  let key = verifyingKeys.get(id)
  if (key === undefined) {
    if (verifyingKeys.size >= 256) verifyingKeys.clear()
    key = ed25519KeyProblem(publicKey) === null ? publicKeyObject(publicKey) : null
    verifyingKeys.set(id, key)
  }
  return key !== null && verify(null, data, key, signature)
}

export function generateSigner(): {signer: Signer; pem: string} {
  const {privateKey} = generateKeyPairSync('ed25519')
  return {signer: signerOf(privateKey), pem: privateKey.export({format: 'pem', type: 'pkcs8'}).toString()}
}

export function signerFromPem(pem: string, source: string): Signer {
  let key: KeyObject
  try {
    key = createPrivateKey({key: pem, format: 'pem'})
  } catch {
    throw new AirlockError('KEY_INVALID', `${source}: not a PEM private key`, {file: source})
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new AirlockError('KEY_INVALID', `${source}: an ${key.asymmetricKeyType} key; airlock signs with Ed25519 keys`, {file: source})
  }
  return signerOf(key)
}

/**
 * Loads a signing key from a file (refused when others can read it) or, for CI secrets, from
 * PEM text given directly in an environment variable.
 */
export async function loadSigner(spec: {file?: string; env?: string}, what = 'evidence'): Promise<Signer> {
  if (spec.file) return signerFromPem(await readPrivateFile(spec.file), spec.file)
  if (spec.env) {
    if (spec.env.trimStart().startsWith('-----BEGIN')) return signerFromPem(spec.env, 'the key in the environment')
    return signerFromPem(await readPrivateFile(spec.env), spec.env)
  }
  throw new AirlockError('KEY_MISSING', `no ${what} key: pass --${what}-key FILE or set AIRLOCK_${what.toUpperCase()}_KEY`, {})
}

/** A key that signs image bundles (Sigstore, as cosign does): ECDSA P-256 or Ed25519. */
export interface ImageSigningKey {
  algorithm: 'ecdsa-p256' | 'ed25519'
  privateKey: KeyObject
  /** What trust.yaml holds: the SPKI DER for ECDSA, the raw 32 bytes for Ed25519. */
  publicKey: Uint8Array
  keyid: string
  publicKeyPem: string
}

function imageSigningKey(privateKey: KeyObject, source: string): ImageSigningKey {
  const publicKeyObj = createPublicKey(privateKey)
  const publicKeyPem = publicKeyObj.export({format: 'pem', type: 'spki'}).toString()
  if (privateKey.asymmetricKeyType === 'ed25519') {
    const raw = rawPublicOf(publicKeyObj)
    return {algorithm: 'ed25519', privateKey, publicKey: raw, keyid: keyIdOf(raw), publicKeyPem}
  }
  if (privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    const der = publicKeyObj.export({format: 'der', type: 'spki'})
    return {algorithm: 'ecdsa-p256', privateKey, publicKey: der, keyid: keyIdOf(der), publicKeyPem}
  }
  throw new AirlockError('KEY_INVALID', `${source}: an ${privateKey.asymmetricKeyType} key; image keys are ECDSA P-256 or Ed25519`, {file: source})
}

export function generateImageKey(algorithm: ImageSigningKey['algorithm']): {key: ImageSigningKey; pem: string} {
  const {privateKey} = algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', {namedCurve: 'P-256'})
  return {key: imageSigningKey(privateKey, 'generated key'), pem: privateKey.export({format: 'pem', type: 'pkcs8'}).toString()}
}

/** An image signing key from a PKCS#8 PEM file (refused when others can read it). */
export async function loadImageKey(file: string): Promise<ImageSigningKey> {
  const pem = await readPrivateFile(file)
  let key: KeyObject
  try {
    key = createPrivateKey({key: pem, format: 'pem'})
  } catch {
    throw new AirlockError('KEY_INVALID', `${file}: not an unencrypted PEM private key (PKCS#8); cosign's encrypted keys are not read — export one with openssl or use airlock keys generate`, {file})
  }
  return imageSigningKey(key, file)
}

/** Writes a new private key file (mode 0600), refusing to overwrite one. */
export {writeNewPrivateFile as writePrivateKey} from './keyfile.js'
