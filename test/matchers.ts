/**
 * `expect(fn).toThrowAirlockError('CODE')` and `await expect(promise).rejects.toThrowAirlockError('CODE')`:
 * the error must be an AirlockError (not just anything with a `code`) with that code.
 */
import {expect} from 'vitest'
import {AirlockError} from '../control-plane/errors.js'

declare module 'vitest' {
  // vitest 5's extension point: every Assertion (and .rejects/.resolves) extends Matchers<R, T>.
  interface Matchers<R extends void | Promise<void> = void | Promise<void>, T = unknown> {
    toThrowAirlockError(code: string): R
  }
}

expect.extend({
  toThrowAirlockError(received: unknown, code: string) {
    let error: unknown = received
    if (typeof received === 'function') {
      error = undefined
      try {
        received()
      } catch (e) {
        error = e
      }
    }
    const ok = error instanceof AirlockError && error.code === code
    const what = error instanceof AirlockError ? `AirlockError ${error.code}: ${error.message}` : error === undefined ? 'nothing thrown' : `${(error as Error)?.constructor?.name ?? typeof error}: ${String((error as Error)?.message ?? error)}`
    return {pass: ok, message: () => `expected an AirlockError ${code}${this.isNot ? ' not' : ''}, got ${what}`}
  },
})
