/**
 * Tool policy (`manifests/tool-policy.yaml`, kind ToolPolicy): which tools an agent may call,
 * with which parameters. Fail closed everywhere: a tool not allowed is denied, a denied tool is
 * denied even when it is also allowed, a tool whose parameter schema does not compile or whose
 * recorded `schemaHash` is not the schema's is denied, and so are parameters the schema refuses
 * (validated by ajv: formats on, no coercion, no defaults filled in). Sensitive tools answer
 * `needs_approval` until a signed approval for exactly these parameters comes with the call.
 */
import {createRequire} from 'node:module'
import {posix} from 'node:path'
import type {Ajv2020 as Ajv2020Type} from 'ajv/dist/2020.js'
import type {ValidateFunction} from 'ajv'
import {canonicalJson, digestOfJson, sha256Hex} from '../../crypto/digest.js'
import {AirlockError, inputError} from '../../errors.js'
import type {Limits} from '../../limits.js'
import {checkAnchoredPattern} from '../../manifests/pattern.js'
import {validateKind} from '../../manifests/validate.js'
import {loadYaml, locate} from '../../manifests/yaml.js'
import {checkEgress, parseTarget, type EgressPolicy} from '../egress/egress.js'

export const RISKS = ['L0', 'L1', 'L2', 'L3', 'L4', 'L5'] as const
export type Risk = (typeof RISKS)[number]

/** What each tier means (the README and `tool list` say the same). */
export const RISK_MEANING: Record<Risk, string> = {
  L0: 'read-only',
  L1: 'writes inside the sandbox',
  L2: 'reversible external writes',
  L3: 'sensitive writes',
  L4: 'privileged, or affects others',
  L5: 'irreversible or external',
}

/** Keys that pollute prototypes when parameters are merged into objects downstream: never accepted. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * The schema annotation that binds a URL parameter to the egress policy: `tool check` denies a
 * value `egress check` would deny. Honoured on a parameter's own schema (under `properties`, or
 * `items` of one); anywhere else it is a schema error, so that it never silently binds nothing.
 */
export const EGRESS_KEYWORD = 'x-airlock-egress'

/**
 * A parameter named like a file path (`path`, `*_path`, `*-path`, `*Path`): its schema must state
 * a root (a pattern anchored at an absolute directory, `^/workspace/`) it cannot leave.
 */
const PATH_PARAMETER = /(?:^|[_-])path$|[a-z0-9]Path$/i
/** Path-like names a patternProperties key is tried against (a key that matches one states a path parameter). */
const PATH_NAMES = ['path', 'file_path', 'file-path', 'filePath'] as const

/** Whether a patternProperties key (a JSON Schema regex, as ajv reads it) matches `name`; one that does not compile matches nothing here (SCHEMA_ERROR says so). */
function matches(pattern: string, name: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(name)
  } catch {
    return false
  }
}

export const DEFAULT_APPROVAL_FROM: Risk = 'L4'
export const DEFAULT_MAX_PARAMS_BYTES = 64 * 1024

/** Something wrong in the policy file that makes a tool denied, located in the file. */
export interface ToolFinding {
  code: 'ALLOWED_AND_DENIED' | 'SCHEMA_HASH_MISMATCH' | 'SCHEMA_ERROR' | 'FORBIDDEN_CAPABILITY' | 'PATH_ESCAPE'
  tool: string
  file: string
  line?: number
  column?: number
  field: string
  message: string
}

export interface AllowedTool {
  name: string
  /** `spec.allow[3] read_file`: the rule that allows it. */
  rule: string
  index: number
  risk: Risk
  description: string | null
  sideEffects: string[]
  capabilities: string[]
  /** Why a call needs an approval (the tool's own setting or the policy's tier), or null. */
  approval: string | null
  parameters: Record<string, unknown>
  /** As recorded in the file. */
  schemaHash: string
  /** As computed from `parameters` (RFC 8785, SHA-256). */
  computedHash: string
  /** Parameters bound to the egress policy (`x-airlock-egress: true`), as paths into the call's parameters (`*`: each item). */
  egress: string[][]
  /** Parameters named like a path, with their schema and where it sits (`.properties.path`). */
  paths: ParameterNode[]
}

