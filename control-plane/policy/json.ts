import {isInteger, parse} from 'lossless-json'
import {AirlockError} from '../errors.js'
import {checkNesting} from '../limits.js'

const MAX = BigInt(Number.MAX_SAFE_INTEGER)

/**
 * Parses entity or context JSON without rounding numbers. Cedar's Long is 64-bit, but a JS
 * number holds integers exactly only up to ±2^53; a rounded value could flip a decision, so
 * any integer the engine cannot receive exactly is refused, naming the value and where it is.
 * Duplicate keys are refused too: two readers of the text could see different values.
 */
export function parseExactJson(text: string, source: string, use = 'passed to the policy engine'): unknown {
  checkNesting(text, source, 'json')
  try {
    return parse(text, null, (value: string) => {
      if (!isInteger(value)) return Number(value)
      const n = BigInt(value)
      if (n > MAX || n < -MAX) {
        throw new AirlockError('INVALID_INPUT', `${source}: the integer ${value} cannot be ${use} exactly (limit ±${MAX}); refusing rather than rounding it`, {
          file: source,
          value,
        })
      }
      return Number(n)
    })
  } catch (error) {
    if (error instanceof AirlockError) throw error
    throw new AirlockError('INVALID_INPUT', `${source}: not valid JSON (${(error as Error).message})`, {file: source})
  }
}

/** The same check for values that arrive already parsed (YAML test files read with BigInt integers). */
export function exactValue(value: unknown, source: string): unknown {
  if (typeof value === 'bigint') {
    if (value > MAX || value < -MAX) {
      throw new AirlockError('INVALID_INPUT', `${source}: the integer ${value} cannot be passed to the policy engine exactly; refusing rather than rounding it`, {file: source, value: String(value)})
    }
    return Number(value)
  }
  if (Array.isArray(value)) return value.map((v) => exactValue(v, source))
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, exactValue(v, source)]))
  return value
}
