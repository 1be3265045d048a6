/**
 * `airlock egress check` on a fleet made by `airlock init` (which scaffolds a restrictive
 * manifests/egress.yaml), and egress policy changes through the pipeline like any other.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, git, initFleet} from '../helpers.js'

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
})
