/**
 * No pinned anchor, no trust: a fresh clone (as CI makes one) carries no git config, so where
 * trust starts must come from outside the repository. The attack: a writer without keys
 * force-pushes a new root whose trust.yaml adds their image key, with their signature of their
 * digest; before anchors had to be pinned, the operator's `promote --apply` on a fresh clone
 * took that root as its anchor and signed the pin. Real fleets, real keys, a real bare upstream.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parseDocument} from 'yaml'
import {airlock, git, initFleet, tempDir} from '../helpers.js'

const EVIL = `sha256:${'e7'.repeat(32)}`

let fleet: Awaited<ReturnType<typeof initFleet>>
let work: Awaited<ReturnType<typeof tempDir>>
let upstream: string
let genuineAnchor: string
let attackerRoot: string

/** The attacker's fleet: their own image key, and their signature of EVIL made with it. */
async function attackerFleet(): Promise<{trustEntry: unknown; bundle: string}> {
  const dir = join(work.dir, 'attacker')
  expect((await airlock(['init', dir, '--apply'])).exitCode).toBe(0)
  const env = {AIRLOCK_EVIDENCE_KEY: join(dir, 'keys', 'evidence.key')}
  const s = await airlock(['image', 'sign', `agent-runner@${EVIL}`, '--key', join(dir, 'keys', 'image.key'), '--apply', '--json'], {cwd: dir, env})
  expect(s.exitCode).toBe(0)
  const trust = parseDocument(await readFile(join(dir, 'manifests', 'trust.yaml'), 'utf8')).toJS() as {spec: {keys: Array<{roles: string[]}>}}
  const bundlePath = s.json.plan.changes[0].path as string
  return {trustEntry: trust.spec.keys.find((k) => k.roles.includes('image')), bundle: await readFile(join(dir, bundlePath), 'utf8')}
}

beforeAll(async () => {
  fleet = await initFleet()
  work = await tempDir('airlock-anchor-')
  genuineAnchor = await git(fleet.dir, 'config', 'airlock.trustAnchor')
  upstream = join(work.dir, 'upstream.git')
  await git(work.dir, 'clone', '-q', '--bare', fleet.dir, upstream)
  // The attacker: a new root with the fleet's files, trust.yaml plus their image key, and their
  // signature of EVIL beside the manifests; force-pushed over main.
  const {trustEntry, bundle} = await attackerFleet()
  const evil = join(work.dir, 'evil')
  await git(work.dir, 'clone', '-q', upstream, evil)
  await git(evil, 'checkout', '-q', '--orphan', 'rewrite')
  const trust = parseDocument(await readFile(join(evil, 'manifests', 'trust.yaml'), 'utf8'))
  trust.addIn(['spec', 'keys'], trust.createNode(trustEntry))
  await writeFile(join(evil, 'manifests', 'trust.yaml'), trust.toString())
  const sig = join(evil, 'manifests', 'signatures', 'agent-runner', `${EVIL.replace(':', '-')}.sigstore.json`)
  await writeFile(sig, bundle)
  await git(evil, 'add', '-A')
  await git(evil, 'commit', '-qm', 'Initial import')
  attackerRoot = await git(evil, 'rev-parse', 'HEAD')
  await git(evil, 'push', '-q', '--force', 'origin', 'rewrite:main')
}, 120_000)

afterAll(async () => {
  await fleet.cleanup()
  await work.cleanup()
})

/** A fresh clone of the upstream, as CI makes one: no git config of airlock's. */
async function freshClone(name: string): Promise<string> {
  const dir = join(work.dir, name)
  // Over git's own protocol (file://), so only what main reaches is fetched, as from a forge.
  await git(work.dir, 'clone', '-q', `file://${upstream}`, dir)
  return dir
}

