import * as wasm from '@cedar-policy/cedar-wasm/nodejs'
import type {DetailedError, EntityJson, EntityUidJson} from '@cedar-policy/cedar-wasm/nodejs'
import {AirlockError} from '../errors.js'
import {canonicalJson, sha256Hex} from '../crypto/digest.js'
import {lineCol, type PolicySource, type PolicyTree} from './source.js'
import {Lru} from '../lru.js'

/**
 * Every call into the Cedar engine goes through here. The engine is a wasm module that recurses on
 * expressions; where its stack ends it traps (a RuntimeError, "memory access out of bounds", or a
 * RangeError) and, once trapped, answers every later call with the same trap. Depth is bounded
 * before text reaches it (`checkCedarDepth`); should it trap all the same, the failure is
 * POLICY_ENGINE_FAILED, never an internal error, and nothing it says afterwards is believed.
 */
let trapped: string | null = null

function engineFailed(what: string): AirlockError {
  return new AirlockError('POLICY_ENGINE_FAILED', `the Cedar engine failed while ${what} (${trapped}); nothing it answered is trusted, so it is treated as deny`, {cause: trapped})
}

function guarded<F extends (...args: never[]) => unknown>(what: string, f: F): F {
  return ((...args: Parameters<F>) => {
    if (trapped !== null) throw engineFailed(what)
    try {
      return f(...args)
    } catch (error) {
      if (error instanceof AirlockError) throw error
      trapped = `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`
      throw engineFailed(what)
    }
  }) as F
}

const cedar = {
  checkParsePolicySet: guarded('parsing policies', wasm.checkParsePolicySet),
  checkParseSchema: guarded('parsing the schema', wasm.checkParseSchema),
  validate: guarded('validating policies', wasm.validate),
  preparsePolicySet: guarded('loading policies', wasm.preparsePolicySet),
  preparseSchema: guarded('loading the schema', wasm.preparseSchema),
  statefulIsAuthorized: guarded('deciding a request', wasm.statefulIsAuthorized),
  policyToJson: guarded('reading a policy', wasm.policyToJson),
}

export interface EntityUid {
  type: string
  id: string
}

export interface AuthorizationRequest {
  principal: EntityUid
  action: EntityUid
  resource: EntityUid
  context: Record<string, unknown>
  entities: unknown[]
}

export interface PolicyRef {
  id: string
  file: string
  line: number
}

/** A decision as a value, so callers (receipts, the audit log) can record it whole. */
export interface PolicyDecision {
  decision: 'allow' | 'deny'
  /** The policies that determined the decision; when it failed closed, the ones whose evaluation failed. */
  reasons: PolicyRef[]
  errors: Array<PolicyRef & {message: string}>
  /** True when an evaluation error turned the decision into deny. */
  failedClosed: boolean
  policySetDigest: string
}

export interface PolicyProblem {
  file?: string
  line?: number
  column?: number
  policyId?: string
  message: string
  help?: string | null
}

/** Which evaluation errors force a deny: any policy's (default) or only a forbid's. */
export type FailClosed = 'any' | 'forbid'

