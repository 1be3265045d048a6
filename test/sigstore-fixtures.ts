import {generateKeyPairSync, sign, type KeyObject} from 'node:crypto'
import {bundleToJSON} from '@sigstore/bundle'
import {DSSEBundleBuilder, MessageSignatureBundleBuilder} from '@sigstore/sign'
import {vi} from 'vitest'

/** A bundle as JSON: the tests read and tamper with its fields freely. */
export type BundleJson = Record<string, any>

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
export async function signImage(digest: string, key: ImageKeyPair): Promise<BundleJson> {
  const builder = new DSSEBundleBuilder({
    signer: {
      sign: async (data: Buffer) => ({signature: sign(key.type === 'ec' ? 'sha256' : null, data, key.privateKey), key: {$case: 'publicKey', publicKey: key.pem, hint: 'cosign-style-hint'}}),
    },
    witnesses: [],
  })
  return bundleToJSON(await builder.create({data: Buffer.from(JSON.stringify(statementFor(digest))), type: 'application/vnd.in-toto+json'})) as BundleJson
}

/**
 * A keyed message-signature bundle over an image manifest's bytes: the signature is over their
 * SHA-256, which is the image digest, so it can be verified from the digest alone.
 */
export async function signImageMessage(manifest: Buffer, key: ImageKeyPair): Promise<BundleJson> {
  const builder = new MessageSignatureBundleBuilder({
    signer: {sign: async (data: Buffer) => ({signature: sign(key.type === 'ec' ? 'sha256' : null, data, key.privateKey), key: {$case: 'publicKey', publicKey: key.pem, hint: 'k'}})},
    witnesses: [],
  })
  return bundleToJSON(await builder.create({data: manifest})) as BundleJson
}

/** The in-toto statement cosign signs for an image: the manifest digest as its subject. */
export function statementFor(digest: string, name = 'registry.example.com/golden/agent-runner') {
  return {_type: 'https://in-toto.io/Statement/v1', subject: [{name, digest: {sha256: digest.slice(7)}}], predicateType: 'https://sigstore.dev/cosign/sign/v1', predicate: {}}
}

/**
 * A private Sigstore (Fulcio CA with CT log, Rekor log, timestamp authority) from
 * @sigstore/mock, served on a real HTTP server on 127.0.0.1 so @sigstore/sign talks to it as it
 * would to sigstore.dev. Its trusted root is built from the mock's own keys. Mocked because a
 * real Fulcio needs an OIDC provider and the public log, neither reachable here.
 *
 * It runs on the reference time the test passes, never on the machine's clock: everything it
 * signs is signed at that time, however long the test takes to get there.
 */
export interface MockSigstore {
  url: string
  /** The reference time everything is signed at (the test's `now`, in whole seconds). */
  now: Date
  trustedRoot: Record<string, unknown>
  /** A keyless DSSE bundle for `digest`, with a certificate for `subject` from `issuer`. */
  signKeyless(digest: string, identity: {subject: string; issuer: string}, opts?: {timestamp?: boolean; tlog?: boolean; manifest?: Buffer}): Promise<BundleJson>
  close(): Promise<void>
}

/**
 * Starts a private Sigstore at `now`, the reference time the test captured once: Fulcio
 * certificates start at it (or at `caClock`) and last ten minutes, CT and Rekor entries are
 * integrated at it, the TSA stamps it; the CA's and the TSA's own certificates, and the trusted
 * root, are valid from an hour before it.
 */
