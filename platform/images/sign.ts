/**
 * Signing for labs and key-based shops: the Sigstore bundle a key-based `cosign sign` writes
 * for an image (v0.3, DSSE, an in-toto statement whose subject is the manifest digest), built by
 * @sigstore/sign's own DSSE bundle builder with a local key. No log, no timestamp: offline.
 */
import {createHash, createPublicKey, sign, type KeyObject} from 'node:crypto'
import {bundleToJSON} from '@sigstore/bundle'
import {DSSEBundleBuilder} from '@sigstore/sign'
import type {ImageSigningKey} from '../../control-plane/crypto/keys.js'

export const COSIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1'

/** The bundle as JSON text (one line, as cosign writes it). */
export async function signImageBundle(repository: string, digest: string, key: ImageSigningKey): Promise<string> {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{name: repository, digest: {sha256: digest.slice('sha256:'.length)}}],
    predicateType: COSIGN_PREDICATE_TYPE,
    predicate: {},
  }
  const builder = new DSSEBundleBuilder({
    signer: {
      sign: async (data: Buffer) => ({
        signature: sign(key.algorithm === 'ecdsa-p256' ? 'sha256' : null, data, key.privateKey),
        key: {$case: 'publicKey', publicKey: key.publicKeyPem, hint: cosignKeyHint(key.publicKeyPem)},
      }),
    },
    witnesses: [],
  })
  const bundle = await builder.create({data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json'})
  const json = bundleToJSON(bundle)
  // Every Sigstore client reads tlogEntries; sigstore-python refuses a bundle without the list.
  return `${JSON.stringify({...json, verificationMaterial: {...json.verificationMaterial, tlogEntries: json.verificationMaterial.tlogEntries ?? []}})}\n`
}

/** The key hint cosign writes for a public key: base64 of the SHA-256 of its DER SubjectPublicKeyInfo. */
export function cosignKeyHint(publicKey: string | KeyObject): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey
  return createHash('sha256').update(key.export({format: 'der', type: 'spki'})).digest('base64')
}
