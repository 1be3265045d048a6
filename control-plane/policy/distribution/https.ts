/**
 * Signed policy bundles from a static HTTPS location (an S3, GCS or Azure bucket, a CDN, any web
 * server): a conditional GET of the bundle file with If-None-Match. The bucket is only transport:
 * its 304 is believed only about the verified cached bundle whose ETag this host sent
 * (pullBundle), so a bucket that answers 304 to everything can keep a host on what it already
 * holds, never make it accept anything; with no cache such an answer is a failure. No redirect is
 * followed (a 3xx is a failure), and the body is read within the bundle size limit.
 */
import {AirlockError} from '../../errors.js'
import {FetchFailure, httpGet} from '../../net/http.js'
import type {PullSource} from '../pull.js'
import {isLoopback} from '../server.js'

/** A bundle source's URL (a bucket's bundle file, a policy server): https://, or http:// to a loopback address only (plain HTTP would carry credentials in clear); no credentials in the URL. */
export function parseSourceUrl(text: string, field: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new AirlockError('USAGE', `${field}: "${text}" is not a URL`, {field})
  }
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(host))) throw new AirlockError('USAGE', `${field}: https:// (or http:// to a loopback address), not ${url.protocol}//${url.host}`, {field})
  if (url.username || url.password) throw new AirlockError('USAGE', `${field}: credentials in the URL are refused (they would end up in logs)`, {field})
  return url
}

export function httpsSource(url: URL, opts: {ca?: string; timeoutMs: number; maxBytes: number}): PullSource {
  // A presigned URL's query is a credential: it is never named (cache, messages, audit log).
  const named = `${url.origin}${url.pathname}`
  return {
    id: named,
    origin: named,
    async fetch(etag) {
      const r = await httpGet(url, {ca: opts.ca, etag, timeoutMs: opts.timeoutMs, maxBytes: opts.maxBytes}).catch((error: unknown) => {
        if (error instanceof FetchFailure && url.search) throw new FetchFailure(error.code, error.message.replaceAll(url.href, `${named}?…`))
        throw error
      })
      return r.status === 304 ? {status: 'unchanged'} : {status: 'fetched', body: r.body, etag: r.etag}
    },
  }
}
