/**
 * Offline verification of a golden image's Sigstore bundle against a pinned digest, with
 * @sigstore/verify's Verifier and trust material handed in by the caller (no network, no TUF).
 * airlock adds what the library leaves to its callers:
 * - the signed subject must be the pinned digest (DSSE in-toto subject, or the message digest);
 * - a message signature is verified pre-hashed against the pinned digest, never the bytes;
 * - signing keys come only from the image's policy, and certificate identities match exactly
 *   or by a fully anchored pattern (the library's subject match is an unanchored regex).
 */
import {createHash, type KeyObject} from 'node:crypto'
import {p256} from '@noble/curves/nist.js'
import {bundleFromJSON, isBundleWithDsseEnvelope, type Bundle} from '@sigstore/bundle'
import {HashAlgorithm, TrustedRoot} from '@sigstore/protobuf-specs'
import {PolicyError, toSignedEntity, toTrustMaterial, VerificationError, Verifier, type SignedEntity, type Signer} from '@sigstore/verify'
import {AirlockError, type ImageVerifyCode} from '../../control-plane/errors.js'
import {parseDigestRef} from '../../control-plane/manifests/digest.js'
import {checkAnchoredPattern} from '../../control-plane/manifests/pattern.js'


/** A signature that does not verify: exit 1, with the reason code leading the message. */
export class ImageVerificationError extends AirlockError {
  constructor(
    readonly reason: ImageVerifyCode,
    readonly problem: string,
    details: Record<string, unknown> = {},
  ) {
    super(`IMAGE_${reason}`, `${reason}: ${problem}`, {reason, ...details})
  }
}

/** A key an image may be signed with: its id (trust.yaml) and its public key. */
export interface ImageKey {
  id: string
  publicKey: KeyObject
}

/** A keyless signer: the OIDC issuer and the certificate subject, exact or a ^…$ pattern. */
export interface CertificateIdentity {
  issuer: string
  subject?: string
  subjectRegExp?: string
}

/** What a signature must satisfy for one image: from its manifest, trust.yaml and a trusted root. */
export interface ImagePolicy {
  keys: ImageKey[]
  identities: CertificateIdentity[]
  trustedRoot: TrustedRoot
  /** Transparency log entries required (verified inclusion). */
  tlogThreshold: number
  /** Verified timestamps required (RFC 3161 or log integration times); keyless needs ≥ 1. */
  timestampThreshold: number
}

export interface ImageSignatureResult {
  digest: string
  verified: true
  bundleType: 'dsse' | 'message_signature'
  signer: {keyid: string} | {subject: string; issuer: string}
  tlogEntries: Array<{logIndex: string; integratedTime: string | null}>
  timestamps: number
  thresholds: {tlog: number; timestamp: number}
}

/** A trusted root with no logs or authorities: what keyed, offline verification needs. */
export function emptyTrustedRoot(): TrustedRoot {
  return TrustedRoot.fromJSON({mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: []})
}

/** A public key as an image key: ECDSA P-256 or Ed25519, anything else refused. */
export function imageKey(id: string, key: KeyObject): ImageKey {
  const ok = key.asymmetricKeyType === 'ed25519' || (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1')
  if (!ok) throw new AirlockError('KEY_INVALID', `${id}: an ${key.asymmetricKeyType} key; image keys are ECDSA P-256 or Ed25519`, {key: id})
  return {id, publicKey: key}
}

function identityMatches(identity: CertificateIdentity, subject: string, issuer: string): boolean {
  if (identity.issuer !== issuer) return false
  if (identity.subject !== undefined) return identity.subject === subject
  return identity.subjectRegExp !== undefined && checkAnchoredPattern(identity.subjectRegExp) === null && new RegExp(identity.subjectRegExp, 'u').test(subject)
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
  if (!Array.isArray(statement.subject)) return []
  return statement.subject.map((s) => s?.digest?.sha256).filter((d): d is string => typeof d === 'string')
}

/**
 * The signature of a message-signature bundle checked against the pinned digest: the signature
 * is over the artifact's SHA-256, so ECDSA P-256 verifies it pre-hashed without the bytes.
 * Ed25519 signs the bytes themselves, which a digest cannot stand in for.
 */
class PrehashedSignature {
  constructor(
    readonly signature: Buffer,
    private readonly digest: Buffer,
  ) {}

  compareSignature(signature: Buffer): boolean {
    return Buffer.compare(signature, this.signature) === 0
  }

  compareDigest(digest: Buffer): boolean {
    return Buffer.compare(digest, this.digest) === 0
  }

  compareSignedDigest(digest: Buffer): boolean {
    return this.compareDigest(digest)
  }

  verifySignature(key: KeyObject): boolean {
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return false
    const jwk = key.export({format: 'jwk'})
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')])
    try {
      return p256.verify(this.signature, this.digest, point, {prehash: false, format: 'der', lowS: false})
    } catch {
      return false
    }
  }
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
    const reason = byCode[error.code] ?? (error.code.startsWith('TLOG') ? 'TLOG_ERROR' : 'SIGNATURE_ERROR')
    return new ImageVerificationError(reason, reason === error.code ? error.message : `${error.message} (${error.code})`)
  }
  return new ImageVerificationError('SIGNATURE_ERROR', (error as Error).message)
}

