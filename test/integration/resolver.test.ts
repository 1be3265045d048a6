/**
 * One trust resolver: every command that reads trust.yaml, policies, bundles or manifests reads
 * them at a HEAD whose history verifies back to the pinned anchor, or from a file the caller
 * names, and --json says which (trustSource). The attacks: an unsigned commit (a writer without
 * keys) adds a policy key or an image key, or loosens the policies; before, policy verify, pull
 * and authorize read the work tree and image verify, evidence show and align read HEAD unchecked.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {airlock, git, type CliResult, fleetCopies, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`

let fleet: Fleet
const fleets = fleetCopies({sign: [NEXT]})
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
})
afterEach(() => fleet.cleanup())

const refused = (r: CliResult, what: string) => {
  expect(r.exitCode, `${what}: ${r.stdout} ${r.stderr}`).toBe(1)
  expect(r.json.error.code, what).toBe('BASE_UNVERIFIED')
}

/** Fleets with a signed policy bundle made the honest way: a policy key, then policy bundle --apply (once for the file). */
const bundled = fleetCopies({
  sign: [NEXT],
  prepare: async ({dir, env}) => {
    expect((await airlock(['keys', 'generate', 'pol', '--role', 'policy', '--apply'], {cwd: dir, env})).exitCode).toBe(0)
    const r = await airlock(['policy', 'bundle', '--scope', 'org:acme', '--key', join(dir, 'keys/pol.key'), '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode, r.stderr).toBe(0)
  },
})
afterAll(() => bundled.dispose())

/** The test's fleet becomes a copy of one with a signed policy bundle (keys/pol.key); returns the bundle's path. */
async function publishBundle(): Promise<string> {
  await fleet.cleanup()
  fleet = await bundled.copy()
  return join(fleet.dir, 'bundles/orgs/acme.bundle.json')
}

/** The attacker's key added to trust.yaml by a plain commit, without the evidence key. */
async function sneakKey(role: 'policy' | 'image'): Promise<{key: string; id: string}> {
  const {dir} = fleet
  const args = ['keys', 'generate', `intruder-${role}`, '--role', role, ...(role === 'image' ? ['--algorithm', 'ecdsa-p256'] : []), '--json']
  const plan = await airlock(args, {cwd: dir})
  await writeFile(join(dir, 'manifests/trust.yaml'), plan.json.plan.changes[0].after)
  await git(dir, 'commit', '-qam', 'add a key')
  return {key: join(dir, 'keys', `intruder-${role}.key`), id: plan.json.key.id}
}

describe('when HEAD verifies', () => {
  it('names the verified HEAD as trustSource, and --trust FILE as a file', async () => {
    const bundle = await publishBundle()
    const {dir} = fleet
    const head = await git(dir, 'rev-parse', 'HEAD')
    const anchor = await git(dir, 'config', 'airlock.trustAnchor')
    const v = await airlock(['policy', 'verify', bundle, '--json'], {cwd: dir})
    expect(v.exitCode).toBe(0)
    expect(v.json.trustSource).toEqual({kind: 'head', branch: 'refs/heads/main', commit: head, verified: true, anchor: {commit: anchor, pinned: true, from: 'airlock.trustAnchor'}})
    const trustFile = join(dir, '..', 'trust.yaml')
    await writeFile(trustFile, await readFile(join(dir, 'manifests/trust.yaml'), 'utf8'))
    const f = await airlock(['policy', 'verify', bundle, '--trust', trustFile, '--json'], {cwd: dir})
    expect(f.exitCode).toBe(0)
    expect(f.json.trustSource).toMatchObject({kind: 'file'})
    for (const args of [
      ['image', 'verify', `agent-runner@${NEXT}`, '--json'],
      ['image', 'verify', '--all', '--json'],
      ['evidence', 'show', 'image-sign', '--json'],
      ['egress', 'check', 'pypi.org', '--json'],
    ]) {
      const r = await airlock(args, {cwd: dir})
      expect(r.json?.trustSource, args.join(' ')).toMatchObject({kind: 'head', commit: head, verified: true})
    }
  })
})

describe('when an unsigned commit adds a policy key', () => {
  it('policy verify, policy pull and authorize --from-cache refuse to read trust from it', async () => {
    const bundle = await publishBundle()
    const {dir} = fleet
    await sneakKey('policy')
    refused(await airlock(['policy', 'verify', bundle, '--json'], {cwd: dir}), 'policy verify')
    refused(await airlock(['policy', 'pull', '--server', 'https://127.0.0.1:1', '--scope', 'org:acme', '--cache-dir', join(dir, '..', 'cache'), '--json'], {cwd: dir}), 'policy pull')
    refused(
      await airlock(['authorize', '--from-cache', '--cache-dir', join(dir, '..', 'cache'), '--principal', 'AgentKernel::User::"x"', '--action', 'AgentKernel::Action::"Run"', '--resource', 'AgentKernel::Sandbox::"s"', '--json'], {cwd: dir}),
      'authorize --from-cache',
    )
  })
})

describe('when an unsigned commit changes the policies', () => {
  it('authorize decides with nothing from that commit, nor from the work tree', async () => {
    const {dir} = fleet
    const ask = ['authorize', '--principal', 'AgentKernel::User::"dana"', '--action', 'AgentKernel::Action::"Run"', '--resource', 'AgentKernel::Sandbox::"small"', '--entities', join(dir, 'policies/tests/entities.json'), '--json']
    const before = await airlock(ask, {cwd: dir})
    expect(before.exitCode).toBe(0)
    expect(before.json).toMatchObject({decision: 'allow', trustSource: {kind: 'head', verified: true}})
    // An edit in the work tree decides nothing.
    await writeFile(join(dir, 'policies/global/zz-stop.cedar'), '@id("zz-stop")\nforbid (principal, action, resource);\n')
    expect((await airlock(ask, {cwd: dir})).json.decision).toBe('allow')
    // Committed without the evidence key, it stops every decision read from HEAD.
    await git(dir, 'add', '-A')
    await git(dir, 'commit', '-qm', 'policy edit')
    refused(await airlock(ask, {cwd: dir}), 'authorize')
    // --policies DIR is the caller's own choice, and says so.
    const own = await airlock([...ask, '--policies', join(dir, 'policies')], {cwd: dir})
    expect(own.json).toMatchObject({decision: 'deny', trustSource: {kind: 'file'}})
  })
})

describe('when an unsigned commit adds an image key', () => {
  it('image verify (one digest and --all), evidence show and align refuse to read from it', async () => {
    const {dir} = fleet
    await sneakKey('image')
    refused(await airlock(['image', 'verify', `agent-runner@${NEXT}`, '--json'], {cwd: dir}), 'image verify')
    refused(await airlock(['image', 'verify', '--all', '--json'], {cwd: dir}), 'image verify --all')
    refused(await airlock(['evidence', 'show', 'image-sign', '--json'], {cwd: dir}), 'evidence show')
    const state = join(dir, '..', 'state.json')
    await writeFile(state, JSON.stringify({apiVersion: 'airlock/v1', kind: 'RuntimeState', images: {}}))
    refused(await airlock(['align', '--channel', 'canary', '--runtime', `file:${state}`, '--json'], {cwd: dir}), 'align')
    refused(await airlock(['keys', 'allowed-signers', '--json'], {cwd: dir}), 'keys allowed-signers')
  })
})

describe('policy serve from HEAD', () => {
  it('never goes back to an older commit, even a verified one', async () => {
    const bundle = await publishBundle()
    const {dir} = fleet
    const first = await readFile(bundle, 'utf8')
    const older = await git(dir, 'rev-parse', 'HEAD')
    const r = await airlock(['policy', 'bundle', '--scope', 'org:acme', '--key', join(dir, 'keys/pol.key'), '--apply', '--json'], {cwd: dir, env: fleet.env})
    expect(r.exitCode).toBe(0)
    const {headSource} = await import('../../control-plane/policy/server.js')
    const {Repository} = await import('../../control-plane/repo/repository.js')
    const source = headSource(await Repository.open(dir), async () => true)
    const newer = String(await source.read('bundles/orgs/acme.bundle.json'))
    expect(newer).not.toBe(first)
    await git(dir, 'update-ref', 'refs/heads/main', older)
    expect(String(await source.read('bundles/orgs/acme.bundle.json'))).toBe(newer)
  })
})
