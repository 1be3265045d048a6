import {AirlockError} from './errors.js'

/** Every size, count and depth limit in one typed object; commands may override fields from flags. */
export interface Limits {
  /** Largest manifest or plan file read, in bytes. */
  maxFileBytes: number
  /** YAML alias expansions allowed in one document (billion-laughs guard). */
  maxYamlAliases: number
  /** Largest signed envelope accepted (an evidence receipt, a policy bundle), in bytes. */
  maxReceiptBytes: number
  /** Largest number of images a repository may hold. */
  maxImages: number
  /** Deepest nesting of brackets in JSON, YAML or Cedar text, and of values once parsed. */
  maxDepth: number
  /**
   * Deepest Cedar expression a policy may hold, as `checkCedarDepth` measures it: each nested
   * `if`, each link of an operator chain (`||`, `&&`, `+`, `.`, …) and two per bracket. The engine
   * (wasm, sharing Node's stack) recurses once per level; measured, once its code is optimized it
   * traps near 100 nested `if`s or 75 brackets (cold, near 360 and 125), so about half of that.
   */
  maxCedarDepth: number
  /**
   * The clock difference tolerated between a signer and a verifier, in milliseconds: how far past
   * the verifier's `now` a signed time (a bundle's or approval's issuedAt, a commit's or receipt's
   * date) may lie. The only clock skew: every check that allows one uses this.
   */
  clockSkewMs: number
  // Registries (image fetch-signature): what a registry may make one command read. Over a cap is
  // REGISTRY_TOO_LARGE naming it; past the deadline, REGISTRY_TIMEOUT. REGISTRY_LIMIT_FLAGS says
  // which flag raises each.
  /** Signature referrers of one image considered (Sigstore-bundle entries of its referrers index). */
  maxRegistryReferrers: number
  /** Descriptors listed in one manifest or index (its `manifests` or `layers`), checked before any is fetched. */
  maxRegistryDescriptors: number
  /** Signature layers of one referrer (or of the cosign v2 `.sig` manifest) tried. */
  maxRegistryLayers: number
  /** Largest manifest or index read, in bytes (the OCI distribution spec's 4 MiB). */
  maxRegistryManifestBytes: number
  /** Largest blob read (a Sigstore bundle, a simple-signing payload), in bytes. */
  maxRegistryBlobBytes: number
  /** Bytes read from registries (and their token services) by one command, all responses together. */
  maxRegistryBytes: number
  /** Deadline of one registry request, the whole exchange. */
  registryRequestMs: number
  /** Deadline of all of one command's registry work together. */
  registryDeadlineMs: number
  /**
   * Output of one `run:` gate kept in memory (its last bytes): beyond it the output still counts
   * toward its digest and byte count, but only the tail is kept for the excerpt and PASS=N FAIL=M.
   */
  maxGateOutputBytes: number
  /** Largest work-tree file the secret scan reads, in bytes; larger ones are skipped and named in its result. */
  maxSecretScanFileBytes: number
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxFileBytes: 1024 * 1024,
  maxYamlAliases: 50,
  maxReceiptBytes: 4 * 1024 * 1024,
  maxImages: 100_000,
  maxDepth: 64,
  maxCedarDepth: 48,
  clockSkewMs: 5 * 60 * 1000,
  maxRegistryReferrers: 32,
  maxRegistryDescriptors: 1024,
  maxRegistryLayers: 16,
  maxRegistryManifestBytes: 4 * 1024 * 1024,
  maxRegistryBlobBytes: 4 * 1024 * 1024,
  maxRegistryBytes: 32 * 1024 * 1024,
  registryRequestMs: 10_000,
  registryDeadlineMs: 120_000,
  maxGateOutputBytes: 1024 * 1024,
  maxSecretScanFileBytes: 8 * 1024 * 1024,
})

/** The registry limits, which a registry client is given. */
export type RegistryLimit = 'maxRegistryReferrers' | 'maxRegistryDescriptors' | 'maxRegistryLayers' | 'maxRegistryManifestBytes' | 'maxRegistryBlobBytes' | 'maxRegistryBytes' | 'registryRequestMs' | 'registryDeadlineMs'
export type RegistryLimits = Pick<Limits, RegistryLimit>

