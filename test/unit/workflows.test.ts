/**
 * .github/workflows/*.yml: valid against the GitHub workflow schema (SchemaStore's, through
 * @action-validator/core), and every `airlock …` / `npx airlock …` they run names a command and
 * flags airlock has: read from oclif.manifest.json (written by `npm run build`, which `npm ci`
 * runs), so a renamed flag fails here before it fails in a pipeline.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'
import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'
import {ROOT} from '../helpers.js'

const {validateWorkflow} = createRequire(import.meta.url)('@action-validator/core') as typeof import('@action-validator/core')

const WORKFLOWS = join(ROOT, '.github', 'workflows')

interface FlagSpec {
  type: 'boolean' | 'option'
  char?: string
  allowNo?: boolean
  exclusive?: string[]
}
interface CommandSpec {
  flags: Record<string, FlagSpec>
  args: {name: string; required?: boolean}[]
  strict: boolean
}
type Commands = Map<string, CommandSpec>

function loadCommands(): Commands {
  const file = join(ROOT, 'oclif.manifest.json')
  if (!existsSync(file)) throw new Error('oclif.manifest.json is missing: run npm run build')
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as {commands: Record<string, {flags: Record<string, FlagSpec>; args: Record<string, {name: string; required?: boolean}>; strict?: boolean}>}
  const commands: Commands = new Map()
  for (const [id, c] of Object.entries(manifest.commands)) commands.set(id, {flags: c.flags, args: Object.values(c.args ?? {}), strict: c.strict !== false})
  return commands
}

// ---- finding `airlock …` in a step's shell script ----

const OPERATORS = ['&&', '||', ';;', ';', '|', '&', '(', ')', '`']
const REDIRECT = /^(\d*|&)(>>?|<)(&\d+)?$/
const ATTACHED_REDIRECT = /^(\d*|&)(>>?|<)/
const KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', 'time', 'exec', 'command', '{', '}'])

/** The script with each `$( … )` replaced by a word, and the scripts inside them (quoted or not). */
function substitutions(text: string): {outer: string; inner: string[]} {
  const inner: string[] = []
  let outer = ''
  for (let i = 0; i < text.length; ) {
    if (text.startsWith('$(', i)) {
      let depth = 1
      let j = i + 2
      for (; j < text.length && depth > 0; j++) {
        if (text[j] === '(') depth += 1
        else if (text[j] === ')') depth -= 1
      }
      const body = text.slice(i + 2, j - 1)
      const nested = substitutions(body)
      inner.push(nested.outer, ...nested.inner)
      outer += 'SUBST'
      i = j
    } else {
      outer += text[i]
      i += 1
    }
  }
  return {outer, inner}
}

/** Words and operators of a shell script, quotes removed; good enough for the commands a workflow runs. */
function lex(script: string): {word?: string; op?: string}[] {
  const {outer, inner} = substitutions(script.replace(/\\\n/g, ' ').replace(/\$\{\{[^}]*\}\}/g, 'EXPR'))
  const text = [outer, ...inner].join('\n')
  const out: {word?: string; op?: string}[] = []
  let word: string | undefined
  const end = () => {
    if (word !== undefined) out.push({word})
    word = undefined
  }
  for (let i = 0; i < text.length; ) {
    const ch = text[i]!
    if (ch === '\n') {
      end()
      out.push({op: ';'})
      i += 1
    } else if (ch === ' ' || ch === '\t') {
      end()
      i += 1
    } else if (ch === '#' && word === undefined) {
      while (i < text.length && text[i] !== '\n') i += 1
    } else if (ch === "'") {
      const close = text.indexOf("'", i + 1)
      word = (word ?? '') + text.slice(i + 1, close < 0 ? text.length : close)
      i = close < 0 ? text.length : close + 1
    } else if (ch === '"') {
      let j = i + 1
      let s = ''
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length) j += 1
        s += text[j]
        j += 1
      }
      word = (word ?? '') + s
      i = j + 1
    } else {
      // `2>&1`, `&>file`: the & of a redirection, not an operator
      const redirection = ch === '&' && (word?.endsWith('>') || (word === undefined && text[i + 1] === '>'))
      const op = redirection ? undefined : OPERATORS.find((o) => text.startsWith(o, i))
      if (op) {
        end()
        out.push({op})
        i += op.length
      } else {
        word = (word ?? '') + ch
        i += 1
      }
    }
  }
  end()
  return out
}

