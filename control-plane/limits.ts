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
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxFileBytes: 1024 * 1024,
  maxYamlAliases: 50,
  maxReceiptBytes: 4 * 1024 * 1024,
  maxImages: 100_000,
  maxDepth: 64,
  clockSkewMs: 5 * 60 * 1000,
  maxRegistryReferrers: 32,
  maxRegistryDescriptors: 1024,
  maxRegistryLayers: 16,
  maxRegistryManifestBytes: 4 * 1024 * 1024,
  maxRegistryBlobBytes: 4 * 1024 * 1024,
  maxRegistryBytes: 32 * 1024 * 1024,
  registryRequestMs: 10_000,
  registryDeadlineMs: 120_000,
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
