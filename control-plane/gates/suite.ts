/**
 * The gate suites file (manifests/gates.yaml, kind GateSuite): its schema, then what a schema
 * cannot say — each gate `uses:` a known builtin or `run:`s a command (exactly one), its `with:`
 * as that builtin checks it, a timeout that is a duration, ids unique in their suite, needs that
 * name gates of the suite and form no cycle. Every error names the file, line and field (exit 2).
 */
import {sha256Hex} from '../crypto/digest.js'
import {parseDuration} from '../duration.js'
import {AirlockError, inputError} from '../errors.js'
import type {Limits} from '../limits.js'
import {GATES_FILE} from '../manifests/models.js'
import {validateKind} from '../manifests/validate.js'
import {loadYaml, locate, type LoadedYaml} from '../manifests/yaml.js'
import type {Repository} from '../repo/repository.js'
import type {BuiltinGate, GateSpec} from './types.js'

export {GATES_FILE}

/** A gate's timeout when it names none. */
export const DEFAULT_GATE_TIMEOUT_MS = 5 * 60_000
/** The longest timeout a gate may have (timers hold at most about 24.8 days; a gate that long is a mistake). */
export const MAX_GATE_TIMEOUT_MS = 24 * 3_600_000

export interface GateSuites {
  file: string
  /** SHA-256 (hex) of the file's bytes: the receipt's `configuration` digest. */
  sha256: string
  /** Suite name → its gates, in file order. */
  suites: Map<string, GateSpec[]>
}

interface RawGate {
  id: string
  uses?: string
  run?: string
  with?: Record<string, unknown>
  timeout?: string
  needs?: string[]
  requires?: Array<'host'>
  required?: boolean
  mode?: 'enforce' | 'shadow'
  expect?: {pass: number; fail: number}
}

/** Parses and checks a gates file; `builtins` is the registry `uses: builtin/<name>` must name. */
export function parseGateSuites(text: string, file: string, limits: Limits, builtins: Readonly<Record<string, BuiltinGate>>): GateSuites {
  const loaded = loadYaml(text, file, limits)
  validateKind('GateSuite', loaded)
  const doc = loaded.value as {suites: Record<string, {gates: RawGate[]}>}
  const suites = new Map<string, GateSpec[]>()
  for (const [name, suite] of Object.entries(doc.suites)) {
    const gates: GateSpec[] = []
    const seen = new Map<string, number>()
    for (const [i, raw] of suite.gates.entries()) {
      const path = ['suites', name, 'gates', i]
      const at = (field: string, key = false) => ({file, ...locate(loaded, [...path, ...(field ? [field] : [])], key), field: `suites.${name}.gates[${i}]${field ? `.${field}` : ''}`})
      if (seen.has(raw.id)) throw inputError('SCHEMA_VIOLATION', at('id'), `duplicate gate id "${raw.id}" (also gates[${seen.get(raw.id)}] of suite ${name})`)
      seen.set(raw.id, i)
      if ((raw.uses === undefined) === (raw.run === undefined)) throw inputError('SCHEMA_VIOLATION', at(raw.uses === undefined ? '' : 'run'), raw.uses === undefined ? 'a gate needs one of uses: builtin/<name> or run: <command>' : 'a gate has uses: or run:, not both')
      let builtin: BuiltinGate | undefined
      if (raw.uses !== undefined) {
        const builtinName = raw.uses.slice('builtin/'.length)
        builtin = Object.hasOwn(builtins, builtinName) ? builtins[builtinName] : undefined
        if (!builtin) throw inputError('SCHEMA_VIOLATION', at('uses'), `unknown builtin "${raw.uses}" (known: ${Object.keys(builtins).sort().map((b) => `builtin/${b}`).join(', ')})`)
        if (raw.expect !== undefined) throw inputError('SCHEMA_VIOLATION', at('expect', true), 'expect: applies to run: gates only')
        builtin.checkWith?.(raw.with ?? {}, {file, line: locate(loaded, [...path, 'with']).line, field: `suites.${name}.gates[${i}].with`})
      } else if (raw.with !== undefined && Object.keys(raw.with).length > 0) throw inputError('SCHEMA_VIOLATION', at('with', true), 'with: applies to uses: gates only (a run: gate reads its environment and files)')
      let timeoutMs = DEFAULT_GATE_TIMEOUT_MS
      if (raw.timeout !== undefined) {
        try {
          timeoutMs = parseDuration(raw.timeout, 'timeout')
        } catch {
          throw inputError('SCHEMA_VIOLATION', at('timeout'), `"${raw.timeout}" is not a duration like 90s, 5m or 1h`)
        }
        if (timeoutMs > MAX_GATE_TIMEOUT_MS) throw inputError('SCHEMA_VIOLATION', at('timeout'), `"${raw.timeout}" is longer than a gate may run (24h)`)
      }
      gates.push({
        id: raw.id,
        ...(raw.uses !== undefined ? {uses: raw.uses} : {run: raw.run}),
        with: raw.with ?? {},
        timeoutMs,
        needs: raw.needs ?? [],
        requires: [...new Set([...(raw.requires ?? []), ...(builtin?.requires ? [builtin.requires] : [])])],
        required: raw.required ?? true,
        mode: raw.mode ?? 'enforce',
        ...(raw.expect ? {expect: {pass: raw.expect.pass, fail: raw.expect.fail}} : {}),
        line: locate(loaded, path).line,
      })
    }
    checkNeeds(name, gates, loaded)
    suites.set(name, gates)
  }
  return {file, sha256: sha256Hex(text), suites}
}

