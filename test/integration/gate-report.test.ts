/**
 * `airlock gate report`: claim levels rise only as far as signed suite receipts in the verified
 * history show, and fall back when a later receipt of the same suite fails a gate of the area.
 * A real fleet (airlock init), real receipts recorded with --apply through the pipeline; the host
 * gate is a `run:` gate that reads a file, so the test can make it pass or fail.
 */
import {rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {judgeClaims} from '../../control-plane/gates/claims.js'
import type {SuiteReceipt} from '../../control-plane/evidence/promotion.js'
import type {GateSpec, TestResultStatement} from '../../control-plane/gates/types.js'
import {airlock, commitChange, initFleet} from '../helpers.js'

let fleet: Awaited<ReturnType<typeof initFleet>>
beforeAll(async () => {
  fleet = await initFleet()
})
afterAll(() => fleet.cleanup())

const GATES = `apiVersion: airlock/v1
kind: GateSuite
suites:
  preflight:
    gates:
      - id: history
        uses: builtin/history
      - id: isolation
        run: test ! -e BROKEN
        requires: [host]
  postsession:
    gates:
      - id: rollback-drill
        uses: builtin/rollback-drill
        with: {recovery_target: 10m}
        timeout: 10m
`

type Area = {area: string; level: string; receipts: string[]}
async function levels(): Promise<Record<string, string>> {
  const r = await airlock(['gate', 'report', '--json'], {cwd: fleet.dir})
  expect(r.exitCode, r.stderr).toBe(0)
  return Object.fromEntries((r.json.areas as Area[]).map((a) => [a.area, a.level]))
}
async function run(args: string[], code = 0) {
  const r = await airlock([...args, '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
  expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(code)
  return r
}

describe('airlock gate report', () => {
  it('rises with each kind of receipt, never past what they show, and falls back after a later failure', {timeout: 120_000}, async () => {
    await writeFile(join(fleet.dir, 'manifests', 'gates.yaml'), GATES)
    await commitChange(fleet.dir, fleet.env, 'gates for the claim levels')
    // No receipts: the areas with gates are implemented, the others have none.
    expect(await levels()).toEqual({'history-evidence': 'implemented', 'image-supply-chain': 'none', policy: 'none', secrets: 'none', isolation: 'implemented', recovery: 'implemented'})
    const below = await airlock(['gate', 'report', '--require', 'static-validated', '--json'], {cwd: fleet.dir})
    expect(below.exitCode).toBe(1)
    expect(below.json).toMatchObject({required: 'static-validated', met: false})

    // preflight without a host: the host gate is not run, so isolation stays implemented.
    await run(['preflight'])
    expect(await levels()).toMatchObject({'history-evidence': 'static-validated', isolation: 'implemented'})
    // On a lab host, every host gate passed.
    await run(['preflight', '--host'])
    expect(await levels()).toMatchObject({'history-evidence': 'host-validated', isolation: 'host-validated'})
    // A drill within target and a post-session pass on the digests the host run covered.
    await run(['postsession'])
    const after = await airlock(['gate', 'report', '--json'], {cwd: fleet.dir})
    const by = Object.fromEntries((after.json.areas as Area[]).map((a) => [a.area, a]))
    expect(by['history-evidence']).toMatchObject({level: 'production-ready'})
    expect(by.isolation).toMatchObject({level: 'production-ready'})
    expect(by['history-evidence']!.receipts).toHaveLength(2)
    // The drill runs only in postsession, never on a host run: static-validated is all its receipts show.
    expect(by.recovery).toMatchObject({level: 'static-validated'})

    // A later host run whose isolation gate fails outweighs the earlier pass.
    await writeFile(join(fleet.dir, 'BROKEN'), '')
    await run(['preflight', '--host'], 1)
    await rm(join(fleet.dir, 'BROKEN'))
    expect(await levels()).toMatchObject({'history-evidence': 'production-ready', isolation: 'implemented'})
  })
})

describe('judgeClaims', () => {
  const spec = (id: string, extra: Partial<GateSpec> = {}): GateSpec => ({id, with: {}, timeoutMs: 1000, needs: [], requires: [], required: true, mode: 'enforce', ...extra})
  const suites = {file: 'manifests/gates.yaml', sha256: 'x', suites: new Map([['preflight', [spec('scan', {uses: 'builtin/secret-scan'})]]])}
  const receipt = (untrusted: string | null, mode: 'enforce' | 'shadow', status: 'pass' | 'fail', at: number): {r: SuiteReceipt; specs: Map<string, GateSpec>} => ({
    r: {
      path: `docs/evidence/${at}.json`,
      sha256: 'x',
      finishedAt: new Date(at),
      untrusted,
      statement: {predicate: {suite: 'preflight', result: status === 'pass' || mode === 'shadow' ? 'PASSED' : 'FAILED', host: false, gates: [{id: 'scan', status, mode, required: true, reason: '', elapsedMs: 1}]}, subject: []} as unknown as TestResultStatement,
    },
    specs: new Map([['scan', spec('scan', {uses: 'builtin/secret-scan', mode})]]),
  })
  const secrets = (receipts: ReturnType<typeof receipt>[]) => judgeClaims(suites, receipts).find((a) => a.area === 'secrets')!.level

  it('counts only receipts whose signatures verify, and never a shadow gate', () => {
    expect(secrets([receipt(null, 'enforce', 'pass', 1)])).toBe('static-validated')
    expect(secrets([receipt('KEY_UNTRUSTED: signed by an unknown key', 'enforce', 'pass', 1)])).toBe('implemented')
    expect(secrets([receipt(null, 'shadow', 'pass', 1)])).toBe('implemented')
  })

  it('a later failure outweighs an earlier pass; a later pass restores it', () => {
    expect(secrets([receipt(null, 'enforce', 'pass', 1), receipt(null, 'enforce', 'fail', 2)])).toBe('implemented')
    expect(secrets([receipt(null, 'enforce', 'pass', 1), receipt(null, 'enforce', 'fail', 2), receipt(null, 'enforce', 'pass', 3)])).toBe('static-validated')
    // An untrusted failure is no one's word either.
    expect(secrets([receipt(null, 'enforce', 'pass', 1), receipt('KEY_UNTRUSTED', 'enforce', 'fail', 2)])).toBe('static-validated')
  })
})

describe('judgeClaims across suites', () => {
  type Rec = {id: string; status: 'pass' | 'fail' | 'not_run'}
  const SPECS: GateSpec[] = [
    {id: 'verify', uses: 'builtin/image-verify', with: {}, timeoutMs: 1, needs: [], requires: [], required: true, mode: 'enforce'},
    {id: 'align', uses: 'builtin/digest-align', with: {}, timeoutMs: 1, needs: [], requires: ['host'], required: true, mode: 'enforce'},
    {id: 'drill', uses: 'builtin/rollback-drill', with: {}, timeoutMs: 1, needs: [], requires: [], required: true, mode: 'enforce'},
  ]
  const head = {file: 'manifests/gates.yaml', sha256: 'x', suites: new Map([['preflight', SPECS.slice(0, 2)], ['postsession', SPECS.slice(2)]])}
  const run = (suite: string, at: number, host: boolean, gates: Rec[]) => ({
    r: {
      path: `docs/evidence/${suite}-${at}.json`,
      sha256: 'x',
      finishedAt: new Date(at),
      untrusted: null,
      statement: {
        subject: [{name: 'r.example/agent-runner', digest: {sha256: 'a'.repeat(64)}, annotations: {image: 'agent-runner', channel: 'canary'}}],
        predicate: {suite, host, result: gates.some((g) => g.status === 'fail') ? 'FAILED' : 'PASSED', gates: gates.map((g) => ({...g, mode: 'enforce', required: true, reason: '', elapsedMs: 1}))},
      } as unknown as TestResultStatement,
    },
    specs: new Map(SPECS.map((g) => [g.id, g])),
  })
  const images = (rs: ReturnType<typeof run>[]) => judgeClaims(head, rs).find((a) => a.area === 'image-supply-chain')!.level

  it('a preflight without a host: the host gate not run does not hold the static level back', () => {
    expect(images([run('preflight', 1, false, [{id: 'verify', status: 'pass'}, {id: 'align', status: 'not_run'}])])).toBe('static-validated')
    expect(images([run('preflight', 1, false, [{id: 'verify', status: 'pass'}, {id: 'align', status: 'fail'}])])).toBe('implemented')
  })

  it('production-ready needs the newest drill and postsession run on the digest to have passed', () => {
    const hosted = run('preflight', 1, true, [{id: 'verify', status: 'pass'}, {id: 'align', status: 'pass'}])
    const post = run('postsession', 2, false, [{id: 'drill', status: 'pass'}])
    expect(images([hosted, post])).toBe('production-ready')
    expect(images([hosted])).toBe('host-validated')
    // A drill that failed since outweighs the earlier pass.
    expect(images([hosted, post, run('postsession', 3, false, [{id: 'drill', status: 'fail'}])])).toBe('host-validated')
    expect(images([hosted, post, run('postsession', 3, false, [{id: 'drill', status: 'fail'}]), run('postsession', 4, false, [{id: 'drill', status: 'pass'}])])).toBe('production-ready')
  })
})