/**
 * The image digest a cosign simple-signing payload names (critical.image.docker-manifest-digest);
 * what cosign v2 signed for an image kept under its `.sig` tag.
 */
function simpleSigningDigest(payload: Buffer): string {
  let json: {critical?: {type?: string; image?: {'docker-manifest-digest'?: string}}}
  try {
    json = JSON.parse(payload.toString('utf8'))
  } catch {
    throw new ImageVerificationError('SIGNATURE_ERROR', 'the simple-signing payload is not JSON')
  }
  if (json.critical?.type !== 'cosign container image signature') throw new ImageVerificationError('SIGNATURE_ERROR', 'the payload is not a cosign container image signature')
  return json.critical.image?.['docker-manifest-digest'] ?? ''
}

/** Parses a bundle and checks its signed subject is the pinned digest; the signed entity to verify. */
function entityFor(digest: string, bundleJson: unknown, payload?: Buffer): {bundle: Bundle; entity: SignedEntity} {
  let bundle: Bundle
  try {
    bundle = bundleFromJSON(bundleJson)
  } catch (error) {
    throw new ImageVerificationError('SIGNATURE_ERROR', `not a Sigstore bundle: ${(error as Error).message}`)
  }
  const hex = digest.slice('sha256:'.length)
  let entity: SignedEntity
  try {
    entity = toSignedEntity(bundle)
  } catch (error) {
    const certificate = bundle.verificationMaterial.content.$case !== 'publicKey'
    throw new ImageVerificationError(certificate ? 'CERTIFICATE_ERROR' : 'SIGNATURE_ERROR', `the bundle's verification material does not parse: ${(error as Error).message}`)
  }
  if (isBundleWithDsseEnvelope(bundle)) {
    const subjects = dsseSubjects(bundle)
    if (!subjects.includes(hex)) throw new ImageVerificationError('SUBJECT_MISMATCH', `the bundle is for ${subjects.map((s) => `sha256:${s.slice(0, 12)}…`).join(', ') || 'no digest'}, not ${digest}`)
  } else {
    if (bundle.content.$case !== 'messageSignature') throw new ImageVerificationError('SIGNATURE_ERROR', 'the bundle holds neither a DSSE envelope nor a message signature')
    const message = bundle.content.messageSignature
    const algorithm = message.messageDigest?.algorithm
    if (algorithm !== HashAlgorithm.SHA2_256) throw new ImageVerificationError('SUBJECT_MISMATCH', `the message digest is not SHA-256 (${HashAlgorithm[algorithm ?? 0]}); images are pinned by sha256`)
    const signed = Buffer.from(message.messageDigest!.digest).toString('hex')
    if (payload) {
      // cosign v2: the signature is over a simple-signing payload that names the image digest.
      if (createHash('sha256').update(payload).digest('hex') !== signed) throw new ImageVerificationError('SUBJECT_MISMATCH', 'the payload kept beside the bundle is not the one it signs')
      const named = simpleSigningDigest(payload)
      if (named !== digest) throw new ImageVerificationError('SUBJECT_MISMATCH', `the signed payload names ${named || 'no digest'}, not ${digest}`)
      entity = toSignedEntity(bundle, payload)
    } else {
      if (signed !== hex) throw new ImageVerificationError('SUBJECT_MISMATCH', `the bundle is for sha256:${signed.slice(0, 12)}…, not ${digest}`)
      entity = {...entity, signature: new PrehashedSignature(Buffer.from(message.signature), Buffer.from(hex, 'hex'))}
    }
  }
  return {bundle, entity}
}

/**
 * Verifies `bundleJson` for the image pinned at `digest` (sha256:<hex>) under `policy`:
 * 1. the bundle parses and its signed subject is the pinned digest (for a cosign v2 signature,
 *    the simple-signing `payload` it signs names the pinned digest);
 * 2. keyed: one of the policy's keys verifies it (each tried, whatever the bundle's hint);
 *    keyless: the certificate chains to the trusted root at a verified time and its identity
 *    is one the policy names;
 * 3. the transparency log entries and timestamps the thresholds ask for verify.
 */