/** Every need names a gate of the suite, and needs form no cycle (the cycle is named). */
function checkNeeds(suite: string, gates: GateSpec[], loaded: LoadedYaml): void {
  const index = new Map(gates.map((g, i) => [g.id, i]))
  const at = (i: number, j?: number) => ({file: loaded.file, ...locate(loaded, ['suites', suite, 'gates', i, 'needs', ...(j === undefined ? [] : [j])]), field: `suites.${suite}.gates[${i}].needs${j === undefined ? '' : `[${j}]`}`})
  for (const [i, g] of gates.entries()) {
    for (const [j, need] of g.needs.entries()) {
      if (!index.has(need)) throw inputError('SCHEMA_VIOLATION', at(i, j), `"${need}" is not a gate of suite ${suite}`)
      if (need === g.id) throw inputError('SCHEMA_VIOLATION', at(i, j), `gate ${g.id} needs itself`)
    }
  }
  // Depth-first: a gate met again while on the path closes a cycle.
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (id: string): void => {
    state.set(id, 'open')
    path.push(id)
    for (const need of gates[index.get(id)!]!.needs) {
      if (state.get(need) === 'open') {
        const cycle = [...path.slice(path.indexOf(need)), need]
        throw inputError('SCHEMA_VIOLATION', at(index.get(id)!), `needs form a cycle: ${cycle.join(' → ')}`, {cycle})
      }
      if (!state.has(need)) visit(need)
    }
    path.pop()
    state.set(id, 'done')
  }
  for (const g of gates) if (!state.has(g.id)) visit(g.id)
}

/** The gates file at `commit` (a verified HEAD), or null when the fleet has none. */
export async function loadGateSuites(repo: Repository, commit: string, limits: Limits, builtins: Readonly<Record<string, BuiltinGate>>): Promise<GateSuites | null> {
  const found = await repo.readFile(commit, GATES_FILE)
  return found ? parseGateSuites(found.text, GATES_FILE, limits, builtins) : null
}

/** One suite of the file; an unknown name is a usage error listing those there are. */
export function suiteGates(suites: GateSuites, name: string): GateSpec[] {
  const gates = suites.suites.get(name)
  if (!gates) throw new AirlockError('USAGE', `SUITE: ${suites.file} has no suite "${name}" (suites: ${[...suites.suites.keys()].join(', ') || 'none'})`, {field: 'SUITE', file: suites.file})
  return gates
}
