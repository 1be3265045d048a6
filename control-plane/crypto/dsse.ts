import {verifyEd25519, type Signer} from './keys.js'

/** A DSSE envelope (https://github.com/secure-systems-lab/dsse, protocol v1). */
export interface Envelope {
  payloadType: string
  payload: string
  signatures: Array<{keyid: string; sig: string}>
}

/** Pre-authentication encoding: what is actually signed, binding the payload to its type. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8')
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload])
}

export function signEnvelope(payloadType: string, payload: Uint8Array, signers: Signer[]): Envelope {
  const message = pae(payloadType, payload)
  return {
    payloadType,
    payload: Buffer.from(payload).toString('base64'),
    signatures: signers.map((s) => ({keyid: s.keyid, sig: Buffer.from(s.sign(message)).toString('base64')})),
  }
}

export interface SignatureCheck {
  keyid: string
  valid: boolean
  reason?: 'UNKNOWN_KEY' | 'BAD_SIGNATURE' | 'DUPLICATE_KEY'
}

/**
 * Checks each signature against the public key the caller trusts for its key id. Returns one
 * result a signature; counting distinct valid keys of a role against a threshold, at a time, is
 * `countSigners` (envelope.ts), the one place that does.
 */
export function checkEnvelopeSignatures(envelope: Envelope, keyFor: (keyid: string) => Uint8Array | undefined): SignatureCheck[] {
  const message = pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64'))
  const seen = new Set<string>()
  return envelope.signatures.map(({keyid, sig}) => {
    const key = keyFor(keyid)
    if (!key) return {keyid, valid: false, reason: 'UNKNOWN_KEY'}
    if (seen.has(keyid)) return {keyid, valid: false, reason: 'DUPLICATE_KEY'}
    const ok = verifyEd25519(key, message, Buffer.from(sig, 'base64'))
    if (ok) seen.add(keyid)
    return ok ? {keyid, valid: true} : {keyid, valid: false, reason: 'BAD_SIGNATURE'}
  })
}
