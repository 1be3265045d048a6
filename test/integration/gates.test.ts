/**
 * Gate suites end to end on a fleet made by `airlock init`: its scaffolded preflight passes with the
 * host gates not run; a suite with a failing, a hanging, a host-only, a shadow and a lying gate
 * fails as it should; receipts are committed through the pipeline (and `evidence verify` accepts
 * them) or written to a file; a bad gates file is refused naming file, line and field. The core
 * runs in-process where it can; the CLI a handful of times.
 */
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {BUILTINS} from '../../control-plane/gates/builtins/index.js'
import {buildGateReceipt, checkGateReceiptBase} from '../../control-plane/changes/gate-receipt.js'
import {sealPlan, serializePlan, type Plan} from '../../control-plane/plan/plan.js'
import {runGateSuite} from '../../control-plane/gates/run-suite.js'
import {runSuite} from '../../control-plane/gates/runner.js'
import {lastPassingRecord} from '../../control-plane/gates/statement.js'
import type {TestResultStatement} from '../../control-plane/gates/types.js'
import {checkReceiptSignatures, parseReceipt} from '../../control-plane/evidence/ledger.js'
import {loadTrust} from '../../control-plane/manifests/load.js'
import {DEFAULT_LIMITS} from '../../control-plane/limits.js'
import {Repository} from '../../control-plane/repo/repository.js'
import {checkScripts} from '../../control-plane/gates/builtins/static-validate.js'
import type {Finding} from '../../control-plane/gates/types.js'
import {airlock, commitChange, git, initFleet} from '../helpers.js'

let fleet: Awaited<ReturnType<typeof initFleet>>
beforeAll(async () => {
  fleet = await initFleet()
})
afterAll(() => fleet.cleanup())

const limits = DEFAULT_LIMITS
const clock = () => new Date()

async function head() {
  const repo = await Repository.open(fleet.dir)
  const {branch, commit} = await repo.base()
  return {repo, branch, commit, anchor: (await repo.config('airlock.trustAnchor')) ?? null}
}

/** XML well-formedness, enough for JUnit: tags nest and close, attribute and text escaped, no controls. */
function wellFormed(xml: string): boolean {
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(xml)) return false
  const body = xml.replace(/^<\?xml [^?]*\?>\s*/, '')
  const stack: string[] = []
  const re = /<(\/?)([A-Za-z][\w.-]*)((?:\s+[\w:-]+="[^"<&]*(?:&(?:lt|gt|amp|quot|apos);[^"<&]*)*")*)\s*(\/?)>|([^<]+)/g
  let consumed = 0
  for (const m of body.matchAll(re)) {
    if (m.index !== consumed) return false
    consumed += m[0].length
    if (m[5] !== undefined) {
      if (/&(?!(lt|gt|amp|quot|apos);)/.test(m[5])) return false
      continue
    }
    if (m[1]) {
      if (stack.pop() !== m[2]) return false
    } else if (!m[4]) stack.push(m[2]!)
  }
  return consumed === body.length && stack.length === 0
}

describe('the scaffolded suites on a fresh fleet', () => {
  it('postsession: audit-integrity not run (no audit folder given), the drill not run without the command\'s pipeline (required: fails the run)', async () => {
    const h = await head()
    const {run} = await runGateSuite({...h, suite: 'postsession', host: false, jobs: 2, limits, now: new Date(), clock, toolVersion: 'test'})
    expect(run.gates.map((g) => [g.id, g.status, g.reason])).toEqual([
      ['audit-integrity', 'not_run', 'no audit log folder was given to the run'],
      ['rollback-drill', 'not_run', expect.stringMatching(/^no pipeline context was handed to the drill/)],
      ['secret-rescan', 'pass', expect.stringMatching(/^no secrets in \d+ files/)],
      ['digest-align', 'not_run', 'requires a lab host (--host)'],
    ])
    // The drill is required: run without the command's pipeline (no keys, no identity) it cannot run, which fails the run.
    expect(run.exitCode).toBe(1)
  })

  it('a receipt is recorded for this base only', async () => {
    const h = await head()
    const {statement} = await runGateSuite({...h, suite: 'postsession', host: false, jobs: 2, limits, now: new Date(), clock, toolVersion: 'test'})
    expect(() => buildGateReceipt({commit: 'f'.repeat(40), branch: h.branch}, {kind: 'gate-receipt', statement: JSON.stringify(statement)}, limits)).toThrowAirlockError('STALE_PLAN')
    const bad = {...statement, predicate: {...statement.predicate, result: 'GREAT'}}
    expect(() => buildGateReceipt(h, {kind: 'gate-receipt', statement: JSON.stringify(bad)}, limits)).toThrowAirlockError('INVALID_INPUT')
  })
})

