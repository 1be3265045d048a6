import {readdir, stat} from 'node:fs/promises'
import {checkCedarDepth, checkNesting, DEFAULT_LIMITS} from '../limits.js'
import {readRegularFile} from '../repo/files.js'
import {dirname, join, relative, sep} from 'node:path'
import {AirlockError} from '../errors.js'

/** Where a policy applies: the hierarchy of DESIGN.md (global, org, team, user). */
export type Scope = {kind: 'global'} | {kind: 'org'; org: string} | {kind: 'team'; org: string; team: string} | {kind: 'user'; user: string}

export interface PolicySource {
  /** `@id("…")` when the policy has one, else `file:line`: stable, and names a real place. */
  id: string
  file: string
  line: number
  column: number
  /** Offset of the policy's first character in its file. */
  offset: number
  text: string
  scope: Scope
}

export interface PolicyTree {
  root: string
  policies: PolicySource[]
  schema: {file: string; text: string} | null
}

export function scopeName(scope: Scope): string {
  switch (scope.kind) {
    case 'global':
      return 'global'
    case 'org':
      return `org:${scope.org}`
    case 'team':
      return `team:${scope.org}/${scope.team}`
    case 'user':
      return `user:${scope.user}`
  }
}

/** The scope a policy file belongs to, from its folder (`global/`, `orgs/O/`, `orgs/O/teams/T/`, `users/U/`). */
export function scopeOfPath(rel: string): Scope | null {
  const parts = rel.split('/')
  if (parts[0] === 'global') return {kind: 'global'}
  if (parts[0] === 'orgs' && parts[1] && parts[2] === 'teams' && parts[3] && parts.length > 4) return {kind: 'team', org: parts[1], team: parts[3]}
  if (parts[0] === 'orgs' && parts[1] && parts[2] !== 'teams' && parts.length > 2) return {kind: 'org', org: parts[1]}
  if (parts[0] === 'users' && parts[1] && parts.length > 2) return {kind: 'user', user: parts[1]}
  return null
}

/** Line and column (1-based) of `offset` in `text`. */
export function lineCol(text: string, offset: number): {line: number; column: number} {
  let line = 1
  let start = 0
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    start = i + 1
  }
  return {line, column: offset - start + 1}
}

/**
 * Splits a .cedar file into its policies at each top-level `;` (one outside string literals
 * and `//` comments). Each piece keeps its offset so that Cedar's locations, which are relative
 * to the piece, can be reported as file:line:col.
 */
export function splitPolicies(text: string): Array<{offset: number; text: string}> {
  const out: Array<{offset: number; text: string}> = []
  let start = -1
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '/' && text[i + 1] === '/') {
      const eol = text.indexOf('\n', i)
      i = eol < 0 ? text.length : eol
      continue
    }
    if (start < 0 && !/\s/.test(c!)) start = i
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++
      continue
    }
    if (c === ';' && start >= 0) {
      out.push({offset: start, text: text.slice(start, i + 1)})
      start = -1
    }
  }
  if (start >= 0) out.push({offset: start, text: text.slice(start)})
  return out
}

const ID_ANNOTATION = /@id\s*\(\s*"((?:[^"\\]|\\.)*)"\s*\)/

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {withFileTypes: true}).catch(() => {
    throw new AirlockError('INVALID_INPUT', `${dir}: no such policy folder`, {path: dir})
  })
  const files: string[] = []
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(dir, e.name)
    if (e.isDirectory()) files.push(...(await walk(path)))
    else if (e.isFile() && e.name.endsWith('.cedar')) files.push(path)
  }
  return files
}

/** A policy file, wherever it was read from (disk or a git commit). */
export interface PolicyFile {
  /** Path below the policy root, with `/`: decides the scope. */
  rel: string
  /** How the file is named in ids and messages. */
  display: string
  text: string
}

/** Splits files into policies with ids, locations and scopes; one rule for disk and git sources. */
export function buildPolicyTree(root: string, files: PolicyFile[], schema: PolicyTree['schema'], single = false): PolicyTree {
  const policies: PolicySource[] = []
  const seen = new Map<string, string>()
  if (schema) checkNesting(schema.text, schema.file, 'cedar')
  for (const {rel, display: file, text} of files) {
    checkNesting(text, file, 'cedar')
    checkCedarDepth(text, file)
    const scope = single ? ({kind: 'global'} as const) : scopeOfPath(rel)
    if (!scope) throw new AirlockError('INVALID_INPUT', `${file}: not under a scope folder (global/, orgs/ORG/, orgs/ORG/teams/TEAM/, users/USER/)`, {file})
    for (const piece of splitPolicies(text)) {
      const {line, column} = lineCol(text, piece.offset)
      const annotated = ID_ANNOTATION.exec(piece.text)?.[1]
      const id = annotated ?? `${file}:${line}`
      const where = `${file}:${line}:${column}`
      if (seen.has(id)) throw new AirlockError('INVALID_INPUT', `${where}: policy id "${id}" is already used at ${seen.get(id)}`, {file, line, column, field: '@id'})
      seen.set(id, where)
      policies.push({id, file, line, column, offset: piece.offset, text: piece.text, scope})
    }
  }
  return {root, policies, schema}
}

/**
 * Reads a policy tree from disk: every `*.cedar` under a scope folder, and the schema. `display`
 * is how file names are shown (relative to the repository, as in `policies/global/base.cedar`).
 */
export async function loadPolicyTree(root: string, opts: {schemaFile?: string; display: (abs: string) => string}): Promise<PolicyTree> {
  // A single .cedar file (as the Cedar CLI takes) is one global policy set.
  const single = (await stat(root).catch(() => null))?.isFile() ?? false
  const files: PolicyFile[] = []
  for (const abs of single ? [root] : await walk(root)) {
    files.push({rel: relative(root, abs).split(sep).join('/'), display: opts.display(abs), text: await readRegularFile(abs, {maxBytes: DEFAULT_LIMITS.maxFileBytes, label: opts.display(abs)})})
  }
  const schemaFile = opts.schemaFile ?? join(single ? dirname(root) : root, 'schema.cedarschema')
  const schemaText = await readRegularFile(schemaFile, {maxBytes: DEFAULT_LIMITS.maxFileBytes, label: opts.display(schemaFile)}).catch((error: AirlockError) => {
    // An absent default schema is no schema; a schema file that is there must be a regular file.
    if (!opts.schemaFile && error.details.errno === 'ENOENT') return null
    throw error
  })
  return buildPolicyTree(root, files, schemaText === null ? null : {file: opts.display(schemaFile), text: schemaText}, single)
}
