import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {PolicyEngine, parseEntityUid, validateTree} from '../../../control-plane/policy/engine.js'
import {parseExactJson} from '../../../control-plane/policy/json.js'
import {loadPolicyTree, splitPolicies} from '../../../control-plane/policy/source.js'
import {ROOT, tempDir} from '../../helpers.js'

const t = await tempDir()
afterAll(() => t.cleanup())
const display = (abs: string) => abs.slice(t.dir.length + 1)

const SCHEMA = `namespace K {
  entity User { roles: Set<String>, level: Long };
  entity Box;
  action Run appliesTo { principal: User, resource: Box, context: { n?: Long } };
}`

async function tree(files: Record<string, string>, schema = SCHEMA) {
  const root = join(t.dir, `p${Math.random().toString(36).slice(2)}`)
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), {recursive: true})
    await writeFile(join(root, path), text)
  }
  await writeFile(join(root, 'schema.cedarschema'), schema)
  return loadPolicyTree(root, {display})
}

const alice = (level: number) => [{uid: {type: 'K::User', id: 'alice'}, attrs: {roles: ['dev'], level}, parents: []}, {uid: {type: 'K::Box', id: 'b'}, attrs: {}, parents: []}]
const run = {principal: {type: 'K::User', id: 'alice'}, action: {type: 'K::Action', id: 'Run'}, resource: {type: 'K::Box', id: 'b'}, context: {}}