/** A parameter's own schema inside a tool's parameter schema. */
export interface ParameterNode {
  /** Path into the call's parameters (`*`: each item of an array). */
  at: string[]
  /** Path into the parameter schema, for messages: `.properties.files.items`. */
  where: string
  name: string | null
  schema: Record<string, unknown>
  /** Where the parameter's schema is in the policy file (filled for the tools of a parsed policy). */
  line?: number
  column?: number
}

/** The parameters a schema describes: the root, then each `properties` member and `items`, depth first. */
function parameterNodes(schema: Record<string, unknown>): ParameterNode[] {
  const nodes: ParameterNode[] = []
  const object = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
  const stack: ParameterNode[] = [{at: [], where: '', name: null, schema}]
  while (stack.length > 0) {
    const node = stack.pop()!
    nodes.push(node)
    const {properties, items, patternProperties, additionalProperties, required} = node.schema
    // A property's schema may be `true` (anything): it is the empty schema, and states no root.
    const declared = object(properties) ? properties : {}
    for (const [k, v] of Object.entries(declared)) if (object(v) || v === true) stack.push({at: [...node.at, k], where: `${node.where}.properties.${k}`, name: k, schema: v === true ? {} : v})
    // A parameter `properties` does not declare is still one the schema states when it is required
    // or named like a path and a patternProperties key matches it: its schema is that key's (each
    // that matches), else additionalProperties' (for a required one).
    const undeclared = [...new Set([...(Array.isArray(required) ? required.filter((r): r is string => typeof r === 'string') : []), ...PATH_NAMES])].filter((n) => !Object.hasOwn(declared, n))
    for (const name of undeclared) {
      const matching = object(patternProperties) ? Object.entries(patternProperties).filter(([p]) => matches(p, name)) : []
      for (const [p, v] of matching) if (object(v) || v === true) stack.push({at: [...node.at, name], where: `${node.where}.patternProperties.${p}`, name, schema: v === true ? {} : v})
      const extra = additionalProperties === undefined ? true : additionalProperties
      if (matching.length === 0 && Array.isArray(required) && required.includes(name) && (object(extra) || extra === true)) stack.push({at: [...node.at, name], where: `${node.where}.additionalProperties`, name, schema: extra === true ? {} : extra})
    }
    if (object(items)) stack.push({at: [...node.at, '*'], where: `${node.where}.items`, name: node.name, schema: items})
  }
  return nodes
}

export interface ToolPolicy {
  file: string
  name: string
  /** SHA-256 of the RFC 8785 canonical JSON of the whole document: what an operator pins. */
  hash: string
  approvalFrom: Risk
  maxParamsBytes: number
  forbidden: string[]
  /** Allowed tools by name (no prototype: a tool named `constructor` is just a name). */
  allowed: Map<string, AllowedTool>
  denied: Map<string, {rule: string; reason: string | null; index: number}>
  /** Problems that deny a tool: each names the file, line and field. */
  findings: ToolFinding[]
  /** Why a tool that is allowed is still denied (the first finding about it). */
  broken: Map<string, ToolFinding>
  /** Compiled parameter validators, filled on first use of a tool. */
  validators: Map<string, ValidateFunction | ToolFinding>
}

interface ToolDoc {
  metadata: {name: string}
  spec: {
    approvalFrom?: Risk
    maxParamsBytes?: number
    forbiddenCapabilities?: string[]
    allow: Array<{name: string; description?: string; risk: Risk; sideEffects: string[]; capabilities?: string[]; approval?: 'required' | 'none'; parameters: Record<string, unknown>; schemaHash: string}>
    deny?: Array<{name: string; reason?: string}>
  }
}

