/**
 * A test-only OCSF validator over the schema vendored in test/fixtures/ocsf (see its SOURCE.md).
 * It compiles a class the way the OCSF schema server does — `extends` chains, `$include`d
 * profiles (their attributes tagged with the profile, usable only when `metadata.profiles` names
 * it), attribute definitions deep-merged over the dictionary's — and checks an event against it:
 * required attributes, no attribute the class or an applied profile does not define (free-form
 * data only under `unmapped`), dictionary types (regex, range, max length), objects recursively
 * with their own requirements and constraints, arrays via `is_array`, enum values and their
 * `_id`/caption siblings, and the classification arithmetic (category_uid, class_uid, type_uid).
 */
import {readdirSync, readFileSync} from 'node:fs'
import {join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

export const OCSF_DIR = fileURLToPath(new URL('../../fixtures/ocsf/', import.meta.url))

export type ProblemKind = 'missing' | 'unknown' | 'type' | 'enum' | 'sibling' | 'constraint' | 'classification' | 'profile' | 'version'
export interface Problem {
  kind: ProblemKind
  path: string
  message: string
}

type Json = null | boolean | number | string | Json[] | {[k: string]: Json}
type Obj = {[k: string]: Json}

interface EnumEntry {
  caption: string
}
interface AttrDef {
  type: string
  isArray: boolean
  requirement: string
  enum?: Record<string, EnumEntry>
  sibling?: string
  profile: string | null
}
interface Compiled {
  name: string
  caption: string
  uid?: number
  category?: string
  attributes: Map<string, AttrDef>
  constraints: {at_least_one?: string[]; just_one?: string[]}
  /** Profiles the class (and its ancestors) declare. */
  profiles: Set<string>
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Deep merge as the schema compiler does it: objects merge key by key, anything else (null too) replaces. */
function merge(base: Obj, over: Obj): Obj {
  const out: Obj = {...base}
  for (const [k, v] of Object.entries(over)) {
    const b = out[k]
    out[k] = isObj(b) && isObj(v) ? merge(b, v) : v
  }
  return out
}

function walk(dir: string): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.json') ? [join(dir, e.name)] : []))
}

export class OcsfSchema {
  readonly version: string
  private readonly dictionary: Obj
  private readonly types: Obj
  private readonly categories: Obj
  private readonly classFiles = new Map<string, string>()
  private readonly objectFiles = new Map<string, string>()
  private readonly cache = new Map<string, Compiled>()

  constructor(readonly dir: string = OCSF_DIR) {
    const read = (p: string) => JSON.parse(readFileSync(join(dir, p), 'utf8')) as Obj
    this.version = String(read('version.json').version)
    const dict = read('dictionary.json')
    this.dictionary = dict.attributes as Obj
    this.types = (dict.types as Obj).attributes as Obj
    this.categories = read('categories.json').attributes as Obj
    for (const f of walk(join(dir, 'events'))) this.classFiles.set(String(read(relative(dir, f)).name), relative(dir, f))
    for (const f of walk(join(dir, 'objects'))) this.objectFiles.set(String(read(relative(dir, f)).name), relative(dir, f))
  }

  private read(p: string): Obj {
    return JSON.parse(readFileSync(join(this.dir, p), 'utf8')) as Obj
  }

  /** A file's attributes with its `$include`s and its `extends` chain resolved (raw, before the dictionary). */
  private raw(file: string, kind: 'class' | 'object'): {attrs: Obj; profiles: string[]; def: Obj} {
    const def = this.read(file)
    let attrs: Obj = {}
    let profiles: string[] = []
    if (typeof def.extends === 'string') {
      const parentFile = (kind === 'class' ? this.classFiles : this.objectFiles).get(def.extends)
      if (!parentFile) throw new Error(`${file}: extends ${def.extends}, which is not vendored`)
      const parent = this.raw(parentFile, kind)
      attrs = parent.attrs
      profiles = parent.profiles
    }
    const own = (def.attributes ?? {}) as Obj
    let mine: Obj = {}
    for (const inc of (own.$include ?? []) as string[]) {
      const included = this.read(inc)
      const tag = included.meta === 'profile' ? String(included.name) : null
      for (const [k, v] of Object.entries(included.attributes as Obj)) {
        const a = v as Obj
        mine = merge(mine, {[k]: tag && !('profile' in a) ? {...a, profile: tag} : a})
      }
    }
    for (const [k, v] of Object.entries(own)) if (k !== '$include') mine = merge(mine, {[k]: v})
    return {attrs: merge(attrs, mine), profiles: [...profiles, ...((def.profiles ?? []) as string[])], def}
  }

  private compile(name: string, kind: 'class' | 'object'): Compiled {
    const key = `${kind}:${name}`
    const hit = this.cache.get(key)
    if (hit) return hit
    const file = (kind === 'class' ? this.classFiles : this.objectFiles).get(name)
    if (!file) throw new Error(`OCSF ${kind} ${name} is not vendored`)
    const {attrs, profiles, def} = this.raw(file, kind)
    const attributes = new Map<string, AttrDef>()
    for (const [k, v] of Object.entries(attrs)) {
      const dict = this.dictionary[k] as Obj | undefined
      if (!dict) throw new Error(`${file}: attribute ${k} is not in the dictionary`)
      const m = merge(dict, v as Obj)
      attributes.set(k, {
        type: String(m.type),
        isArray: m.is_array === true,
        requirement: typeof m.requirement === 'string' ? m.requirement : 'optional',
        ...(isObj(m.enum) ? {enum: m.enum as unknown as Record<string, EnumEntry>} : {}),
        ...(typeof m.sibling === 'string' ? {sibling: m.sibling} : {}),
        profile: typeof m.profile === 'string' ? m.profile : null,
      })
    }
    // A class's category and uid may come from an ancestor (application → api_activity).
    let category: string | undefined
    for (let f: string | undefined = file; f; ) {
      const d = this.read(f)
      category ??= typeof d.category === 'string' ? d.category : undefined
      f = typeof d.extends === 'string' ? this.classFiles.get(d.extends) : undefined
      if (kind === 'object') break
    }
    const compiled: Compiled = {
      name,
      caption: String(def.caption),
      ...(typeof def.uid === 'number' ? {uid: def.uid} : {}),
      ...(category ? {category} : {}),
      attributes,
      constraints: (def.constraints ?? this.inheritedConstraints(def, kind)) as Compiled['constraints'],
      profiles: new Set(profiles),
    }
    this.cache.set(key, compiled)
    return compiled
  }

  private inheritedConstraints(def: Obj, kind: 'class' | 'object'): Obj {
    if (typeof def.extends !== 'string') return {}
    const f = (kind === 'class' ? this.classFiles : this.objectFiles).get(def.extends)
    if (!f) return {}
    const parent = this.read(f)
    return (parent.constraints as Obj | undefined) ?? this.inheritedConstraints(parent, kind)
  }

  /** The class whose class_uid the event names. */
  private classOf(classUid: number): Compiled | null {
    for (const name of this.classFiles.keys()) {
      const c = this.compile(name, 'class')
      if (c.uid === undefined || !c.category) continue
      const cat = this.categories[c.category] as Obj
      if ((cat.uid as number) * 1000 + c.uid === classUid) return c
    }
    return null
  }

  /** Every problem of the event against its class; empty when it validates. */
  validate(event: unknown): Problem[] {
    const problems: Problem[] = []
    if (!isObj(event)) return [{kind: 'type', path: '', message: 'an event is a JSON object'}]
    const cls = typeof event.class_uid === 'number' ? this.classOf(event.class_uid) : null
    if (!cls) return [{kind: 'classification', path: 'class_uid', message: `no vendored class has class_uid ${String(event.class_uid)}`}]
    const category = this.categories[cls.category!] as Obj
    const classUid = (category.uid as number) * 1000 + cls.uid!
    if (event.category_uid !== category.uid) problems.push({kind: 'classification', path: 'category_uid', message: `${cls.name} is in category ${String(category.uid)}, not ${String(event.category_uid)}`})
    if ('category_name' in event && event.category_name !== category.caption) problems.push({kind: 'sibling', path: 'category_name', message: `must be ${String(category.caption)}`})
    if ('class_name' in event && event.class_name !== cls.caption) problems.push({kind: 'sibling', path: 'class_name', message: `must be ${cls.caption}`})
    if (typeof event.activity_id === 'number' && event.type_uid !== classUid * 100 + event.activity_id)
      problems.push({kind: 'classification', path: 'type_uid', message: `must be class_uid*100 + activity_id = ${classUid * 100 + event.activity_id}`})
    const activity = cls.attributes.get('activity_id')?.enum?.[String(event.activity_id)]
    if ('type_name' in event && activity && event.type_name !== `${cls.caption}: ${event.activity_id === 99 ? String(event.activity_name) : activity.caption}`)
      problems.push({kind: 'sibling', path: 'type_name', message: `must be "${cls.caption}: ${activity.caption}"`})

    const meta = isObj(event.metadata) ? event.metadata : {}
    const applied = new Set(Array.isArray(meta.profiles) ? meta.profiles.map(String) : [])
    for (const p of applied) if (!cls.profiles.has(p)) problems.push({kind: 'profile', path: 'metadata.profiles', message: `${cls.name} does not take the ${p} profile`})
    if ('version' in meta && meta.version !== this.version) problems.push({kind: 'version', path: 'metadata.version', message: `the vendored schema is ${this.version}, not ${String(meta.version)}`})
    this.checkObject(event, cls, '', applied, problems, new Set(['class_uid', 'category_uid', 'type_uid']))
    return problems
  }

  private checkObject(value: Obj, def: Compiled, path: string, applied: Set<string>, problems: Problem[], computed = new Set<string>()): void {
    const at = (k: string) => (path ? `${path}.${k}` : k)
    const usable = (a: AttrDef) => a.profile === null || applied.has(a.profile)
    for (const [k, a] of def.attributes) {
      if (a.requirement === 'required' && usable(a) && !(k in value)) problems.push({kind: 'missing', path: at(k), message: `${def.name} requires ${k}`})
    }
    for (const [k, v] of Object.entries(value)) {
      const a = def.attributes.get(k)
      if (!a) {
        problems.push({kind: 'unknown', path: at(k), message: `${def.name} has no attribute ${k} (source-specific data goes under unmapped)`})
        continue
      }
      if (!usable(a)) {
        problems.push({kind: 'profile', path: at(k), message: `${k} belongs to the ${a.profile} profile, which metadata.profiles does not name`})
        continue
      }
      if (a.isArray) {
        if (!Array.isArray(v)) problems.push({kind: 'type', path: at(k), message: `${k} is an array of ${a.type}`})
        else v.forEach((item, i) => this.checkValue(item, a, `${at(k)}[${i}]`, applied, problems))
      } else this.checkValue(v, a, at(k), applied, problems)
      if (a.enum && !computed.has(k)) this.checkEnum(value, k, a, at, problems)
    }
    for (const [rule, names] of Object.entries(def.constraints)) {
      const present = (names ?? []).filter((n) => n in value).length
      if (rule === 'at_least_one' && present === 0) problems.push({kind: 'constraint', path: path || '.', message: `${def.name} needs at least one of ${names!.join(', ')}`})
      if (rule === 'just_one' && present !== 1) problems.push({kind: 'constraint', path: path || '.', message: `${def.name} needs exactly one of ${names!.join(', ')}`})
    }
  }

  private checkEnum(value: Obj, k: string, a: AttrDef, at: (k: string) => string, problems: Problem[]): void {
    const v = value[k]
    const entry = a.enum![String(v)]
    if (!entry) {
      problems.push({kind: 'enum', path: at(k), message: `${String(v)} is not one of ${Object.keys(a.enum!).join(', ')}`})
      return
    }
    if (!a.sibling) return
    const s = value[a.sibling]
    if (v === 99) {
      if (typeof s !== 'string' || s === '') problems.push({kind: 'sibling', path: at(a.sibling), message: `${k} 99 (Other) needs ${a.sibling} to say what it is`})
    } else if (s !== undefined && s !== entry.caption) problems.push({kind: 'sibling', path: at(a.sibling), message: `must be "${entry.caption}", the caption of ${k} ${String(v)}`})
  }

  private checkValue(v: Json, a: AttrDef, path: string, applied: Set<string>, problems: Problem[]): void {
    if (a.type === 'object') {
      if (!isObj(v)) problems.push({kind: 'type', path, message: 'must be a JSON object'})
      return
    }
    if (a.type in this.types) {
      const why = this.typeProblem(v, a.type)
      if (why) problems.push({kind: 'type', path, message: why})
      return
    }
    if (!isObj(v)) {
      problems.push({kind: 'type', path, message: `must be a ${a.type} object`})
      return
    }
    this.checkObject(v, this.compile(a.type, 'object'), path, applied, problems)
  }

  /** Why `v` is not a value of the dictionary type `t` (walking its base types), or null. */
  private typeProblem(v: Json, t: string): string | null {
    const def = this.types[t] as Obj
    const base = typeof def.type === 'string' ? def.type : null
    if (base) {
      const inner = this.typeProblem(v, base)
      if (inner) return `${t}: ${inner}`
    } else {
      const ok =
        t === 'string_t' ? typeof v === 'string'
        : t === 'integer_t' ? Number.isInteger(v) && Math.abs(v as number) <= 2 ** 31
        : t === 'long_t' ? Number.isSafeInteger(v)
        : t === 'float_t' ? typeof v === 'number'
        : t === 'boolean_t' ? typeof v === 'boolean'
        : t === 'json_t' ? true
        : false
      if (!ok) return `${JSON.stringify(v)} is not a ${t}`
    }
    if (typeof def.regex === 'string' && typeof v === 'string' && !new RegExp(def.regex).test(v)) return `${JSON.stringify(v)} does not match the ${t} pattern`
    if (typeof def.max_len === 'number' && typeof v === 'string' && v.length > def.max_len) return `longer than ${def.max_len}`
    if (Array.isArray(def.range) && typeof v === 'number' && (v < (def.range[0] as number) || v > (def.range[1] as number))) return `${v} is outside ${JSON.stringify(def.range)}`
    if (Array.isArray(def.values) && !def.values.includes(v)) return `${JSON.stringify(v)} is not one of ${JSON.stringify(def.values)}`
    return null
  }
}
