/**
 * A cosign v2 signature (the `.sig` tag: a simple-signing payload and its signature annotation)
 * as a Sigstore v0.3 message-signature bundle over that payload, so it is kept and verified like
 * any other bundle; the payload is kept beside it (it names the image digest it signs).
 */
import {createHash} from 'node:crypto'
import type {FoundSignature} from './client.js'

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''), 'base64')
}

export function bundleFromSigTag(found: Extract<FoundSignature, {layout: 'sig-tag'}>): {bundleText: string; payloadText: string} {
  const bundle = {
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: {
      ...(found.certificate ? {certificate: {rawBytes: pemToDer(found.certificate).toString('base64')}} : {publicKey: {hint: ''}}),
      // The Rekor SET cosign v2 may attach (dev.sigstore.cosign/bundle) is not carried over: a
      // policy that requires log entries refuses these signatures rather than trusting it unread.
      tlogEntries: [],
      timestampVerificationData: {rfc3161Timestamps: []},
    },
    messageSignature: {
      messageDigest: {algorithm: 'SHA2_256', digest: createHash('sha256').update(found.payload).digest('base64')},
      signature: found.signature,
    },
  }
  return {bundleText: `${JSON.stringify(bundle)}\n`, payloadText: found.payload.toString('utf8')}
}
