/**
 * Cedar text is measured for expression depth before the engine (wasm) recurses into it, and an
 * engine that traps all the same fails closed with POLICY_ENGINE_FAILED, never an internal error.
 * The engine's trap leaves the module unusable, so this file runs in a process of its own.
 */
import {describe, expect, it} from 'vitest'
import {AirlockError} from '../../../control-plane/errors.js'
import {checkCedarDepth, DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {PolicyEngine, validateTree} from '../../../control-plane/policy/engine.js'
import type {PolicyTree} from '../../../control-plane/policy/source.js'

const policy = (cond: string) => `permit(principal, action, resource) when { ${cond} };`
const ifs = (n: number) => policy(`${'if true then '.repeat(n)}true${' else false'.repeat(n)}`)
const chain = (n: number, op = '||') => policy(Array(n).fill('context.a == 1').join(` ${op} `))
const tree = (text: string): PolicyTree => ({root: 'test', schema: null, policies: [{id: 'p', file: 'deep.cedar', line: 1, column: 1, offset: 0, text, scope: {kind: 'global'}}]})
const request = {principal: {type: 'U', id: 'a'}, action: {type: 'A', id: 'a'}, resource: {type: 'R', id: 'r'}, context: {a: 1}, entities: []}

function tooLarge(text: string): AirlockError {
  try {
    checkCedarDepth(text, 'policies/global/deep.cedar')
  } catch (error) {
    return error as AirlockError
  }
  throw new Error('not refused')
}

describe('checkCedarDepth', () => {
  it.each([
    ['500 nested ifs', ifs(500)],
    ['an || chain of 500', chain(500)],
    ['an && chain of 500', chain(500, '&&')],
    ['a + chain of 500', policy(`${Array(500).fill('1').join(' + ')} == 1`)],
    ['a . chain of 500', policy(`context${'.a'.repeat(500)} == 1`)],
    ['500 method calls', policy(`[1]${'.contains(1)'.repeat(500)}`)],
    ['an if chain in else branches', policy(`${'if false then false else '.repeat(500)}true`)],
    ['a chain of bracketed chains', policy(Array(60).fill('(context.a == 1 || (context.a == 2 || (context.a == 3)))').join(' || '))],
  ])('refuses %s: TOO_LARGE naming file and line', (_name, text) => {
    const error = tooLarge(`// a comment\n${text}`)
    expect(error.code).toBe('TOO_LARGE')
    expect(error.message).toMatch(/^policies\/global\/deep\.cedar:2: a Cedar expression nested deeper than 48 levels/)
    expect(error.details).toMatchObject({file: 'policies/global/deep.cedar', line: 2, limit: DEFAULT_LIMITS.maxCedarDepth})
  })

  it('passes policies just under the limit, and long lists that do not nest', () => {
    for (const text of [ifs(44), chain(43), policy(`context.a in [${Array(5000).fill('1').join(', ')}]`), policy(Array(40).fill('context.a == 1').join(' || ')) + '\n'.repeat(3) + ifs(40)]) {
      expect(() => checkCedarDepth(text, 'x')).not.toThrow()
    }
    // Strings and comments are not expressions.
    expect(() => checkCedarDepth(policy(`context.s == "${'if ( || '.repeat(500)}"`) + `\n// ${'if '.repeat(500)}`, 'x')).not.toThrow()
  })

  it('the deepest policies that pass are decided by the real engine', () => {
    const decision = PolicyEngine.create(tree(ifs(44))).authorize(request)
    expect(decision).toMatchObject({decision: 'allow', failedClosed: false})
    expect(PolicyEngine.create(tree(chain(43))).authorize(request).decision).toBe('allow')
  })
})

describe('when the engine traps', () => {
  it('a decision fails closed as deny, named POLICY_ENGINE_FAILED, and the engine is not believed afterwards', () => {
    // Built in code, past the measure every loader applies: the real engine traps on it.
    const engine = PolicyEngine.create(tree(chain(2000)))
    const decision = engine.authorize(request)
    expect(decision).toMatchObject({decision: 'deny', failedClosed: true, reasons: [], errors: [{id: 'POLICY_ENGINE_FAILED', message: expect.stringMatching(/the Cedar engine failed while deciding a request \((RuntimeError|RangeError): /)}]})
    // A trapped module answers every later call with the trap: nothing it says is used.
    expect(engine.authorize(request).decision).toBe('deny')
    let error: AirlockError | undefined
    try {
      validateTree(tree(ifs(1)))
    } catch (e) {
      error = e as AirlockError
    }
    expect(error).toBeInstanceOf(AirlockError)
    expect(error!.code).toBe('POLICY_ENGINE_FAILED')
    expect(() => PolicyEngine.create(tree(policy('true')))).toThrow(/the Cedar engine failed while/)
  })
})