/** The flag that sets each registry limit on the commands that read registries (named in REGISTRY_TOO_LARGE and REGISTRY_TIMEOUT). */
export const REGISTRY_LIMIT_FLAGS = Object.freeze({
  maxRegistryReferrers: '--max-referrers',
  maxRegistryDescriptors: '--max-descriptors',
  maxRegistryLayers: '--max-layers',
  maxRegistryManifestBytes: '--max-manifest-bytes',
  maxRegistryBlobBytes: '--max-blob-bytes',
  maxRegistryBytes: '--max-total-bytes',
  registryRequestMs: '--timeout',
  registryDeadlineMs: '--deadline',
} as const satisfies Record<RegistryLimit, `--${string}`>)

/** What `checkNesting` skips: string literals, and comments in the syntax's own form. */
export type Syntax = 'json' | 'yaml' | 'cedar'

/**
 * Refuses text whose brackets nest deeper than `max` before any parser (or the policy engine)
 * recurses into it: one linear scan, skipping quoted strings and comments. Deep input is a size
 * limit (TOO_LARGE), never a stack overflow.
 */
export function checkNesting(text: string, source: string, syntax: Syntax, max: number = DEFAULT_LIMITS.maxDepth): void {
  let depth = 0
  let line = 1
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 10) line++
    else if (c === 0x22 /* " */ || (syntax === 'yaml' && c === 0x27) /* ' */) {
      const quote = c
      for (i++; i < text.length && text.charCodeAt(i) !== quote; i++) {
        if (text.charCodeAt(i) === 10) line++
        if (text.charCodeAt(i) === 0x5c /* \ */ && !(syntax === 'yaml' && quote === 0x27)) i++
      }
    } else if ((syntax === 'cedar' && c === 0x2f && text.charCodeAt(i + 1) === 0x2f) || (syntax === 'yaml' && c === 0x23 && (i === 0 || /\s/.test(text[i - 1]!)))) {
      while (i + 1 < text.length && text.charCodeAt(i + 1) !== 10) i++
    } else if (c === 0x5b || c === 0x7b || c === 0x28) {
      if (++depth > max) throw new AirlockError('TOO_LARGE', `${source}:${line}: nested deeper than ${max} levels`, {file: source, line, limit: max})
    } else if (c === 0x5d || c === 0x7d || c === 0x29) depth = Math.max(0, depth - 1)
  }
}

/** The same limit on a value already parsed (YAML block nesting has no brackets), without recursion. */
export function checkDepth(value: unknown, source: string, max: number = DEFAULT_LIMITS.maxDepth): void {
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [v, d] = stack.pop()!
    if (v === null || typeof v !== 'object') continue
    if (d >= max) throw new AirlockError('TOO_LARGE', `${source}: nested deeper than ${max} levels`, {file: source, limit: max})
    for (const child of Object.values(v)) stack.push([child, d + 1])
  }
}

/** Operator classes by precedence, loosest first: `||`, `&&`, relations, `+ -`, `*`, prefix `! -`, postfix `.` and `[`. */
const CEDAR_OPS: Record<string, number> = {'||': 0, '&&': 1, '==': 2, '!=': 2, '<': 2, '<=': 2, '>': 2, '>=': 2, in: 2, has: 2, like: 2, is: 2, '+': 3, '-': 3, '*': 4, '!': 5, '.': 6}
const POSTFIX = 6
/** What a bracket costs the engine, in operator levels (measured, optimized: ~75 brackets trap where ~100 `if`s do). */
const CEDAR_BRACKET = 2

/**
 * One bracket (or the whole text) while `checkCedarDepth` scans it: per precedence class, the
 * operators of the expression being read (`count`) and the deepest operand already read (`best`);
 * `leaf` is the deepest bracket read as the current operand; `ifs` the `if`s opened in it.
 */
class CedarFrame {
  count = new Array<number>(POSTFIX + 1).fill(0)
  best = new Array<number>(POSTFIX + 1).fill(0)
  leaf = 0
  ifs = 0
  /** Deepest expression of an earlier part (before a `:`, `then` or `else`). */
  peak = 0

  /** Depth of the expression read so far at class `c` and tighter: its chain, on its deepest operand. */
  depth(c = 0): number {
    return c > POSTFIX ? this.leaf : this.count[c]! + Math.max(this.best[c]!, this.depth(c + 1))
  }

