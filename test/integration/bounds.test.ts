/**
 * Engines and file systems that cannot take what they are given: Cedar nested deeper than the
 * engine's stack is refused (TOO_LARGE, exit 2) wherever policies enter; a write into /proc, /sys
 * or /dev, or below a file, is refused at once (exit 2, naming the path) — never a hang, never an
 * internal error. Each test has a timeout, so a regression to hanging fails instead of waiting.
 */
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, commitSignedByHand, git, initFleet} from '../helpers.js'

let fleet: Awaited<ReturnType<typeof initFleet>>
beforeAll(async () => {
  fleet = await initFleet({sign: [`sha256:${'a1'.repeat(32)}`]})
})
afterAll(() => fleet.cleanup())

const NEXT = `sha256:${'a1'.repeat(32)}`
const PROMOTE = ['promote', 'agent-runner', '--to', 'canary', '--digest', NEXT]
const AUTHZ = ['authorize', '--principal', 'AgentKernel::User::"a"', '--action', 'AgentKernel::Action::"Promote"', '--resource', 'AgentKernel::Channel::"c"']
const nestedIfs = (n: number) => `@id("deep")\npermit(principal, action, resource)\nwhen { ${'if true then '.repeat(n)}true${' else false'.repeat(n)} };\n`
const TIMEOUT = 180_000

describe('Cedar nested deeper than the engine can recurse', () => {
  it(
    '500 nested ifs are TOO_LARGE (exit 2) naming file and line, in validate, test, authorize and change; never INTERNAL',
    async () => {
      const {dir, env} = fleet
      const file = join(dir, 'policies/global/deep.cedar')
      await writeFile(file, nestedIfs(500))
      try {
        for (const args of [['policy', 'validate'], ['policy', 'test'], [...AUTHZ, '--policies', 'policies'], ['change']]) {
          const r = await airlock([...args, '--json'], {cwd: dir, env})
          expect(r.exitCode, `${args.join(' ')}: ${r.stdout} ${r.stderr}`).toBe(2)
          expect(r.json.error.code, args.join(' ')).toBe('TOO_LARGE')
          expect(r.json.error.message, args.join(' ')).toMatch(/^policies\/global\/deep\.cedar:3: a Cedar expression nested deeper than 48 levels/)
          expect(`${r.stdout}${r.stderr}`).not.toMatch(/INTERNAL|internal error|memory access/)
        }
        const text = await airlock([...AUTHZ, '--policies', 'policies'], {cwd: dir})
        expect(text.exitCode).toBe(2)
        expect(text.stderr).toMatch(/policies\/global\/deep\.cedar:3: a Cedar expression nested deeper than 48 levels/)
      } finally {
        await rm(file)
      }
    },
    TIMEOUT,
  )

  it(
    'committed by a key holder, it stops the pipeline, authorize and sandbox check reading HEAD with TOO_LARGE (exit 2)',
    async () => {
      const {dir, env, key} = fleet
      await writeFile(join(dir, 'policies/global/deep.cedar'), nestedIfs(500))
      await commitSignedByHand(dir, key, 'a policy nested too deep')
      try {
        for (const args of [PROMOTE, AUTHZ, ['sandbox', 'check']]) {
          const r = await airlock([...args, '--json'], {cwd: dir, env})
          expect(r.exitCode, `${args.join(' ')}: ${r.stdout} ${r.stderr}`).toBe(2)
          expect(r.json.error.code, args.join(' ')).toBe('TOO_LARGE')
          expect(r.json.error.message, args.join(' ')).toMatch(/policies\/global\/deep\.cedar:3: a Cedar expression nested deeper than 48 levels/)
        }
      } finally {
        // Undone forward, as a rollback is: a rewritten branch would not verify.
        await rm(join(dir, 'policies/global/deep.cedar'))
        await commitSignedByHand(dir, key, 'the deep policy removed')
      }
    },
    TIMEOUT,
  )

  it(
    'a policy just under the limit is validated and decides',
    async () => {
      const {dir} = fleet
      const folder = join(dir, '..', 'just-under')
      await mkdir(join(folder, 'global'), {recursive: true})
      await writeFile(join(folder, 'global', 'deep.cedar'), nestedIfs(40))
      const validate = await airlock(['policy', 'validate', '--policies', folder, '--json'], {cwd: dir})
      expect(validate.exitCode, validate.stdout).toBe(0)
      const r = await airlock([...AUTHZ, '--policies', folder, '--json'], {cwd: dir})
      expect(r.exitCode, r.stdout).toBe(0)
      expect(r.json).toMatchObject({decision: 'allow', reasons: [{id: 'deep'}]})
    },
    TIMEOUT,
  )
})

describe('writes into places nothing can be written', () => {
  it.each([
    ['/proc', '/proc/airlock-plan.json', /\/proc is on proc, a kernel pseudo file system/],
    ['a folder below /proc', '/proc/airlock-x/plan.json', /\/proc is on proc, a kernel pseudo file system/],
    ['/proc/self', '/proc/self/airlock/plan.json', /is on proc, a kernel pseudo file system/],
    ['/sys', '/sys/airlock-x/plan.json', /\/sys is on sysfs, a kernel pseudo file system/],
    ['below a device', '/dev/null/plan.json', /\/dev\/null is a character device, not a folder/],
  ])(
    '--out into %s is exit 2 at once, naming the path',
    async (_name, out, why) => {
      const {dir} = fleet
      const r = await airlock([...PROMOTE, '--out', out, '--json'], {cwd: dir})
      expect(r.exitCode, r.stdout + r.stderr).toBe(2)
      expect(r.json.error.code).toBe('TARGET_UNWRITABLE')
      expect(r.json.error.message).toContain(out)
      expect(r.json.error.message).toMatch(why)
    },
    TIMEOUT,
  )

  it.each([
    ['/proc/airlock-fleet', /\/proc is on proc/],
    ['/proc/airlock-x/fleet', /\/proc is on proc/],
    ['/sys/airlock-fleet', /\/sys is on sysfs/],
    ['/sys/kernel/airlock-fleet', /\/sys\/kernel is on sysfs/],
    ['/dev/null/fleet', /\/dev\/null is a character device/],
  ])(
    'init %s is exit 2 at once, planned or applied, naming the path',
    async (target, why) => {
      for (const apply of [[], ['--apply']]) {
        const r = await airlock(['init', target, ...apply, '--json'], {cwd: fleet.dir})
        expect(r.exitCode, `${apply.join('')} ${r.stdout} ${r.stderr}`).toBe(2)
        expect(r.json.error.code).toBe('TARGET_UNWRITABLE')
        expect(r.json.error.message).toContain(target)
        expect(r.json.error.message).toMatch(why)
      }
    },
    TIMEOUT,
  )

  it(
    '--out into a new folder of a real file system still works',
    async () => {
      const {dir} = fleet
      const out = join(dir, '..', 'plans', 'deep', 'plan.json')
      const r = await airlock([...PROMOTE, '--out', out, '--json'], {cwd: dir})
      expect(r.exitCode, r.stdout).toBe(0)
      expect(JSON.parse(await readFile(out, 'utf8'))).toMatchObject({kind: 'Plan'})
      expect(await git(dir, 'status', '--porcelain')).toBe('')
    },
    TIMEOUT,
  )
})
