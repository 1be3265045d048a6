import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {afterEach, describe, expect, it} from 'vitest'
import {AirlockError} from '../../../control-plane/errors.js'
import {backoffMs, classify, deliver, parseHeader, parseRetryAfter, type Clock, type SinkLimits} from '../../../control-plane/audit/sink.js'

const NOW = Date.parse('2026-12-03T06:00:00Z')
const limits: SinkLimits = {requestTimeoutMs: 2_000, backoffBaseMs: 100, backoffMaxMs: 1_000, maxAttempts: 5, maxRetryAfterMs: 60_000, maxResponseBytes: 1024}

/** A clock that never waits: each sleep is recorded. */
function fakeClock(): Clock & {slept: number[]} {
  const slept: number[] = []
  return {slept, now: () => NOW, sleep: async (ms) => void slept.push(ms), random: () => 0.5}
}

let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  await new Promise((r) => server?.close(r) ?? r(undefined))
  server = undefined
})

/** A sink on 127.0.0.1 answering the n-th request (from 0) with `answer(n)`; bodies are collected. */
async function sink(answer: (n: number, req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{url: URL; bodies: string[]; headers: IncomingMessage['headers'][]}> {
  const bodies: string[] = []
  const headers: IncomingMessage['headers'][] = []
  let n = 0
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c))
    req.on('end', () => {
      bodies.push(body)
      headers.push(req.headers)
      answer(n++, req, res, body)
    })
  })
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
  return {url: new URL(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/ingest`), bodies, headers}
}

const send = (url: URL, clock: Clock, l: Partial<SinkLimits> = {}) => deliver({url, headers: {authorization: 'Bearer t0ken'}}, Buffer.from('[{"a":1}]'), {'content-type': 'application/json', 'idempotency-key': 'o:0-0'}, {...limits, ...l}, clock)

describe('classify: what a status means for the batch', () => {
  it('2xx delivers; 408, 429, 5xx retry; other 4xx and redirects refuse', () => {
    expect(classify(200, undefined, NOW)).toEqual({kind: 'delivered', status: 200})
    expect(classify(204, undefined, NOW).kind).toBe('delivered')
    for (const s of [408, 429, 500, 502, 503, 504]) expect(classify(s, undefined, NOW).kind).toBe('retry')
    for (const s of [301, 400, 401, 403, 404, 413, 422]) expect(classify(s, undefined, NOW)).toMatchObject({kind: 'refused', status: s})
  })
  it('honours Retry-After on 429 and 503, as seconds or an HTTP date, and ignores it elsewhere', () => {
    expect(classify(429, '7', NOW)).toMatchObject({retryAfterMs: 7000})
    expect(classify(503, new Date(NOW + 12_000).toUTCString(), NOW)).toMatchObject({retryAfterMs: 12_000})
    expect(classify(500, '7', NOW)).not.toHaveProperty('retryAfterMs')
    expect(parseRetryAfter('soon', NOW)).toBeUndefined()
    expect(parseRetryAfter('-3', NOW)).toBeUndefined()
    expect(parseRetryAfter(new Date(NOW - 5000).toUTCString(), NOW)).toBe(0)
  })
})

describe('backoff', () => {
  it('doubles per try, stays under the ceiling, and jitters within half of it', () => {
    expect(backoffMs(0, limits, 0)).toBe(50)
    expect(backoffMs(0, limits, 0.999)).toBeLessThanOrEqual(100)
    expect(backoffMs(3, limits, 0)).toBe(400)
    expect(backoffMs(20, limits, 0.999)).toBeLessThanOrEqual(1000)
    expect(backoffMs(20, limits, 0)).toBe(500)
  })
})

describe('deliver against real sinks on 127.0.0.1', () => {
  it('retries a sink answering 500 until it takes the batch, with growing waits', async () => {
    const s = await sink((n, _q, res) => res.writeHead(n < 2 ? 500 : 200).end())
    const clock = fakeClock()
    const r = await send(s.url, clock)
    expect(r).toMatchObject({delivered: true, report: {attempts: 3, failures: ['HTTP 500', 'HTTP 500']}})
    expect(clock.slept).toEqual([75, 150])
    expect(s.bodies).toEqual(['[{"a":1}]', '[{"a":1}]', '[{"a":1}]'])
    expect(s.headers[2]).toMatchObject({'idempotency-key': 'o:0-0', authorization: 'Bearer t0ken', 'content-type': 'application/json'})
  })
  it('waits what 429 Retry-After says (back-pressure), then delivers', async () => {
    const s = await sink((n, _q, res) => (n === 0 ? res.writeHead(429, {'retry-after': '7'}).end() : res.writeHead(202).end()))
    const clock = fakeClock()
    const r = await send(s.url, clock)
    expect(r).toMatchObject({delivered: true, report: {attempts: 2, backPressure: [7000]}})
    expect(clock.slept).toEqual([7000])
  })
  it('survives a sink that does not answer in time', async () => {
    const s = await sink((n, _q, res) => void (n === 0 ? undefined : res.writeHead(200).end()))
    const r = await send(s.url, fakeClock(), {requestTimeoutMs: 100})
    expect(r.delivered).toBe(true)
    expect(r.report.failures[0]).toMatch(/no answer within 100 ms/)
  })
  it('survives a sink that reads the batch and drops the connection without an answer', async () => {
    const s = await sink((n, req, res) => (n === 0 ? req.socket.destroy() : res.writeHead(200).end()))
    const r = await send(s.url, fakeClock())
    expect(r).toMatchObject({delivered: true, report: {attempts: 2}})
    expect(s.bodies).toHaveLength(2)
  })
  it('stops with AUDIT_SINK_FAILED on a 4xx refusal, without retrying', async () => {
    const s = await sink((_n, _q, res) => res.writeHead(401).end())
    const err = await send(s.url, fakeClock()).catch((e: AirlockError) => e)
    expect(err).toBeInstanceOf(AirlockError)
    expect((err as AirlockError).code).toBe('AUDIT_SINK_FAILED')
    expect(s.bodies).toHaveLength(1)
  })
  it('stops with AUDIT_SINK_FAILED after the last try, and names no credential of the URL', async () => {
    const s = await sink((_n, _q, res) => res.writeHead(503).end())
    const url = new URL(s.url)
    url.username = 'user'
    url.password = 'hunter2'
    url.search = '?token=s3cret'
    const err = (await send(url, fakeClock(), {maxAttempts: 3}).catch((e: AirlockError) => e)) as AirlockError
    expect(err.code).toBe('AUDIT_SINK_FAILED')
    expect(err.message).not.toMatch(/hunter2|s3cret/)
    expect(s.bodies).toHaveLength(3)
  })
  it('returns undelivered when stopped between tries (the caller keeps its cursor)', async () => {
    const s = await sink((_n, _q, res) => res.writeHead(500).end())
    const stop = new AbortController()
    const clock = {...fakeClock(), sleep: async () => stop.abort()}
    const r = await deliver({url: s.url, headers: {}}, Buffer.from('x'), {}, {...limits, maxAttempts: Infinity}, clock, stop.signal)
    expect(r).toMatchObject({delivered: false, report: {attempts: 1}})
  })
})

describe('--header', () => {
  it('parses Name: value and refuses anything else with USAGE, never echoing the value', () => {
    expect(parseHeader('Authorization: Splunk abc')).toEqual(['authorization', 'Splunk abc'])
    for (const bad of ['no colon', ': empty name', 'Bad Name: x']) {
      const err = (() => {
        try {
          parseHeader(bad)
        } catch (e) {
          return e as AirlockError
        }
      })()
      expect(err?.code).toBe('USAGE')
      expect(err?.message).not.toContain(bad)
    }
  })
})

describe('answers that break off or run long', () => {
  it('retries an answer cut off mid-body, and takes a 2xx whose body runs past the cap by its status', async () => {
    const s = await sink((n, _q, res) => {
      if (n === 0) {
        res.writeHead(200, {'content-length': '100'})
        res.write('partial')
        setTimeout(() => res.socket?.destroy(), 5)
      } else res.writeHead(200).end('x'.repeat(4096))
    })
    const r = await send(s.url, fakeClock())
    expect(r).toMatchObject({delivered: true, report: {attempts: 2}})
    expect(r.report.failures[0]).toMatch(/broke off/)
  })
})