  /** An operator of class `c`: the operand before it is complete. */
  operator(c: number): void {
    this.best[c] = Math.max(this.best[c]!, this.depth(c + 1))
    for (let k = c + 1; k <= POSTFIX; k++) this.count[k] = this.best[k] = 0
    if (c < POSTFIX) this.leaf = 0
    this.count[c]!++
  }

  /** Deepest sibling already closed (before a `,` or `;`). */
  closed = 0

  /** `then`, `else`, `:`, `when`: the next part is another operand of the same node. */
  separate(): void {
    this.peak = Math.max(this.peak, this.depth())
    this.count.fill(0)
    this.best.fill(0)
    this.leaf = 0
  }

  /** `,` or `;`: a sibling expression starts, `if`s and all. */
  sibling(): void {
    this.closed = this.total()
    this.separate()
    this.peak = this.ifs = 0
  }

  total(): number {
    return Math.max(this.closed, this.ifs + Math.max(this.peak, this.depth()))
  }
}

/**
 * Refuses Cedar policy text whose expressions nest deeper than `max` before the engine sees it:
 * the engine recurses once per nested `if`, per link of an operator chain (`a || b || …` is a
 * left-nested tree) and per bracket, and traps ("memory access out of bounds") where its stack
 * ends. One linear scan, skipping strings and comments, measuring an upper bound of the depth of
 * the tree the engine builds, by precedence. Too deep is TOO_LARGE naming file and line.
 */
export function checkCedarDepth(text: string, source: string, max: number = DEFAULT_LIMITS.maxCedarDepth): void {
  const stack = [new CedarFrame()]
  let line = 1
  // Whether the last token ended an operand, so a `-` after it is binary, and a `[` indexes it.
  let afterOperand = false
  const check = () => {
    let depth = 0
    for (const [i, f] of stack.entries()) depth += f.total() + (i > 0 ? CEDAR_BRACKET : 0)
    if (depth > max) {
      throw new AirlockError('TOO_LARGE', `${source}:${line}: a Cedar expression nested deeper than ${max} levels (nested if … then … else, operator chains or brackets); split it into several policies, or list values in a set (x in [a, b])`, {
        file: source,
        line,
        limit: max,
      })
    }
  }
  const word = /[A-Za-z_][A-Za-z0-9_]*|[0-9]+/y
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    const top = stack[stack.length - 1]!
    if (c === '\n') line++
    if (/\s/.test(c)) continue
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\n') line++
        if (text[i] === '\\') i++
      }
      afterOperand = true
      continue
    }
    if (c === '/' && text[i + 1] === '/') {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++
      continue
    }
    word.lastIndex = i
    const w = word.exec(text)?.[0]
    if (w) {
      i += w.length - 1
      if (w === 'if') top.ifs++
      else if (w === 'then' || w === 'else' || w === 'when' || w === 'unless') top.separate()
      else if (w in CEDAR_OPS) top.operator(CEDAR_OPS[w]!)
      afterOperand = !(w in CEDAR_OPS) && !['if', 'then', 'else', 'when', 'unless'].includes(w)
      check()
      continue
    }
    const two = text.slice(i, i + 2)
    if (two === '::') {
      i++
      continue
    }
    if (c === '(' || c === '[' || c === '{') {
      if (c === '[' && afterOperand) top.operator(POSTFIX)
      stack.push(new CedarFrame())
      afterOperand = false
      check()
      continue
    }
    if (c === ')' || c === ']' || c === '}') {
      if (stack.length > 1) {
        const inner = stack.pop()!
        const parent = stack[stack.length - 1]!
        parent.leaf = Math.max(parent.leaf, inner.total() + CEDAR_BRACKET)
      }
      afterOperand = true
      check()
      continue
    }
    if (c === ',' || c === ':' || c === ';') {
      if (c === ':') top.separate()
      else top.sibling()
      if (c === ';' && stack.length === 1) stack[0] = new CedarFrame()
      afterOperand = false
      continue
    }
    const op = two in CEDAR_OPS ? two : c in CEDAR_OPS ? c : null
    if (op) {
      if (op.length === 2) i++
      top.operator(op === '-' && !afterOperand ? 5 : CEDAR_OPS[op]!)
      afterOperand = false
      check()
      continue
    }
    // `@id(...)` annotations, `?principal` slots, `=` of old syntaxes: no depth.
    afterOperand = false
  }
}
