/**
 * SARIF 2.1.0 output validated against the OASIS schema vendored in test/fixtures/sarif/ (its
 * source and version in the README beside it), with GitHub code scanning's rules on top: one run
 * per tool with its own automationDetails.id, rule metadata, partialFingerprints, relative URIs
 * under %SRCROOT%, startLine ≥ 1, and the upload limits.
 */
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Ajv, type ValidateFunction} from 'ajv'
import addFormats from 'ajv-formats'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {FINGERPRINT_KEY, policyFindings, sandboxFindings, toolPolicyFindings, toSarif, writeSarif} from '../../../control-plane/gates/sarif.js'
import type {Finding} from '../../../control-plane/gates/types.js'
import {ROOT, tempDir} from '../../helpers.js'

/** The parts of a SARIF log the assertions read (each log is checked against the SARIF schema too). */
interface SarifResult {
  ruleId: string
  ruleIndex: number
  level: string
  message: {text: string}
  partialFingerprints: Record<string, string>
  suppressions?: unknown[]
  locations: Array<{physicalLocation: {artifactLocation: {uri: string; uriBaseId: string}; region: {startLine: number}}}>
}
interface SarifRun {
  tool: {driver: {name: string; version: string; informationUri: string; rules: Array<{id: string}>}}
  automationDetails: {id: string}
  results: SarifResult[]
  properties: {airlock: {truncated: {results: number; kept: number; limit: number}; droppedTools: string[]}}
}
const sarifRuns = (log: unknown) => (log as {runs: SarifRun[]}).runs

let validate: ValidateFunction
let t: Awaited<ReturnType<typeof tempDir>>

beforeAll(async () => {
  const schema = JSON.parse(await readFile(join(ROOT, 'test/fixtures/sarif/sarif-schema-2.1.0.json'), 'utf8'))
  // The schema is draft-07: ajv's default class; formats (uri, date-time) checked too.
  // unicodeRegExp off: the schema's `language` pattern is not valid under the u flag.
  const ajv = new Ajv({allErrors: true, strict: false, unicodeRegExp: false})
  addFormats.default(ajv)
  validate = ajv.compile(schema)
  t = await tempDir('airlock-sarif-')
})
afterAll(() => t.cleanup())

const OPTS = {category: 'airlock/preflight', airlockVersion: '0.1.0'}

const secret = (over: Partial<Finding> = {}): Finding => ({
  tool: 'airlock-secret-scan',
  ruleId: 'secret/github/github-token',
  level: 'error',
  message: 'possible secret (github/github-token); value not shown, fingerprint 0123456789abcdef',
  file: 'src/config.env',
  line: 2,
  column: 14,
  fingerprint: '0123456789abcdef'.repeat(4),
  ...over,
})

function expectValid(log: unknown): void {
  const ok = validate(log)
  expect(ok, JSON.stringify(validate.errors?.slice(0, 3))).toBe(true)
}

