/**
 * A cosign v2 signature (the `.sig` tag: a simple-signing payload and its signature annotation)
 * as a Sigstore v0.3 message-signature bundle over that payload, so it is kept and verified like
 * any other bundle; the payload is kept beside it (it names the image digest it signs).
 */
import {createHash, verify, type KeyObject} from 'node:crypto'
import {cosignKeyHint} from '../images/sign.js'
import type {FoundSignature} from './client.js'

/** cosign v2's `dev.sigstore.cosign/bundle` annotation: Rekor's signed entry timestamp and entry. */
interface RekorSet {
  SignedEntryTimestamp: string
  Payload: {body: string; integratedTime: number; logIndex: number; logID: string}
}

/** The annotation as a transparency log entry with an inclusion promise (what bundle v0.1 holds). */
function tlogEntryFrom(annotation: string | undefined) {
  if (!annotation) return null
  let set: RekorSet
  try {
    set = JSON.parse(annotation) as RekorSet
  } catch {
    return null
  }
  const p = set?.Payload
  if (typeof set?.SignedEntryTimestamp !== 'string' || typeof p?.body !== 'string' || !Number.isSafeInteger(p.integratedTime) || !Number.isSafeInteger(p.logIndex) || !/^[0-9a-f]{64}$/.test(p.logID ?? '')) return null
  let kind: {kind?: unknown; apiVersion?: unknown}
  try {
    kind = JSON.parse(Buffer.from(p.body, 'base64').toString('utf8'))
  } catch {
    return null
  }
  if (typeof kind.kind !== 'string' || typeof kind.apiVersion !== 'string') return null
  return {
    logIndex: String(p.logIndex),
    logId: {keyId: Buffer.from(p.logID, 'hex').toString('base64')},
    kindVersion: {kind: kind.kind, version: kind.apiVersion},
    integratedTime: String(p.integratedTime),
    inclusionPromise: {signedEntryTimestamp: set.SignedEntryTimestamp},
    canonicalizedBody: p.body,
  }
}

/**
 * A keyed cosign v2 signature names no key; the bundle's hint is cosign's (the SHA-256 of the
 * key's DER, base64) for the key among `keys` whose signature it is, else of the signature itself
 * (a bundle no key verifies is refused anyway; the hint is never empty).
 */
function keyHint(found: Extract<FoundSignature, {layout: 'sig-tag'}>, keys: KeyObject[]): string {
  const signature = Buffer.from(found.signature, 'base64')
  const signer = keys.find((k) => {
    try {
      return verify(k.asymmetricKeyType === 'ed25519' ? null : 'sha256', found.payload, k, signature)
    } catch {
      return false
    }
  })
  return signer ? cosignKeyHint(signer) : createHash('sha256').update(signature).digest('base64')
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''), 'base64')
}

/**
 * With a Rekor entry (cosign's `dev.sigstore.cosign/bundle`) the bundle is v0.1, whose log
 * entries are proven by Rekor's signed entry timestamp; without one, v0.3 with no log entry.
 * The SET is verified by @sigstore/verify against the trusted root like any log entry, and its
 * integrated time is the verified timestamp keyless signatures need.
 */
export function bundleFromSigTag(found: Extract<FoundSignature, {layout: 'sig-tag'}>, keys: KeyObject[] = []): {bundleText: string; payloadText: string} {
  const entry = tlogEntryFrom(found.rekorBundle)
  const chain = [found.certificate, ...(found.chain ? found.chain.split(/(?<=-----END CERTIFICATE-----)/) : [])].filter((c): c is string => Boolean(c?.trim()))
  const key = found.certificate
    ? entry
      ? {x509CertificateChain: {certificates: chain.map((c) => ({rawBytes: pemToDer(c).toString('base64')}))}}
      : {certificate: {rawBytes: pemToDer(found.certificate).toString('base64')}}
    : {publicKey: {hint: keyHint(found, keys)}}
  const bundle = {
    mediaType: entry ? 'application/vnd.dev.sigstore.bundle+json;version=0.1' : 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: {
      ...key,
      tlogEntries: entry ? [entry] : [],
      timestampVerificationData: {rfc3161Timestamps: []},
    },
    messageSignature: {
      messageDigest: {algorithm: 'SHA2_256', digest: createHash('sha256').update(found.payload).digest('base64')},
      signature: found.signature,
    },
  }
  return {bundleText: `${JSON.stringify(bundle)}\n`, payloadText: found.payload.toString('utf8')}
}
