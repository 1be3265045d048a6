/**
 * Every pattern in the JSON Schemas, checked with a maintained ReDoS analyzer (recheck, its
 * pure-JS backend): none may backtrack super-linearly. And the guard for patterns that come
 * from the repository (certificate subjectRegExp) refuses the classic exponential shapes.
 */
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {check} from 'recheck'
import {describe, expect, it} from 'vitest'
import {checkAnchoredPattern} from '../../../control-plane/manifests/pattern.js'
import {ROOT} from '../../helpers.js'

const SCHEMAS = join(ROOT, 'control-plane', 'manifests', 'schemas')

/** Every `pattern` value and `patternProperties` key in a schema, with where it is. */
function patternsOf(value: unknown, at: string, out: Array<[string, string]>): Array<[string, string]> {
  if (Array.isArray(value)) value.forEach((v, i) => patternsOf(v, `${at}[${i}]`, out))
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'pattern' && typeof v === 'string') out.push([at, v])
      if (k === 'patternProperties' && v && typeof v === 'object') for (const p of Object.keys(v)) out.push([`${at}.patternProperties`, p])
      patternsOf(v, `${at}.${k}`, out)
    }
  }
  return out
}

const all = readdirSync(SCHEMAS)
  .filter((f) => f.endsWith('.json'))
  .flatMap((f) => patternsOf(JSON.parse(readFileSync(join(SCHEMAS, f), 'utf8')), f, []))

describe('schema patterns run in linear time', () => {
  it('finds the patterns to check', () => {
    expect(all.length).toBeGreaterThan(5)
  })

  it.each(all)('%s: %s', async (_where, pattern) => {
    // ajv compiles schema patterns with the u flag.
    const r = await check(pattern, 'u', {timeout: 20_000})
    expect(r.status, JSON.stringify(r)).toBe('safe')
  })
})

describe('patterns from the repository', () => {
  it('refuses subject patterns that can backtrack exponentially', () => {
    for (const p of ['^(a+)+$', '^(https://github.com/.*)*$', '^([a-z]+)*@x$']) expect(checkAnchoredPattern(p), p).toMatch(/backtrack/)
    expect(checkAnchoredPattern('^https://github\\.com/acme/[a-z-]+/\\.github/workflows/release\\.yml@refs/heads/main$')).toBeNull()
  })
})