/** A parameter schema's hash: SHA-256 of its RFC 8785 canonical JSON, as `sha256:<hex>`. */
export function schemaHash(schema: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(schema))}`
}

export function parseToolPolicy(text: string, file: string, limits: Limits): ToolPolicy {
  const loaded = loadYaml(text, file, limits)
  validateKind('ToolPolicy', loaded)
  const {metadata, spec} = loaded.value as ToolDoc
  const at = (path: Array<string | number>) => ({file, ...locate(loaded, ['spec', ...path])})
  const policy: ToolPolicy = {
    file,
    name: metadata.name,
    hash: digestOfJson(loaded.value),
    approvalFrom: spec.approvalFrom ?? DEFAULT_APPROVAL_FROM,
    maxParamsBytes: spec.maxParamsBytes ?? DEFAULT_MAX_PARAMS_BYTES,
    forbidden: spec.forbiddenCapabilities ?? [],
    allowed: new Map(),
    denied: new Map(),
    findings: [],
    broken: new Map(),
    validators: new Map(),
  }
  for (const [i, d] of (spec.deny ?? []).entries()) {
    if (policy.denied.has(d.name)) throw inputError('SCHEMA_VIOLATION', {...at(['deny', i, 'name']), field: `spec.deny[${i}].name`}, `${d.name} is already denied by spec.deny[${policy.denied.get(d.name)!.index}]`)
    policy.denied.set(d.name, {rule: `spec.deny[${i}] ${d.name}`, reason: d.reason ?? null, index: i})
  }
  const find = (f: Omit<ToolFinding, 'file' | 'line' | 'column'>, path: Array<string | number>) => {
    const finding = {...f, ...at(path)}
    policy.findings.push(finding)
    if (!policy.broken.has(f.tool)) policy.broken.set(f.tool, finding)
  }
  for (const [i, t] of spec.allow.entries()) {
    const field = `spec.allow[${i}]`
    if (policy.allowed.has(t.name)) throw inputError('SCHEMA_VIOLATION', {...at(['allow', i, 'name']), field: `${field}.name`}, `${t.name} is already allowed by spec.allow[${policy.allowed.get(t.name)!.index}]; one entry per tool`)
    const approval = t.approval === 'required' ? `${field}.approval: required` : RISKS.indexOf(t.risk) >= RISKS.indexOf(policy.approvalFrom) ? `spec.approvalFrom: ${policy.approvalFrom} (${t.name} is ${t.risk})` : null
    const tool: AllowedTool = {
      name: t.name,
      rule: `${field} ${t.name}`,
      index: i,
      risk: t.risk,
      description: t.description ?? null,
      sideEffects: t.sideEffects,
      capabilities: t.capabilities ?? [],
      approval,
      parameters: t.parameters,
      schemaHash: t.schemaHash,
      computedHash: schemaHash(t.parameters),
      egress: [],
      paths: [],
    }
    for (const node of parameterNodes(t.parameters)) {
      if (node.schema[EGRESS_KEYWORD] === true) tool.egress.push(node.at)
      if (node.name !== null && node.at[node.at.length - 1] !== '*' && PATH_PARAMETER.test(node.name)) {
        const {line, column} = at(['allow', i, 'parameters', ...node.where.split('.').slice(1)])
        tool.paths.push({...node, line, column})
      }
    }
    policy.allowed.set(t.name, tool)
    const denied = policy.denied.get(t.name)
    if (denied) find({code: 'ALLOWED_AND_DENIED', tool: t.name, field: `${field}.name`, message: `${t.name} is both allowed here and denied by ${denied.rule}; deny wins`}, ['allow', i, 'name'])
    for (const cap of tool.capabilities) {
      const k = policy.forbidden.indexOf(cap)
      if (k >= 0) find({code: 'FORBIDDEN_CAPABILITY', tool: t.name, field: `${field}.capabilities`, message: `${t.name} has capability ${cap}, forbidden by spec.forbiddenCapabilities[${k}]`}, ['allow', i, 'capabilities'])
    }
    if (tool.computedHash !== tool.schemaHash) {
      find({code: 'SCHEMA_HASH_MISMATCH', tool: t.name, field: `${field}.schemaHash`, message: `the recorded hash ${tool.schemaHash} is not the parameter schema's ${tool.computedHash}`}, ['allow', i, 'schemaHash'])
    }
    const problem = staticSchemaProblem(t.parameters)
    if (problem) find({code: 'SCHEMA_ERROR', tool: t.name, field: `${field}.parameters${problem.at}`, message: problem.message}, ['allow', i, 'parameters'])
  }
  return policy
}

/**
 * What is wrong with a parameter schema before compiling it: the root must describe an object,
 * and every `pattern` (and `patternProperties` key) must compile and not backtrack exponentially.
 */
