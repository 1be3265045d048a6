/**
 * git's SSH signature format (OpenSSH PROTOCOL.sshsig), for Ed25519 keys: what
 * `git verify-commit` checks with gpg.format=ssh and an allowed-signers file.
 */
import {createHash} from 'node:crypto'
import {verifyEd25519, type Signer} from './keys.js'

const MAGIC = Buffer.from('SSHSIG')
const KEY_TYPE = 'ssh-ed25519'
const HASH = 'sha512'

function sshString(data: string | Uint8Array): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data)
  const len = Buffer.alloc(4)
  len.writeUInt32BE(body.length)
  return Buffer.concat([len, body])
}

/** The public key as OpenSSH writes it on the wire (and, in base64, in authorized keys). */
export function sshPublicKeyBlob(publicKey: Uint8Array): Buffer {
  return Buffer.concat([sshString(KEY_TYPE), sshString(publicKey)])
}

/** A time as the allowed-signers file writes it: YYYYMMDDHHMMSSZ (UTC). */
function sshTime(at: Date): string {
  return `${at.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`
}

/**
 * One line of git's allowed-signers file (ssh-keygen(1), ALLOWED SIGNERS): the key may sign git
 * objects, and with a validity window only those dated inside it (git passes the commit time).
 */
export function allowedSignersLine(principal: string, publicKey: Uint8Array, valid?: {from?: Date; until?: Date}): string {
  const options = ['namespaces="git"', ...(valid?.from ? [`valid-after="${sshTime(valid.from)}"`] : []), ...(valid?.until ? [`valid-before="${sshTime(valid.until)}"`] : [])]
  return `${principal} ${options.join(',')} ${KEY_TYPE} ${sshPublicKeyBlob(publicKey).toString('base64')}`
}

/** The key's fingerprint as `ssh-keygen -l` prints it: SHA256 of its wire form, base64 without padding. */
export function sshFingerprint(publicKey: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(sshPublicKeyBlob(publicKey)).digest('base64').replace(/=+$/, '')}`
}

function signedData(namespace: string, message: Uint8Array): Buffer {
  const digest = createHash(HASH).update(message).digest()
  return Buffer.concat([MAGIC, sshString(namespace), sshString(''), sshString(HASH), sshString(digest)])
}

export function sshSign(message: Uint8Array, signer: Signer, namespace = 'git'): string {
  const signature = signer.sign(signedData(namespace, message))
  const version = Buffer.alloc(4)
  version.writeUInt32BE(1)
  const blob = Buffer.concat([
    MAGIC,
    version,
    sshString(sshPublicKeyBlob(signer.publicKey)),
    sshString(namespace),
    sshString(''),
    sshString(HASH),
    sshString(Buffer.concat([sshString(KEY_TYPE), sshString(signature)])),
  ])
  const lines = blob.toString('base64').match(/.{1,70}/g) ?? []
  return ['-----BEGIN SSH SIGNATURE-----', ...lines, '-----END SSH SIGNATURE-----', ''].join('\n')
}

class Reader {
  private at = 0
  constructor(private readonly buf: Buffer) {}
  bytes(n: number): Buffer {
    if (this.at + n > this.buf.length) throw new Error('truncated')
    const out = this.buf.subarray(this.at, this.at + n)
    this.at += n
    return out
  }
  uint32(): number {
    return this.bytes(4).readUInt32BE()
  }
  string(): Buffer {
    return this.bytes(this.uint32())
  }
  done(): boolean {
    return this.at === this.buf.length
  }
}

export type SshSigResult = {valid: true; publicKey: Uint8Array} | {valid: false; reason: string; publicKey?: Uint8Array}

/** Verifies an armored SSH signature over `message`; returns the signing public key when valid. */
export function sshVerify(armored: string, message: Uint8Array, namespace = 'git'): SshSigResult {
  const match = /-----BEGIN SSH SIGNATURE-----([\s\S]*?)-----END SSH SIGNATURE-----/.exec(armored)
  if (!match?.[1]) return {valid: false, reason: 'not an SSH signature'}
  try {
    const r = new Reader(Buffer.from(match[1].replace(/\s+/g, ''), 'base64'))
    if (!r.bytes(6).equals(MAGIC) || r.uint32() !== 1) return {valid: false, reason: 'unknown SSH signature version'}
    const key = new Reader(r.string())
    const ns = r.string().toString()
    r.string() // reserved
    const hash = r.string().toString()
    const sig = new Reader(r.string())
    if (!r.done()) return {valid: false, reason: 'trailing bytes in SSH signature'}
    if (key.string().toString() !== KEY_TYPE) return {valid: false, reason: 'not an ssh-ed25519 signature'}
    const publicKey = key.string()
    if (ns !== namespace) return {valid: false, reason: `signature namespace is "${ns}", expected "${namespace}"`, publicKey}
    if (hash !== HASH) return {valid: false, reason: `hash ${hash} not accepted`, publicKey}
    if (sig.string().toString() !== KEY_TYPE) return {valid: false, reason: 'not an ssh-ed25519 signature', publicKey}
    const raw = sig.string()
    if (!verifyEd25519(publicKey, signedData(ns, message), raw)) return {valid: false, reason: 'signature does not match the commit', publicKey}
    return {valid: true, publicKey}
  } catch {
    return {valid: false, reason: 'malformed SSH signature'}
  }
}
