/**
 * A suite run's receipt as a registered kind of receipt (evidence/predicates.ts): an in-toto
 * Statement with the test-result predicate (types.ts). Its time is `finishedAt`, its base the
 * commit the suite ran on; the ledger checks its signatures like any receipt's.
 */
import type {ReceiptKind} from '../evidence/predicates.js'
import {TEST_RESULT_PREDICATE_TYPE, type TestResultStatement} from './types.js'

const RESULTS = new Set(['PASSED', 'WARNED', 'FAILED'])
const STATUSES = new Set(['pass', 'fail', 'not_run'])

export const TEST_RESULT_RECEIPT: ReceiptKind<TestResultStatement> = {
  predicateType: TEST_RESULT_PREDICATE_TYPE,
  shapeProblem(p) {
    if (typeof p.result !== 'string' || !RESULTS.has(p.result)) return 'predicate.result must be PASSED, WARNED or FAILED'
    for (const field of ['passedTests', 'warnedTests', 'failedTests'] as const) {
      const list = p[field]
      if (!Array.isArray(list) || !list.every((t) => typeof t === 'string')) return `predicate.${field} must be a list of strings`
    }
    if (!Array.isArray(p.configuration)) return 'predicate.configuration must be a list'
    for (const field of ['suite', 'startedAt', 'finishedAt', 'branch'] as const) if (typeof p[field] !== 'string') return `predicate.${field} must be a string`
    if (typeof p.baseCommit !== 'string' || !/^[0-9a-f]{40}$/.test(p.baseCommit)) return 'predicate.baseCommit must be a commit id'
    if (!Array.isArray(p.gates)) return 'predicate.gates must be a list'
    for (const [i, g] of (p.gates as unknown[]).entries()) {
      const gate = g as Record<string, unknown> | null
      if (!gate || typeof gate !== 'object' || typeof gate.id !== 'string' || typeof gate.status !== 'string' || !STATUSES.has(gate.status)) return `predicate.gates[${i}] must have an id and a status of pass, fail or not_run`
    }
    return null
  },
  timeField: 'predicate.finishedAt',
  time: (s) => s.predicate.finishedAt,
  baseCommit: (s) => s.predicate.baseCommit,
  label: (s) => `gate-${s.predicate.suite}`,
}
