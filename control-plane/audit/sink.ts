/**
 * The SIEM sink: one HTTP(S) POST of a batch, and the retry loop around it. A batch is delivered
 * when the sink answers 2xx, and only then; every other ending is either worth another try (a
 * transport failure, a timeout, 408, 429, 5xx) or a refusal that retrying will not change (any
 * other 4xx, a redirect), which stops the stream with AUDIT_SINK_FAILED. Nothing here decides to
 * drop a batch: a caller that stops keeps its cursor where it was, so the batch is sent again.
 */
import {request as httpRequest} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {AirlockError} from '../errors.js'

/** Limits of the streamer in one place (STYLE: tuf-js config.ts), overridable by flags. */
export interface SinkLimits {
  /** Deadline of one POST, from the request to the end of the answer. */
  requestTimeoutMs: number
  /** First backoff delay; each failed try doubles it, up to `backoffMaxMs`. */
  backoffBaseMs: number
  backoffMaxMs: number
  /** Tries of one batch before AUDIT_SINK_FAILED (Infinity: a follower waits out any outage). */
  maxAttempts: number
  /** The longest Retry-After honoured as it is; a longer one is waited for this long, then tried again. */
  maxRetryAfterMs: number
  /** Bytes of a sink's answer read (the answer is only looked at for its status). */
  maxResponseBytes: number
}

export const DEFAULT_SINK_LIMITS: Readonly<SinkLimits> = Object.freeze({
  requestTimeoutMs: 30_000,
  backoffBaseMs: 500,
  backoffMaxMs: 60_000,
  maxAttempts: 10,
  maxRetryAfterMs: 10 * 60_000,
  maxResponseBytes: 64 * 1024,
})

export interface Sink {
  url: URL
  /** Extra headers (--header), e.g. an Authorization the SIEM wants. */
  headers: Record<string, string>
  /** PEM CA certificates an https sink must chain to. */
  ca?: string
}

/** The clock and the wait, passed in so tests never wait for real. */
export interface Clock {
  now(): number
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
  /** A number in [0, 1) for the jitter. */
  random(): number
}

/** How one POST ended. */
export type Attempt =
  | {kind: 'delivered'; status: number}
  /** Worth another try; `retryAfterMs` when the sink said how long to wait (429/503 Retry-After). */
  | {kind: 'retry'; reason: string; status?: number; retryAfterMs?: number}
  | {kind: 'refused'; reason: string; status: number}

/** One POST of `body`. Never throws: every ending is an Attempt. */
export function postBatch(sink: Sink, body: Buffer, headers: Record<string, string>, limits: Pick<SinkLimits, 'requestTimeoutMs' | 'maxResponseBytes'>, now: number): Promise<Attempt> {
  return new Promise((resolve) => {
    let settled = false
    const settle = (attempt: Attempt) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(attempt)
      req.destroy()
    }
    const send = sink.url.protocol === 'https:' ? httpsRequest : httpRequest
    const allHeaders = {...sink.headers, ...headers, 'content-length': String(body.length)}
    const req = send(sink.url, {method: 'POST', headers: allHeaders, agent: false, ...(sink.ca ? {ca: sink.ca} : {})}, (res) => {
      let read = 0
      const status = () => classify(res.statusCode ?? 0, res.headers['retry-after'], now)
      // The answer is read to its end (a 2xx counts only once the sink finished it), never kept;
      // past maxResponseBytes the status alone decides (the body says nothing airlock reads).
      res.on('data', (chunk: Buffer) => {
        read += chunk.length
        if (read > limits.maxResponseBytes) settle(status())
      })
      res.on('error', (error) => settle({kind: 'retry', reason: `the answer broke off (${error.message})`}))
      res.on('end', () => settle(status()))
      // Closed before its end: the connection dropped mid-answer.
      res.on('close', () => settle({kind: 'retry', reason: 'the answer broke off'}))
    })
    const timer = setTimeout(() => settle({kind: 'retry', reason: `no answer within ${limits.requestTimeoutMs} ms`}), limits.requestTimeoutMs)
    req.on('error', (error: NodeJS.ErrnoException) => settle({kind: 'retry', reason: `${error.code ?? 'transport error'}: ${error.message}`}))
    req.end(body)
  })
}