export function verifyImageSignature(digest: string, bundleJson: unknown, policy: ImagePolicy, opts: {payload?: Buffer} = {}): ImageSignatureResult {
  parseDigestRef(digest)
  const {bundle, entity} = entityFor(digest, bundleJson, opts.payload)
  const bundleType = isBundleWithDsseEnvelope(bundle) ? 'dsse' : 'message_signature'
  if (bundleType === 'message_signature' && !opts.payload && entity.key.$case === 'public-key' && policy.keys.every((k) => k.publicKey.asymmetricKeyType === 'ed25519')) {
    throw new ImageVerificationError('SIGNATURE_ERROR', 'an Ed25519 message signature is over the artifact bytes, which the digest alone cannot verify; sign Ed25519 images as DSSE bundles')
  }
  let signer: ImageSignatureResult['signer']
  let thresholds: ImageSignatureResult['thresholds']
  if (entity.key.$case === 'certificate') {
    if (policy.identities.length === 0) throw new ImageVerificationError('UNTRUSTED_SIGNER', 'the bundle is signed with a certificate (keyless), but the image policy names only keys')
    thresholds = {tlog: policy.tlogThreshold, timestamp: Math.max(1, policy.timestampThreshold)}
    const verifier = verifierFor(policy.trustedRoot, null, {tlogThreshold: thresholds.tlog, ctlogThreshold: policy.trustedRoot.ctlogs.length > 0 ? 1 : 0, timestampThreshold: thresholds.timestamp})
    let result: Signer
    try {
      result = verifier.verify(entity)
    } catch (error) {
      throw fromLibraryError(error)
    }
    const subject = result.identity?.subjectAlternativeName ?? ''
    const issuer = result.identity?.extensions?.issuer ?? ''
    if (!policy.identities.some((id) => identityMatches(id, subject, issuer))) {
      throw new ImageVerificationError('UNTRUSTED_SIGNER', `signed by ${subject || '(no subject)'} from issuer ${issuer || '(none)'}, which the image policy does not name`, {subject, issuer})
    }
    signer = {subject, issuer}
  } else {
    if (policy.keys.length === 0) throw new ImageVerificationError('UNTRUSTED_SIGNER', 'the bundle is signed with a key, but the image policy names no valid image key')
    thresholds = {tlog: policy.tlogThreshold, timestamp: policy.timestampThreshold}
    let found: ImageKey | undefined
    let failure: ImageVerificationError | undefined
    for (const key of policy.keys) {
      const verifier = verifierFor(policy.trustedRoot, key, {tlogThreshold: thresholds.tlog, ctlogThreshold: 0, timestampThreshold: thresholds.timestamp})
      try {
        verifier.verify(entity)
        found = key
        break
      } catch (error) {
        failure = fromLibraryError(error)
        if (failure.reason !== 'SIGNATURE_ERROR') throw failure
      }
    }
    if (!found) {
      throw new ImageVerificationError('UNTRUSTED_SIGNER', `no key of the image policy (${policy.keys.map((k) => k.id.slice(0, 12)).join(', ')}) verifies this signature: edited content or another key${failure ? ` (${failure.message})` : ''}`)
    }
    signer = {keyid: found.id}
  }
  return {
    digest,
    verified: true,
    bundleType,
    signer,
    tlogEntries: bundle.verificationMaterial.tlogEntries.map((e) => ({logIndex: e.logIndex, integratedTime: e.integratedTime && e.integratedTime !== '0' ? new Date(Number(e.integratedTime) * 1000).toISOString() : null})),
    timestamps: entity.timestamps.length,
    thresholds,
  }
}

// Building a Verifier parses the trusted root's certificates and keys; one per (root, key,
// thresholds) is kept, so verifying many bundles under one policy parses them once.
const verifiers = new WeakMap<TrustedRoot, Map<string, Verifier>>()

function verifierFor(root: TrustedRoot, key: ImageKey | null, options: {tlogThreshold: number; ctlogThreshold: number; timestampThreshold: number}): Verifier {
  let byKey = verifiers.get(root)
  if (!byKey) verifiers.set(root, (byKey = new Map()))
  const id = `${key?.id ?? '(keyless)'}/${options.tlogThreshold}/${options.ctlogThreshold}/${options.timestampThreshold}`
  let verifier = byKey.get(id)
  if (!verifier) {
    const publicKey = key?.publicKey
    verifier = new Verifier(toTrustMaterial(root, publicKey ? () => ({publicKey, validFor: () => true}) : noKeys), options)
    if (byKey.size > 1000) byKey.clear()
    byKey.set(id, verifier)
  }
  return verifier
}

function noKeys(): never {
  throw new VerificationError({code: 'PUBLIC_KEY_ERROR', message: 'the image policy trusts no keys for keyless bundles'})
}
