import {execa} from 'execa'
import {readFile} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {AuditLog} from '../../control-plane/audit/log.js'
import {cursorFile} from '../../control-plane/audit/stream.js'
import {airlock, BIN, NODE, tempDir} from '../helpers.js'

/**
 * A SIEM sink on 127.0.0.1: `answer` decides what each request gets (by its number, from 0);
 * `delivered` counts, by log index, the events of every batch it acknowledged with 2xx.
 */
class SinkServer {
  server: Server | null = null
  port = 0
  requests = 0
  readonly delivered = new Map<number, number>()
  readonly keys: string[] = []
  constructor(public answer: (n: number, req: IncomingMessage, res: ServerResponse, ack: () => void) => void = (_n, _q, _r, ack) => ack()) {}

  async start(port = this.port): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString()
        const ack = () => {
          const events = JSON.parse(body) as Array<{attestation_list: [{uid: string}]}>
          for (const e of events) this.delivered.set(Number(e.attestation_list[0].uid), (this.delivered.get(Number(e.attestation_list[0].uid)) ?? 0) + 1)
          this.keys.push(String(req.headers['idempotency-key']))
          res.writeHead(200).end()
        }
        this.answer(this.requests++, req, res, ack)
      })
    })
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r))
    this.port = (this.server.address() as AddressInfo).port
  }

  async stop(): Promise<void> {
    const s = this.server
    this.server = null
    if (!s) return
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/ingest`
  }

  /** The indexes below `n` never acknowledged. */
  missing(n: number): number[] {
    return Array.from({length: n}, (_, i) => i).filter((i) => !this.delivered.has(i))
  }
}

let tmp: Awaited<ReturnType<typeof tempDir>>
let dir: string
let sink: SinkServer
beforeEach(async () => {
  tmp = await tempDir('airlock-stream-')
  dir = join(tmp.dir, 'audit')
  await append(40)
})
afterEach(async () => {
  await sink?.stop()
  await tmp.cleanup()
})

async function append(n: number): Promise<void> {
  const log = await AuditLog.open(dir)
  await Promise.all(Array.from({length: n}, (_, i) => log.append({class_uid: 6003, activity_id: 3, type_uid: 600303, time: Date.now(), message: `event ${i}`})))
  await log.close()
}
async function cursor(url: string): Promise<number | null> {
  const text = await readFile(cursorFile(dir, new URL(url)), 'utf8').catch(() => null)
  return text === null ? null : (JSON.parse(text) as {next: number}).next
}
async function until(what: () => boolean | Promise<boolean>, label: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await what()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`never happened: ${label}`)
}
const FAST = ['--backoff', '10ms', '--timeout', '300ms', '--batch-size', '7']
const stream = (...args: string[]) => airlock(['audit', 'stream', '--to', sink.url, '--audit-dir', dir, '--json', ...FAST, ...args])

describe('audit stream --once against a failing sink', () => {
  const failing: Array<[string, (n: number, req: IncomingMessage, res: ServerResponse, ack: () => void) => void]> = [
    ['does not answer in time', (n, _q, _r, ack) => void (n === 1 ? undefined : ack())],
    ['answers 500', (n, _q, res, ack) => (n === 1 || n === 2 ? res.writeHead(500).end() : ack())],
    ['answers 429 with Retry-After', (n, _q, res, ack) => (n === 1 ? res.writeHead(429, {'retry-after': '1'}).end() : ack())],
    ['answers 503 with Retry-After as an HTTP date', (n, _q, res, ack) => (n === 1 ? res.writeHead(503, {'retry-after': new Date(Date.now() + 1000).toUTCString()}).end() : ack())],
    ['reads the batch and drops the connection', (n, req, _r, ack) => (n === 1 ? req.socket.destroy() : ack())],
  ]
  it.each(failing)('a sink that %s: survived, every event delivered, the cursor at the end', async (_what, answer) => {
    sink = new SinkServer(answer)
    await sink.start()
    const r = await stream('--once')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json).toMatchObject({from: 0, cursor: 40, events: 40, batches: 6, stopped: false})
    expect(r.json.retries).toBeGreaterThan(0)
    expect(sink.missing(40)).toEqual([])
    expect(await cursor(sink.url)).toBe(40)
    expect(sink.keys[0]).toMatch(/^airlock\.audit\/[^:]+:0-6$/)
  })

  it('a sink that refuses a batch (4xx): AUDIT_SINK_FAILED, the cursor stays after the last batch taken', async () => {
    sink = new SinkServer((n, _q, res, ack) => (n === 0 ? ack() : res.writeHead(403).end()))
    await sink.start()
    const r = await stream('--once')
    expect(r.exitCode).toBe(1)
    expect(r.json.error.code).toBe('AUDIT_SINK_FAILED')
    expect(await cursor(sink.url)).toBe(7)
    sink.answer = (_n, _q, _r, ack) => ack()
    expect((await stream('--once')).json).toMatchObject({from: 7, cursor: 40})
    expect(sink.missing(40)).toEqual([])
  })

  it('refuses plain http to another machine (USAGE)', async () => {
    const r = await airlock(['audit', 'stream', '--to', 'http://siem.example.com/hec', '--audit-dir', dir, '--once', '--json'])
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('USAGE')
  })
})

describe('audit stream following the log', () => {
  it('THE DONE-WHEN TEST: the sink is stopped and restarted mid-stream; every event is delivered at least once, none lost, the cursor ends at the log size', async () => {
    // The sink goes down with the fourth batch in flight (never acknowledged), 15 of 40 events delivered.
    let down: () => void = () => {}
    const outage = new Promise<void>((r) => (down = r))
    sink = new SinkServer((n, _q, _r, ack) => (n === 3 ? down() : ack()))
    await sink.start()
    const child = execa(NODE, [BIN, 'audit', 'stream', '--to', sink.url, '--audit-dir', dir, '--json', '--batch-size', '5', '--flush-interval', '200ms', '--poll-interval', '20ms', '--backoff', '20ms', '--timeout', '1s'], {reject: false})
    await outage
    await sink.stop()
    expect(sink.missing(40)).toHaveLength(25)
    sink.answer = (_n, _q, _r, ack) => ack()
    const lastBefore = sink.requests
    await append(60)
    await new Promise((r) => setTimeout(r, 300))
    await sink.start()
    await until(async () => (await cursor(sink.url)) === 100, 'the cursor at 100')
    child.kill('SIGTERM')
    const r = await child
    expect(r.exitCode, String(r.stderr)).toBe(0)
    const report = JSON.parse(String(r.stdout))
    expect(report).toMatchObject({cursor: 100, stopped: true})
    // The outage was felt: tries failed and were retried, and the sink got requests after it came back.
    expect(report.retries).toBeGreaterThan(0)
    expect(sink.requests).toBeGreaterThan(lastBefore)
    expect(sink.missing(100)).toEqual([])
    expect(await cursor(sink.url)).toBe(100)
  })

  it('a streamer killed with SIGKILL mid-stream resumes from its cursor', async () => {
    await append(160)
    sink = new SinkServer((_n, _q, _r, ack) => void setTimeout(ack, 20))
    await sink.start()
    const child = execa(NODE, [BIN, 'audit', 'stream', '--to', sink.url, '--audit-dir', dir, '--once', '--batch-size', '5'], {reject: false})
    await until(async () => ((await cursor(sink.url)) ?? 0) >= 25, 'five batches acknowledged')
    child.kill('SIGKILL')
    expect((await child).signal).toBe('SIGKILL')
    const at = (await cursor(sink.url))!
    expect(at).toBeLessThan(200)
    const r = await stream('--once')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json).toMatchObject({from: at, cursor: 200})
    expect(sink.missing(200)).toEqual([])
  })
})