/** Cedar's entity reference in the Cedar CLI's form: `Namespace::Type::"id"`. */
export function parseEntityUid(text: string, field: string): EntityUid {
  const m = /^((?:[A-Za-z_][A-Za-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)::("(?:[^"\\]|\\.)*")$/.exec(text.trim())
  if (!m) throw new AirlockError('USAGE', `${field}: "${text}" is not an entity reference like AgentKernel::User::"alice"`, {field})
  return {type: m[1]!, id: JSON.parse(m[2]!) as string}
}

export function formatUid(uid: EntityUid): string {
  return `${uid.type}::${JSON.stringify(uid.id)}`
}

/** file:line:col of a location Cedar gives relative to one policy's text. */
function placeIn(policy: PolicySource, offset: number | undefined): {file: string; line: number; column: number} {
  if (offset === undefined) return {file: policy.file, line: policy.line, column: policy.column}
  const inner = lineCol(policy.text, offset)
  return inner.line === 1
    ? {file: policy.file, line: policy.line, column: policy.column + inner.column - 1}
    : {file: policy.file, line: policy.line + inner.line - 1, column: inner.column}
}

function problem(error: DetailedError, where: {file?: string; line?: number; column?: number}, policyId?: string): PolicyProblem {
  return {...where, ...(policyId ? {policyId} : {}), message: error.message, help: error.help}
}

export function formatProblem(p: PolicyProblem): string {
  const at = [p.file, p.line, p.column].filter((x) => x !== undefined).join(':')
  return `${at ? `${at}: ` : ''}${p.message}${p.help ? ` (help: ${p.help})` : ''}`
}

/** Parse errors of each policy, and of the schema, located in their files. */
export function parseProblems(tree: PolicyTree): PolicyProblem[] {
  const problems: PolicyProblem[] = []
  for (const policy of tree.policies) {
    const answer = cedar.checkParsePolicySet({staticPolicies: {[policy.id]: policy.text}})
    if (answer.type === 'failure') for (const e of answer.errors) problems.push(problem(e, placeIn(policy, e.sourceLocations?.[0]?.start), policy.id))
  }
  if (tree.schema) {
    const answer = cedar.checkParseSchema(tree.schema.text)
    if (answer.type === 'failure') {
      for (const e of answer.errors) {
        const start = e.sourceLocations?.[0]?.start
        problems.push(problem(e, {file: tree.schema.file, ...(start === undefined ? {} : lineCol(tree.schema.text, start))}))
      }
    }
  }
  return problems
}

/** Parse errors first; then strict validation of every policy against the schema. */
export function validateTree(tree: PolicyTree): PolicyProblem[] {
  // One parse of the whole set; only when it fails is each policy parsed alone to locate errors.
  const whole = cedar.checkParsePolicySet({staticPolicies: Object.fromEntries(tree.policies.map((p) => [p.id, p.text]))})
  const schemaOk = !tree.schema || cedar.checkParseSchema(tree.schema.text).type === 'success'
  if (whole.type === 'failure' || !schemaOk) {
    const parsed = parseProblems(tree)
    if (parsed.length > 0) return parsed
  }
  if (!tree.schema) return []
  const byId = new Map(tree.policies.map((p) => [p.id, p]))
  const answer = cedar.validate({
    schema: tree.schema.text,
    policies: {staticPolicies: Object.fromEntries(tree.policies.map((p) => [p.id, p.text]))},
    validationSettings: {mode: 'strict'},
  })
  if (answer.type === 'failure') return answer.errors.map((e) => problem(e, {file: tree.schema!.file}))
  return answer.validationErrors.map(({policyId, error}) => {
    const policy = byId.get(policyId)
    return problem(error, policy ? placeIn(policy, error.sourceLocations?.[0]?.start) : {}, policyId)
  })
}

const preparsed = new Set<string>()

/**
 * Cedar's engine over one policy set. Policies are preparsed once under an id derived from their
 * content (Cedar never frees a preparsed set, so the same content always reuses the same id).
 * Deny by default and forbid-wins are Cedar's; airlock adds failing closed: Cedar skips a policy
 * whose evaluation errors, airlock turns such an error into deny.
 */
export class PolicyEngine {
  private readonly byId: Map<string, PolicySource>
  private readonly setId: string
  private readonly schemaId: string | null
  private forbids: Set<string> | null = null
  private readonly policies: PolicySource[]
  /** Decisions by exact request, for hosts that ask the same question repeatedly (bounded, LRU). */
  private readonly decisions: Lru<string, CachedDecision> | null
  readonly digest: string

  private constructor(tree: PolicyTree, private readonly failClosed: FailClosed, cacheSize: number) {
    this.decisions = cacheSize > 0 ? new Lru(cacheSize) : null
    this.byId = new Map(tree.policies.map((p) => [p.id, p]))
    const record = Object.fromEntries(tree.policies.map((p) => [p.id, p.text]))
    this.digest = `sha256:${sha256Hex(canonicalJson({policies: record, schema: tree.schema?.text ?? null}))}`
    this.setId = `pset:${this.digest}`
    this.schemaId = tree.schema ? `schema:${sha256Hex(tree.schema.text)}` : null
    this.policies = tree.policies
    if (!preparsed.has(this.setId)) {
      const answer = cedar.preparsePolicySet(this.setId, {staticPolicies: record})
      if (answer.type === 'failure') throw invalidPolicy(parseProblems(tree))
      preparsed.add(this.setId)
    }
    if (tree.schema && this.schemaId && !preparsed.has(this.schemaId)) {
      const answer = cedar.preparseSchema(this.schemaId, tree.schema.text)
      if (answer.type === 'failure') throw invalidPolicy(parseProblems(tree))
      preparsed.add(this.schemaId)
    }
  }

  /** An engine for a tree; refuses a tree that does not parse (exit 2, every problem located). */
  static create(tree: PolicyTree, failClosed: FailClosed = 'any', opts: {cacheSize?: number} = {}): PolicyEngine {
    return new PolicyEngine(tree, failClosed, opts.cacheSize ?? 0)
  }

  /** Ids of forbid policies, worked out only when `--fail-closed forbid` needs them. */
  private forbidIds(): Set<string> {
    this.forbids ??= new Set(this.policies.filter((p) => effectOf(p.text) === 'forbid').map((p) => p.id))
    return this.forbids
  }

  private ref(id: string): PolicyRef {
    const p = this.byId.get(id)
    return {id, file: p?.file ?? '?', line: p?.line ?? 0}
  }

  authorize(req: AuthorizationRequest): PolicyDecision {
    // Once the engine has trapped nothing is answered from here either (evaluate denies).
    if (!this.decisions || trapped !== null) return this.evaluate(req)
    // The policy set is fixed for this engine, so the request alone keys its decision. The map's
    // key names the question (principal, action, resource, context as JSON); the entry holds a
    // copy of the whole request it was decided on, entities included, compared value by value on
    // a hit, so a changed (or mutated in place) entity or context is decided again.
    const {principal: p, action: a, resource: r} = req
    let key: string
    try {
      key = `${p?.type}\0${p?.id}\0${a?.type}\0${a?.id}\0${r?.type}\0${r?.id}\0${JSON.stringify(req.context)}`
    } catch {
      // A context JSON cannot spell (a BigInt, a cycle) is not cached; Cedar says what it makes of it.
      return this.evaluate(req)
    }
    const hit = this.decisions.get(key)
    if (hit && sameJson(req, hit.request)) return hit.decision
    // Decided on a copy, so what is cached is exactly what Cedar saw; a request holding anything
    // but JSON values (a Date, a Map, a function, a hole) is decided and not cached.
    let request: Json | typeof NOT_JSON
    try {
      request = jsonCopy(req)
    } catch {
      request = NOT_JSON // nested deeper than the stack (or a cycle among the entities)
    }
    if (request === NOT_JSON) return this.evaluate(req)
    const decision = deepFreeze(this.evaluate(plain(request) as AuthorizationRequest))
    this.decisions.set(key, {request, decision})
    return decision
  }

  private evaluate(req: AuthorizationRequest): PolicyDecision {
    let answer
    try {
      answer = cedar.statefulIsAuthorized({
        principal: req.principal as EntityUidJson,
        action: req.action as EntityUidJson,
        resource: req.resource as EntityUidJson,
        context: req.context as Record<string, never>,
        entities: req.entities as EntityJson[],
        preparsedPolicySetId: this.setId,
        ...(this.schemaId ? {preparsedSchemaName: this.schemaId, validateRequest: true} : {}),
      })
    } catch (error) {
      if (!(error instanceof AirlockError) || error.code !== 'POLICY_ENGINE_FAILED') throw error
      // Fail closed: a request the engine could not decide is denied, the failure named.
      return {decision: 'deny', reasons: [], errors: [{id: 'POLICY_ENGINE_FAILED', file: '?', line: 0, message: error.message}], failedClosed: true, policySetDigest: this.digest}
    }
    if (answer.type === 'failure') {
      throw new AirlockError('INVALID_INPUT', `the request does not fit the schema or entities: ${answer.errors.map((e) => e.message + (e.help ? ` (help: ${e.help})` : '')).join('; ')}`, {
        errors: answer.errors.map((e) => e.message),
      })
    }
    const {decision, diagnostics} = answer.response
    const errors = diagnostics.errors.map((e) => ({...this.ref(e.policyId), message: e.error.message}))
    const fatal = errors.filter((e) => this.failClosed === 'any' || this.forbidIds().has(e.id))
    if (fatal.length > 0) return {decision: 'deny', reasons: fatal.map(({message: _m, ...ref}) => ref), errors, failedClosed: true, policySetDigest: this.digest}
    return {decision, reasons: diagnostics.reason.map((id) => this.ref(id)), errors, failedClosed: false, policySetDigest: this.digest}
  }
}

/** A cached decision with the request it was made for, as JSON values the caller cannot reach. */
interface CachedDecision {
  request: Json
  decision: PolicyDecision
}

/** A JSON value copied for comparison: objects keep their keys in order beside their values. */
type Json = string | number | boolean | null | Json[] | JsonObject

class JsonObject {
  constructor(
    readonly keys: string[],
    readonly values: Json[],
  ) {}
}

const NOT_JSON = Symbol('not JSON')

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** A copy of a JSON value (plain objects, arrays, strings, finite numbers, booleans, null), or NOT_JSON when it holds anything else. */
function jsonCopy(v: unknown): Json | typeof NOT_JSON {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v
    case 'number':
      return Number.isFinite(v) ? v : NOT_JSON
    case 'object': {
      if (v === null) return null
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) return NOT_JSON
        const out: Json[] = new Array(v.length)
        for (let i = 0; i < v.length; i++) {
          if (!(i in v)) return NOT_JSON
          const c = jsonCopy(v[i])
          if (c === NOT_JSON) return NOT_JSON
          out[i] = c
        }
        return out
      }
      if (!isPlainObject(v)) return NOT_JSON
      const keys = Object.keys(v)
      const values: Json[] = new Array(keys.length)
      for (let i = 0; i < keys.length; i++) {
        const c = jsonCopy((v as Record<string, unknown>)[keys[i]!])
        if (c === NOT_JSON) return NOT_JSON
        values[i] = c
      }
      return new JsonObject(keys, values)
    }
    default:
      return NOT_JSON
  }
}

