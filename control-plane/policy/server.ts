/**
 * `airlock policy serve`: bundles over HTTPS. GET /v1/bundles/<scope> answers the published
 * bundle with a strong ETag (the SHA-256 of its bytes) and 304 for a matching If-None-Match;
 * /healthz says the process is up, /readyz that bundles can be served. An API key, when
 * configured, is compared in constant time.
 */
import {createHash, timingSafeEqual} from 'node:crypto'
import {statSync, type Stats} from 'node:fs'
import {readdir, readFile} from 'node:fs/promises'
import {createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {isIP} from 'node:net'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import type {Repository} from '../repo/repository.js'
import {bundlePath, parseScope} from './bundle.js'

/** Where the served bundles come from: a folder the operator names, or bundles/ at a verified HEAD. */
export interface BundleSource {
  /** The bytes of the bundle at `path` (bundles/…), null when there is none. */
  read(path: string): Promise<Buffer | null>
  /** Null when bundles can be served, else why not. */
  unready(): Promise<string | null>
}

export interface ServeOptions {
  /** A folder of bundles (`--bundles DIR`), re-read when a file changes. */
  bundlesDir?: string
  /** Otherwise: a source such as `headSource`. */
  source?: BundleSource
  host: string
  port: number
  tls?: {cert: string; key: string}
  /** Plain HTTP, allowed only on a loopback address. */
  insecureHttp?: boolean
  apiKey?: string
  /** Told of every API key presented or missing (the audit log's Authentication events): answered only once recorded; a failure is a 503. */
  onAuthentication?: (a: {accepted: boolean; remote: string | null; scope: string}) => Promise<void>
}

/**
 * A folder of bundles, each file re-read when it changes: its size, times and inode are looked at
 * again on every turn of the event loop that serves it (one synchronous stat shared by the
 * requests of that turn, no trip through the thread pool), and its bytes read again when they
 * differ, so a bundle replaced in place or renamed over is served from the next turn on.
 */
export function dirSource(dir: string): BundleSource {
  const cache = new Map<string, {mtimeMs: number; ctimeMs: number; ino: number; size: number; body: Buffer}>()
  // Files stat'ed in this turn of the event loop, with what the stat found (null: none there).
  let thisTurn: Map<string, Stats | null> | null = null
  const statOf = (file: string): Stats | null => {
    if (!thisTurn) {
      thisTurn = new Map()
      setImmediate(() => (thisTurn = null))
    }
    let s = thisTurn.get(file)
    if (s === undefined) {
      try {
        s = statSync(file, {throwIfNoEntry: false}) ?? null
      } catch {
        s = null
      }
      thisTurn.set(file, s)
    }
    return s
  }
  return {
    async read(path) {
      const file = join(dir, path.slice('bundles/'.length))
      const s = statOf(file)
      if (!s?.isFile()) return null
      const hit = cache.get(file)
      if (hit && hit.mtimeMs === s.mtimeMs && hit.ctimeMs === s.ctimeMs && hit.ino === s.ino && hit.size === s.size) return hit.body
      const body = await readFile(file).catch(() => null)
      if (!body) return null
      if (cache.size > 10_000) cache.clear()
      cache.set(file, {mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino, size: s.size, body})
      return body
    },
    unready: () => readdir(dir).then(() => null, () => 'bundles folder unreadable'),
  }
}

/**
 * bundles/ at the newest HEAD whose history verifies back to the pinned anchor: checked again
 * whenever HEAD moves, and served only when it descends from what is served now. While a new
 * HEAD does not verify, or goes back (a force-push to an older signed commit, with older
 * bundles), the last verified one is served: a writer without keys can stop new bundles
 * reaching hosts, never put others in their place.
 *
 * Requests that arrive while HEAD is being read share that read (one at a time, each begun
 * after the one before ended), and a bundle is read once per served commit: commits never
 * change, so its bytes are kept until another commit is served.
 */
export function headSource(repo: Repository, verify: (commit: string) => Promise<boolean>): BundleSource {
  let served: string | null = null
  let checked: string | null = null
  let checking: Promise<string | null> | null = null
  let files = new Map<string, Promise<Buffer | null>>()
  let filesOf: string | null = null
  const check = async (): Promise<string | null> => {
    const head = await repo.head().catch(() => null)
    if (head?.oid && head.oid !== checked) {
      checked = head.oid
      const forward = served === null || (await repo.isAncestor(served, head.oid).catch(() => false))
      if (forward && (await verify(head.oid).catch(() => false))) served = head.oid
    }
    return served
  }
  const current = (): Promise<string | null> => {
    checking ??= check().finally(() => {
      checking = null
    })
    return checking
  }
  return {
    async read(path) {
      const commit = await current()
      if (!commit) return null
      const key = `${commit}\0${path}`
      let found = files.get(key)
      if (!found) {
        if (files.size > 10_000 || filesOf !== commit) files = new Map()
        filesOf = commit
        const reading = repo.readFile(commit, path).then((f) => (f ? Buffer.from(f.text) : null))
        found = reading.catch(() => null)
        files.set(key, found)
        // A read that failed (not an absent file) is tried again by the next request.
        reading.catch(() => files.get(key) === found && files.delete(key))
      }
      return found
    },
    unready: async () => ((await current()) ? null : 'HEAD does not verify back to the pinned trust anchor'),
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1'
}

/** Whether the server may listen as asked: TLS, or plain HTTP on a loopback address only. */
export function checkListen(opts: Pick<ServeOptions, 'tls' | 'insecureHttp' | 'host'>): void {
  if (!opts.tls && !opts.insecureHttp) throw new AirlockError('USAGE', 'give --tls-cert and --tls-key (or --insecure-http on a loopback address)', {field: '--tls-cert'})
  if (!opts.tls && !isLoopback(opts.host)) throw new AirlockError('USAGE', `--insecure-http is allowed only on a loopback address, not ${opts.host}`, {field: '--insecure-http'})
}

/** What is sent for one bundle's bytes, worked out once for them: the ETag and the 200 and 304 headers. */
interface Served {
  body: Buffer
  etag: string
  ok: string[]
  notModified: string[]
}

const JSON_HEADERS = ['content-type', 'application/json', 'cache-control', 'no-cache']

export async function startBundleServer(opts: ServeOptions): Promise<{server: Server; url: string; close: () => Promise<void>}> {
  checkListen(opts)
  const source = opts.source ?? (opts.bundlesDir !== undefined ? dirSource(opts.bundlesDir) : null)
  if (!source) throw new AirlockError('INTERNAL', 'a bundle server needs a folder or a source')
  // Sources hand out the same Buffer while a bundle is unchanged, so its ETag (the SHA-256 of
  // its bytes) and headers are computed once per version of the bundle, not per request.
  const served = new WeakMap<Buffer, Served>()
  const load = async (path: string): Promise<Served | null> => {
    const body = await source.read(path)
    if (!body) return null
    let entry = served.get(body)
    if (!entry) {
      const etag = `"sha256-${createHash('sha256').update(body).digest('hex')}"`
      entry = {
        body,
        etag,
        ok: ['content-type', 'application/json', 'etag', etag, 'cache-control', 'no-cache', 'content-length', String(body.length)],
        notModified: ['etag', etag, 'cache-control', 'no-cache'],
      }
      served.set(body, entry)
    }
    return entry
  }
  // Scopes as they appear in URLs, parsed once each (bounded: anyone can send new ones).
  const paths = new Map<string, string | null>()
  const pathOf = (raw: string): string | null => {
    let path = paths.get(raw)
    if (path === undefined) {
      try {
        path = bundlePath(parseScope(decodeURIComponent(raw)))
      } catch {
        path = null
      }
      if (paths.size > 1000) paths.clear()
      paths.set(raw, path)
    }
    return path
  }
  const key = opts.apiKey ? Buffer.from(opts.apiKey) : null
  const authorized = (req: IncomingMessage) => {
    if (!key) return true
    const given = Buffer.from(String(req.headers['x-api-key'] ?? ''))
    return given.length === key.length && timingSafeEqual(given, key)
  }
  const send = (res: ServerResponse, status: number, body: string, headers: string[] = []) => {
    res.writeHead(status, headers.length ? [...JSON_HEADERS, ...headers] : JSON_HEADERS)
    res.end(body)
  }

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    // The path as sent, without its query; no dot segments or other spellings are resolved, so
    // only the exact paths below are served.
    const raw = req.url ?? '/'
    const q = raw.indexOf('?')
    const pathname = q < 0 ? raw : raw.slice(0, q)
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, '{"error":"method not allowed"}', ['allow', 'GET, HEAD'])
    if (pathname === '/healthz') return send(res, 200, '{"status":"ok"}')
    if (pathname === '/readyz') {
      const why = await source.unready()
      return send(res, why === null ? 200 : 503, JSON.stringify(why === null ? {status: 'ready'} : {status: why}))
    }
    if (!pathname.startsWith('/v1/bundles/') || pathname.indexOf('/', 12) !== -1 || pathname.length === 12) return send(res, 404, '{"error":"not found"}')
    const scope = pathname.slice(12)
    const accepted = authorized(req)
    if (key && opts.onAuthentication) {
      try {
        await opts.onAuthentication({accepted, remote: req.socket.remoteAddress ?? null, scope})
      } catch {
        // Fail closed: an authentication that cannot be recorded is not answered.
        return send(res, 503, '{"error":"the audit log cannot be written"}')
      }
    }
    if (!accepted) return send(res, 401, '{"error":"missing or wrong API key"}')
    const path = pathOf(scope)
    if (path === null) return send(res, 400, '{"error":"not a scope"}')
    const entry = await load(path)
    if (!entry) return send(res, 404, '{"error":"no bundle for this scope"}')
    const match = req.headers['if-none-match']
    if (match !== undefined && (match === entry.etag || match.split(',').some((s) => {
      const t = s.trim()
      return t === entry.etag || t === '*'
    }))) {
      res.writeHead(304, entry.notModified)
      return res.end()
    }
    res.writeHead(200, entry.ok)
    res.end(req.method === 'HEAD' ? undefined : entry.body)
  }
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handler(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, '{"error":"internal error"}')
      else res.destroy()
    })
  }
  const server = opts.tls ? createHttpsServer({cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2'}, listener) : createHttpServer(listener)
  server.requestTimeout = 10_000
  server.headersTimeout = 5_000
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new AirlockError('USAGE', `cannot listen on ${opts.host}:${opts.port}: ${error.code ?? error.message}`, {field: '--port'})))
    server.listen(opts.port, opts.host, () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : opts.port
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host
  return {
    server,
    url: `${opts.tls ? 'https' : 'http'}://${host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
