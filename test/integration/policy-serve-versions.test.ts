/**
 * `policy serve` answers from what it worked out once per bundle version (ETag, headers, bytes):
 * these tests change the bundle under a running server on a real loopback socket and a real git
 * repository, and check that the next request sees the change and an old ETag no longer gets 304.
 */
import {mkdir, rename, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {Repository} from '../../control-plane/repo/repository.js'
import {headSource, startBundleServer} from '../../control-plane/policy/server.js'
import {git, tempDir} from '../helpers.js'

const t = await tempDir()
afterAll(() => t.cleanup())

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, {headers})
  return {status: r.status, etag: r.headers.get('etag'), body: await r.text()}
}

describe('policy serve with --bundles DIR', () => {
  it('serves a bundle replaced in place or renamed over from the next request, with its own ETag', async () => {
    const dir = join(t.dir, 'bundles')
    await mkdir(join(dir, 'orgs'), {recursive: true})
    const file = join(dir, 'orgs', 'acme.bundle.json')
    await writeFile(file, '{"v":1}')
    const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, insecureHttp: true})
    try {
      const url = `${s.url}/v1/bundles/org%3Aacme`
      const first = await get(url)
      expect(first).toMatchObject({status: 200, body: '{"v":1}'})
      expect((await get(url, {'if-none-match': first.etag!})).status).toBe(304)
      expect((await get(`${url}?x=1`, {'if-none-match': `"other", ${first.etag}`})).status).toBe(304)
      // Same size, other bytes, written in place.
      await writeFile(file, '{"v":2}')
      const second = await get(url, {'if-none-match': first.etag!})
      expect(second).toMatchObject({status: 200, body: '{"v":2}'})
      expect(second.etag).not.toBe(first.etag)
      // Renamed over (a new inode), as an atomic publisher does.
      await writeFile(join(dir, 'tmp'), '{"v":3}')
      await rename(join(dir, 'tmp'), file)
      const third = await get(url, {'if-none-match': second.etag!})
      expect(third).toMatchObject({status: 200, body: '{"v":3}'})
      expect((await get(url, {'if-none-match': third.etag!})).status).toBe(304)
    } finally {
      await s.close()
    }
  })

  it('serves only the exact paths: no dot segments, no other scope spellings', async () => {
    const dir = join(t.dir, 'bundles-paths')
    await mkdir(join(dir, 'orgs'), {recursive: true})
    await writeFile(join(dir, 'orgs', 'acme.bundle.json'), '{}')
    const s = await startBundleServer({bundlesDir: dir, host: '127.0.0.1', port: 0, insecureHttp: true})
    try {
      const raw = async (path: string) => {
        // fetch would resolve dot segments itself; a raw request sends the path as written.
        const {request} = await import('node:http')
        return new Promise<number>((done, fail) => {
          const req = request(`${s.url}${path}`, {path}, (res) => {
            res.resume()
            done(res.statusCode!)
          })
          req.on('error', fail)
          req.end()
        })
      }
      expect(await raw('/v1/bundles/org:acme')).toBe(200)
      expect(await raw('/v1/x/../bundles/org:acme')).toBe(404)
      expect(await raw('/v1/bundles/')).toBe(404)
      expect(await raw('/v1/bundles/org:acme/x')).toBe(404)
      expect(await raw('/v1/bundles/org:ACME')).toBe(400)
      expect(await raw('/v1/bundles/org:nobody')).toBe(404)
      expect(await raw('/healthz?probe=1')).toBe(200)
    } finally {
      await s.close()
    }
  })
})

describe('policy serve from HEAD', () => {
  it('reads each bundle once per served commit and serves a new verified commit from the next request', async () => {
    const dir = join(t.dir, 'repo')
    await mkdir(join(dir, 'bundles', 'orgs'), {recursive: true})
    await git(dir, 'init', '-q', '-b', 'main')
    await writeFile(join(dir, 'bundles', 'orgs', 'acme.bundle.json'), '{"v":1}')
    await git(dir, 'add', '.')
    await git(dir, 'commit', '-qm', 'v1')
    const verified: string[] = []
    const source = headSource(await Repository.open(dir), async (commit) => {
      verified.push(commit)
      return true
    })
    const s = await startBundleServer({source, host: '127.0.0.1', port: 0, insecureHttp: true})
    try {
      const url = `${s.url}/v1/bundles/org%3Aacme`
      const answers = await Promise.all(Array.from({length: 20}, () => get(url)))
      expect(new Set(answers.map((a) => a.body))).toEqual(new Set(['{"v":1}']))
      expect(verified).toHaveLength(1)
      const a = await source.read('bundles/orgs/acme.bundle.json')
      expect(await source.read('bundles/orgs/acme.bundle.json')).toBe(a)
      await writeFile(join(dir, 'bundles', 'orgs', 'acme.bundle.json'), '{"v":2}')
      await git(dir, 'commit', '-qam', 'v2')
      const next = await get(url, {'if-none-match': answers[0]!.etag!})
      expect(next).toMatchObject({status: 200, body: '{"v":2}'})
      expect(verified).toHaveLength(2)
    } finally {
      await s.close()
    }
  })

  it('keeps serving the verified commit when a new HEAD does not verify', async () => {
    const dir = join(t.dir, 'repo-refused')
    await mkdir(join(dir, 'bundles', 'orgs'), {recursive: true})
    await git(dir, 'init', '-q', '-b', 'main')
    await writeFile(join(dir, 'bundles', 'orgs', 'acme.bundle.json'), '{"v":1}')
    await git(dir, 'add', '.')
    await git(dir, 'commit', '-qm', 'v1')
    const good = await git(dir, 'rev-parse', 'HEAD')
    const source = headSource(await Repository.open(dir), async (commit) => commit === good)
    expect(String(await source.read('bundles/orgs/acme.bundle.json'))).toBe('{"v":1}')
    await writeFile(join(dir, 'bundles', 'orgs', 'acme.bundle.json'), '{"v":666}')
    await git(dir, 'commit', '-qam', 'unsigned')
    expect(String(await source.read('bundles/orgs/acme.bundle.json'))).toBe('{"v":1}')
  })
})
