/**
 * The registry client against misbehaving registries. These are small loopback HTTP servers
 * written for the test: the real registry (test/integration/registry.test.ts) cannot be made to
 * lie about a digest, loop on redirects, hang, or serve the OCI 1.1 referrers API (Debian's
 * distribution 2.8 predates it).
 */
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {join} from 'node:path'
import {execa} from 'execa'
import {tempDir} from '../../helpers.js'
import {afterEach, describe, expect, it} from 'vitest'
import {parseImageRef, RegistryClient, type FoundSignature} from '../../../platform/registry/client.js'
import {DEFAULT_LIMITS, type RegistryLimits} from '../../../control-plane/limits.js'

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))))
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `127.0.0.1:${(server.address() as {port: number}).port}`
}

const LIMITS: RegistryLimits = {...DEFAULT_LIMITS, registryRequestMs: 2000, maxRegistryManifestBytes: 64 * 1024, maxRegistryBlobBytes: 64 * 1024}
type Options = Omit<ConstructorParameters<typeof RegistryClient>[1], 'limits'> & {limits?: Partial<RegistryLimits>}
const client = (host: string, {limits, ...opts}: Options = {}) => new RegistryClient(host, {plainHttp: true, limits: {...LIMITS, ...limits}, ...opts})
const all = async (it: AsyncIterable<FoundSignature>) => {
  const out: FoundSignature[] = []
  for await (const x of it) out.push(x)
  return out
}
const MANIFEST = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {}, layers: []}))
const DIGEST = sha(MANIFEST)