describe('a gate receipt comes only from the run that made it', () => {
  it('apply refuses a saved plan carrying one (PLAN_INVALID, exit 2), and the pipeline refuses a statement whose subjects, configuration or gates are not the base\'s', async () => {
    const h = await head()
    const {statement} = await runGateSuite({...h, suite: 'postsession', host: false, jobs: 2, limits, now: new Date(), clock, toolVersion: 'test'})
    // A keyless writer's forgery: a PASSED statement in a sealed plan an operator is asked to apply.
    const forged = {...statement, predicate: {...statement.predicate, result: 'PASSED', failedTests: [], passedTests: statement.predicate.gates.map((g) => `postsession/${g.id}`), gates: statement.predicate.gates.map((g) => ({...g, status: 'pass', reason: 'ok'}))}}
    const plan = sealPlan({apiVersion: 'airlock/v1', kind: 'Plan', base: {commit: h.commit, branch: h.branch}, request: {kind: 'gate-receipt', statement: JSON.stringify(forged)}, operation: 'gate-receipt', summary: 'record the postsession gate results (PASSED)', details: {}, subjects: [], changes: [], inputs: []} as unknown as Omit<Plan, 'digest'>)
    const file = join(fleet.dir, '..', 'forged.plan.json')
    await writeFile(file, serializePlan(plan))
    const r = await airlock(['apply', file, '--json'], {cwd: fleet.dir, env: fleet.env})
    expect(r.exitCode).toBe(2)
    expect(r.json.error).toMatchObject({code: 'PLAN_INVALID', details: {field: 'request.kind'}})
    expect((await head()).commit).toBe(h.commit)
    // In the pipeline too, only the outcome comes from the run: subjects, gates file and gate ids are the base's.
    const build = (st: TestResultStatement) => checkGateReceiptBase(h.repo, h, st, limits)
    await expect(build(statement)).resolves.toBeUndefined()
    const otherDigest = {...statement, subject: statement.subject.map((x) => (x.annotations ? {...x, digest: {sha256: 'e'.repeat(64)}} : x))}
    await expect(build(otherDigest)).rejects.toMatchObject({code: 'INVALID_INPUT', details: {field: 'statement.subject'}})
    const otherConfig = {...statement, predicate: {...statement.predicate, configuration: [{name: 'manifests/gates.yaml', digest: {sha256: 'f'.repeat(64)}}]}}
    await expect(build(otherConfig)).rejects.toMatchObject({details: {field: 'statement.predicate.configuration'}})
    const fewerGates = {...statement, predicate: {...statement.predicate, gates: statement.predicate.gates.slice(1)}}
    await expect(build(fewerGates)).rejects.toMatchObject({details: {field: 'statement.predicate.gates'}})
  })
})

