/** HTTP(S) GET for bundles and JWKS: custom CA, one deadline, a size cap, no redirects. */
import {request as httpRequest} from 'node:http'
import {request} from 'node:https'

export class FetchFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export type Fetched = {status: 304} | {status: 200; body: string; etag: string | null}

/** One GET with a deadline for the whole exchange and a cap on the body; redirects are not followed. */
export function httpGet(url: URL, opts: {ca?: string; apiKey?: string; etag?: string | null; timeoutMs: number; maxBytes: number}): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {accept: 'application/json'}
    if (opts.etag) headers['if-none-match'] = opts.etag
    if (opts.apiKey) headers['x-api-key'] = opts.apiKey
    const send = url.protocol === 'https:' ? request : httpRequest
    const req = send(url, {method: 'GET', headers, ...(opts.ca ? {ca: opts.ca} : {})}, (res) => {
      const status = res.statusCode ?? 0
      if (status === 304) {
        res.resume()
        return resolve({status: 304})
      }
      if (status !== 200) {
        res.resume()
        return reject(new FetchFailure(status >= 500 ? 'SERVER_ERROR' : 'HTTP_ERROR', `${url.href} answered HTTP ${status}`))
      }
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > opts.maxBytes) req.destroy(new FetchFailure('TOO_LARGE', `${url.href}: response larger than ${opts.maxBytes} bytes`))
        else chunks.push(chunk)
      })
      res.on('end', () => resolve({status: 200, body: Buffer.concat(chunks).toString('utf8'), etag: (res.headers.etag as string | undefined) ?? null}))
      res.on('error', reject)
    })
    const timer = setTimeout(() => req.destroy(new FetchFailure('TIMEOUT', `${url.href}: no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs)
    req.on('close', () => clearTimeout(timer))
    req.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(error instanceof FetchFailure ? error : new FetchFailure(error.code ?? 'UNREACHABLE', `${url.href}: ${error.message}`))
    })
    req.end()
  })
}

