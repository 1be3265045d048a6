import {mkdtemp, readFile, rm, stat, writeFile, mkdir} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import type {AirlockError} from '../../../control-plane/errors.js'
import {cursorFile, readCursor, streamLog, type StreamEntry, type StreamOptions, type StreamSource} from '../../../control-plane/audit/stream.js'
import {DEFAULT_SINK_LIMITS, type Clock} from '../../../control-plane/audit/sink.js'

const ORIGIN = 'airlock.audit/test/0123456789abcdef'
const line = (i: number) => `{"attestation_list":[{"uid":"${i}"}],"message":"event ${i}"}`
const stub = (i: number) => `{"pruned":{"uid":"${i}","fingerprint":"${'0'.repeat(64)}","prev":null,"time":0}}`

/** An in-memory log that tests can grow. */
function memorySource(entries: StreamEntry[]): StreamSource {
  return {origin: ORIGIN, size: async () => entries.length, read: async (from, max) => entries.slice(from, from + max)}
}
const entries = (n: number, pruned: number[] = []) => Array.from({length: n}, (_, i) => ({index: i, line: pruned.includes(i) ? stub(i) : line(i), pruned: pruned.includes(i)}))

/** A clock whose sleep moves time forward at once. */
function fakeClock(onSleep: (now: number) => void = () => {}): Clock & {t: number} {
  const c = {t: 0, now: () => c.t, sleep: async (ms: number) => void onSleep((c.t += ms)), random: () => 0}
  return c
}

let dir: string
let server: Server | undefined
beforeEach(async () => void (dir = await mkdtemp(join(tmpdir(), 'airlock-stream-'))))
afterEach(async () => {
  server?.closeAllConnections()
  await new Promise((r) => server?.close(r) ?? r(undefined))
  server = undefined
  await rm(dir, {recursive: true, force: true})
})