export async function startMockSigstore(now: Date, opts: {caClock?: Date} = {}): Promise<MockSigstore> {
  // Whole seconds: the mock TSA writes milliseconds into genTime, which @sigstore/core refuses.
  const clock = new Date(Math.floor(now.getTime() / 1000) * 1000)
  // The Fulcio CA may run on another clock: one in the past issues certificates already expired.
  const caClock = opts.caClock ?? clock
  /** Where the CA's and TSA's own certificates, and every trusted-root entry, start. */
  const since = new Date(Math.min(clock.getTime(), caClock.getTime()) - 3600_000)
  /**
   * @sigstore/mock takes a clock for what it signs, but dates the root and intermediate
   * certificates it makes for the CA and the TSA from `new Date()`: they are made with the
   * date at `since`, so they cover the reference time whenever the test runs.
   */
  const datedAt = async <T>(date: Date, make: () => Promise<T>): Promise<T> => {
    vi.useFakeTimers({now: date, toFake: ['Date']})
    try {
      return await make()
    } finally {
      vi.useRealTimers()
    }
  }
  const mock = await import('@sigstore/mock')
  const {createHash} = await import('node:crypto')
  const {createServer} = await import('node:http')
  const {FulcioSigner, RekorWitness, TSAWitness} = await import('@sigstore/sign')
  // The mock's Rekor v2 answers with an inclusion proof for index 0 under a random log index,
  // which @sigstore/verify rightly refuses; its v1 log (intoto and hashedrekord entries) is used.
  const {SignJWT} = await import('jose')
  const pair = () => generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const caKeys = pair()
  const ctKeys = pair()
  const tlogKeys = pair()
  const tsaKeys = pair()
  const ctlog = await mock.initializeCTLog(ctKeys, caClock)
  const ca = await datedAt(since, () => mock.initializeCA(caKeys, ctlog, caClock))
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as {port: number}).port}`
  const tlog = await mock.initializeTLog(url, tlogKeys, clock)
  const tsa = await datedAt(since, () => mock.initializeTSA(tsaKeys, clock))
  const handlers = [mock.fulcioHandler(ca), mock.rekorHandler(tlog), mock.rekorV2Handler(tlog), mock.tsaHandler(tsa)]
  server.on('request', (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const handler = handlers.find((h) => req.url === h.path)
      if (!handler) return void res.writeHead(404).end()
      const out = await handler.fn(Buffer.concat(chunks).toString())
      res.writeHead(out.statusCode, {'content-type': out.contentType ?? 'application/json'}).end(out.response)
    })
  })
  const der = (k: KeyObject) => k.export({format: 'der', type: 'spki'})
  const b64 = (b: ArrayBufferView) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
  const start = since.toISOString()
  const logKey = (k: KeyObject) => ({
    baseUrl: url,
    hashAlgorithm: 'SHA2_256',
    publicKey: {rawBytes: der(k).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: {start}},
    logId: {keyId: createHash('sha256').update(der(k)).digest('base64')},
  })
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [logKey(tlogKeys.publicKey)],
    ctlogs: [logKey(ctKeys.publicKey)],
    certificateAuthorities: [{subject: {organization: 'sigstore.mock', commonName: 'sigstore'}, uri: url, certChain: {certificates: [{rawBytes: b64(ca.rootCertificate)}]}, validFor: {start}}],
    timestampAuthorities: [{subject: {organization: 'sigstore.mock', commonName: 'tsa'}, uri: url, certChain: {certificates: [{rawBytes: b64(tsa.intCertificate)}, {rawBytes: b64(tsa.rootCertificate)}]}, validFor: {start}}],
  }
  const tokenKey = pair()
  return {
    url,
    now: clock,
    trustedRoot,
    async signKeyless(digest, identity, o = {}) {
      const token = await new SignJWT({sub: identity.subject}).setProtectedHeader({alg: 'ES256'}).setIssuer(identity.issuer).setAudience('sigstore').setIssuedAt(clock.getTime() / 1000).setExpirationTime(clock.getTime() / 1000 + 300).sign(tokenKey.privateKey)
      const witnesses = []
      if (o.tlog !== false) witnesses.push(new RekorWitness({rekorBaseURL: url, entryType: 'intoto', majorApiVersion: 1}))
      if (o.timestamp !== false) witnesses.push(new TSAWitness({tsaBaseURL: url}))
      const signer = new FulcioSigner({fulcioBaseURL: url, identityProvider: {getToken: async () => token}})
      if (o.manifest) return bundleToJSON(await new MessageSignatureBundleBuilder({signer, witnesses}).create({data: o.manifest})) as BundleJson
      const builder = new DSSEBundleBuilder({signer, witnesses})
      return bundleToJSON(await builder.create({data: Buffer.from(JSON.stringify(statementFor(digest))), type: 'application/vnd.in-toto+json'})) as BundleJson
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/**
 * What cosign v2 puts on a keyless `.sig` layer, taken from a real keyless message-signature
 * bundle over the simple-signing payload (made by `signKeyless(…, {manifest: payload})`): the
 * signature, the Fulcio certificate as PEM, and Rekor's entry with its signed entry timestamp.
 */
export function cosignV2Annotations(bundle: BundleJson): Record<string, string> {
  const pem = (b64: string) => `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`
  const entry = bundle.verificationMaterial.tlogEntries[0]
  return {
    'dev.cosignproject.cosign/signature': bundle.messageSignature.signature,
    'dev.sigstore.cosign/certificate': pem((bundle.verificationMaterial.certificate ?? bundle.verificationMaterial.x509CertificateChain.certificates[0]).rawBytes),
    'dev.sigstore.cosign/bundle': JSON.stringify({
      SignedEntryTimestamp: entry.inclusionPromise.signedEntryTimestamp,
      Payload: {body: entry.canonicalizedBody, integratedTime: Number(entry.integratedTime), logIndex: Number(entry.logIndex), logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex')},
    }),
  }
}