/** The words after `airlock` of every simple command that runs airlock (directly or through npx). */
export function airlockInvocations(script: string): string[][] {
  const found: string[][] = []
  let command: string[] = []
  const flush = () => {
    let i = 0
    while (i < command.length && (KEYWORDS.has(command[i]!) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(command[i]!))) i += 1
    if (command[i] === 'npx') {
      i += 1
      while (i < command.length && command[i]!.startsWith('-')) i += 1
    }
    if (command[i] === 'airlock') found.push(command.slice(i + 1))
    command = []
  }
  const tokens = lex(script)
  for (let t = 0; t < tokens.length; t++) {
    const {word, op} = tokens[t]!
    if (op) flush()
    else if (REDIRECT.test(word!)) t += /&\d+$/.test(word!) ? 0 : 1 // the target of a redirection is not an argument
    else if (ATTACHED_REDIRECT.test(word!)) continue
    else command.push(word!)
  }
  flush()
  return found
}

/** What is wrong with one invocation (`words` are what follows `airlock`); empty when nothing. */
export function invocationProblems(words: string[], commands: Commands): string[] {
  const problems: string[] = []
  if (words.length === 0 || words[0]!.startsWith('-')) return [`airlock ${words.join(' ')}: no command`]
  let id = words[0]!
  let i = 1
  const isTopic = (prefix: string) => [...commands.keys()].some((k) => k.startsWith(`${prefix}:`))
  while (i < words.length && !words[i]!.startsWith('-') && !commands.has(id) && (commands.has(`${id}:${words[i]}`) || isTopic(`${id}:${words[i]}`))) {
    id = `${id}:${words[i]}`
    i += 1
  }
  const spec = commands.get(id)
  const shown = `airlock ${id.replaceAll(':', ' ')}`
  if (!spec) {
    const next = words[i]
    return [`${shown}${isTopic(id) && next && !next.startsWith('-') ? ` ${next}` : ''}: no such command`]
  }
  let positional = 0
  const used: string[] = []
  for (; i < words.length; i++) {
    const w = words[i]!
    if (w === '--help' || w === '-h') continue
    if (w.startsWith('--')) {
      const [name, value] = [w.slice(2).split('=')[0]!, w.includes('=') ? w.slice(w.indexOf('=') + 1) : undefined]
      const flag = spec.flags[name] ?? (name.startsWith('no-') && spec.flags[name.slice(3)]?.allowNo ? {type: 'boolean' as const} : undefined)
      if (flag) used.push(name)
      if (!flag) {
        problems.push(`${shown}: no flag --${name}`)
      } else if (flag.type === 'option' && value === undefined) {
        if (i + 1 >= words.length || words[i + 1]!.startsWith('--')) problems.push(`${shown}: --${name} needs a value`)
        else i += 1
      } else if (flag.type === 'boolean' && value !== undefined) {
        problems.push(`${shown}: --${name} takes no value`)
      }
    } else if (w.startsWith('-') && w.length === 2) {
      const flag = Object.values(spec.flags).find((f) => f.char === w[1])
      if (!flag) problems.push(`${shown}: no flag ${w}`)
      else if (flag.type === 'option') i += 1
    } else {
      positional += 1
    }
  }
  // Flags oclif refuses together (--example with --out, …).
  for (const name of used) for (const other of spec.flags[name]?.exclusive ?? []) if (used.includes(other) && name < other) problems.push(`${shown}: --${name} cannot be used with --${other}`)
  if (spec.strict && positional > spec.args.length) problems.push(`${shown}: ${positional} arguments, takes ${spec.args.length}`)
  const required = spec.args.filter((a) => a.required).length
  if (positional < required) problems.push(`${shown}: missing argument ${spec.args[positional]!.name}`)
  return problems
}

