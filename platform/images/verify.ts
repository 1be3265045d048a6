/**
 * Offline verification of a golden image's Sigstore bundle against a pinned digest, with
 * @sigstore/verify's Verifier and trust material handed in by the caller (no network, no TUF).
 * airlock adds what the library leaves to its callers: the signed subject must be the pinned
 * digest, and signing keys come only from the image's policy.
 */
import {createPublicKey} from 'node:crypto'
import {bundleFromJSON, isBundleWithDsseEnvelope, type Bundle} from '@sigstore/bundle'
import {PublicKeyDetails, TrustedRoot} from '@sigstore/protobuf-specs'
import {PolicyError, toSignedEntity, toTrustMaterial, VerificationError, Verifier} from '@sigstore/verify'
import {AirlockError} from '../../control-plane/errors.js'

export type ImageVerifyCode = 'SIGNATURE_ERROR' | 'SUBJECT_MISMATCH' | 'UNTRUSTED_SIGNER' | 'NO_TIMESTAMP' | 'TLOG_ERROR' | 'CERTIFICATE_ERROR' | 'NOT_PINNED'

export class ImageVerificationError extends AirlockError {
  constructor(
    readonly reason: ImageVerifyCode,
    message: string,
  ) {
    super('VERIFICATION_FAILED', message, {reason})
  }
}

/** A key an image may be signed with: its id (the bundle's key hint) and its PEM public key. */
export interface ImageKey {
  id: string
  publicKeyPem: string
}

export interface ImageSignatureResult {
  digest: string
  signer: {keyid: string}
  bundleType: 'dsse'
  tlogEntries: Array<{logIndex: string; integratedTime: string}>
}

/** A trusted root with no logs or authorities: what keyed, offline verification needs. */
export function emptyTrustedRoot(): TrustedRoot {
  return TrustedRoot.fromJSON({mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: []})
}

function keyDetails(pem: string): PublicKeyDetails {
  const type = createPublicKey(pem).asymmetricKeyType
  if (type === 'ed25519') return PublicKeyDetails.PKIX_ED25519
  if (type === 'ec') return PublicKeyDetails.PKIX_ECDSA_P256_SHA_256
  throw new AirlockError('KEY_INVALID', `an ${type} key; image keys are ECDSA P-256 or Ed25519`)
}

/** sha256 hex digests an in-toto statement in a DSSE bundle names as its subjects. */
function dsseSubjects(bundle: Bundle): string[] {
  if (!isBundleWithDsseEnvelope(bundle)) return []
  const envelope = bundle.content.dsseEnvelope
  if (envelope.payloadType !== 'application/vnd.in-toto+json') throw new ImageVerificationError('SIGNATURE_ERROR', `the DSSE payload is ${envelope.payloadType}, not an in-toto statement`)
  let statement: {subject?: Array<{digest?: {sha256?: string}}>}
  try {
    statement = JSON.parse(envelope.payload.toString('utf8'))
  } catch {
    throw new ImageVerificationError('SIGNATURE_ERROR', 'the DSSE payload is not JSON')
  }
  return (statement.subject ?? []).map((s) => s.digest?.sha256).filter((d): d is string => typeof d === 'string')
}

function fromLibraryError(error: unknown): ImageVerificationError {
  if (error instanceof PolicyError) return new ImageVerificationError('UNTRUSTED_SIGNER', error.message)
  if (error instanceof VerificationError) {
    const byCode: Record<string, ImageVerifyCode> = {
      PUBLIC_KEY_ERROR: 'UNTRUSTED_SIGNER',
      CERTIFICATE_ERROR: 'CERTIFICATE_ERROR',
      TIMESTAMP_ERROR: 'NO_TIMESTAMP',
      SIGNATURE_ERROR: 'SIGNATURE_ERROR',
    }
    return new ImageVerificationError(byCode[error.code] ?? (error.code.startsWith('TLOG') ? 'TLOG_ERROR' : 'SIGNATURE_ERROR'), `${error.code}: ${error.message}`)
  }
  return new ImageVerificationError('SIGNATURE_ERROR', (error as Error).message)
}

/**
 * Verifies `bundleJson` for the image pinned at `digest` (sha256:<hex>), signed by one of `keys`:
 * 1. the bundle parses as a Sigstore bundle;
 * 2. its signed subject is the pinned digest (the library verifies only what it is given);
 * 3. the library verifies the signature with a key from the image policy, and the logs and
 *    timestamps the thresholds ask for.
 */
export function verifyImageSignature(
  digest: string,
  bundleJson: unknown,
  opts: {keys: ImageKey[]; trustedRoot?: TrustedRoot; tlogThreshold?: number; timestampThreshold?: number},
): ImageSignatureResult {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new ImageVerificationError('NOT_PINNED', `${digest} is not a sha256 digest pin`)
  let bundle: Bundle
  try {
    bundle = bundleFromJSON(bundleJson)
  } catch (error) {
    throw new ImageVerificationError('SIGNATURE_ERROR', `not a Sigstore bundle: ${(error as Error).message}`)
  }
  const hex = digest.slice('sha256:'.length)
  if (isBundleWithDsseEnvelope(bundle)) {
    const subjects = dsseSubjects(bundle)
    if (!subjects.includes(hex)) throw new ImageVerificationError('SUBJECT_MISMATCH', `the bundle is for ${subjects.map((s) => `sha256:${s.slice(0, 12)}…`).join(', ') || 'no digest'}, not ${digest}`)
  } else {
    // A message-signature bundle signs the artifact's bytes; verifying it from the digest alone
    // needs a pre-hashed signature check that is not written yet. Refused, never passed.
    throw new ImageVerificationError('SIGNATURE_ERROR', 'message-signature bundles are not verified by this version of airlock; sign images as DSSE bundles (cosign v3 does)')
  }
  // Each policy key is tried in turn whatever the bundle's key hint says (cosign's hints vary):
  // the signer is the policy key that verifies, and no key verifying means an untrusted signer.
  if (opts.keys.length === 0) throw new ImageVerificationError('UNTRUSTED_SIGNER', 'the image policy names no signing key')
  let signer: ImageKey | undefined
  let failure: ImageVerificationError | undefined
  for (const key of opts.keys) {
    keyDetails(key.publicKeyPem)
    const publicKey = createPublicKey(key.publicKeyPem)
    const verifier = new Verifier(toTrustMaterial(opts.trustedRoot ?? emptyTrustedRoot(), () => ({publicKey, validFor: () => true})), {
      tlogThreshold: opts.tlogThreshold ?? 0,
      ctlogThreshold: 0,
      timestampThreshold: opts.timestampThreshold ?? 0,
    })
    try {
      verifier.verify(toSignedEntity(bundle))
      signer = key
      break
    } catch (error) {
      failure = fromLibraryError(error)
      if (failure.reason !== 'SIGNATURE_ERROR') throw failure
    }
  }
  if (!signer) {
    throw new ImageVerificationError('UNTRUSTED_SIGNER', `no key of the image policy (${opts.keys.map((k) => k.id).join(', ')}) verifies this signature: edited content or another key${failure ? ` (${failure.message})` : ''}`)
  }
  return {
    digest,
    signer: {keyid: signer.id},
    bundleType: 'dsse',
    tlogEntries: bundle.verificationMaterial.tlogEntries.map((e) => ({logIndex: e.logIndex, integratedTime: e.integratedTime})),
  }
}