describe('toSarif', () => {
  it('validates against the SARIF 2.1.0 schema: one run per tool, rule metadata, fingerprints, located results', async () => {
    const findings: Finding[] = [
      secret(),
      secret({ruleId: 'secret/privatekey/private-key', file: 'deploy/id rsa', line: 1, column: 1, fingerprint: 'f'.repeat(64)}),
      secret({message: 'baselined: …', level: 'note', suppression: {kind: 'baseline', justification: 'revoked fixture'}, fingerprint: 'e'.repeat(64)}),
      {tool: 'gitleaks', ruleId: 'gitleaks/aws-access-token', level: 'error', message: 'possible secret', file: 'src/app.ts', line: 4, fingerprint: 'd'.repeat(64)},
      ...sandboxFindings([{rule: 'MOUNT_SYSTEM_PATH', file: 'manifests/sandboxes/agent-runner.yaml', line: 12, column: 9, field: 'spec.mounts[0].source', message: '"/etc" is a system path'}]),
      ...policyFindings([{message: 'unrecognized entity type `Usr`', help: 'did you mean `User`?', policyId: 'p1', file: 'policies/global/control-plane.cedar', line: 3, column: 1}, {message: 'schema does not parse'}]),
      ...toolPolicyFindings([{code: 'SCHEMA_HASH_MISMATCH', tool: 'web.fetch', file: 'manifests/tool-policy.yaml', line: 8, field: 'allowed[0].schemaHash', message: 'does not match'}]),
    ]
    const file = join(t.dir, 'out.sarif')
    const log = await writeSarif(file, findings, OPTS)
    const read = JSON.parse(await readFile(file, 'utf8'))
    expect(read).toEqual(log)
    expectValid(read)
    expect(read.version).toBe('2.1.0')
    const runs = sarifRuns(read)
    expect(runs.map((r) => r.tool.driver.name)).toEqual(['airlock-secret-scan', 'gitleaks', 'airlock-sandbox-check', 'airlock-policy', 'airlock-tool-policy'])
    const ids = runs.map((r) => r.automationDetails.id)
    expect(ids).toEqual(['airlock/preflight/airlock-secret-scan/', 'airlock/preflight/gitleaks/', 'airlock/preflight/airlock-sandbox-check/', 'airlock/preflight/airlock-policy/', 'airlock/preflight/airlock-tool-policy/'])
    for (const run of runs) {
      expect(run.tool.driver).toMatchObject({version: expect.any(String), informationUri: expect.stringMatching(/^https:\/\//)})
      for (const rule of run.tool.driver.rules) {
        expect(rule).toMatchObject({id: expect.any(String), shortDescription: {text: expect.any(String)}, fullDescription: {text: expect.any(String)}, help: {text: expect.any(String)}, defaultConfiguration: {level: expect.stringMatching(/^(error|warning|note)$/)}})
      }
      for (const result of run.results) {
        expect(run.tool.driver.rules[result.ruleIndex].id).toBe(result.ruleId)
        expect(result.partialFingerprints[FINGERPRINT_KEY]).toMatch(/^[0-9a-f]{64}$/)
        const loc = result.locations[0].physicalLocation
        expect(loc.artifactLocation.uriBaseId).toBe('%SRCROOT%')
        expect(loc.artifactLocation.uri).not.toMatch(/^(\/|[a-z]+:)/)
        expect(loc.region.startLine).toBeGreaterThanOrEqual(1)
      }
    }
    const secretRun = runs[0]!
    expect(secretRun.results.find((r) => r.ruleId === 'secret/github/github-token' && r.level === 'error')!.partialFingerprints[FINGERPRINT_KEY]).toBe('0123456789abcdef'.repeat(4))
    expect(secretRun.results.find((r) => r.level === 'note')!.suppressions).toEqual([{kind: 'external', state: 'accepted', justification: 'revoked fixture'}])
    expect(secretRun.results.find((r) => r.ruleId === 'secret/privatekey/private-key')!.locations[0].physicalLocation.artifactLocation.uri).toBe('deploy/id%20rsa')
    // A finding with no line (a schema that does not parse) points at line 1 of its file.
    const noLine = runs[3]!.results.find((r) => r.message.text === 'schema does not parse')!
    expect(noLine.locations[0].physicalLocation).toEqual({artifactLocation: {uri: 'policies/schema.cedarschema', uriBaseId: '%SRCROOT%'}, region: {startLine: 1}})
  })

  it('keeps rule ids and fingerprints stable from one run to the next', () => {
    const a = toSarif([secret(), ...sandboxFindings([{rule: 'PRIVILEGED', file: 'manifests/sandboxes/x.yaml', line: 4, field: 'spec.security.privileged', message: 'must be false'}])], OPTS)
    const b = toSarif([...sandboxFindings([{rule: 'PRIVILEGED', file: 'manifests/sandboxes/x.yaml', line: 9, field: 'spec.security.privileged', message: 'must be false'}]), secret()], OPTS)
    const fp = (log: unknown, tool: string) => sarifRuns(log).find((r) => r.tool.driver.name === tool)!.results[0]!.partialFingerprints[FINGERPRINT_KEY]
    // The sandbox finding moved down five lines: same fingerprint.
    expect(fp(a, 'airlock-sandbox-check')).toBe(fp(b, 'airlock-sandbox-check'))
    expect(fp(a, 'airlock-secret-scan')).toBe(fp(b, 'airlock-secret-scan'))
  })

  it('caps results per run (errors first) and runs per file to the upload limits, and says so', () => {
    const many = Array.from({length: 30}, (_, i) => secret({line: i + 1, level: i % 3 === 0 ? 'error' : 'warning', fingerprint: i.toString(16).padStart(64, '0')}))
    const log = toSarif(many, {...OPTS, limits: {maxResultsPerRun: 10}})
    expectValid(log)
    const [first] = sarifRuns(log)
    expect(first!.results).toHaveLength(10)
    expect(first!.results.every((r) => r.level === 'error')).toBe(true)
    expect(first!.properties.airlock.truncated).toEqual({results: 30, kept: 10, limit: 10})
    const tools = Array.from({length: 4}, (_, i) => secret({tool: `tool-${i}`}))
    const capped = toSarif(tools, {...OPTS, limits: {maxRuns: 2}})
    expectValid(capped)
    expect(sarifRuns(capped)).toHaveLength(2)
    expect(sarifRuns(capped)[1]!.properties.airlock.droppedTools).toEqual(['tool-2', 'tool-3'])
    // The compressed size: results halved until the log fits.
    const big = Array.from({length: 400}, (_, i) => secret({line: i + 1, message: `m${i} ${'x'.repeat(200)}`, fingerprint: undefined}))
    const small = toSarif(big, {...OPTS, limits: {maxGzipBytes: 4000}})
    expectValid(small)
    expect(sarifRuns(small)[0]!.results.length).toBeLessThan(400)
    expect(sarifRuns(small)[0]!.properties.airlock.truncated.results).toBe(400)
  })

  it('refuses a finding outside the repository', () => {
    expect(() => toSarif([secret({file: '../etc/passwd'})], OPTS)).toThrowAirlockError('INVALID_INPUT')
  })

  it('an empty scan is a valid log with no runs', () => {
    const log = toSarif([], OPTS)
    expectValid(log)
    expect(log.runs).toEqual([])
  })
})