function staticSchemaProblem(schema: Record<string, unknown>): {at: string; message: string} | null {
  if (schema.type !== 'object') return {at: '.type', message: 'a tool takes a parameter object: the schema needs type: object'}
  const parameters = new Set(parameterNodes(schema).map((n) => n.where))
  const stack: Array<[unknown, string]> = [[schema, '']]
  while (stack.length > 0) {
    const [node, path] = stack.pop()!
    if (!node || typeof node !== 'object') continue
    for (const [k, v] of Object.entries(node)) {
      if (k === EGRESS_KEYWORD && !Array.isArray(node) && (!parameters.has(path) || path === '')) {
        return {at: `${path}.${k}`, message: `${EGRESS_KEYWORD} binds a parameter's own schema (under properties, or items of one) to the egress policy; here it would bind nothing`}
      }
      const patterns = k === 'pattern' && typeof v === 'string' ? [v] : k === 'patternProperties' && v && typeof v === 'object' ? Object.keys(v) : []
      for (const p of patterns) {
        // checkAnchoredPattern also requires anchors; a schema pattern need not be anchored.
        const problem = checkAnchoredPattern(`^(?:${p})$`)
        if (problem) return {at: `${path}.${k}`, message: `pattern ${JSON.stringify(p)} ${problem}`}
      }
      stack.push([v, `${path}.${k}`])
    }
  }
  return null
}

const ajvs = new WeakMap<ToolPolicy, Ajv2020Type>()

/**
 * The ajv of one policy's tool schemas (a policy's `$id`s never meet another's): JSON Schema
 * 2020-12, strict keywords, formats, no coercion or defaults.
 */
function toolAjv(policy: ToolPolicy): Ajv2020Type {
  let ajv = ajvs.get(policy)
  if (!ajv) {
    const require = createRequire(import.meta.url)
    const {Ajv2020} = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')
    const addFormats = require('ajv-formats') as typeof import('ajv-formats').default
    // strictSchema refuses unknown keywords (a misspelt additionalProperties would be ignored
    // otherwise); strictTypes and strictRequired would refuse schemas that are merely loose.
    ajv = new Ajv2020({strict: true, strictTypes: false, strictTuples: false, strictRequired: false, allErrors: false, coerceTypes: false, useDefaults: false, removeAdditional: false, validateFormats: true, logger: false})
    addFormats(ajv)
    ajv.addKeyword({keyword: EGRESS_KEYWORD, schemaType: 'boolean'})
    ajvs.set(policy, ajv)
  }
  return ajv
}

/** The tool's validator, compiled once; a schema that does not compile is a finding (deny). */
export function validatorOf(policy: ToolPolicy, tool: AllowedTool): ValidateFunction | ToolFinding {
  let v = policy.validators.get(tool.name)
  if (v) return v
  try {
    // A schema's own $id would register it globally: two tools could not share one.
    const {$id: _id, ...schema} = tool.parameters
    v = toolAjv(policy).compile(schema)
  } catch (error) {
    v = {code: 'SCHEMA_ERROR', tool: tool.name, file: policy.file, field: `spec.allow[${tool.index}].parameters`, message: `the parameter schema does not compile: ${(error as Error).message}`}
  }
  if (typeof v === 'function') v = pathEscape(policy, tool) ?? v
  if (typeof v !== 'function') {
    policy.findings.push(v)
    if (!policy.broken.has(tool.name)) policy.broken.set(tool.name, v)
  }
  policy.validators.set(tool.name, v)
  return v
}

/** A pattern that keeps a path under /workspace/ and refuses `..` segments in every position. */
export const WORKSPACE_PATH_PATTERN = String.raw`^/workspace(?![\s\S]*/\.\.(?:/|$))/[^\u0000-\u001f\u007f]*$`

/**
 * The root a path parameter's pattern states: the absolute directory its literal start spells
 * (`^/workspace/` and `^/workspace(?!…)/` state /workspace/; `^/workspace/proj-` states
 * /workspace/). Null when it states none, or only `/`.
 */