interface Step {
  run?: string
  uses?: string
}
interface Workflow {
  permissions?: Record<string, string>
  env?: Record<string, string>
  jobs: Record<string, {permissions?: Record<string, string>; environment?: string; env?: Record<string, string>; steps?: Step[]}>
}

function runsOf(wf: Workflow): string[] {
  return Object.values(wf.jobs).flatMap((job) => (job.steps ?? []).flatMap((s) => (typeof s.run === 'string' ? [s.run] : [])))
}

/** Every problem of every airlock invocation in a workflow's text. */
export function workflowProblems(text: string, commands: Commands): string[] {
  return runsOf(parse(text) as Workflow).flatMap((run) => airlockInvocations(run).flatMap((words) => invocationProblems(words, commands)))
}

const files = readdirSync(WORKFLOWS).filter((f) => f.endsWith('.yml'))
const read = (f: string) => readFileSync(join(WORKFLOWS, f), 'utf8')
const commands = loadCommands()

describe('the workflows', () => {
  it('are the four the repository documents', () => {
    expect(files.sort()).toEqual(['ci.yml', 'postsession.yml', 'preflight.yml', 'promote-canary.yml'])
  })

  it.each(files)('%s validates against the GitHub workflow schema', (f) => {
    expect(validateWorkflow(read(f)).errors).toEqual([])
  })

  it.each(files)('%s: every airlock command and flag it runs exists', (f) => {
    expect(workflowProblems(read(f), commands)).toEqual([])
  })

  it('run the commands they are for', () => {
    const names = (f: string) => runsOf(parse(read(f)) as Workflow).flatMap((r) => airlockInvocations(r).map((w) => w.slice(0, 1).join(' ')))
    expect(names('preflight.yml')).toEqual(['preflight', 'preflight', 'preflight'])
    expect(names('promote-canary.yml')).toEqual(['promote', 'apply'])
    expect(names('postsession.yml')).toEqual(['postsession', 'postsession', 'postsession', 'postsession', 'postsession', 'postsession'])
    expect(read('preflight.yml')).toContain('npx airlock preflight --junit preflight.junit.xml --sarif preflight.sarif --out preflight.receipt.json')
  })

  it('pin GitHub-owned actions by major version tag (or a full commit SHA)', () => {
    for (const f of files) {
      const wf = parse(read(f)) as Workflow
      for (const job of Object.values(wf.jobs)) {
        for (const s of job.steps ?? []) {
          if (!s.uses) continue
          expect(s.uses, f).toMatch(/^(actions|github)\/[a-z-]+(\/[a-z-]+)?@(v\d+|[0-9a-f]{40})$/)
        }
      }
    }
  })

  it('ask for read-only contents by default and for more only in the job that needs it', () => {
    for (const f of files) {
      const wf = parse(read(f)) as Workflow
      expect(wf.permissions, f).toEqual({contents: 'read'})
    }
    const preflight = parse(read('preflight.yml')) as Workflow
    expect(preflight.jobs.preflight!.permissions).toMatchObject({'security-events': 'write', contents: 'read'})
    const promote = parse(read('promote-canary.yml')) as Workflow
    expect(promote.jobs.plan!.permissions).toBeUndefined()
    expect(promote.jobs.apply!.permissions).toEqual({contents: 'write'})
    const postsession = parse(read('postsession.yml')) as Workflow
    expect(postsession.jobs.postsession!.permissions).toBeUndefined()
    expect(postsession.jobs.record!.permissions).toEqual({contents: 'write'})
  })

  it('pin the trust anchor from the repository variable, and apply a promotion only in the protected environment', () => {
    for (const f of ['preflight.yml', 'promote-canary.yml', 'postsession.yml']) expect(read(f), f).toContain('AIRLOCK_TRUST_ANCHOR: ${{ vars.AIRLOCK_TRUST_ANCHOR }}')
    const promote = parse(read('promote-canary.yml')) as Workflow
    expect(promote.jobs.apply!.environment).toBe('canary')
    for (const job of [promote.jobs.apply!, (parse(read('postsession.yml')) as Workflow).jobs.record!]) {
      const key = (job.steps ?? []).find((s) => s.run?.includes('airlock-evidence.key'))!
      expect(key.run).toContain('umask 077')
      expect(key.run).toContain('chmod 600')
      expect(job.steps!.at(-1)).toMatchObject({if: 'always()', run: 'rm -f "$RUNNER_TEMP/airlock-evidence.key"'})
    }
    expect(read('promote-canary.yml')).not.toMatch(/run:[^\n]*\$\{\{\s*inputs\./) // inputs reach scripts through env only
  })
})

describe('the checks catch what is wrong', () => {
  const workflow = (run: string) => `on: workflow_dispatch\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: |\n${run.split('\n').map((l) => `          ${l}`).join('\n')}\n`

  it('the schema check refuses a misspelt key', () => {
    const errors = validateWorkflow('on: push\njobs:\n  a:\n    runs-onn: ubuntu-24.04\n    steps:\n      - run: echo hi\n').errors
    expect(errors.length).toBeGreaterThan(0)
  })

  it('a workflow whose commands all exist passes', () => {
    const text = workflow('npx airlock promote "$IMAGE" --to canary --digest "${{ inputs.digest }}" --reason \'a b\' --out p.json | tee plan.txt\nairlock policy verify bundles/global.json --json > out.json 2>&1 >>log\nif x; then npx --no-install airlock gate run preflight --host --jobs 2; fi\nairlock status --no-json-please-not-a-flag-in-a-comment # airlock nonsense here is a comment')
    expect(validateWorkflow(text).errors).toEqual([])
    expect(workflowProblems(text, commands)).toEqual(['airlock status: no flag --no-json-please-not-a-flag-in-a-comment'])
  })

  it.each([
    ['a command that does not exist', 'npx airlock promot agent-runner --to canary', 'airlock promot: no such command'],
    ['a subcommand that does not exist', 'airlock gate frobnicate', 'airlock gate frobnicate: no such command'],
    ['a topic without its command', 'airlock policy', 'airlock policy: no such command'],
    ['a misspelt flag', 'npx airlock promote agent-runner --to canary --digset sha256:00', 'airlock promote: no flag --digset'],
    ['a flag of another command', 'airlock preflight --digest sha256:00', 'airlock preflight: no flag --digest'],
    ['flags that exclude each other', 'airlock preflight --example --out r.json', 'airlock preflight: --example cannot be used with --out'],
    ['an option without its value', 'airlock preflight --junit', 'airlock preflight: --junit needs a value'],
    ['a value given to a switch', 'airlock promote agent-runner --to canary --apply=yes', 'airlock promote: --apply takes no value'],
    ['a missing argument', 'airlock gate run --host', 'airlock gate run: missing argument suite'],
    ['an extra argument', 'airlock status agent-runner extra', 'airlock status: 2 arguments, takes 1'],
    ['a command after a pipe', 'echo x | npx airlock preflght', 'airlock preflght: no such command'],
    ['a command inside $( )', 'plan="$(npx airlock promote x --to canary --frm canary)"', 'airlock promote: no flag --frm'],
  ])('%s', (_what, run, problem) => {
    expect(workflowProblems(workflow(run), commands)).toContain(problem)
  })
})
