/**
 * `airlock egress check` on a fleet made by `airlock init` (which scaffolds a restrictive
 * manifests/egress.yaml), and egress policy changes through the pipeline like any other.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, git, initFleet} from '../helpers.js'

/** The cloud metadata services' names and addresses (written out: the test states the set, not the code). */
const METADATA_NAMES = ['instance-data', 'instance-data.ec2.internal', 'metadata', 'metadata.google.internal', 'metadata.goog', 'metadata.azure.internal']
const METADATA_ADDRESSES = ['169.254.169.254', '169.254.170.2', '169.254.170.23', '168.63.129.16', '192.0.0.192', '100.100.100.200', 'fd00:ec2::254', 'fd00:ec2::23', 'fd20:ce::254', 'fd00:c1::a9fe:a9fe', 'fe80::a9fe:a9fe']

let fleet: Awaited<ReturnType<typeof initFleet>>
beforeAll(async () => {
  fleet = await initFleet()
})
afterAll(() => fleet.cleanup())

describe('airlock egress check', () => {
  it('answers from manifests/egress.yaml at HEAD: allow (0) or deny (1) with the rule', async () => {
    const ok = await airlock(['egress', 'check', 'https://pypi.org/simple/', '--json'], {cwd: fleet.dir})
    expect(ok.exitCode).toBe(0)
    expect(ok.json).toMatchObject({decision: 'allow', rule: 'spec.allow[0] pypi.org', policy: 'manifests/egress.yaml'})
    const md = await airlock(['egress', 'check', 'http://pypi.org@0xA9FEA9FE/', '--json'], {cwd: fleet.dir})
    expect(md.exitCode).toBe(1)
    expect(md.json).toMatchObject({decision: 'deny', host: '169.254.169.254'})
    const text = await airlock(['egress', 'check', 'example.org'], {cwd: fleet.dir})
    expect(text.exitCode).toBe(1)
    expect(text.stdout).toMatch(/^DENY example\.org:443\n {2}rule spec\.allowlistOnly/)
  })

  it('a change to the egress policy is validated, authorized as EgressPolicy and signed', async () => {
    const {dir, env} = fleet
    const file = join(dir, 'manifests/egress.yaml')
    const before = await readFile(file, 'utf8')
    await writeFile(file, before.replace('    - pypi.org\n', '    - pypi.org\n    - "10.0.0.0/99"\n'))
    const bad = await airlock(['change', '--json'], {cwd: dir, env})
    expect(bad.exitCode).toBe(2)
    expect(bad.json.error.message).toMatch(/manifests\/egress\.yaml:\d+:\d+: spec\.allow\[1\]: "10\.0\.0\.0\/99" is not a CIDR range/)
    await writeFile(file, before.replace('    - pypi.org\n', '    - pypi.org\n    - api.example.test\n'))
    const plan = await airlock(['change', '--reason', 'the model API', '--json'], {cwd: dir, env})
    expect(plan.exitCode).toBe(0)
    expect(plan.json.plan.authorization).toMatchObject({resource: 'AgentKernel::DesiredState::"EgressPolicy"'})
    expect((await airlock(['change', '--reason', 'the model API', '--apply'], {cwd: dir, env})).exitCode).toBe(0)
    expect((await airlock(['egress', 'check', 'api.example.test', '--json'], {cwd: dir})).json.decision).toBe('allow')
    expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)
    expect(await git(dir, 'cat-file', 'commit', 'HEAD')).toMatch(/^gpgsig -----BEGIN SSH SIGNATURE-----/m)
  })

  it('denies every metadata name in upper case and with a trailing dot under the most permissive profile', async () => {
    // Permissive, private addresses allowed, and the metadata services themselves in the allow list.
    const file = join(fleet.dir, 'loosest-egress.yaml')
    const allow = [...METADATA_ADDRESSES, ...METADATA_NAMES, '*.internal', '*.goog'].map((x) => JSON.stringify(x)).join(', ')
    await writeFile(file, `apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: loosest\nspec:\n  profile: permissive\n  allowPrivate: true\n  allow: [${allow}]\n`)
    const names = [...METADATA_NAMES, 'instance-data.us-west-2.compute.internal']
    const targets = names.flatMap((n) => [n.toUpperCase(), `${n}.`, `http://${n.toUpperCase()}./latest/meta-data/`])
    const results = await Promise.all(targets.map((t) => airlock(['egress', 'check', t, '--policy', file, '--json'], {cwd: fleet.dir})))
    for (const [i, r] of results.entries()) {
      expect(r.exitCode, targets[i]).toBe(1)
      expect(r.json, targets[i]).toMatchObject({decision: 'deny', host: names[Math.floor(i / 3)], rule: expect.stringMatching(/^default blocklist \(cloud metadata\) \S+ \(always denied\)$/)})
    }
    const empty = await airlock(['egress', 'check', 'pypi.org..', '--policy', file, '--json'], {cwd: fleet.dir})
    expect(empty.exitCode).toBe(2)
    expect(empty.json.error).toMatchObject({code: 'INVALID_INPUT', message: expect.stringMatching(/pypi\.org\.\..*empty label/)})
  })
})