export function statedRoot(pattern: string): string | null {
  if (!pattern.startsWith('^/')) return null
  let i = 1
  let literal = ''
  for (; i < pattern.length; i++) {
    const c = pattern[i]!
    if (/[A-Za-z0-9_/-]/.test(c)) literal += c
    else if (c === '\\' && /[./-]/.test(pattern[i + 1] ?? '')) literal += pattern[++i]
    else break
  }
  // A quantified last character is not part of every match.
  if (/[?*+{]/.test(pattern[i] ?? '')) literal = literal.slice(0, -1)
  // Lookarounds match no characters: what follows them continues the literal.
  while (pattern.startsWith('(?!', i) || pattern.startsWith('(?=', i)) {
    let depth = 0
    for (; i < pattern.length; i++) {
      const c = pattern[i]
      if (c === '\\') i++
      else if (c === '[') {
        while (i + 1 < pattern.length && pattern[++i] !== ']') if (pattern[i] === '\\') i++
      } else if (c === '(') depth++
      else if (c === ')' && --depth === 0) break
    }
    i++
  }
  if (!literal.endsWith('/')) literal = pattern[i] === '/' && !/[?*+{]/.test(pattern[i + 1] ?? '') ? `${literal}/` : literal.slice(0, literal.lastIndexOf('/') + 1)
  return literal === '/' || literal.split('/').some((seg, k, all) => seg === '.' || seg === '..' || (seg === '' && k > 0 && k < all.length - 1)) ? null : literal
}

/** Paths that leave `root` (a `..` segment, a sibling sharing its name's start, elsewhere), for a pattern to refuse. */
function escapeProbes(root: string): string[] {
  const dir = root.slice(0, -1)
  const name = posix.basename(dir)
  return [
    `${dir}/..`, `${dir}/../`, `${dir}/../etc/passwd`, `${dir}/a/..`, `${dir}/a/../..`, `${dir}/a/../b`, `${dir}/a/../../etc/passwd`,
    `${dir}/./../etc/passwd`, `${dir}//../etc/passwd`, `${dir}/a/b/../../../etc/passwd`, `${dir}/a\n/../../etc/passwd`, `${dir}/../${name}x/a`,
    `${dir}x/etc/passwd`, `${dir}-other/a`, '/etc/passwd',
  ]
}

/**
 * The lint of path parameters (PATH_ESCAPE): each states a root, and its schema refuses every
 * probe that could leave it. A `..` segment counts even where the text stays inside: through a
 * symbolic link in the workspace, `a/../b` resolves wherever `a` points.
 */
function pathEscape(policy: ToolPolicy, tool: AllowedTool): ToolFinding | null {
  for (const node of tool.paths) {
    const field = `spec.allow[${tool.index}].parameters${node.where}`
    const param = `params/${node.at.join('/')}`
    const finding = (message: string): ToolFinding => ({code: 'PATH_ESCAPE', tool: tool.name, file: policy.file, line: node.line, column: node.column, field, message})
    const pattern = typeof node.schema.pattern === 'string' ? node.schema.pattern : null
    const root = pattern === null ? null : statedRoot(pattern)
    if (!root) return finding(`${param} is a path with no stated root: give it a pattern anchored at an absolute directory that refuses .. segments, e.g. ${WORKSPACE_PATH_PATTERN}`)
    let accepts: ValidateFunction
    try {
      const {$id: _id, ...schema} = node.schema
      accepts = toolAjv(policy).compile(schema)
    } catch (error) {
      return finding(`${param}: its schema cannot be judged on its own (${(error as Error).message}); inline it`)
    }
    for (const probe of escapeProbes(root)) {
      const outside = probe.split('/').includes('..') || !`${posix.normalize(probe)}/`.startsWith(root)
      if (outside && accepts(probe)) return finding(`${param} accepts ${JSON.stringify(probe)}, which can leave its stated root ${root}; refuse .. segments and siblings, e.g. ${WORKSPACE_PATH_PATTERN}`)
    }
  }
  return null
}

/** Compiles every allowed tool's schema, so that `findings` lists every broken one. */
export function compileAll(policy: ToolPolicy): ToolFinding[] {
  for (const tool of policy.allowed.values()) if (!policy.broken.has(tool.name)) validatorOf(policy, tool)
  return policy.findings
}

/** The tools a call may name: allowed and not denied, not broken. Denied tools are absent. */
export function listTools(policy: ToolPolicy): AllowedTool[] {
  compileAll(policy)
  return [...policy.allowed.values()].filter((t) => !policy.denied.has(t.name) && !policy.broken.has(t.name))
}

export type ToolVerdict = 'allow' | 'deny' | 'needs_approval'

export interface ToolDecision {
  decision: ToolVerdict
  tool: string
  /** The rule that decided, as written in the file (`spec.deny[0] shell.exec`, …). */
  rule: string
  /** The parameters' digest (RFC 8785, SHA-256): what an approval names. */
  paramsDigest?: string
  /** For a hash drift: the recorded and the computed hash. */
  hashes?: {recorded: string; computed: string}
  approval?: {keyids: string[]; expiresAt: string; approvedBy: string; nonce: string}
  /** For parameters bound to the egress policy: each value's egress decision. */
  egress?: Array<{param: string; host: string; port: number; rule: string}>
}

/** The first prototype-polluting key in a value (as a JSON pointer), or null. */
function prototypeKey(value: unknown): string | null {
  // The hot path of every call: pointers are built only for objects descended into, or a hit.
  const pointer = (path: string, k: string) => `${path}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`
  const stack: Array<[object, string]> = [[value as object, '']]
  while (stack.length > 0) {
    const [node, path] = stack.pop()!
    for (const k of Object.keys(node)) {
      if (PROTOTYPE_KEYS.has(k)) return pointer(path, k)
      const v = (node as Record<string, unknown>)[k]
      if (v !== null && typeof v === 'object') stack.push([v, pointer(path, k)])
    }
  }
  return null
}

/** Checks a call's approval: a signed statement naming this tool and these parameters (approval.ts). */
export type ApprovalCheck = (tool: AllowedTool, paramsDigest: string) => {ok: true; keyids: string[]; expiresAt: string; approvedBy: string; nonce: string} | {ok: false; problem: string}

/** The values at a path into the parameters (`*`: each item of an array), with their JSON pointer. */
function valuesAt(params: unknown, at: string[]): Array<[string, unknown]> {
  let found: Array<[string, unknown]> = [['params', params]]
  for (const k of at) {
    const next: Array<[string, unknown]> = []
    for (const [pointer, v] of found) {
      if (k === '*') {
        if (Array.isArray(v)) for (const [i, item] of v.entries()) next.push([`${pointer}/${i}`, item])
      } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, k)) next.push([`${pointer}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`, (v as Record<string, unknown>)[k]])
    }
    found = next
  }
  return found
}

