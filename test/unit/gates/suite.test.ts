import {describe, expect, it} from 'vitest'
import {AirlockError} from '../../../control-plane/errors.js'
import {BUILTINS} from '../../../control-plane/gates/builtins/index.js'
import {exampleGates} from '../../../control-plane/gates/example.js'
import {DEFAULT_GATE_TIMEOUT_MS, parseGateSuites} from '../../../control-plane/gates/suite.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'

const FILE = 'manifests/gates.yaml'
const head = 'apiVersion: airlock/v1\nkind: GateSuite\nsuites:\n  preflight:\n    gates:\n'
const parse = (gates: string) => parseGateSuites(head + gates, FILE, DEFAULT_LIMITS, BUILTINS)

/** The error a bad file gives: code, and a message naming file:line and the field. */
function errorOf(gates: string): AirlockError {
  try {
    parse(gates)
  } catch (error) {
    if (error instanceof AirlockError) return error
    throw error
  }
  throw new Error('no error')
}

describe('gate suites file', () => {
  it('reads gates with their defaults', () => {
    const s = parse('      - id: a\n        uses: builtin/history\n      - id: b\n        run: "true"\n        needs: [a]\n        timeout: 90s\n        mode: shadow\n        required: false\n        requires: [host]\n        expect: {pass: 6, fail: 0}\n')
    const [a, b] = s.suites.get('preflight')!
    expect(a).toMatchObject({id: 'a', uses: 'builtin/history', timeoutMs: DEFAULT_GATE_TIMEOUT_MS, needs: [], requires: [], required: true, mode: 'enforce', line: 6})
    expect(b).toMatchObject({id: 'b', run: 'true', timeoutMs: 90_000, needs: ['a'], requires: ['host'], required: false, mode: 'shadow', expect: {pass: 6, fail: 0}, line: 8})
    expect(s.sha256).toMatch(/^[0-9a-f]{64}$/)
  })

  it('reads the scaffold it ships', () => {
    const s = parseGateSuites(exampleGates({toolPolicyHash: `sha256:${'a'.repeat(64)}`}), FILE, DEFAULT_LIMITS, BUILTINS)
    expect([...s.suites.keys()]).toEqual(['preflight', 'postsession'])
    expect(s.suites.get('preflight')!.find((g) => g.id === 'acceptance')).toMatchObject({requires: ['host'], expect: {pass: 6, fail: 0}, needs: ['nested-smoke']})
  })

  describe('when a gate is wrong, it names the file, line and field (exit 2)', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['an unknown builtin', '      - id: a\n        uses: builtin/nope\n', /^manifests\/gates\.yaml:7:\d+: suites\.preflight\.gates\[0\]\.uses: unknown builtin "builtin\/nope"/],
      ['a duplicate id', '      - id: a\n        run: "true"\n      - id: a\n        run: "true"\n', /^manifests\/gates\.yaml:8:\d+: suites\.preflight\.gates\[1\]\.id: duplicate gate id "a"/],
      ['a needs cycle', '      - id: a\n        run: "true"\n        needs: [c]\n      - id: b\n        run: "true"\n        needs: [a]\n      - id: c\n        run: "true"\n        needs: [b]\n', /^manifests\/gates\.yaml:\d+:\d+: suites\.preflight\.gates\[\d\]\.needs: needs form a cycle: (a → c → b → a|c → b → a → c|b → a → c → b)/],
      ['a need that is not a gate of the suite', '      - id: a\n        run: "true"\n        needs: [ghost]\n', /^manifests\/gates\.yaml:8:\d+: suites\.preflight\.gates\[0\]\.needs\[0\]: "ghost" is not a gate of suite preflight/],
      ['both uses and run', '      - id: a\n        uses: builtin/history\n        run: "true"\n', /^manifests\/gates\.yaml:8:\d+: suites\.preflight\.gates\[0\]\.run: a gate has uses: or run:, not both/],
      ['neither uses nor run', '      - id: a\n        timeout: 5m\n', /^manifests\/gates\.yaml:6:\d+: suites\.preflight\.gates\[0\]: a gate needs one of uses/],
      ['a bad timeout', '      - id: a\n        run: "true"\n        timeout: soon\n', /^manifests\/gates\.yaml:8:\d+: suites\.preflight\.gates\[0\]\.timeout: "soon" is not a duration/],
      ['a timeout longer than a day', '      - id: a\n        run: "true"\n        timeout: 30d\n', /^manifests\/gates\.yaml:8:\d+: suites\.preflight\.gates\[0\]\.timeout: "30d" is longer than a gate may run \(24h\)/],
      ['an unknown key', '      - id: a\n        run: "true"\n        retries: 3\n', /^manifests\/gates\.yaml:8:\d+: suites\.preflight\.gates\[0\]\.retries: is not a known field/],
      ["a builtin's bad with:", '      - id: a\n        uses: builtin/digest-align\n        with: {channel: canary}\n', /^manifests\/gates\.yaml:8: suites\.preflight\.gates\[0\]\.with\.runtime: is required/],
      ['expect: on a builtin', '      - id: a\n        uses: builtin/history\n        expect: {pass: 1, fail: 0}\n', /^manifests\/gates\.yaml:8:\d+: suites\.preflight\.gates\[0\]\.expect: expect: applies to run: gates only/],
    ]
    for (const [what, gates, message] of cases) {
      it(what, () => {
        const e = errorOf(gates)
        expect(e.code).toBe('SCHEMA_VIOLATION')
        expect(e.message).toMatch(message)
      })
    }
  })
})
