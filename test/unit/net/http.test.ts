/** The one HTTP exchange every client uses (registries, bundle servers, JWKS): its caps and deadlines, against loopback servers. */
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {afterEach, describe, expect, it} from 'vitest'
import {httpRequest} from '../../../control-plane/net/http.js'

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))))
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<URL> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return new URL(`http://127.0.0.1:${(server.address() as {port: number}).port}/x`)
}

/** Errors raised where no one listens would end the process: the test collects them instead. */
async function noStrayErrors<T>(run: () => Promise<T>): Promise<{result: T; stray: unknown[]}> {
  const stray: unknown[] = []
  const catcher = (e: unknown) => stray.push(e)
  process.on('uncaughtException', catcher)
  try {
    const result = await run()
    await new Promise((r) => setTimeout(r, 50))
    return {result, stray}
  } finally {
    process.off('uncaughtException', catcher)
  }
}

describe('httpRequest', () => {
  it('refuses an answer over the cap that arrives whole in one piece (TOO_LARGE), never as an empty body, with no stray error', async () => {
    const url = await serve((_req, res) => res.writeHead(200, {'transfer-encoding': 'chunked'}).end(Buffer.alloc(3000, 32)))
    const {result, stray} = await noStrayErrors(() => httpRequest(url, {timeoutMs: 60_000, maxBytes: 2000}).catch((e) => e))
    expect(result).toMatchObject({code: 'TOO_LARGE'})
    expect(stray).toEqual([])
  })

  it('refuses an answer announced larger than the cap before reading its body', async () => {
    // Says 10 GiB and sends nothing: refused at once, not after the request's deadline.
    const url = await serve((_req, res) => res.writeHead(200, {'content-length': String(10 * 1024 ** 3)}).flushHeaders())
    await expect(httpRequest(url, {timeoutMs: 600_000, maxBytes: 4096})).rejects.toMatchObject({code: 'TOO_LARGE'})
  })

  it("ends at the caller's deadline (DEADLINE), before the request's own, and asks nothing once it has passed", async () => {
    let asked = 0
    const url = await serve(() => {
      asked++
    })
    const deadline = new AbortController()
    const pending = httpRequest(url, {timeoutMs: 600_000, maxBytes: 4096, signal: deadline.signal})
    await new Promise((r) => setTimeout(r, 20))
    deadline.abort()
    await expect(pending).rejects.toMatchObject({code: 'DEADLINE'})
    const before = asked
    await expect(httpRequest(url, {timeoutMs: 600_000, maxBytes: 4096, signal: deadline.signal})).rejects.toMatchObject({code: 'DEADLINE'})
    expect(asked).toBe(before)
  })

  it('returns what fits the cap as it is', async () => {
    const url = await serve((_req, res) => res.writeHead(404).end('nope'))
    await expect(httpRequest(url, {timeoutMs: 60_000, maxBytes: 4096})).resolves.toMatchObject({status: 404, body: Buffer.from('nope')})
  })
})