/** The plain JSON value a copy stands for (what Cedar is given). */
function plain(c: Json): unknown {
  if (c instanceof JsonObject) {
    const out: Record<string, unknown> = {}
    for (let i = 0; i < c.keys.length; i++) out[c.keys[i]!] = plain(c.values[i]!)
    return out
  }
  return Array.isArray(c) ? c.map(plain) : c
}

/**
 * Whether `v` is, value by value, the JSON value `copy`: same types, same strings and numbers
 * (Object.is), same array lengths, the same own keys in the same order. Anything else, or
 * anything a copy cannot hold, is not the same.
 */
function sameJson(v: unknown, copy: Json): boolean {
  if (typeof copy !== 'object' || copy === null) return Object.is(v, copy)
  if (typeof v !== 'object' || v === null) return false
  if (copy instanceof JsonObject) {
    if (Array.isArray(v) || !isPlainObject(v)) return false
    const {keys, values} = copy
    let i = 0
    // for…in lists own keys in Object.keys order; an inherited enumerable key only makes more.
    for (const k in v) {
      if (i >= keys.length || k !== keys[i] || !sameJson((v as Record<string, unknown>)[k], values[i]!)) return false
      i++
    }
    return i === keys.length
  }
  if (!Array.isArray(v) || v.length !== copy.length || Object.getPrototypeOf(v) !== Array.prototype) return false
  for (let i = 0; i < copy.length; i++) if (!(i in v) || !sameJson(v[i], copy[i]!)) return false
  return true
}

/** A cached decision is shared by every caller that asks the same question: nobody may change it. */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const x of Object.values(v)) deepFreeze(x)
  }
  return v
}

function effectOf(text: string): 'permit' | 'forbid' | null {
  const answer = cedar.policyToJson(text)
  return answer.type === 'success' ? answer.json.effect : null
}

export function invalidPolicy(problems: PolicyProblem[]): AirlockError {
  return new AirlockError('INVALID_POLICY_SOURCE', problems.map(formatProblem).join('\n') || 'the policies do not parse', {problems})
}
