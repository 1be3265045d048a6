/**
 * The token flow against a real registry: Debian's docker-registry (distribution 2.8) with
 * token authentication, as Docker Hub, GHCR, Harbor and Quay run it. The token service is a
 * loopback HTTP server written for the test (test/registry.ts) that checks a password and
 * issues ES256 JWTs the registry verifies against its certificate. Credentials come from
 * AIRLOCK_REGISTRY_USER/PASSWORD and from a real ~/.docker/config.json under a temporary HOME.
 */
import {createPrivateKey, sign} from 'node:crypto'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, commitChange, initFleet, tempDir} from '../helpers.js'
import {attachSigTag, pushImage, RUN_REGISTRY_TESTS, simpleSigningPayload, startRegistry, startTokenService, type Registry, type TokenService} from '../registry.js'

let reg: Registry
let tokens: TokenService
let fleet: Awaited<ReturnType<typeof initFleet>>
let work: {dir: string; cleanup: () => Promise<void>}
let repository: string

beforeAll(async () => {
  if (!RUN_REGISTRY_TESTS) return
  work = await tempDir('airlock-token-')
  tokens = await startTokenService(work.dir, {rita: 'secret'})
  reg = await startRegistry({tokens: tokens as TokenService & {config: string}})
  fleet = await initFleet()
  repository = `${reg.host}/golden/agent-runner`
  const file = join(fleet.dir, 'manifests/images/agent-runner.yaml')
  await writeFile(file, (await readFile(file, 'utf8')).replace('registry.example.com/golden/agent-runner', repository))
  await commitChange(fleet.dir, fleet.env, 'image lives in the token-auth registry')
})
afterAll(async () => {
  await fleet?.cleanup()
  await reg?.close()
  await tokens?.close()
  await work?.cleanup()
})

async function signedImage(tag: string): Promise<string> {
  const image = await pushImage(reg, 'golden/agent-runner', tag)
  const payload = simpleSigningPayload(repository, image.digest)
  const key = createPrivateKey(await readFile(fleet.imageKey, 'utf8'))
  await attachSigTag(reg, 'golden/agent-runner', image, payload, sign('sha256', payload, key).toString('base64'))
  return image.digest
}

const fetchSig = (digest: string, env: Record<string, string | undefined>) =>
  airlock(['image', 'fetch-signature', `${repository}@${digest}`, '--plain-http', '--json'], {cwd: fleet.dir, env: {...fleet.env, AIRLOCK_REGISTRY_TOKEN: undefined, ...env}})

describe.runIf(RUN_REGISTRY_TESTS)('image fetch-signature from a registry with token authentication', () => {
  it('follows the challenge to the token service with AIRLOCK_REGISTRY_USER/PASSWORD', async () => {
    const digest = await signedImage('tok-env')
    const r = await fetchSig(digest, {AIRLOCK_REGISTRY_USER: 'rita', AIRLOCK_REGISTRY_PASSWORD: 'secret', HOME: work.dir})
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json.plan.details).toMatchObject({layout: 'sig-tag'})
  })

  it("uses what docker login left in ~/.docker/config.json (auths), and refuses a wrong password clearly", async () => {
    const digest = await signedImage('tok-config')
    const home = join(work.dir, 'home')
    await mkdir(join(home, '.docker'), {recursive: true})
    const config = (password: string) => JSON.stringify({auths: {[reg.host]: {auth: Buffer.from(`rita:${password}`).toString('base64')}}})
    await writeFile(join(home, '.docker', 'config.json'), config('secret'))
    const ok = await fetchSig(digest, {HOME: home})
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0)
    await writeFile(join(home, '.docker', 'config.json'), config('wrong'))
    const bad = await fetchSig(digest, {HOME: home})
    expect(bad.exitCode).toBe(1)
    expect(bad.json.error).toMatchObject({code: 'REGISTRY_AUTH_REQUIRED', message: expect.stringMatching(/token service .* refused the credentials from .*config\.json/)})
  })

  it('asks the credential helper credHelpers names (docker-credential-NAME get), as docker does', async () => {
    const digest = await signedImage('tok-helper')
    const home = join(work.dir, 'helper-home')
    const bin = join(work.dir, 'bin')
    await mkdir(join(home, '.docker'), {recursive: true})
    await mkdir(bin, {recursive: true})
    // A helper speaking docker's credential-helper protocol: the registry on stdin, JSON out.
    const helper = join(bin, 'docker-credential-airlocktest')
    await writeFile(helper, `#!/bin/sh\nread host\n[ "$host" = "${reg.host}" ] || exit 1\nprintf '{"ServerURL":"%s","Username":"rita","Secret":"secret"}' "$host"\n`, {mode: 0o755})
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({credHelpers: {[reg.host]: 'airlocktest'}}))
    const r = await fetchSig(digest, {HOME: home, PATH: `${bin}:${process.env.PATH}`})
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
  })

  it('without credentials: an anonymous token request the service refuses', async () => {
    const digest = await signedImage('tok-anon')
    const r = await fetchSig(digest, {HOME: join(work.dir, 'nobody')})
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'REGISTRY_AUTH_REQUIRED', message: expect.stringMatching(/refused an anonymous request/)})
  })
})