describe('policy sources', () => {
  it('splits at top-level semicolons only (not in strings or comments)', () => {
    const text = '// a; comment\npermit(principal, action, resource) when { "x;y" == "x;y" };\n\n@id("b")\nforbid(principal, action, resource);\n'
    expect(splitPolicies(text).map((p) => p.text)).toEqual(['permit(principal, action, resource) when { "x;y" == "x;y" };', '@id("b")\nforbid(principal, action, resource);'])
  })

  it('gives each policy its @id or file:line, and its scope from the folder', async () => {
    const t1 = await tree({'global/a.cedar': '\n\npermit(principal, action, resource);\n@id("named") forbid(principal, action, resource);', 'orgs/acme/teams/web/b.cedar': 'permit(principal, action, resource);'})
    expect(t1.policies.map((p) => [p.id.replace(/^p\w+\//, ''), p.line, p.scope.kind])).toEqual([
      ['global/a.cedar:3', 3, 'global'],
      ['named', 4, 'global'],
      ['orgs/acme/teams/web/b.cedar:1', 1, 'team'],
    ])
  })

  it('validates the example policy tree of this repository', async () => {
    const example = await loadPolicyTree(join(ROOT, 'policies'), {display: (a) => a})
    expect(validateTree(example)).toEqual([])
    expect(example.policies.length).toBeGreaterThan(10)
  })

  describe('when policies are wrong', () => {
    it('names file:line:col of a syntax error', async () => {
      const bad = await tree({'global/a.cedar': 'permit(principal, action, resource);\n\npermit(principal, action, resource)\n  when { 1 + };'})
      const [p] = validateTree(bad)
      expect(p).toMatchObject({file: expect.stringMatching(/global\/a\.cedar$/), line: 4, column: 14})
    })
    it('names an unknown attribute with Cedar help', async () => {
      const bad = await tree({'global/a.cedar': 'permit(principal, action, resource)\nwhen { principal.levle > 1 };'})
      const [p] = validateTree(bad)
      expect(p).toMatchObject({line: 2, message: expect.stringContaining('levle'), help: expect.stringContaining('level')})
    })
    it('names a type error', async () => {
      const bad = await tree({'global/a.cedar': 'permit(principal, action, resource) when { principal.level == "high" };'})
      expect(validateTree(bad)).toHaveLength(1)
    })
    it('refuses a policy file outside a scope folder', async () => {
      await expect(tree({'misc/a.cedar': 'permit(principal, action, resource);'})).rejects.toMatchObject({code: 'INVALID_INPUT'})
    })
    it('refuses duplicate ids', async () => {
      await expect(tree({'global/a.cedar': '@id("x") permit(principal, action, resource);\n@id("x") forbid(principal, action, resource);'})).rejects.toMatchObject({message: expect.stringContaining('already used')})
    })
  })
})

describe('the engine', () => {
  it('denies by default and names the permitting policy', async () => {
    const e = PolicyEngine.create(await tree({'global/a.cedar': '@id("devs") permit(principal, action, resource) when { principal.roles.contains("dev") && principal.level > 2 };'}))
    expect(e.authorize({...run, entities: alice(1)})).toMatchObject({decision: 'deny', reasons: []})
    expect(e.authorize({...run, entities: alice(3)})).toMatchObject({decision: 'allow', reasons: [{id: 'devs', line: 1}]})
  })

  it('lets forbid win', async () => {
    const e = PolicyEngine.create(await tree({'global/a.cedar': '@id("p") permit(principal, action, resource);\n@id("f") forbid(principal, action, resource) when { principal.level > 5 };'}))
    expect(e.authorize({...run, entities: alice(9)})).toMatchObject({decision: 'deny', reasons: [{id: 'f'}]})
  })

  describe('when a policy cannot be evaluated', () => {
    const files = {'global/a.cedar': '@id("p") permit(principal, action, resource);\n@id("f") forbid(principal, action, resource) when { context.n > 1 };'}
    it('fails closed where Cedar would skip the erroring forbid and allow', async () => {
      const e = PolicyEngine.create(await tree(files, SCHEMA.replace('context: { n?: Long }', 'context: {}')))
      const d = e.authorize({...run, entities: alice(1)})
      expect(d).toMatchObject({decision: 'deny', failedClosed: true, reasons: [{id: 'f'}]})
      expect(d.errors[0]).toMatchObject({id: 'f', message: expect.stringContaining('n')})
    })
    it("with --fail-closed forbid, ignores an erroring permit's error", async () => {
      const e = PolicyEngine.create(await tree({'global/a.cedar': '@id("p") permit(principal, action, resource);\n@id("q") permit(principal, action, resource) when { context.n > 1 };'}, SCHEMA.replace('context: { n?: Long }', 'context: {}')), 'forbid')
      expect(e.authorize({...run, entities: alice(1)})).toMatchObject({decision: 'allow', failedClosed: false, reasons: [{id: 'p'}]})
    })
  })

  it('refuses a request that does not fit the schema', async () => {
    const e = PolicyEngine.create(await tree({'global/a.cedar': 'permit(principal, action, resource);'}))
    expect(() => e.authorize({...run, entities: [{uid: {type: 'K::User', id: 'alice'}, attrs: {roles: 'dev', level: 1}, parents: []}]})).toThrow(expect.objectContaining({code: 'INVALID_INPUT'}))
  })

  it('parses entity references in the Cedar CLI form', () => {
    expect(parseEntityUid('AgentKernel::User::"a\\"b"', 'x')).toEqual({type: 'AgentKernel::User', id: 'a"b'})
    expect(() => parseEntityUid('User:alice', '--principal')).toThrow(expect.objectContaining({code: 'USAGE'}))
  })
})

describe('exact integers', () => {
  it('passes integers a JS number holds exactly', () => {
    expect(parseExactJson('{"a": 9007199254740991, "b": -5}', 'x.json')).toEqual({a: 9007199254740991, b: -5})
  })
  it.each(['9007199254740993', '9223372036854775807', '-9007199254740993'])('refuses %s instead of rounding it', (n) => {
    expect(() => parseExactJson(`{"level": ${n}}`, 'ctx.json')).toThrow(expect.objectContaining({code: 'INVALID_INPUT', message: expect.stringContaining(n)}))
  })
})

describe('64-bit Longs in policies', () => {
  it('evaluates literals up to ±(2^63−1) exactly, with Cedar’s own overflow errors (fail closed)', async () => {
    const exact = PolicyEngine.create(await tree({'global/a.cedar': '@id("big") permit(principal, action, resource) when { 9223372036854775807 - 1 == 9223372036854775806 && -9223372036854775807 - 1 < 0 && 9007199254740993 != 9007199254740992 };'}))
    expect(exact.authorize({...run, entities: alice(1)}).decision).toBe('allow')
    const overflow = PolicyEngine.create(await tree({'global/a.cedar': '@id("ovf") permit(principal, action, resource) when { principal.level * 9223372036854775807 > 0 };'}), 'any')
    const d = overflow.authorize({...run, entities: alice(2)})
    expect(d.decision).toBe('deny')
    expect(d.failedClosed).toBe(true)
    expect(d.errors[0]!.message).toMatch(/overflow/i)
  })
})

describe('the decision cache', () => {
  it('answers a repeated request from the cache and keeps within its size', async () => {
    const e = PolicyEngine.create(await tree({'global/a.cedar': '@id("p") permit(principal, action, resource) when { principal.level > 2 };'}), 'any', {cacheSize: 2})
    const first = e.authorize({...run, entities: alice(3)})
    expect(e.authorize({...run, entities: alice(3)})).toBe(first)
    expect(e.authorize({...run, entities: alice(1)}).decision).toBe('deny')
    e.authorize({...run, entities: alice(7)})
    // Evicted (least recently used), so evaluated again: an equal decision, not the same object.
    const again = e.authorize({...run, entities: alice(3)})
    expect(again).not.toBe(first)
    expect(again).toEqual(first)
  })

  it('holds at most its size, least recently used out first', async () => {
    const e = PolicyEngine.create(await tree({'global/a.cedar': '@id("p") permit(principal, action, resource) when { principal.level > 2 };'}), 'any', {cacheSize: 3})
    const first = [1, 2, 3].map((n) => e.authorize({...run, context: {n}, entities: alice(3)}))
    // Touch n=1, so n=2 is the least recently used when n=4 comes in.
    expect(e.authorize({...run, context: {n: 1}, entities: alice(3)})).toBe(first[0])
    e.authorize({...run, context: {n: 4}, entities: alice(3)})
    expect(e.authorize({...run, context: {n: 1}, entities: alice(3)})).toBe(first[0])
    expect(e.authorize({...run, context: {n: 3}, entities: alice(3)})).toBe(first[2])
    expect(e.authorize({...run, context: {n: 2}, entities: alice(3)})).not.toBe(first[1])
  })

  describe('when an entity or the context changes', () => {
    const policy = '@id("p") permit(principal, action, resource) when { principal.level > 2 || (context has n && context.n > 10) || principal.roles.contains("admin") };'

    it('decides a changed entity again', async () => {
      const e = PolicyEngine.create(await tree({'global/a.cedar': policy}), 'any', {cacheSize: 100})
      expect(e.authorize({...run, entities: alice(3)}).decision).toBe('allow')
      expect(e.authorize({...run, entities: alice(2)}).decision).toBe('deny')
      expect(e.authorize({...run, entities: alice(3)}).decision).toBe('allow')
    })

    it('decides again when the same entities are changed in place (a set, an attribute, one more entity)', async () => {
      const e = PolicyEngine.create(await tree({'global/a.cedar': policy}), 'any', {cacheSize: 100})
      const entities = alice(1)
      const req = {...run, entities}
      expect(e.authorize(req).decision).toBe('deny')
      entities[0]!.attrs.roles.push('admin')
      expect(e.authorize(req).decision).toBe('allow')
      entities[0]!.attrs.roles.pop()
      expect(e.authorize(req).decision).toBe('deny')
      entities[0]!.attrs.level = 5
      expect(e.authorize(req).decision).toBe('allow')
      const before = e.authorize(req)
      entities.push({uid: {type: 'K::Box', id: 'c'}, attrs: {}, parents: []})
      expect(e.authorize(req)).not.toBe(before)
      expect(e.authorize(req)).toBe(e.authorize(req))
    })

    it('decides a changed context again, changed in place or not', async () => {
      const e = PolicyEngine.create(await tree({'global/a.cedar': policy}), 'any', {cacheSize: 100})
      const context: Record<string, unknown> = {n: 20}
      const req = {...run, context, entities: alice(1)}
      expect(e.authorize(req).decision).toBe('allow')
      context.n = 1
      expect(e.authorize(req).decision).toBe('deny')
      expect(e.authorize({...run, context: {}, entities: alice(1)}).decision).toBe('deny')
      expect(e.authorize({...run, context: {n: 20}, entities: alice(1)}).decision).toBe('allow')
    })

    it('gives every caller the same decision, which nobody can change', async () => {
      const e = PolicyEngine.create(await tree({'global/a.cedar': policy}), 'any', {cacheSize: 100})
      const d = e.authorize({...run, entities: alice(1)})
      expect(() => {
        ;(d as {decision: string}).decision = 'allow'
      }).toThrow(TypeError)
      expect(e.authorize({...run, entities: alice(1)}).decision).toBe('deny')
    })
  })
})
