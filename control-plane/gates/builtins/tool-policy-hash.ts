import {inputError} from '../../errors.js'
import type {BuiltinGate} from '../types.js'

const HASH = /^(sha256:)?[0-9a-f]{64}$/
const normal = (h: string) => (h.startsWith('sha256:') ? h : `sha256:${h}`)

/**
 * The tool policy's canonical hash equals `with.expected`, else the hash the last passing run of
 * this gate recorded; both are shown on a mismatch. With neither, it is not_run.
 */
export const toolPolicyHash: BuiltinGate = {
  name: 'tool-policy-hash',
  description: "the tool policy's canonical hash is the expected one (with: expected) or the last passing run's",
  checkWith(value, where) {
    for (const key of Object.keys(value)) if (key !== 'expected') throw inputError('SCHEMA_VIOLATION', {file: where.file, line: where.line, field: `${where.field}.${key}`}, 'is not a known field (expected)')
    if (value.expected !== undefined && (typeof value.expected !== 'string' || !HASH.test(value.expected))) throw inputError('SCHEMA_VIOLATION', {file: where.file, line: where.line, field: `${where.field}.expected`}, 'must be sha256:<64 hex>')
  },
  async run(ctx) {
    const [{parseToolPolicy}, {TOOL_POLICY_FILE}] = await Promise.all([import('../../policy/tools/tools.js'), import('../../manifests/models.js')])
    const found = await ctx.repo.readFile(ctx.commit, TOOL_POLICY_FILE)
    if (!found) return {status: 'not_run', reason: `no ${TOOL_POLICY_FILE} at this commit`}
    const hash = parseToolPolicy(found.text, TOOL_POLICY_FILE, ctx.limits).hash
    let expected: string | null = typeof ctx.with.expected === 'string' ? normal(ctx.with.expected) : null
    let source = 'with.expected'
    if (!expected && ctx.gateId) {
      const last = await ctx.lastPassing(ctx.gateId)
      const recorded = last?.evidence?.hash
      if (typeof recorded === 'string' && HASH.test(recorded)) {
        expected = normal(recorded)
        source = 'the last passing receipt'
      }
    }
    if (!expected) return {status: 'not_run', reason: 'no expected hash and no earlier passing receipt', evidence: {hash}}
    const evidence = {hash, expected, source}
    if (hash !== expected) return {status: 'fail', reason: `the tool policy's hash is ${hash}, but ${source} says ${expected}`, evidence}
    return {status: 'pass', reason: `${hash} (as ${source})`, evidence}
  },
}