/** What a status means for the batch (the table at the top of this file). */
export function classify(status: number, retryAfter: string | string[] | undefined, now: number): Attempt {
  if (status >= 200 && status < 300) return {kind: 'delivered', status}
  if (status === 408 || status === 429 || status >= 500) {
    const wait = status === 429 || status === 503 ? parseRetryAfter(retryAfter, now) : undefined
    return {kind: 'retry', reason: `HTTP ${status}`, status, ...(wait === undefined ? {} : {retryAfterMs: wait})}
  }
  return {kind: 'refused', reason: `HTTP ${status}`, status}
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim()
  if (!text) return undefined
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  if (Number.isNaN(at) || !/[A-Za-z]{3}.*GMT$/.test(text)) return undefined
  return Math.max(0, at - now)
}

/** Exponential backoff with jitter: half the delay fixed, half random, so many streamers do not retry in step. */
export function backoffMs(attempt: number, limits: Pick<SinkLimits, 'backoffBaseMs' | 'backoffMaxMs'>, random: number): number {
  const ceiling = Math.min(limits.backoffMaxMs, limits.backoffBaseMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + (ceiling / 2) * random)
}

/** What the retry loop did, for the report. */
export interface DeliveryReport {
  attempts: number
  /** Waits the sink asked for (429/503 Retry-After), in ms. */
  backPressure: number[]
  /** The reasons of the failed tries, in order. */
  failures: string[]
}

export type Delivered = {delivered: true; report: DeliveryReport} | {delivered: false; report: DeliveryReport}

/**
 * Sends one batch until the sink takes it. A refusal (4xx but 408/429) throws AUDIT_SINK_FAILED;
 * running out of tries throws AUDIT_SINK_FAILED; `stop` aborting ends the waiting between tries
 * and returns `delivered: false` (the caller keeps its cursor: the batch is sent again later).
 */
export async function deliver(sink: Sink, body: Buffer, headers: Record<string, string>, limits: SinkLimits, clock: Clock, stop?: AbortSignal): Promise<Delivered> {
  const report: DeliveryReport = {attempts: 0, backPressure: [], failures: []}
  for (;;) {
    report.attempts++
    const attempt = await postBatch(sink, body, headers, limits, clock.now())
    if (attempt.kind === 'delivered') return {delivered: true, report}
    if (attempt.kind === 'refused') {
      throw new AirlockError('AUDIT_SINK_FAILED', `${redactUrl(sink.url)} refused the batch (${attempt.reason}); the cursor stays where it was`, {status: attempt.status, attempts: report.attempts})
    }
    report.failures.push(attempt.reason)
    if (report.attempts >= limits.maxAttempts) {
      throw new AirlockError('AUDIT_SINK_FAILED', `${redactUrl(sink.url)} did not take the batch after ${report.attempts} tries (last: ${attempt.reason}); the cursor stays where it was`, {attempts: report.attempts, failures: report.failures})
    }
    if (stop?.aborted) return {delivered: false, report}
    let wait = backoffMs(report.attempts - 1, limits, clock.random())
    if (attempt.retryAfterMs !== undefined) {
      wait = Math.min(attempt.retryAfterMs, limits.maxRetryAfterMs)
      report.backPressure.push(wait)
    }
    await clock.sleep(wait, stop)
    if (stop?.aborted) return {delivered: false, report}
  }
}

/** A URL for messages: no user name, password or query (they may hold the SIEM's token). */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve()
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, {once: true})
    }),
  random: () => Math.random(),
}

/** `Name: value` (--header) → [name, value]; a malformed one is USAGE. */
export function parseHeader(text: string): [string, string] {
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(text)
  // The value is never echoed: it is often a token.
  if (!m || /[\r\n\0]/.test(m[2]!)) throw new AirlockError('USAGE', '--header: expected "Name: value" (a token name, a colon, a value without line breaks)', {field: '--header'})
  return [m[1]!.toLowerCase(), m[2]!]
}