describe('registry client', () => {
  it('parses references and refuses tags', () => {
    expect(parseImageRef(`ghcr.io/acme/runner@${DIGEST}`)).toEqual({registry: 'ghcr.io', repository: 'acme/runner', digest: DIGEST})
    expect(parseImageRef(`127.0.0.1:5000/golden/x@${DIGEST}`)).toMatchObject({registry: '127.0.0.1:5000', repository: 'golden/x'})
    expect(parseImageRef(`alpine@${DIGEST}`)).toMatchObject({registry: 'registry-1.docker.io', repository: 'library/alpine'})
    expect(() => parseImageRef('ghcr.io/acme/runner:latest')).toThrowAirlockError('NOT_PINNED')
    expect(() => parseImageRef('ghcr.io/acme/runner@sha256:abc')).toThrowAirlockError('BAD_DIGEST')
  })

  it('fetches a manifest whose bytes hash to the digest asked for; refuses one that does not (DIGEST_MISMATCH)', async () => {
    const host = await serve((req, res) => {
      res.writeHead(200, {'content-type': 'application/vnd.oci.image.manifest.v1+json'})
      res.end(req.url!.includes(DIGEST) ? MANIFEST : Buffer.concat([MANIFEST, Buffer.from(' ')]))
    })
    await expect(client(host).manifest('golden/x', DIGEST)).resolves.toMatchObject({digest: DIGEST, mediaType: 'application/vnd.oci.image.manifest.v1+json'})
    const other = `sha256:${'0'.repeat(64)}`
    await expect(client(host).manifest('golden/x', other)).rejects.toMatchObject({code: 'DIGEST_MISMATCH', details: {asked: other}})
    await expect(client(host).blob('golden/x', other)).rejects.toMatchObject({code: 'DIGEST_MISMATCH'})
  })

  it.each([
    [401, 'AUTH_REQUIRED'],
    [403, 'AUTH_REQUIRED'],
    [404, 'NOT_FOUND'],
    [500, 'SERVER_ERROR'],
    [418, 'HTTP_ERROR'],
  ])('maps HTTP %i to %s', async (status, reason) => {
    const host = await serve((_req, res) => res.writeHead(status).end('no'))
    await expect(client(host).manifest('golden/x', DIGEST)).rejects.toMatchObject({code: `REGISTRY_${reason}`, reason})
  })

  it('follows a redirect, refuses a loop and a chain that does not end', async () => {
    let hops = 0
    const host = await serve((req, res) => {
      if (req.url!.startsWith('/v2/ok/')) return void res.writeHead(307, {location: `/real${req.url}`}).end()
      if (req.url!.startsWith('/real/')) return void res.writeHead(200).end(MANIFEST)
      if (req.url!.startsWith('/v2/loop/')) return void res.writeHead(302, {location: req.url}).end()
      hops++
      res.writeHead(302, {location: `/v2/chain/manifests/${DIGEST}?hop=${hops}`}).end()
    })
    await expect(client(host).manifest('ok', DIGEST)).resolves.toMatchObject({digest: DIGEST})
    await expect(client(host).manifest('loop', DIGEST)).rejects.toMatchObject({reason: 'REDIRECT_LOOP'})
    await expect(client(host).manifest('chain', DIGEST)).rejects.toMatchObject({reason: 'REDIRECT_LOOP'})
  })

  it('sends the bearer token to the registry only, never to another host it redirects to', async () => {
    const seen: Array<string | undefined> = []
    const other = await serve((req, res) => {
      seen.push(req.headers.authorization)
      res.writeHead(200).end(MANIFEST)
    })
    const host = await serve((req, res) => {
      seen.push(req.headers.authorization)
      res.writeHead(307, {location: `http://${other.replace('127.0.0.1', 'localhost')}/blob`}).end()
    })
    await client(host, {token: 's3cret'}).manifest('golden/x', DIGEST)
    expect(seen).toEqual(['Bearer s3cret', undefined])
  })

  it('gives up on a registry that hangs (TIMEOUT) and on an oversized answer (TOO_LARGE)', async () => {
    const host = await serve((req, res) => {
      if (req.url!.includes('/big/')) return void res.writeHead(200).end(Buffer.alloc(200 * 1024, 32))
      // never answers
    })
    await expect(client(host, {limits: {registryRequestMs: 300}}).manifest('slow', DIGEST)).rejects.toMatchObject({reason: 'TIMEOUT'})
    await expect(client(host).manifest('big', DIGEST)).rejects.toMatchObject({reason: 'TOO_LARGE'})
  })

  it('refuses plain HTTP to anything but loopback', () => {
    expect(() => new RegistryClient('registry.example.com', {plainHttp: true, limits: LIMITS})).toThrow(expect.objectContaining({code: 'USAGE'}))
  })

  it('uses the OCI 1.1 referrers API where the registry has it', async () => {
    const bundle = Buffer.from('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}')
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        config: {mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2},
        layers: [{mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: sha(bundle), size: bundle.length}],
        subject: {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: DIGEST, size: MANIFEST.length},
      }),
    )
    const host = await serve((req, res) => {
      if (req.url === `/v2/golden/x/referrers/${DIGEST}`) {
        return void res.writeHead(200, {'content-type': 'application/vnd.oci.image.index.v1+json'}).end(JSON.stringify({schemaVersion: 2, manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(referrer), size: referrer.length, artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json'}]}))
      }
      if (req.url === `/v2/golden/x/manifests/${sha(referrer)}`) return void res.writeHead(200).end(referrer)
      if (req.url === `/v2/golden/x/blobs/${sha(bundle)}`) return void res.writeHead(200).end(bundle)
      res.writeHead(404).end()
    })
    const found = await all(client(host).signatures({registry: host, repository: 'golden/x', digest: DIGEST}))
    expect(found).toEqual([{layout: 'referrer', via: 'referrers-api', manifest: sha(referrer), bundleText: bundle.toString()}])
  })

  it('speaks HTTPS to a registry whose certificate chains to --ca, and refuses one that does not', async () => {
    const t = await tempDir()
    try {
      const [key, cert] = [join(t.dir, 'k.pem'), join(t.dir, 'c.pem')]
      await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert])
      const server = createHttpsServer({key: await readFile(key), cert: await readFile(cert)}, (_req, res) => res.writeHead(200).end(MANIFEST))
      servers.push(server as unknown as Server)
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const host = `127.0.0.1:${(server.address() as {port: number}).port}`
      const tls = (ca?: string) => new RegistryClient(host, {limits: LIMITS, ...(ca ? {ca} : {})})
      await expect(tls(await readFile(cert, 'utf8')).manifest('golden/x', DIGEST)).resolves.toMatchObject({digest: DIGEST})
      await expect(tls().manifest('golden/x', DIGEST)).rejects.toMatchObject({code: 'REGISTRY_UNREACHABLE', reason: 'UNREACHABLE', message: expect.stringMatching(/certificate/i)})
    } finally {
      await t.cleanup()
    }
  })

  describe('within the command limits (control-plane/limits.ts)', () => {
    const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json'
    const ref = (host: string) => ({registry: host, repository: 'golden/x', digest: DIGEST})
    /** A registry with the referrers API serving `referrers` (each a list of blobs as its layers); every path asked for is logged. */
    async function referrersRegistry(referrers: Buffer[][], opts: {extraIndexEntries?: number} = {}) {
      const log: string[] = []
      const blobs = new Map<string, Buffer>()
      const manifests = new Map<string, Buffer>()
      const entries = referrers.map((layers) => {
        for (const b of layers) blobs.set(sha(b), b)
        const m = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: BUNDLE, config: {mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2}, layers: layers.map((b) => ({mediaType: BUNDLE, digest: sha(b), size: b.length})), subject: {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: DIGEST, size: MANIFEST.length}}))
        manifests.set(sha(m), m)
        return {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(m), size: m.length, artifactType: BUNDLE}
      })
      const other = Array.from({length: opts.extraIndexEntries ?? 0}, (_, i) => ({mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(`sbom ${i}`), size: 1, artifactType: 'application/spdx+json'}))
      const host = await serve((req, res) => {
        log.push(req.url!)
        if (req.url === `/v2/golden/x/referrers/${DIGEST}`) return void res.writeHead(200).end(JSON.stringify({schemaVersion: 2, manifests: [...entries, ...other]}))
        const [, kind, digest] = /^\/v2\/golden\/x\/(manifests|blobs)\/(.+)$/.exec(req.url!) ?? []
        const body = (kind === 'manifests' ? manifests : blobs).get(digest ?? '')
        if (body) return void res.writeHead(200).end(body)
        res.writeHead(404).end()
      })
      return {host, log, digests: entries.map((e) => e.digest)}
    }

    it('fetches one signature at a time: nothing past the one the caller stops at', async () => {
      const {host, log, digests} = await referrersRegistry([[Buffer.from('{"a":1}')], [Buffer.from('{"b":2}')], [Buffer.from('{"c":3}')]])
      for await (const found of client(host).signatures(ref(host))) {
        expect(found).toMatchObject({manifest: digests[0], bundleText: '{"a":1}'})
        break
      }
      expect(log).toEqual([`/v2/golden/x/referrers/${DIGEST}`, `/v2/golden/x/manifests/${digests[0]}`, `/v2/golden/x/blobs/${sha('{"a":1}')}`])
    })

    it('refuses more signature referrers than maxRegistryReferrers before fetching any (other artifacts do not count)', async () => {
      const {host, log} = await referrersRegistry(Array.from({length: 5}, (_, i) => [Buffer.from(`{"i":${i}}`)]), {extraIndexEntries: 20})
      await expect(all(client(host, {limits: {maxRegistryReferrers: 5}}).signatures(ref(host)))).resolves.toHaveLength(5)
      log.length = 0
      const err = await all(client(host, {limits: {maxRegistryReferrers: 4}}).signatures(ref(host))).catch((e) => e)
      expect(err).toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryReferrers', value: 4, flag: '--max-referrers'}, message: expect.stringMatching(/lists 5 signature referrers: over the maxRegistryReferrers cap of 4 \(--max-referrers raises it\)/)})
      expect(log).toEqual([`/v2/golden/x/referrers/${DIGEST}`])
    })

    it('refuses an index or manifest listing more descriptors than maxRegistryDescriptors, and a referrer with more signature layers than maxRegistryLayers, before fetching them', async () => {
      const index = await referrersRegistry([], {extraIndexEntries: 11})
      await expect(all(client(index.host, {limits: {maxRegistryDescriptors: 10}}).signatures(ref(index.host)))).rejects.toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryDescriptors', value: 10, flag: '--max-descriptors'}})
      const blob = Buffer.from('{"same":"bundle"}')
      const many = await referrersRegistry([Array.from({length: 11}, () => blob)])
      await expect(all(client(many.host, {limits: {maxRegistryDescriptors: 10}}).signatures(ref(many.host)))).rejects.toMatchObject({details: {limit: 'maxRegistryDescriptors'}})
      await expect(all(client(many.host, {limits: {maxRegistryLayers: 10}}).signatures(ref(many.host)))).rejects.toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryLayers', value: 10, flag: '--max-layers'}})
      expect(many.log.filter((p) => p.includes('/blobs/'))).toEqual([])
      // Within the caps, a bundle listed again is tried once.
      await expect(all(client(many.host, {limits: {maxRegistryLayers: 11}}).signatures(ref(many.host)))).resolves.toHaveLength(1)
      expect(many.log.filter((p) => p.includes('/blobs/'))).toEqual([`/v2/golden/x/blobs/${sha(blob)}`])
    })

    it('caps each blob (maxRegistryBlobBytes) and each manifest (maxRegistryManifestBytes) on their own, and all the command reads together (maxRegistryBytes)', async () => {
      const blobs = Array.from({length: 4}, (_, i) => Buffer.from(JSON.stringify({i, pad: 'x'.repeat(3000)})))
      const {host} = await referrersRegistry(blobs.map((b) => [b]))
      await expect(all(client(host, {limits: {maxRegistryBlobBytes: 2000}}).signatures(ref(host)))).rejects.toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryBlobBytes', value: 2000, flag: '--max-blob-bytes'}})
      await expect(all(client(host, {limits: {maxRegistryManifestBytes: 200}}).signatures(ref(host)))).rejects.toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryManifestBytes', value: 200, flag: '--max-manifest-bytes'}})
      const budget = client(host, {limits: {maxRegistryBytes: 10_000}})
      const got: FoundSignature[] = []
      const err = await (async () => {
        for await (const f of budget.signatures(ref(host))) got.push(f)
      })().catch((e) => e)
      expect(err).toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryBytes', value: 10_000, flag: '--max-total-bytes'}})
      expect(got.length).toBeGreaterThan(0)
      expect(got.length).toBeLessThan(4)
    })

    it('stops reading a blob that streams past its cap without announcing its length, holding no more than the cap', async () => {
      let sent = 0
      const host = await serve((_req, res) => {
        res.writeHead(200) // chunked: no content-length
        const chunk = Buffer.alloc(64 * 1024, 32)
        const more = () => {
          while (sent < 1024 * 1024 * 1024 && res.write(chunk)) sent += chunk.length
          if (!res.destroyed) res.once('drain', more)
        }
        more()
      })
      await expect(client(host, {limits: {maxRegistryBlobBytes: 256 * 1024}}).blob('golden/x', DIGEST)).rejects.toMatchObject({code: 'REGISTRY_TOO_LARGE', details: {limit: 'maxRegistryBlobBytes'}})
      expect(sent).toBeLessThan(1024 * 1024 * 1024)
    })

    it('ends all registry work at the command deadline (registryDeadlineMs), however long each request may take', async () => {
      const host = await serve(() => {
        // never answers
      })
      const err = await client(host, {limits: {registryRequestMs: 600_000, registryDeadlineMs: 200}}).manifest('golden/x', DIGEST).catch((e) => e)
      expect(err).toMatchObject({code: 'REGISTRY_TIMEOUT', details: {limit: 'registryDeadlineMs', value: 200, flag: '--deadline'}})
      // Past the deadline, nothing more is asked.
      const late = client(host, {limits: {registryDeadlineMs: 1}})
      await new Promise((r) => setTimeout(r, 20))
      await expect(late.manifest('golden/x', DIGEST)).rejects.toMatchObject({code: 'REGISTRY_TIMEOUT', details: {limit: 'registryDeadlineMs'}})
    })
  })

  describe('the token flow (WWW-Authenticate: Bearer realm, service, scope)', () => {
    /** A registry that wants `Bearer good` and a token service on `realm` that checks the password. */
    async function tokenRegistry(opts: {realm?: (auth: string) => string; token?: string; password?: string; hang?: boolean; challenge?: string | null} = {}) {
      const seen = {tokenRequests: 0, authHeaders: [] as string[]}
      const auth = await serve((req, res) => {
        seen.tokenRequests++
        seen.authHeaders.push(String(req.headers.authorization ?? ''))
        if (opts.hang) return
        const want = `Basic ${Buffer.from(`rita:${opts.password ?? 'secret'}`).toString('base64')}`
        if (req.headers.authorization !== want) return void res.writeHead(401).end('no')
        const u = new URL(req.url!, 'http://x')
        expect(u.searchParams.get('service')).toBe('registry.test')
        expect(u.searchParams.get('scope')).toBe('repository:golden/x:pull')
        res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({token: opts.token ?? 'good'}))
      })
      const realm = opts.realm ? opts.realm(auth) : `http://${auth}/token`
      const host = await serve((req, res) => {
        if (req.headers.authorization !== 'Bearer good') {
          const challenge = opts.challenge === undefined ? `Bearer realm="${realm}",service="registry.test",scope="repository:golden/x:pull"` : opts.challenge
          return void res.writeHead(401, challenge === null ? {} : {'www-authenticate': challenge}).end()
        }
        res.writeHead(200, {'content-type': 'application/vnd.oci.image.manifest.v1+json'}).end(MANIFEST)
      })
      return {host, seen}
    }
    const rita = (password = 'secret') => async () => ({username: 'rita', password, source: 'AIRLOCK_REGISTRY_USER'})

    it('fetches a token with the credentials, asks again with it, and keeps it for the command', async () => {
      const {host, seen} = await tokenRegistry()
      const c = client(host, {credentials: rita()})
      await expect(c.manifest('golden/x', DIGEST)).resolves.toMatchObject({digest: DIGEST})
      await expect(c.manifest('golden/x', DIGEST)).resolves.toMatchObject({digest: DIGEST})
      expect(seen.tokenRequests).toBe(1)
    })

    it('refuses a wrong password clearly, naming where it came from', async () => {
      const {host} = await tokenRegistry()
      await expect(client(host, {credentials: rita('wrong')}).manifest('golden/x', DIGEST)).rejects.toMatchObject({code: 'REGISTRY_AUTH_REQUIRED', message: expect.stringMatching(/refused the credentials from AIRLOCK_REGISTRY_USER/)})
    })

    it('a 401 without a challenge, a realm on plain HTTP elsewhere, a token service that hangs, a token the registry refuses', async () => {
      const none = await tokenRegistry({challenge: null})
      await expect(client(none.host, {credentials: rita()}).manifest('golden/x', DIGEST)).rejects.toMatchObject({code: 'REGISTRY_AUTH_REQUIRED', message: expect.stringMatching(/without a WWW-Authenticate challenge/)})
      const elsewhere = await tokenRegistry({realm: () => 'http://auth.example.com/token'})
      await expect(client(elsewhere.host, {credentials: rita()}).manifest('golden/x', DIGEST)).rejects.toMatchObject({code: 'REGISTRY_AUTH_REQUIRED', message: expect.stringMatching(/token service on plain HTTP \(http:\/\/auth\.example\.com\); refused/)})
      expect(elsewhere.seen.tokenRequests).toBe(0)
      const hang = await tokenRegistry({hang: true})
      await expect(client(hang.host, {credentials: rita(), limits: {registryRequestMs: 300}}).manifest('golden/x', DIGEST)).rejects.toThrowAirlockError('REGISTRY_TIMEOUT')
      const bad = await tokenRegistry({token: 'not-good'})
      await expect(client(bad.host, {credentials: rita()}).manifest('golden/x', DIGEST)).rejects.toMatchObject({code: 'REGISTRY_AUTH_REQUIRED', message: expect.stringMatching(/to the token its token service gave/)})
    })

    it('asks anonymously without credentials', async () => {
      const {host, seen} = await tokenRegistry()
      await expect(client(host).manifest('golden/x', DIGEST)).rejects.toMatchObject({message: expect.stringMatching(/refused an anonymous request/)})
      expect(seen.authHeaders).toEqual([''])
    })
  })
})
