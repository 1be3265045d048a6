/**
 * `policy publish --to oci://…`: a real fleet (airlock init, a policy key, `policy bundle
 * --apply`), Debian's docker-registry on 127.0.0.1 with token authentication, and hosts pulling
 * what was published with `policy pull --from`. The bundle is read from the verified HEAD, never
 * the work tree; the scope tag never moves back to an older version that verifies; a tag holding
 * something no host would accept is replaced.
 */
import {readFile, readdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {loadSigner} from '../../control-plane/crypto/keys.js'
import {parseBundle, signBundle, BUNDLE_PAYLOAD_TYPE} from '../../control-plane/policy/bundle.js'
import {scopeOfTag, scopeTag, versionTag} from '../../control-plane/policy/distribution/oci.js'
import {parseScope} from '../../control-plane/policy/bundle.js'
import {canonicalJson} from '../../control-plane/crypto/digest.js'
import {airlock, git, initFleet, tempDir, type Fleet} from '../helpers.js'
import {pushBundleArtifact, RUN_REGISTRY_TESTS, startRegistry, startTokenService, type Registry, type TokenService} from '../registry.js'

const CREDS = {AIRLOCK_REGISTRY_USER: 'publisher', AIRLOCK_REGISTRY_PASSWORD: 'push-secret', AIRLOCK_REGISTRY_TOKEN: undefined}
let t: {dir: string; cleanup: () => Promise<void>}
let tokens: TokenService & {config: string}
let reg: Registry
let fleet: Fleet
let trustFile: string

const env = () => ({...fleet.env, ...CREDS, HOME: t.dir, AIRLOCK_AUDIT_DIR: join(t.dir, 'audit')})
const publish = (to: string, extra: string[] = []) => airlock(['policy', 'publish', '--to', to, '--plain-http', '--json', ...extra], {cwd: fleet.dir, env: env()})
const pull = (from: string, cache: string) =>
  airlock(['policy', 'pull', '--from', from, '--scope', 'org:acme', '--plain-http', '--trust', trustFile, '--cache-dir', cache, '--json'], {env: {...CREDS, HOME: t.dir, AIRLOCK_AUDIT_DIR: join(t.dir, 'audit-host')}})
const bundle = (version?: number) =>
  airlock(['policy', 'bundle', '--scope', 'org:acme', '--key', join(fleet.dir, 'keys/pol.key'), ...(version ? ['--version', String(version)] : []), '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})

beforeAll(async () => {
  t = await tempDir('airlock-publish-')
  if (!RUN_REGISTRY_TESTS) return
  tokens = await startTokenService(t.dir, {publisher: 'push-secret'})
  reg = await startRegistry({tokens})
  fleet = await initFleet()
  expect((await airlock(['keys', 'generate', 'pol', '--role', 'policy', '--apply'], {cwd: fleet.dir, env: fleet.env})).exitCode).toBe(0)
  const b = await bundle()
  expect(b.exitCode, b.stderr).toBe(0)
  // The host's trust: the fleet's trust.yaml as committed.
  trustFile = join(t.dir, 'trust.yaml')
  await writeFile(trustFile, await readFile(join(fleet.dir, 'manifests/trust.yaml'), 'utf8'))
}, 300_000)
afterAll(async () => {
  await fleet?.cleanup()
  await reg?.close()
  await tokens?.close()
  await t?.cleanup()
})

describe('scope tags', () => {
  it('map every scope to a valid OCI tag one-to-one, and no scope tag is ever another scope’s version tag', () => {
    const scopes = ['global', 'org:acme', 'org:acme-v3', 'org:acme-v', 'team:acme/infra', 'team:acme-infra/x', 'user:bob', 'user:bob-v3', 'user:bob.v3', 'user:a_b']
    const tags = scopes.map((s) => scopeTag(parseScope(s)))
    expect(tags).toEqual(['global', 'org-acme', 'org-acme-v3', 'org-acme-v', 'team-acme.infra', 'team-acme-infra.x', 'user-bob', 'user-bob-v3', 'user-bob.v3', 'user-a_b'])
    expect(new Set(tags).size).toBe(tags.length)
    for (const [i, s] of scopes.entries()) expect(scopeOfTag(tags[i]!)).toBe(s)
    // Scope ids are lower case (user:bob-V3 is no scope), so no moving tag holds the version tags' `-V`.
    expect(() => parseScope('user:bob-V3')).toThrow()
    const versions = scopes.flatMap((s) => [1, 3, 12].map((v) => versionTag(parseScope(s), v)))
    expect(versions.filter((v) => tags.includes(v))).toEqual([])
    expect(scopeOfTag(versionTag(parseScope('user:bob'), 3))).toBeNull()
    expect(versionTag(parseScope('org:acme'), 7)).toBe('org-acme-V7')
    expect(() => scopeTag(parseScope(`user:${'a'.repeat(130)}`))).toThrow(/128 characters/)
  })
})

// Each test runs the CLI a few times; on a loaded machine that takes minutes, never a timing assertion.
describe.runIf(RUN_REGISTRY_TESTS)('policy publish --to oci:// (docker-registry with token auth)', {timeout: 300_000}, () => {
  it('plans by default (nothing pushed), pushes with --apply, hosts pull it; publishing again is a no-op', async () => {
    const to = `oci://${reg.host}/fleet/policy`
    const plan = await publish(to, ['--scope', 'org:acme'])
    expect(plan.exitCode, plan.stdout + plan.stderr).toBe(0)
    expect(plan.json).toMatchObject({applied: false, scope: 'org:acme', version: 1, remote: {state: 'absent'}, tags: [{tag: 'org-acme-V1', action: 'create'}, {tag: 'org-acme', action: 'create'}], pushed: [], bundle: 'bundles/orgs/acme.bundle.json', trustSource: {kind: 'head', verified: true}})
    expect(plan.json.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
    const empty = await pull(`${to}:org-acme`, join(t.dir, 'c-plan'))
    expect(empty.json.failure.code).toBe('REGISTRY_NOT_FOUND')

    const applied = await publish(`${to}:org-acme`, ['--apply'])
    expect(applied.exitCode, applied.stdout + applied.stderr).toBe(0)
    expect(applied.json).toMatchObject({applied: true, pushed: ['org-acme-V1', 'org-acme'], manifestDigest: plan.json.manifestDigest})
    const host = await pull(to, join(t.dir, 'c-host'))
    expect(host.exitCode, host.stdout + host.stderr).toBe(0)
    expect(host.json).toMatchObject({effective: 'fetched', version: 1, digest: applied.json.bundleDigest})
    expect((await pull(`${to}:org-acme-V1`, join(t.dir, 'c-v1'))).json).toMatchObject({effective: 'fetched', version: 1})

    const again = await publish(to, ['--scope', 'org:acme', '--apply'])
    expect(again.json).toMatchObject({noop: true, pushed: [], remote: {state: 'verified', version: 1}})

    // The push is in the publisher's audit log.
    const logs = await readdir(join(t.dir, 'audit'))
    const text = (await Promise.all(logs.filter((f) => f.endsWith('.jsonl')).map((f) => readFile(join(t.dir, 'audit', f), 'utf8')))).join('')
    expect(text).toContain('"operation":"policy publish"')
    expect(text).toContain(plan.json.manifestDigest)
  })

  it('refuses to move the scope tag back to an older version that verifies (DOWNGRADE); replaces a tag that does not verify', async () => {
    const to = `oci://${reg.host}/fleet/rollback`
    const repo = 'fleet/rollback'
    const signer = await loadSigner({file: join(fleet.dir, 'keys/pol.key')}, 'policy')
    const {payload} = parseBundle(await readFile(join(fleet.dir, 'bundles/orgs/acme.bundle.json'), 'utf8'), 'bundle')
    // A newer bundle, properly signed, already under the tag (published from a newer HEAD).
    const newer = {...payload, version: payload.version + 5}
    await pushBundleArtifact(reg, repo, 'org-acme', Buffer.from(JSON.stringify(signBundle(newer, [signer]))), newer)
    const back = await publish(to, ['--scope', 'org:acme', '--apply'])
    expect(back.exitCode).toBe(1)
    expect(back.json.error).toMatchObject({code: 'DOWNGRADE', message: expect.stringMatching(/holds v\d+, which verifies; refusing to move it back/)})
    const plan = await publish(to, ['--scope', 'org:acme'])
    expect(plan.json.error.code).toBe('DOWNGRADE')

    // An unsigned artifact with a huge version under the tag: no host would take it, so it is replaced.
    const forged = {...payload, version: 1_000_000}
    await pushBundleArtifact(reg, repo, 'org-acme', Buffer.from(JSON.stringify({payloadType: BUNDLE_PAYLOAD_TYPE, payload: Buffer.from(canonicalJson(forged)).toString('base64'), signatures: []})), forged)
    const replaced = await publish(to, ['--scope', 'org:acme', '--apply'])
    expect(replaced.exitCode, replaced.stdout + replaced.stderr).toBe(0)
    expect(replaced.json).toMatchObject({remote: {state: 'unverified'}, tags: [{action: 'create'}, {tag: 'org-acme', action: 'move'}]})
    expect(['THRESHOLD_NOT_MET', 'BAD_SIGNATURE']).toContain(replaced.json.remote.failure.code)
    expect((await pull(to, join(t.dir, 'c-replaced'))).json).toMatchObject({effective: 'fetched', version: payload.version})
  })

  it('publishes what HEAD holds, not the work tree; a scope with no bundle and a tag naming another scope are refused', async () => {
    const to = `oci://${reg.host}/fleet/worktree`
    const file = join(fleet.dir, 'bundles/orgs/acme.bundle.json')
    const committed = await readFile(file, 'utf8')
    await writeFile(file, committed.replace(/"payload": "[^"]+"/, '"payload": "e30="'))
    try {
      const r = await publish(to, ['--scope', 'org:acme'])
      expect(r.exitCode, r.stdout + r.stderr).toBe(0)
      expect(r.json.version).toBeGreaterThan(0)
    } finally {
      await writeFile(file, committed)
    }
    // A commit made without keys (a writer with push access to the repository): nothing is published from it.
    await writeFile(file, committed.replace(/"payload": "[^"]+"/, '"payload": "e30="'))
    await git(fleet.dir, 'commit', '-qam', 'swap the bundle, unsigned')
    try {
      const r = await publish(to, ['--scope', 'org:acme', '--apply'])
      expect(r.exitCode).toBe(1)
      expect(r.json.error.code).toBe('BASE_UNVERIFIED')
    } finally {
      await git(fleet.dir, 'reset', '-q', '--hard', 'HEAD~1')
    }
    const none = await publish(to, ['--scope', 'org:globex'])
    expect(none.exitCode).toBe(2)
    expect(none.json.error).toMatchObject({code: 'INVALID_INPUT', details: {file: 'bundles/orgs/globex.bundle.json'}})
    const mismatch = await publish(`${to}:global`, ['--scope', 'org:acme'])
    expect(mismatch.exitCode).toBe(2)
    expect(mismatch.json.error).toMatchObject({code: 'USAGE', details: {field: '--to'}})
    const notScope = await publish(`${to}:latest`)
    expect(notScope.json.error).toMatchObject({code: 'USAGE', message: expect.stringMatching(/names no scope/)})
  })

  it('a newer bundle moves the tag; hosts holding the old one fetch the new; a version tag is never moved', async () => {
    const to = `oci://${reg.host}/fleet/policy`
    const cache = join(t.dir, 'c-next')
    expect((await pull(to, cache)).json.effective).toBe('fetched')
    const next = await bundle()
    expect(next.exitCode, next.stderr).toBe(0)
    const r = await publish(to, ['--scope', 'org:acme', '--apply'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json).toMatchObject({version: 2, remote: {state: 'verified', version: 1}, tags: [{tag: 'org-acme-V2', action: 'create'}, {tag: 'org-acme', action: 'move'}]})
    expect((await pull(to, cache)).json).toMatchObject({effective: 'fetched', version: 2})
    // Another artifact already under org-acme-V3 (a different v3 signed elsewhere): CONFLICT, nothing moved.
    const signer = await loadSigner({file: join(fleet.dir, 'keys/pol.key')}, 'policy')
    const {payload} = parseBundle(await readFile(join(fleet.dir, 'bundles/orgs/acme.bundle.json'), 'utf8'), 'bundle')
    const other = {...payload, version: 3, policies: payload.policies.slice(0, 1)}
    await pushBundleArtifact(reg, 'fleet/policy', 'org-acme-V3', Buffer.from(JSON.stringify(signBundle(other, [signer]))), other)
    expect((await bundle(3)).exitCode).toBe(0)
    const conflict = await publish(to, ['--scope', 'org:acme', '--apply'])
    expect(conflict.exitCode).toBe(3)
    expect(conflict.json.error).toMatchObject({code: 'CONFLICT', message: expect.stringMatching(/org-acme-V3 already names .*never moved/)})
    expect((await pull(to, cache)).json).toMatchObject({effective: 'unchanged', version: 2})
  })
})
