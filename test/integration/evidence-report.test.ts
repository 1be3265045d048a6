/**
 * `airlock evidence report` and `airlock evidence sample` through the built CLI on a real fleet:
 * Markdown on stdout, OSCAL written atomically into --out and valid against NIST's 1.2.2 schema,
 * HTML refused until its renderer is part of the build, samples recomputed the same, and each
 * bad request refused with its code and exit code.
 */
import {existsSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Ajv} from 'ajv'
import addFormats from 'ajv-formats'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, git, initFleet, ROOT, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
let fleet: Fleet

beforeAll(async () => {
  fleet = await initFleet({sign: [NEXT]})
  const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'soaked', '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
  expect(r.exitCode, r.stderr).toBe(0)
}, 120_000)
afterAll(() => fleet.cleanup())

describe('airlock evidence report', () => {
  it('prints the Markdown report by default, gaps stated', async () => {
    const r = await airlock(['evidence', 'report'], {cwd: fleet.dir})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^# airlock compliance report/)
    expect(r.stdout).toMatch(/^\| AU-2 \| Event Logging \| GAP \|.*no audit checkpoint has been published/m)
    expect(r.stdout).toMatch(/^\| \S+ \| promote \| agent-runner \| canary \|/m)
  })

  it('writes OSCAL assessment results into --out that validate against the NIST 1.2.2 schema', async () => {
    const out = join(fleet.dir, '..', 'out')
    const r = await airlock(['evidence', 'report', '--format', 'oscal', '--out', out, '--json'], {cwd: fleet.dir})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.json.written).toEqual([join(out, 'assessment-results.json')])
    const doc = JSON.parse(await readFile(join(out, 'assessment-results.json'), 'utf8'))
    const ajv = new Ajv({unicodeRegExp: true, allErrors: true})
    addFormats(ajv)
    const validate = ajv.compile(JSON.parse(await readFile(join(ROOT, 'test', 'fixtures', 'oscal', 'oscal_assessment-results_schema.json'), 'utf8')))
    expect(validate(doc), JSON.stringify(validate.errors?.slice(0, 5))).toBe(true)
    expect(doc['assessment-results'].metadata.version).toBe(await git(fleet.dir, 'rev-parse', 'HEAD'))
    // The same history, the same document.
    await airlock(['evidence', 'report', '--format', 'oscal', '--out', `${out}2`], {cwd: fleet.dir})
    const again = JSON.parse(await readFile(join(`${out}2`, 'assessment-results.json'), 'utf8'))
    again['assessment-results'].metadata['last-modified'] = doc['assessment-results'].metadata['last-modified']
    again['assessment-results'].results[0].end = doc['assessment-results'].results[0].end
    expect(again).toEqual(doc)
  })

  it('keeps to one framework (--framework hipaa), written as report.md', async () => {
    const out = join(fleet.dir, '..', 'hipaa')
    const r = await airlock(['evidence', 'report', '--framework', 'hipaa', '--out', out], {cwd: fleet.dir})
    expect(r.exitCode, r.stderr).toBe(0)
    const md = await readFile(join(out, 'report.md'), 'utf8')
    expect(md).toContain('## HIPAA Security Rule')
    expect(md).not.toContain('## FedRAMP')
    expect(md).toMatch(/^\| 164\.312\(b\) \| Audit controls \| GAP/m)
  })

  it('--format html: the page when its renderer is built, else USAGE "not built yet"', async () => {
    const out = join(fleet.dir, '..', 'html')
    const r = await airlock(['evidence', 'report', '--format', 'html', '--out', out, '--json'], {cwd: fleet.dir})
    if (existsSync(join(ROOT, 'dist', 'control-plane', 'evidence', 'report', 'html.js'))) {
      expect(r.exitCode, r.stderr).toBe(0)
      expect(await readFile(join(out, 'report.html'), 'utf8')).toContain('<html')
    } else {
      expect(r.exitCode).toBe(2)
      expect(r.json.error.code).toBe('USAGE')
      expect(r.json.error.message).toContain('not built yet')
      expect(existsSync(out)).toBe(false)
    }
  })

  it('refuses an unknown framework (USAGE, exit 2)', async () => {
    const r = await airlock(['evidence', 'report', '--framework', 'pci', '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('USAGE')
  })
})

describe('airlock evidence sample', () => {
  it('draws the same commits each time and prints seed, procedure and members', async () => {
    const a = await airlock(['evidence', 'sample', '--control', 'CM-3', '--size', '2', '--json'], {cwd: fleet.dir})
    expect(a.exitCode, a.stderr).toBe(0)
    const b = await airlock(['evidence', 'sample', '--control', 'CM-3', '--size', '2', '--json'], {cwd: fleet.dir})
    expect(b.json).toEqual(a.json)
    const range = await git(fleet.dir, 'rev-list', 'HEAD')
    for (const m of a.json.members) expect(range).toContain(m)
    const human = await airlock(['evidence', 'sample', '--control', 'CM-3', '--size', '2'], {cwd: fleet.dir})
    expect(human.stdout).toContain('seed (head commit')
    expect(human.stdout).toContain(`): ${a.json.seed}`)
    expect(human.stdout).toContain('procedure: seed = the root or commit id')
    for (const m of a.json.members) expect(human.stdout).toContain(m)
  })

  describe('when it cannot sample', () => {
    it('a control with no population (USAGE, exit 2)', async () => {
      const r = await airlock(['evidence', 'sample', '--control', 'AC-3', '--size', '2', '--json'], {cwd: fleet.dir})
      expect([r.exitCode, r.json.error.code]).toEqual([2, 'USAGE'])
    })
    it('a --checkpoint file that is not a signed checkpoint (AUDIT_CHECKPOINT_INVALID)', async () => {
      const file = join(fleet.dir, '..', 'bogus.checkpoint')
      await writeFile(file, 'airlock.audit/x\n3\nAAAA\n')
      const r = await airlock(['evidence', 'sample', '--control', 'AU-2', '--size', '2', '--checkpoint', file, '--json'], {cwd: fleet.dir})
      expect(r.json.error.code).toBe('AUDIT_CHECKPOINT_INVALID')
    })
  })
})