async function sink(answer: (n: number, res: ServerResponse) => void = (_n, res) => res.writeHead(200).end()): Promise<{url: URL; got: Array<{body: string; headers: IncomingMessage['headers']}>}> {
  const got: Array<{body: string; headers: IncomingMessage['headers']}> = []
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c))
    req.on('end', () => answer(got.push({body, headers: req.headers}) - 1, res))
  })
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
  return {url: new URL(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/hec`), got}
}

const options = (url: URL, source: StreamSource, o: Partial<StreamOptions> = {}): StreamOptions => ({
  dir,
  sink: {url, headers: {}},
  source,
  format: 'ocsf',
  batchSize: 3,
  flushIntervalMs: 30_000,
  pollMs: 1000,
  once: true,
  limits: {...DEFAULT_SINK_LIMITS, maxAttempts: 3},
  clock: fakeClock(),
  ...o,
})

describe('streamLog --once', () => {
  it('sends every entry in batches with an idempotency key, and moves the cursor to the end', async () => {
    const s = await sink()
    const r = await streamLog(options(s.url, memorySource(entries(7))))
    expect(r).toMatchObject({from: 0, cursor: 7, events: 7, batches: 3, skippedPruned: 0, stopped: false})
    expect(s.got.map((g) => g.headers['idempotency-key'])).toEqual([`${ORIGIN}:0-2`, `${ORIGIN}:3-5`, `${ORIGIN}:6-6`])
    expect(s.got[0]!.headers['content-type']).toBe('application/json')
    const events = s.got.flatMap((g) => JSON.parse(g.body) as Array<{attestation_list: [{uid: string}]}>)
    expect(events.map((e) => e.attestation_list[0].uid)).toEqual(['0', '1', '2', '3', '4', '5', '6'])
    expect(JSON.parse(await readFile(cursorFile(dir, s.url), 'utf8'))).toEqual({next: 7, sink: s.url.href})
    expect((await stat(cursorFile(dir, s.url))).mode & 0o777).toBe(0o600)
  })
  it('sends jsonl as the lines as written, each ended by a newline', async () => {
    const s = await sink()
    await streamLog(options(s.url, memorySource(entries(2)), {format: 'jsonl'}))
    expect(s.got[0]).toMatchObject({body: `${line(0)}\n${line(1)}\n`, headers: {'content-type': 'application/x-ndjson'}})
  })
  it('skips pruned stubs with a count, and moves past a batch of stubs without a request', async () => {
    const s = await sink()
    const r = await streamLog(options(s.url, memorySource(entries(7, [1, 3, 4, 5]))))
    expect(r).toMatchObject({cursor: 7, events: 3, skippedPruned: 4, batches: 2})
    expect(s.got.map((g) => g.headers['idempotency-key'])).toEqual([`${ORIGIN}:0-2`, `${ORIGIN}:6-6`])
  })
  it('resumes from the cursor', async () => {
    const s = await sink()
    await mkdir(join(dir, 'stream'))
    await writeFile(cursorFile(dir, s.url), '{"next":5}\n')
    const r = await streamLog(options(s.url, memorySource(entries(7))))
    expect(r).toMatchObject({from: 5, cursor: 7, events: 2})
  })
  it('keeps the cursor at the last batch taken when the sink refuses one (AUDIT_SINK_FAILED)', async () => {
    const s = await sink((n, res) => res.writeHead(n === 0 ? 200 : 400).end())
    const err = (await streamLog(options(s.url, memorySource(entries(7)))).catch((e) => e)) as AirlockError
    expect(err.code).toBe('AUDIT_SINK_FAILED')
    expect(await readCursor(cursorFile(dir, s.url))).toBe(3)
  })
  it('refuses a cursor past the end of the log (AUDIT_TAMPERED) and a malformed cursor (INVALID_INPUT)', async () => {
    const s = await sink()
    await mkdir(join(dir, 'stream'))
    await writeFile(cursorFile(dir, s.url), '{"next":9}\n')
    expect(((await streamLog(options(s.url, memorySource(entries(7)))).catch((e) => e)) as AirlockError).code).toBe('AUDIT_TAMPERED')
    await writeFile(cursorFile(dir, s.url), '{"next":-1}\n')
    expect(((await streamLog(options(s.url, memorySource(entries(7)))).catch((e) => e)) as AirlockError).code).toBe('INVALID_INPUT')
    expect(s.got).toHaveLength(0)
  })
})

describe('streamLog following the log', () => {
  it('flushes a short batch when the flush interval passed, a full one at once, and returns on stop', async () => {
    const s = await sink()
    const log = entries(2)
    const stop = new AbortController()
    const sentAt: Array<[number, number]> = []
    const clock = fakeClock((now) => {
      // The log grows by 4 entries at t = 40 s; the stream is stopped at t = 100 s.
      if (now >= 40_000 && log.length === 2) log.push(...entries(6).slice(2))
      if (now >= 100_000) stop.abort()
    })
    const r = await streamLog(options(s.url, memorySource(log), {once: false, clock, stop: stop.signal, onBatch: (b) => sentAt.push([b.first, clock.t])}))
    expect(r).toMatchObject({cursor: 6, events: 6, stopped: true})
    // Entries 0-1 wait for the 30 s flush; 2-4 fill a batch at once; 5 waits 30 s more.
    expect(sentAt).toEqual([[0, 30_000], [2, 40_000], [5, 70_000]])
  })
})

describe('logSource: the log as the streamer reads it', () => {
  it('reads complete lines from where it stopped, leaves a line being written for later, and finds its place again in a replaced file', async () => {
    const {AuditLog, prunedLine} = await import('../../../control-plane/audit/log.js')
    const {logSource} = await import('../../../control-plane/audit/stream.js')
    const {appendFile, rename} = await import('node:fs/promises')
    const log = await AuditLog.open(dir)
    for (let i = 0; i < 5; i++) await log.append({class_uid: 6003, time: i})
    const source = await logSource(dir)
    expect(source.origin).toBe(log.origin)
    expect(await source.size()).toBe(5)
    expect((await source.read(0, 3)).map((e) => e.index)).toEqual([0, 1, 2])
    expect((await source.read(3, 10)).map((e) => e.index)).toEqual([3, 4])
    await log.append({class_uid: 6003, time: 5})
    await log.close()
    // An append in progress: half a line at the end is not an entry yet.
    await appendFile(join(dir, 'events.jsonl'), '{"attestation_list":[{"fingerprint"')
    expect((await source.read(5, 10)).map((e) => e.index)).toEqual([5])
    // The file replaced (as prune does): entry 1 became a stub; the source starts over and sees it.
    const lines = (await readFile(join(dir, 'events.jsonl'), 'utf8')).split('\n').slice(0, 6)
    const e1 = JSON.parse(lines[1]!) as {attestation_list: [{fingerprint: {value: string}; prev_event: {fingerprint: {value: string}}}]}
    lines[1] = prunedLine({index: 1, fingerprint: e1.attestation_list[0].fingerprint.value, prev: e1.attestation_list[0].prev_event.fingerprint.value, time: 1})
    await writeFile(join(dir, 'new.jsonl'), `${lines.join('\n')}\n`)
    await rename(join(dir, 'new.jsonl'), join(dir, 'events.jsonl'))
    expect((await source.read(1, 2)).map((e) => [e.index, e.pruned])).toEqual([[1, true], [2, false]])
    expect(await source.size()).toBe(6)
  })
})
