import {generateKeyPairSync, sign, type KeyObject} from 'node:crypto'
import {bundleToJSON} from '@sigstore/bundle'
import {DSSEBundleBuilder} from '@sigstore/sign'

export interface ImageKeyPair {
  pem: string
  privateKey: KeyObject
  type: 'ec' | 'ed25519'
}

export function imageKeyPair(type: 'ec' | 'ed25519'): ImageKeyPair {
  const {publicKey, privateKey} = type === 'ec' ? generateKeyPairSync('ec', {namedCurve: 'P-256'}) : generateKeyPairSync('ed25519')
  return {pem: publicKey.export({format: 'pem', type: 'spki'}).toString(), privateKey, type}
}

/**
 * A keyed DSSE bundle as `cosign sign --key` writes for an image: an in-toto statement whose
 * subject is the image digest, signed with a generated key by @sigstore/sign's own builder.
 */
export async function signImage(digest: string, key: ImageKeyPair): Promise<Record<string, any>> {
  const builder = new DSSEBundleBuilder({
    signer: {
      sign: async (data: Buffer) => ({signature: sign(key.type === 'ec' ? 'sha256' : null, data, key.privateKey), key: {$case: 'publicKey', publicKey: key.pem, hint: 'cosign-style-hint'}}),
    },
    witnesses: [],
  })
  const statement = {_type: 'https://in-toto.io/Statement/v1', subject: [{name: 'registry.example.com/golden/agent-runner', digest: {sha256: digest.slice(7)}}], predicateType: 'https://sigstore.dev/cosign/sign/v1', predicate: {}}
  return bundleToJSON(await builder.create({data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json'})) as Record<string, any>
}
