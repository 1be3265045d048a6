import {readdir} from 'node:fs/promises'
import {readRegularFile} from '../repo/files.js'
import {dirname, join, resolve} from 'node:path'
import {AirlockError, inputError} from '../errors.js'
import type {Limits} from '../limits.js'
import {loadYaml, locate} from '../manifests/yaml.js'
import {formatUid, parseEntityUid, type PolicyEngine} from './engine.js'
import {exactValue, parseExactJson} from './json.js'

export interface TestCaseResult {
  file: string
  name: string
  expected: 'allow' | 'deny'
  actual: 'allow' | 'deny' | 'error'
  expectedReasons: string[] | null
  reasons: string[]
  ok: boolean
  message: string | null
  request: string
}

interface CaseDoc {
  name?: string
  principal?: string
  action?: string
  resource?: string
  context?: Record<string, unknown>
  expect?: string
  reasons?: string[]
}

/** Runs every case of every `*.yaml` test file in `dir` (in the spirit of `cedar run-tests`). */
export async function runPolicyTests(engine: PolicyEngine, dir: string, opts: {limits: Limits; display: (abs: string) => string}): Promise<TestCaseResult[]> {
  const names = (await readdir(dir).catch(() => {
    throw new AirlockError('INVALID_INPUT', `${dir}: no such test folder`, {path: dir})
  })).filter((n) => /\.ya?ml$/.test(n)).sort()
  if (names.length === 0) throw new AirlockError('INVALID_INPUT', `${dir}: no *.yaml test files`, {path: dir})
  const results: TestCaseResult[] = []
  for (const name of names) {
    const abs = resolve(dir, name)
    const file = opts.display(abs)
    const loaded = loadYaml(await readRegularFile(abs, {maxBytes: opts.limits.maxFileBytes, label: file}), file, opts.limits)
    const doc = loaded.value as {entities?: unknown; cases?: CaseDoc[]} | null
    if (!doc || !Array.isArray(doc.cases)) throw inputError('SCHEMA_VIOLATION', {file, ...locate(loaded, ['cases']), field: 'cases'}, 'a test file needs a list of cases')
    let entities: unknown[] = []
    if (typeof doc.entities === 'string') {
      const path = join(dirname(abs), doc.entities)
      entities = parseExactJson(await readRegularFile(path, {maxBytes: opts.limits.maxFileBytes, label: opts.display(path)}).catch((error: Error) => {
        throw inputError('INVALID_INPUT', {file, ...locate(loaded, ['entities']), field: 'entities'}, error.message)
      }), opts.display(path)) as unknown[]
    } else if (Array.isArray(doc.entities)) entities = exactValue(doc.entities, file) as unknown[]
    for (const [i, c] of doc.cases.entries()) {
      const at = (field: string) => ({file, ...locate(loaded, ['cases', i, field]), field: `cases[${i}].${field}`})
      for (const field of ['name', 'principal', 'action', 'resource', 'expect'] as const) {
        if (typeof c[field] !== 'string') throw inputError('SCHEMA_VIOLATION', at(field), 'is required (a string)')
      }
      if (c.expect !== 'allow' && c.expect !== 'deny') throw inputError('SCHEMA_VIOLATION', at('expect'), 'must be allow or deny')
      const request = {
        principal: parseEntityUid(c.principal!, `${file}: cases[${i}].principal`),
        action: parseEntityUid(c.action!, `${file}: cases[${i}].action`),
        resource: parseEntityUid(c.resource!, `${file}: cases[${i}].resource`),
        context: (exactValue(c.context ?? {}, file) ?? {}) as Record<string, unknown>,
        entities,
      }
      const shown = `${formatUid(request.principal)} ${formatUid(request.action)} ${formatUid(request.resource)}`
      const expectedReasons = Array.isArray(c.reasons) ? [...c.reasons].sort() : null
      const base = {file, name: c.name!, expected: c.expect as 'allow' | 'deny', expectedReasons, request: shown}
      try {
        const d = engine.authorize(request)
        const reasons = d.reasons.map((r) => r.id).sort()
        const wrongDecision = d.decision !== c.expect
        const wrongReasons = expectedReasons !== null && JSON.stringify(reasons) !== JSON.stringify(expectedReasons)
        const message = wrongDecision
          ? `expected ${c.expect}, got ${d.decision}${d.failedClosed ? ` (failed closed: ${d.errors.map((e) => e.message).join('; ')})` : ''}`
          : wrongReasons
            ? `expected reasons [${expectedReasons!.join(', ')}], got [${reasons.join(', ')}]`
            : null
        results.push({...base, actual: d.decision, reasons, ok: message === null, message})
      } catch (error) {
        results.push({...base, actual: 'error', reasons: [], ok: false, message: (error as Error).message})
      }
    }
  }
  return results
}

function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&${{'<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos'}[c]};`)
}

/** JUnit XML, one testsuite per test file. */
export function junitXml(results: TestCaseResult[]): string {
  const files = [...new Set(results.map((r) => r.file))]
  const suites = files.map((file) => {
    const cases = results.filter((r) => r.file === file)
    const body = cases
      .map((r) => `    <testcase classname="${xml(file)}" name="${xml(r.name)}">${r.ok ? '' : `<failure message="${xml(r.message ?? '')}">${xml(r.request)}</failure>`}</testcase>`)
      .join('\n')
    return `  <testsuite name="${xml(file)}" tests="${cases.length}" failures="${cases.filter((r) => !r.ok).length}">\n${body}\n  </testsuite>`
  })
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites tests="${results.length}" failures="${results.filter((r) => !r.ok).length}">\n${suites.join('\n')}\n</testsuites>\n`
}