describe('when no trust anchor is pinned (a fresh clone of a force-pushed root)', () => {
  it('refuses --apply and --out (ANCHOR_NOT_PINNED, exit 1), signs nothing, and names how to pin', async () => {
    const clone = await freshClone('ci-clone')
    const head = await git(clone, 'rev-parse', 'HEAD')
    const promote = ['promote', 'agent-runner', '--digest', EVIL, '--to', 'canary', '--reason', 'release']
    const applied = await airlock([...promote, '--apply', '--json'], {cwd: clone, env: fleet.env})
    expect(applied.exitCode).toBe(1)
    expect(applied.json.error.code).toBe('ANCHOR_NOT_PINNED')
    expect(applied.json.error.message).toMatch(/airlock trust pin COMMIT/)
    expect(applied.json.error.message).toMatch(/AIRLOCK_TRUST_ANCHOR/)
    expect(await git(clone, 'rev-parse', 'HEAD')).toBe(head)
    expect(await git(clone, 'status', '--porcelain')).toBe('')
    const out = join(work.dir, 'evil-plan.json')
    const saved = await airlock([...promote, '--out', out, '--json'], {cwd: clone})
    expect(saved.exitCode).toBe(1)
    expect(saved.json.error.code).toBe('ANCHOR_NOT_PINNED')
    expect(existsSync(out)).toBe(false)
    // A plan is still shown, saying why it could not be applied.
    const plan = await airlock(promote, {cwd: clone})
    expect(plan.exitCode).toBe(1)
    expect(plan.stdout).toMatch(/UNPINNED/)
  })

  it('fails evidence verify (ANCHOR_NOT_PINNED) and says UNPINNED in status', async () => {
    const clone = await freshClone('auditor-clone')
    const verify = await airlock(['evidence', 'verify', '--json'], {cwd: clone})
    expect(verify.exitCode).toBe(1)
    expect(verify.json.problems.map((p: {code: string}) => p.code)).toContain('ANCHOR_NOT_PINNED')
    expect(verify.json.anchor.pinned).toBe(false)
    const status = await airlock(['status'], {cwd: clone})
    expect(status.exitCode).toBe(0)
    expect(status.stdout).toMatch(/UNPINNED/)
    const json = await airlock(['status', '--json'], {cwd: clone})
    expect(json.json.trustSource).toMatchObject({kind: 'head', verified: false, anchor: {pinned: false, from: null}})
  })

  it('reads no trust from such a HEAD: image verify, policy verify and authorize refuse', async () => {
    const clone = await freshClone('reader-clone')
    for (const args of [
      ['image', 'verify', `registry.example.com/golden/agent-runner@${EVIL}`, '--json'],
      ['image', 'verify', '--all', '--json'],
      ['authorize', '--principal', 'AgentKernel::User::"x"', '--action', 'AgentKernel::Action::"Run"', '--resource', 'AgentKernel::Sandbox::"s"', '--json'],
      ['tool', 'check', 'read_file', '--params', '{"path": "/workspace/a"}', '--json'],
    ]) {
      const r = await airlock(args, {cwd: clone})
      expect(r.exitCode, args.join(' ')).toBe(1)
      expect(r.json.error.code, args.join(' ')).toBe('ANCHOR_NOT_PINNED')
    }
  })
})

describe('when the anchor is pinned from outside the repository', () => {
  it('refuses the force-pushed root against the genuine anchor, whichever way it is pinned', async () => {
    // The genuine anchor is not in the rewritten history at all: a clone cannot even name it.
    const clone = await freshClone('pinned-clone')
    const byEnv = await airlock(['evidence', 'verify', '--json'], {cwd: clone, env: {AIRLOCK_TRUST_ANCHOR: genuineAnchor}})
    expect(byEnv.exitCode).toBe(2)
    expect(byEnv.json.error).toMatchObject({code: 'INVALID_INPUT', details: {field: 'AIRLOCK_TRUST_ANCHOR'}})
    // A clone that still has the genuine history, with the attacker's root merged in.
    const both = await freshClone('both-clone')
    await git(both, 'fetch', '-q', fleet.dir, 'main')
    await git(both, 'merge', '-q', '--allow-unrelated-histories', '-s', 'ours', '-m', 'merge', 'FETCH_HEAD')
    const v = await airlock(['evidence', 'verify', '--json'], {cwd: both, env: {AIRLOCK_TRUST_ANCHOR: genuineAnchor}})
    expect(v.exitCode).toBe(1)
    expect(v.json.anchor).toEqual({commit: genuineAnchor, pinned: true})
    expect(v.json.problems.map((p: {code: string}) => p.code)).toContain('MULTIPLE_ROOTS')
    const p = await airlock(['promote', 'agent-runner', '--digest', EVIL, '--to', 'canary', '--apply', '--json'], {cwd: both, env: {...fleet.env, AIRLOCK_TRUST_ANCHOR: genuineAnchor}})
    expect(p.exitCode).toBe(1)
    expect(p.json.error.code).toBe('BASE_UNVERIFIED')
  })

  it('takes only a full commit id: a branch or an abbreviated id is refused (exit 2)', async () => {
    for (const [given, field] of [
      ['main', '--trust-anchor'],
      [genuineAnchor.slice(0, 12), '--trust-anchor'],
    ]) {
      const r = await airlock(['evidence', 'verify', '--trust-anchor', given!, '--json'], {cwd: fleet.dir})
      expect(r.exitCode, given).toBe(2)
      expect(r.json.error).toMatchObject({code: 'INVALID_INPUT', details: {field}})
    }
    const env = await airlock(['status', '--json'], {cwd: fleet.dir, env: {AIRLOCK_TRUST_ANCHOR: 'HEAD'}})
    expect(env.exitCode).toBe(2)
    expect(env.json.error.details.field).toBe('AIRLOCK_TRUST_ANCHOR')
  })

  it('pins with AIRLOCK_TRUST_ANCHOR (a CI variable) and names where the anchor came from', async () => {
    const clone = join(work.dir, 'honest-clone')
    await git(work.dir, 'clone', '-q', fleet.dir, clone)
    const verify = await airlock(['evidence', 'verify', '--json'], {cwd: clone, env: {AIRLOCK_TRUST_ANCHOR: genuineAnchor}})
    expect(verify.exitCode).toBe(0)
    expect(verify.json).toMatchObject({anchor: {commit: genuineAnchor, pinned: true}, anchorFrom: 'AIRLOCK_TRUST_ANCHOR'})
    const status = await airlock(['status', '--json'], {cwd: clone, env: {AIRLOCK_TRUST_ANCHOR: genuineAnchor}})
    expect(status.json.trustSource).toMatchObject({kind: 'head', verified: true, anchor: {commit: genuineAnchor, pinned: true, from: 'AIRLOCK_TRUST_ANCHOR'}})
  })
})