/**
 * The egress step: every value of a parameter bound to the egress policy is a target `egress
 * check` allows. Fail closed: no egress policy, a value that is not a string or not a URL, deny.
 */
function egressStep(tool: AllowedTool, params: unknown, egress: EgressPolicy | undefined): {denied: string} | {checked: NonNullable<ToolDecision['egress']>} {
  const checked: NonNullable<ToolDecision['egress']> = []
  for (const at of tool.egress) {
    for (const [param, value] of valuesAt(params, at)) {
      if (!egress) return {denied: `${param}: bound to the egress policy (${EGRESS_KEYWORD}), and there is no egress policy to judge it by`}
      if (typeof value !== 'string') return {denied: `${param}: bound to the egress policy (${EGRESS_KEYWORD}), and not a string`}
      // A URL with userinfo names its host after the last '@' for WHATWG and after the first for
      // other parsers (`https://a@169.254.169.254@allowed/`): the tool might fetch what was not judged.
      if (URL.canParse(value) && (new URL(value).username !== '' || new URL(value).password !== '')) return {denied: `${param}: bound to the egress policy (${EGRESS_KEYWORD}), and a URL with userinfo (user@host) is refused: parsers disagree on the host it names`}
      let d
      try {
        d = checkEgress(egress, parseTarget(value))
      } catch (error) {
        if (!(error instanceof AirlockError)) throw error
        return {denied: `${param}: bound to the egress policy (${EGRESS_KEYWORD}): ${error.message}`}
      }
      if (d.decision === 'deny') return {denied: `${param}: the egress policy (${egress.file}) denies ${d.host}:${d.port}: ${d.rule}`}
      checked.push({param, host: d.host, port: d.port, rule: d.rule})
    }
  }
  return {checked}
}

