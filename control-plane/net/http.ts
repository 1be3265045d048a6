/** HTTP(S) for bundles, JWKS and registries: custom CA, one deadline, a size cap, no redirects followed. */
import {request as httpRequestRaw, type IncomingHttpHeaders} from 'node:http'
import {request} from 'node:https'

export class FetchFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

export interface HttpOptions {
  method?: 'GET' | 'HEAD' | 'PUT' | 'POST'
  headers?: Record<string, string>
  /** The request body (a PUT or POST), sent with its content-length. */
  body?: Buffer
  ca?: string
  timeoutMs: number
  maxBytes: number
  /** A deadline beyond this request (a command's): when it fires, the request ends as FetchFailure DEADLINE. */
  signal?: AbortSignal
}

/**
 * One request with a deadline for the whole exchange and a cap on the body, counted while it
 * streams in (a body announced larger is refused before it is read; one that runs past the cap
 * is cut there): never more than `maxBytes` is held. Every status is returned as it is (a
 * redirect is for the caller to follow or refuse); only transport failures, the deadline, the
 * caller's signal and the size cap reject, as FetchFailure with a code.
 */
export function httpRequest(url: URL, opts: HttpOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    // Settled once: a failure rejects and then ends the exchange quietly (destroying a request
    // whose answer is already complete must not raise an error nobody listens to).
    let settled = false
    const fail = (error: FetchFailure) => {
      if (settled) return
      settled = true
      reject(error)
      req.destroy()
    }
    const deadline = () => new FetchFailure('DEADLINE', `${url.href}: the deadline passed`)
    if (opts.signal?.aborted) return reject(deadline())
    const tooLarge = () => new FetchFailure('TOO_LARGE', `${url.href}: response larger than ${opts.maxBytes} bytes`)
    const send = url.protocol === 'https:' ? request : httpRequestRaw
    const headers = opts.body ? {...opts.headers, 'content-length': String(opts.body.length)} : (opts.headers ?? {})
    const req = send(url, {method: opts.method ?? 'GET', headers, ...(opts.ca ? {ca: opts.ca} : {})}, (res) => {
      res.on('error', (error: NodeJS.ErrnoException) => fail(new FetchFailure(error.code ?? 'UNREACHABLE', `${url.href}: ${error.message}`)))
      // A HEAD's content-length announces the size of what a GET would answer, not a body.
      const announced = opts.method === 'HEAD' ? Number.NaN : Number(res.headers['content-length'])
      if (Number.isSafeInteger(announced) && announced > opts.maxBytes) return fail(tooLarge())
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > opts.maxBytes) fail(tooLarge())
        else if (!settled) chunks.push(chunk)
      })
      res.on('end', () => {
        if (settled) return
        settled = true
        resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks)})
      })
    })
    const timer = setTimeout(() => fail(new FetchFailure('TIMEOUT', `${url.href}: no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs)
    const abort = () => fail(deadline())
    opts.signal?.addEventListener('abort', abort, {once: true})
    req.on('close', () => {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', abort)
    })
    req.on('error', (error: NodeJS.ErrnoException) => fail(new FetchFailure(error.code ?? 'UNREACHABLE', `${url.href}: ${error.message}`)))
    req.end(opts.body)
  })
}

export type Fetched = {status: 304} | {status: 200; body: string; etag: string | null}

/** A conditional GET of JSON: 200 or 304, anything else a FetchFailure. */
export async function httpGet(url: URL, opts: {ca?: string; apiKey?: string; etag?: string | null; timeoutMs: number; maxBytes: number}): Promise<Fetched> {
  const headers: Record<string, string> = {accept: 'application/json'}
  if (opts.etag) headers['if-none-match'] = opts.etag
  if (opts.apiKey) headers['x-api-key'] = opts.apiKey
  const res = await httpRequest(url, {headers, ca: opts.ca, timeoutMs: opts.timeoutMs, maxBytes: opts.maxBytes})
  if (res.status === 304) return {status: 304}
  if (res.status !== 200) throw new FetchFailure(res.status >= 500 ? 'SERVER_ERROR' : 'HTTP_ERROR', `${url.href} answered HTTP ${res.status}`)
  return {status: 200, body: res.body.toString('utf8'), etag: (res.headers.etag as string | undefined) ?? null}
}