describe('a signed run speaks for the commit', () => {
  it('refuses --out and --apply while a tracked file differs from HEAD (UNCOMMITTED_CHANGES, exit 3), naming it; a plain run goes ahead', async () => {
    const file = join(fleet.dir, 'README.md')
    const text = await readFile(file, 'utf8').catch(() => null)
    const target = text === null ? join(fleet.dir, 'manifests', 'egress.yaml') : file
    const before = await readFile(target, 'utf8')
    await writeFile(target, `${before}\n# an edit nobody committed\n`)
    try {
      const out = join(fleet.dir, '..', 'dirty.receipt.json')
      const r = await airlock(['postsession', '--out', out, '--json'], {cwd: fleet.dir, env: fleet.env})
      expect(r.exitCode).toBe(3)
      expect(r.json.error).toMatchObject({code: 'UNCOMMITTED_CHANGES', details: {files: [target.slice(fleet.dir.length + 1)]}})
      const plain = await airlock(['postsession', '--json'], {cwd: fleet.dir, env: fleet.env})
      expect(plain.json.error).toBeUndefined()
    } finally {
      await writeFile(target, before)
    }
  })
})

describe('airlock preflight --apply on a fresh fleet', () => {
  it('passes with the host gates not run, and commits a signed receipt through the pipeline, which evidence verify accepts; JUnit is well-formed', async () => {
    const junit = join(fleet.dir, '..', 'preflight.xml')
    const base = await head()
    const summary = join(fleet.dir, '..', 'step-summary.md')
    await writeFile(summary, '# earlier step\n')
    const r = await airlock(['preflight', '--apply', '--junit', junit, '--json'], {cwd: fleet.dir, env: {...fleet.env, GITHUB_STEP_SUMMARY: summary}})
    expect(r.exitCode, r.stderr).toBe(0)
    // Appended to what earlier steps wrote: a Markdown table of the run.
    const md = await readFile(summary, 'utf8')
    expect(md).toMatch(/^# earlier step\n### airlock preflight: PASSED\n/)
    expect(md).toContain('| acceptance | NOT RUN | 0ms | requires a lab host (--host) |')
    // Every gate but the host gates passes on a fresh fleet; those are not run and do not fail it.
    const states = Object.fromEntries((r.json.gates as Array<{id: string; status: string}>).map((g) => [g.id, g.status]))
    expect(states).toEqual({'static-validate': 'pass', history: 'pass', 'image-verify': 'pass', 'secret-scan': 'pass', 'tool-policy-hash': 'pass', 'digest-align': 'not_run', 'nested-smoke': 'not_run', acceptance: 'not_run'})
    expect(r.json.gates.find((g: {id: string}) => g.id === 'acceptance').reason).toBe('requires a lab host (--host)')
    // shellcheck is what .ci/run installs; the gate says which it used (or that it is missing).
    expect(r.json.gates.find((g: {id: string}) => g.id === 'static-validate').evidence).toMatchObject({shellcheck: expect.any(String), policyTests: {failed: 0}})
    const statement = r.json.statement as TestResultStatement
    expect(statement.predicate).toMatchObject({result: 'PASSED', suite: 'preflight', baseCommit: base.commit, branch: 'refs/heads/main', host: false, failedTests: [], warnedTests: []})
    expect(statement.predicate.configuration[0]).toMatchObject({name: 'manifests/gates.yaml', digest: {sha256: expect.stringMatching(/^[0-9a-f]{64}$/)}})
    // Subjects: the commit, both pinned digests (with image and channel), the tool and egress policies.
    expect(statement.subject[0]).toEqual({name: 'git:refs/heads/main', digest: {gitCommit: base.commit}})
    expect(statement.subject.filter((s) => s.annotations).map((s) => s.annotations)).toEqual([
      {image: 'agent-runner', channel: 'canary'},
      {image: 'agent-runner', channel: 'stable'},
    ])
    expect(statement.subject.map((s) => s.name)).toEqual(expect.arrayContaining(['manifests/tool-policy.yaml', 'manifests/egress.yaml']))
    const {commit, path} = r.json.receipt.committed
    expect(path).toMatch(/^docs\/evidence\/.*-gate-receipt-preflight-[0-9a-f]{8}\.json$/)
    const v = await airlock(['evidence', 'verify', '--json'], {cwd: fleet.dir})
    expect(v.exitCode, v.stdout).toBe(0)
    expect(v.json.receipts.map((x: {path: string}) => x.path)).toContain(path)
    const h = await head()
    expect(h.commit).toBe(commit)
    const receipt = parseReceipt((await h.repo.readFile(commit, path))!.text, path, limits)
    expect((receipt.statement as TestResultStatement).predicate.passedTests).toEqual(['preflight/static-validate', 'preflight/history', 'preflight/image-verify', 'preflight/secret-scan', 'preflight/tool-policy-hash'])
    const xml = await readFile(junit, 'utf8')
    expect(wellFormed(xml)).toBe(true)
    expect(xml).toContain('<testsuite name="preflight" tests="8" failures="0" errors="0" skipped="3"')
    expect(xml).toContain('<skipped message="requires a lab host (--host)"/>')
  })

  it('tool-policy-hash with no expected hash compares with the last passing receipt', async () => {
    const h = await head()
    const last = await lastPassingRecord(h.repo, h.commit, 'preflight', 'tool-policy-hash', limits)
    expect(last?.evidence?.hash).toMatch(/^sha256:/)
    const gate = {id: 'tool-policy-hash', uses: 'builtin/tool-policy-hash', with: {}, timeoutMs: 60_000, needs: [], requires: [], required: true, mode: 'enforce' as const}
    const context = {repo: h.repo, commit: h.commit, dir: fleet.dir, limits, now: new Date(), lastPassing: (id: string) => lastPassingRecord(h.repo, h.commit, 'preflight', id, limits)}
    const run = await runSuite({suite: 'preflight', gates: [gate], jobs: 1, host: false, builtins: BUILTINS, context, runCommand: async () => ({status: 'fail', reason: 'no'}), clock})
    expect(run.gates[0]).toMatchObject({status: 'pass', reason: `${String(last!.evidence!.hash)} (as the last passing receipt)`})
    const none = await runSuite({suite: 'preflight', gates: [gate], jobs: 1, host: false, builtins: BUILTINS, context: {...context, lastPassing: async () => null}, runCommand: async () => ({status: 'fail', reason: 'no'}), clock})
    expect(none.gates[0]).toMatchObject({status: 'not_run', reason: 'no expected hash and no earlier passing receipt'})
  })
})

describe('a suite with gates that fail, hang, need a host, run in shadow and lie', () => {
  it('fails (exit 1) with each gate as it ended, and --out writes a receipt signed by the evidence key', async () => {
    const file = join(fleet.dir, 'manifests', 'gates.yaml')
    const drill = `  drill:
    gates:
      - id: ok
        uses: builtin/history
      - id: fails
        run: echo failing; exit 7
      - id: hangs
        run: sleep 600
        timeout: 2s
      - id: host-only
        run: "true"
        requires: [host]
      - id: shadow
        run: exit 1
        mode: shadow
      - id: lies
        run: echo PASS=5 FAIL=1
        expect: {pass: 6, fail: 0}
      - id: loud
        run: head -c 3000000 /dev/zero | tr '\\0' y
`
    await writeFile(file, `${await readFile(file, 'utf8')}${drill}`)
    await commitChange(fleet.dir, fleet.env, 'add the drill suite')
    const out = join(fleet.dir, '..', 'drill.receipt.json')
    const r = await airlock(['gate', 'run', 'drill', '--jobs', '3', '--out', out, '--json'], {cwd: fleet.dir, env: fleet.env})
    expect(r.exitCode, r.stderr).toBe(1)
    const by = Object.fromEntries((r.json.gates as Array<{id: string; status: string; reason: string}>).map((g) => [g.id, [g.status, g.reason]]))
    expect(by).toEqual({
      ok: ['pass', expect.any(String)],
      fails: ['fail', 'exited with 7'],
      hangs: ['fail', 'timed out after 2s; its process group was killed'],
      'host-only': ['not_run', 'requires a lab host (--host)'],
      shadow: ['fail', 'exited with 1'],
      lies: ['fail', 'PASS=5 FAIL=1, expected PASS=6 FAIL=0'],
      loud: ['pass', 'exited 0'],
    })
    expect(r.json).toMatchObject({result: 'FAILED', passedTests: ['drill/ok', 'drill/loud'], warnedTests: ['drill/shadow'], failedTests: ['drill/fails', 'drill/hangs', 'drill/lies']})
    expect(r.json.gates.find((g: {id: string}) => g.id === 'loud').evidence.output).toMatchObject({bytes: 3_000_000, truncated: true})
    // The file is a receipt any clone can check against the fleet's trust.
    const h = await head()
    const receipt = parseReceipt(await readFile(out, 'utf8'), out, limits)
    expect(checkReceiptSignatures(receipt, await loadTrust(h.repo, h.commit, limits)).problem).toBeUndefined()
    expect((receipt.statement as TestResultStatement).predicate.result).toBe('FAILED')

    const list = await airlock(['gate', 'list', '--json'], {cwd: fleet.dir})
    expect(list.json.suites.map((s: {name: string}) => s.name)).toEqual(['preflight', 'postsession', 'drill'])
    expect(list.json.suites[2].gates[3]).toMatchObject({id: 'host-only', requires: ['host'], mode: 'enforce', run: 'true'})
    // A fleet made by init runs airlock's own validate scripts on a lab host.
    expect(list.json.suites[0].gates.find((g: {id: string}) => g.id === 'acceptance')).toMatchObject({run: 'bash "$AIRLOCK_ROOT/platform/validate/acceptance.sh"', requires: ['host'], expect: {pass: 6, fail: 0}})
  })

  it('preflight and postsession themselves, end to end: a gate forced to fail, one to hang, one not run, one in shadow; each exits as the rule says', {timeout: 120_000}, async () => {
    const file = join(fleet.dir, 'manifests', 'gates.yaml')
    const original = await readFile(file, 'utf8')
    const suites = `apiVersion: airlock/v1
kind: GateSuite
suites:
  preflight:
    gates:
      - {id: history, uses: builtin/history}
      - {id: secret-scan, uses: builtin/secret-scan, with: {external: false}}
      - {id: forced-fail, run: "exit 4"}
      - {id: forced-hang, run: "sleep 600", timeout: 2s}
      - {id: lab-only, run: "true", requires: [host]}
      - {id: shadowed, run: "exit 1", mode: shadow}
  postsession:
    gates:
      - {id: rollback-drill, uses: builtin/rollback-drill, with: {recovery_target: 10m}, timeout: 10m}
      - {id: lab-only, run: "true", requires: [host]}
      - {id: shadowed, run: "exit 1", mode: shadow}
`
    await writeFile(file, suites)
    await commitChange(fleet.dir, fleet.env, 'suites with forced outcomes')
    try {
      const pre = await airlock(['preflight', '--json'], {cwd: fleet.dir, env: fleet.env})
      expect(pre.exitCode).toBe(1)
      const by = Object.fromEntries((pre.json.gates as Array<{id: string; status: string; reason: string}>).map((g) => [g.id, [g.status, g.reason]]))
      expect(by).toMatchObject({history: ['pass', expect.any(String)], 'secret-scan': ['pass', expect.any(String)], 'forced-fail': ['fail', 'exited with 4'], 'forced-hang': ['fail', 'timed out after 2s; its process group was killed'], 'lab-only': ['not_run', 'requires a lab host (--host)'], shadowed: ['fail', 'exited with 1']})
      expect(pre.json).toMatchObject({suite: 'preflight', result: 'FAILED', failedTests: ['preflight/forced-fail', 'preflight/forced-hang'], warnedTests: ['preflight/shadowed']})
      // postsession: the drill passes, the host gate is not run, the shadow gate fails without failing the run.
      const post = await airlock(['postsession', '--json'], {cwd: fleet.dir, env: fleet.env})
      expect(post.exitCode, post.stderr).toBe(0)
      expect(post.json).toMatchObject({suite: 'postsession', result: 'WARNED', passedTests: ['postsession/rollback-drill'], warnedTests: ['postsession/shadowed'], failedTests: []})
      expect(post.json.gates.find((g: {id: string}) => g.id === 'lab-only')).toMatchObject({status: 'not_run'})
    } finally {
      await writeFile(file, original)
      await commitChange(fleet.dir, fleet.env, 'the scaffolded suites again')
    }
  })

  it('a bad gates file (a needs cycle) is refused naming the file, line and field (exit 2)', async () => {
    const file = join(fleet.dir, 'manifests', 'gates.yaml')
    const text = await readFile(file, 'utf8')
    await writeFile(file, `${text}  cyclic:\n    gates:\n      - id: a\n        run: "true"\n        needs: [b]\n      - id: b\n        run: "true"\n        needs: [a]\n`)
    const r = await airlock(['change', '--json'], {cwd: fleet.dir, env: fleet.env})
    await writeFile(file, text)
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('SCHEMA_VIOLATION')
    expect(r.json.error.message).toMatch(/^manifests\/gates\.yaml:\d+:\d+: suites\.cyclic\.gates\[\d\]\.needs: needs form a cycle: (a → b → a|b → a → b)$/)
  })
})

describe('static-validate on shell scripts under platform/', () => {
  it('checks them at the commit with bash -n and shellcheck, and says when shellcheck is missing', async () => {
    await mkdir(join(fleet.dir, 'platform', 'validate'), {recursive: true})
    await writeFile(join(fleet.dir, 'platform/validate/broken.sh'), '#!/usr/bin/env bash\nif true; then\n  echo "never closed\n')
    await writeFile(join(fleet.dir, 'platform/validate/sloppy.sh'), '#!/usr/bin/env bash\ncd /tmp\necho done\n')
    // platform/ is not desired state: a plain commit.
    await git(fleet.dir, 'add', 'platform')
    await git(fleet.dir, 'commit', '-q', '-m', 'add validate scripts')
    const h = await head()
    const findings: Finding[] = []
    const r = await checkScripts({repo: h.repo, commit: h.commit, signal: new AbortController().signal}, findings)
    expect(r).toMatchObject({scripts: 2, shellcheck: expect.stringMatching(/^\d/)})
    expect(findings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ruleId: 'static/bash-syntax', level: 'error', file: 'platform/validate/broken.sh'}),
        expect.objectContaining({tool: 'shellcheck', ruleId: 'SC2164', level: 'warning', file: 'platform/validate/sloppy.sh', line: 2}),
      ]),
    )
    const without: Finding[] = []
    expect(await checkScripts({repo: h.repo, commit: h.commit, signal: new AbortController().signal}, without, {shellcheck: 'airlock-test-no-such-shellcheck'})).toEqual({scripts: 2, shellcheck: 'not installed'})
    expect(without.map((f) => f.ruleId)).toEqual(['static/bash-syntax'])
  })
})

describe('recording a gate receipt is authorized like any change', () => {
  it('refuses --apply to someone the fleet\'s policies do not let record gate results (exit 1, DENIED)', async () => {
    // Out of the scratch org: a local operator (no roles) may no longer record gate results.
    const trust = join(fleet.dir, 'manifests', 'trust.yaml')
    await writeFile(trust, (await readFile(trust, 'utf8')).replace(/org: local-[0-9a-f]+/, 'org: acme'))
    await commitChange(fleet.dir, fleet.env, 'the fleet joins acme')
    const before = (await head()).commit
    const r = await airlock(['postsession', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
    expect(r.exitCode).toBe(1)
    expect(r.json.error).toMatchObject({code: 'DENIED', message: expect.stringContaining('ChangeDesiredState of AgentKernel::DesiredState::"GateResult"')})
    expect((await head()).commit).toBe(before)
  })
})