describe('airlock trust pin', () => {
  it('shows the keys of the anchor it would pin and writes nothing without --apply', async () => {
    const clone = join(work.dir, 'pin-clone')
    await git(work.dir, 'clone', '-q', fleet.dir, clone)
    const shown = await airlock(['trust', 'pin', genuineAnchor, '--json'], {cwd: clone})
    expect(shown.exitCode).toBe(0)
    expect(shown.json).toMatchObject({commit: genuineAnchor, pinned: false, head: {verified: true}})
    const evidence = shown.json.keys.find((k: {roles: string[]}) => k.roles.includes('evidence'))
    expect(evidence.ssh).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
    // The fingerprint ssh-keygen itself prints for the key as git's allowed-signers file names it.
    const {execa} = await import('execa')
    const line = (await airlock(['keys', 'allowed-signers'], {cwd: fleet.dir})).stdout.split('\n').find((l) => l.startsWith('evidence '))!
    await writeFile(join(work.dir, 'evidence.pub'), `${line.split(' ').slice(2).join(' ')}\n`)
    expect((await execa('ssh-keygen', ['-l', '-f', join(work.dir, 'evidence.pub')])).stdout).toContain(evidence.ssh)
    expect(await git(clone, 'config', '--get', 'airlock.trustAnchor').catch(() => 'unset')).toBe('unset')
    const text = await airlock(['trust', 'pin', genuineAnchor.slice(0, 10)], {cwd: clone})
    expect(text.stdout).toContain(evidence.ssh)
    expect(text.stdout).toContain('Not pinned yet')
  })

  it('pins with --apply, and refuses when the keys are not exactly those expected', async () => {
    const clone = join(work.dir, 'pin-apply-clone')
    await git(work.dir, 'clone', '-q', fleet.dir, clone)
    const shown = (await airlock(['trust', 'pin', genuineAnchor, '--json'], {cwd: clone})).json
    const ids = shown.keys.map((k: {id: string}) => k.id)
    const wrong = await airlock(['trust', 'pin', genuineAnchor, '--expect-key', ids[0], '--apply', '--json'], {cwd: clone})
    expect(wrong.exitCode).toBe(1)
    expect(wrong.json.pinned).toBe(false)
    expect(wrong.json.unexpected).toEqual(ids.slice(1))
    const right = await airlock(['trust', 'pin', genuineAnchor, ...ids.flatMap((id: string) => ['--expect-key', id]), '--apply', '--json'], {cwd: clone})
    expect(right.exitCode).toBe(0)
    expect(await git(clone, 'config', 'airlock.trustAnchor')).toBe(genuineAnchor)
    expect((await airlock(['evidence', 'verify'], {cwd: clone})).exitCode).toBe(0)
  })

  it('shows names, subjects and messages escaped: a trust.yaml cannot redraw what the operator compares', async () => {
    const dir = join(work.dir, 'spoof')
    await git(work.dir, 'clone', '-q', fleet.dir, dir)
    const file = join(dir, 'manifests', 'trust.yaml')
    await writeFile(file, (await readFile(file, 'utf8')).replace('name: image', 'name: "\\e[3A\\r\\e[J    evidence"'))
    await git(dir, 'commit', '-qam', 'rename\u001b[2K\rOK: 9/9 receipts verified')
    const head = await git(dir, 'rev-parse', 'HEAD')
    const pin = await airlock(['trust', 'pin', head], {cwd: dir})
    expect(pin.stdout).not.toMatch(/\u001b/)
    expect(pin.stdout).toContain('\\x1b[3A')
    expect(pin.stdout).toMatch(/trust\.yaml sha256:[0-9a-f]{64}/)
    const verify = await airlock(['evidence', 'verify'], {cwd: dir})
    expect(verify.exitCode).toBe(1)
    expect(verify.stdout).not.toMatch(/\u001b/)
    expect(verify.stdout).toContain('\\x1b[2K')
    // An unsigned commit is no anchor at all.
    expect(pin.stdout).toMatch(/NOT AN ANCHOR: UNSIGNED_COMMIT/)
    expect((await airlock(['trust', 'pin', head, '--apply', '--json'], {cwd: dir})).json.pinned).toBe(false)
    // --expect-trust compares the whole trust.yaml.
    const digest = (await airlock(['trust', 'pin', genuineAnchor, '--json'], {cwd: dir})).json.trust.digest
    const wrong = await airlock(['trust', 'pin', genuineAnchor, '--expect-trust', `sha256:${'0'.repeat(64)}`, '--apply', '--json'], {cwd: dir})
    expect(wrong.json.pinned).toBe(false)
    expect(wrong.exitCode).toBe(1)
    const right = await airlock(['trust', 'pin', genuineAnchor, '--expect-trust', digest, '--apply', '--json'], {cwd: dir})
    expect(right.json.pinned).toBe(true)
  })

  it('refuses as an anchor a commit whose trust.yaml is the fleet\'s, copied byte for byte, beside forged content', async () => {
    const clone = join(work.dir, 'copied-clone')
    await git(work.dir, 'clone', '-q', fleet.dir, clone)
    const genuine = (await airlock(['trust', 'pin', genuineAnchor, '--json'], {cwd: fleet.dir})).json
    const ids = genuine.keys.map((k: {id: string}) => k.id)
    // A new root with the fleet's files — its trust.yaml byte for byte — and the attacker's own egress policy.
    await git(clone, 'checkout', '-q', '--orphan', 'forged')
    await writeFile(join(clone, 'manifests', 'egress.yaml'), 'apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: open\nspec:\n  profile: permissive\n')
    await git(clone, 'add', '-A')
    await git(clone, 'commit', '-qm', 'Initial import')
    const forged = await git(clone, 'rev-parse', 'HEAD')
    const r = await airlock(['trust', 'pin', forged, ...ids.flatMap((id: string) => ['--expect-key', id]), '--expect-trust', genuine.trust.digest, '--apply', '--json'], {cwd: clone})
    expect(r.json.trust.digest).toBe(genuine.trust.digest)
    expect(r.json.unsigned).toMatchObject({code: 'UNSIGNED_COMMIT'})
    expect(r.json.pinned).toBe(false)
    expect(r.exitCode).toBe(1)
    const v = await airlock(['evidence', 'verify', '--json'], {cwd: clone, env: {AIRLOCK_TRUST_ANCHOR: forged}})
    expect(v.exitCode).toBe(1)
    expect(v.json.problems[0]).toMatchObject({code: 'UNSIGNED_COMMIT', commit: forged})
    const e = await airlock(['egress', 'check', 'evil.example:22', '--json'], {cwd: clone, env: {AIRLOCK_TRUST_ANCHOR: forged}})
    expect(e.json.error.code).toBe('BASE_UNVERIFIED')
  })

  it("shows the attacker's root with the attacker's key, so a comparison catches it", async () => {
    const clone = await freshClone('compare-clone')
    const genuine = (await airlock(['trust', 'pin', genuineAnchor, '--json'], {cwd: fleet.dir})).json.keys.map((k: {id: string}) => k.id)
    const r = await airlock(['trust', 'pin', attackerRoot, ...genuine.flatMap((id: string) => ['--expect-key', id]), '--apply', '--json'], {cwd: clone})
    expect(r.exitCode).toBe(1)
    expect(r.json.pinned).toBe(false)
    expect(r.json.unexpected).toHaveLength(1)
    expect(await git(clone, 'config', '--get', 'airlock.trustAnchor').catch(() => 'unset')).toBe('unset')
  })
})