/**
 * One decision, in a fixed order: denied → unknown → broken (forbidden capability, hash drift,
 * schema error, a path that can escape) → parameter size and shape → schema → egress → approval
 * → allow. `bytes` is the size of the parameters as received (JSON text), when known; `egress`
 * judges the parameters bound to the egress policy.
 */
export function checkTool(policy: ToolPolicy, call: {tool: string; params: unknown; bytes?: number}, approval?: ApprovalCheck, egress?: EgressPolicy): ToolDecision {
  const {tool: name, params} = call
  const out = (decision: ToolVerdict, rule: string, extra: Partial<ToolDecision> = {}): ToolDecision => ({decision, tool: name, rule, ...extra})
  const denied = policy.denied.get(name)
  if (denied) return out('deny', `${denied.rule}${denied.reason ? ` (${denied.reason})` : ''}${policy.allowed.has(name) ? `; also in ${policy.allowed.get(name)!.rule}, deny wins` : ''}`)
  const tool = policy.allowed.get(name)
  if (!tool) return out('deny', `spec.failClosed.unknownTool: ${name} is not in spec.allow`)
  // A finding about the tool (known already, or its schema failing to compile now) denies it.
  const validate = policy.broken.get(name) ?? validatorOf(policy, tool)
  if (typeof validate !== 'function') {
    const rule = `${validate.field}: ${validate.message}${validate.code === 'SCHEMA_ERROR' ? ' (spec.failClosed.schemaError)' : ''}`
    return out('deny', rule, validate.code === 'SCHEMA_HASH_MISMATCH' ? {hashes: {recorded: tool.schemaHash, computed: tool.computedHash}} : {})
  }
  if (call.bytes !== undefined && call.bytes > policy.maxParamsBytes) return out('deny', `spec.maxParamsBytes: the parameters are ${call.bytes} bytes, the limit is ${policy.maxParamsBytes}`)
  if (!params || typeof params !== 'object' || Array.isArray(params)) return out('deny', `${tool.rule}: the parameters must be a JSON object`)
  const polluting = prototypeKey(params)
  if (polluting) return out('deny', `params${polluting}: a prototype key (__proto__, constructor, prototype) is never accepted`)
  if (!validate(params)) {
    const e = validate.errors![0]!
    const extra = (e.params as {additionalProperty?: string}).additionalProperty
    return out('deny', `spec.allow[${tool.index}].parameters: params${e.instancePath || ''}${extra !== undefined ? `/${extra}` : ''} ${e.message ?? 'is invalid'}${extra !== undefined ? ' (not a known parameter)' : ''}`)
  }
  let bound: Partial<ToolDecision> = {}
  if (tool.egress.length > 0) {
    const step = egressStep(tool, params, egress)
    if ('denied' in step) return out('deny', step.denied)
    bound = {egress: step.checked}
  }
  if (!tool.approval) return out('allow', tool.rule, bound)
  const paramsDigest = digestOfJson(params)
  if (!approval) return out('needs_approval', tool.approval, {paramsDigest, ...bound})
  const checked = approval(tool, paramsDigest)
  if (!checked.ok) return out('deny', `approval: ${checked.problem}`, {paramsDigest})
  return out('allow', `${tool.rule}, approved (${tool.approval})`, {paramsDigest, ...bound, approval: {keyids: checked.keyids, expiresAt: checked.expiresAt, approvedBy: checked.approvedBy, nonce: checked.nonce}})
}

/** Where a parsed policy came from, for messages: `manifests/tool-policy.yaml:12`. */
export function findingText(f: ToolFinding): string {
  return `${[f.file, f.line, f.column].filter((x) => x !== undefined).join(':')}: ${f.field}: ${f.message}`
}

/** Refuses a policy with findings: what `airlock change` commits must deny nothing by accident. */
export function requireClean(policy: ToolPolicy): void {
  const findings = compileAll(policy)
  if (findings.length === 0) return
  const first = findings[0]!
  throw new AirlockError('SCHEMA_VIOLATION', `${findingText(first)}${findings.length > 1 ? ` (and ${findings.length - 1} more)` : ''}`, {file: first.file, line: first.line, field: first.field, findings})
}

