import {Args, Flags} from '@oclif/core'
import type {ImageSignatureResult} from '../../platform/images/verify.js'
import {AirlockCommand} from '../_base.js'
import {readInput} from '../_policy.js'

export default class ImageVerify extends AirlockCommand {
  static override summary = 'Verify a golden image signature offline: a keyed Sigstore DSSE bundle (as cosign v3 writes) for a pinned digest.'
  static override description =
    'The bundle must be signed by --key and its in-toto subject must be the pinned digest. Failure reasons: SIGNATURE_ERROR, SUBJECT_MISMATCH, UNTRUSTED_SIGNER, NOT_PINNED (exit 1). Keyless identities, message-signature bundles and --all come with the rest of image verification.'
  static override args = {ref: Args.string({description: 'repo@sha256:<64 hex> (a tag is refused)', required: true})}
  static override flags = {
    bundle: Flags.string({description: 'Sigstore bundle (JSON)', required: true}),
    key: Flags.string({description: 'public key (PEM, ECDSA P-256 or Ed25519) the image must be signed with', required: true}),
  }

  async run(): Promise<ImageSignatureResult> {
    const {args, flags} = await this.parse(ImageVerify)
    const [{parseDigestRef}, {verifyImageSignature}, {AirlockError}] = await Promise.all([
      import('../../control-plane/manifests/digest.js'),
      import('../../platform/images/verify.js'),
      import('../../control-plane/errors.js'),
    ])
    const {digest} = parseDigestRef(args.ref, 'REF')
    let bundle: unknown
    try {
      bundle = JSON.parse(await readInput(flags.bundle))
    } catch (error) {
      if (error instanceof AirlockError) throw error
      throw new AirlockError('INVALID_INPUT', `${flags.bundle}: not JSON (truncated?)`, {file: flags.bundle})
    }
    const result = verifyImageSignature(digest, bundle, {keys: [{id: flags.key, publicKeyPem: await readInput(flags.key)}]})
    if (!this.jsonEnabled()) this.log(`Verified ${args.ref}\n  signed by ${result.signer.keyid} (${result.bundleType} bundle)`)
    return result
  }
}
