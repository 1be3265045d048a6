/**
 * Egress policy (`manifests/egress.yaml`, kind EgressPolicy): where a sandbox may open
 * connections. A target is parsed by the WHATWG URL parser — which already turns decimal, octal,
 * hex and mixed IPv4 forms into dotted quads, lower-cases, drops userinfo from the host and turns
 * IDNs into punycode — and addresses are matched with node:net's BlockList, so none of the usual
 * spellings of 169.254.169.254 gets past a rule. Default deny where the profile says so; the
 * cloud metadata addresses are always denied, whatever the allow list says.
 */
import {BlockList, isIP} from 'node:net'
import {AirlockError, inputError} from '../../errors.js'
import type {Limits} from '../../limits.js'
import {validateKind} from '../../manifests/validate.js'
import {loadYaml, locate} from '../../manifests/yaml.js'


export type Profile = 'permissive' | 'moderate' | 'restrictive'

/** What each profile means when the spec does not say otherwise. */
export const PROFILES: Record<Profile, {allowlistOnly: boolean; ports: number[] | null}> = {
  permissive: {allowlistOnly: false, ports: null},
  moderate: {allowlistOnly: false, ports: [80, 443]},
  restrictive: {allowlistOnly: true, ports: [443]},
}

/**
 * Always denied, in every profile, whatever the allow list says: the cloud instance-metadata
 * services, by address (IPv4 and IPv6) and by every name they answer to. Sources (provider docs):
 * - AWS EC2 IMDS: 169.254.169.254, fd00:ec2::254 (Nitro, IPv6); names `instance-data` (the VPC
 *   resolver's search domain completes it), `instance-data.ec2.internal` (us-east-1) and
 *   `instance-data.<region>.compute.internal` (other regions, matched by METADATA_NAME_PATTERNS).
 * - AWS ECS task metadata and credentials: 169.254.170.2; the EKS Pod Identity agent (credentials
 *   for ECS/EKS workloads): 169.254.170.23, fd00:ec2::23.
 * - Google Compute Engine: 169.254.169.254, fd20:ce::254 (IPv6-only VMs); `metadata`,
 *   `metadata.google.internal`, `metadata.goog`.
 * - Azure IMDS: 169.254.169.254; the WireServer (VM agent, extension settings): 168.63.129.16;
 *   `metadata.azure.internal` (used by some images' resolvers).
 * - Oracle Cloud IMDS: 169.254.169.254, 192.0.0.192 (legacy), fd00:c1::a9fe:a9fe (IPv6).
 * - Alibaba Cloud ECS: 100.100.100.200. DigitalOcean, Hetzner: 169.254.169.254.
 * - OpenStack Nova/Neutron: 169.254.169.254, fe80::a9fe:a9fe (IPv6, Neutron's metadata proxy).
 * Names are compared after the URL parser's normalization (lower case, IDN to punycode, percent
 * and full-width forms decoded, U+3002 as a dot) and with one trailing dot removed.
 */
export const METADATA_ADDRESSES = [
  '169.254.169.254',
  '169.254.170.2',
  '169.254.170.23',
  '168.63.129.16',
  '192.0.0.192',
  '100.100.100.200',
  'fd00:ec2::254',
  'fd00:ec2::23',
  'fd20:ce::254',
  'fd00:c1::a9fe:a9fe',
  'fe80::a9fe:a9fe',
] as const
export const METADATA_NAMES = ['instance-data', 'instance-data.ec2.internal', 'metadata', 'metadata.google.internal', 'metadata.goog', 'metadata.azure.internal'] as const
/** Metadata names with a variable part: AWS's `instance-data.<region>.compute.internal`. */
export const METADATA_NAME_PATTERNS: ReadonlyArray<{pattern: RegExp; rule: string}> = [{pattern: /^instance-data\.[a-z0-9-]+\.compute\.internal$/, rule: 'instance-data.<region>.compute.internal'}]
/** Every always-denied rule, addresses then names. */
export const METADATA = [...METADATA_ADDRESSES, ...METADATA_NAMES] as const
const METADATA_RULE = 'default blocklist (cloud metadata)'

/** Denied unless the policy allows private addresses or names the address itself. */
export const PRIVATE_RANGES = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '198.18.0.0/15', '::/128', '::1/128', 'fc00::/7', 'fe80::/10'] as const

/** A list of rules: exact domains, wildcard domains (by their base) and addresses, each with where it came from. */
class RuleSet {
  private readonly exact = new Map<string, string>()
  private readonly wildcards = new Map<string, string>()
  private readonly addresses = new BlockList()
  private readonly ranges: Array<{list: BlockList; rule: string; text: string}> = []

  add(rule: string, where: string, file: string, at: () => {line?: number; column?: number}): void {
    const text = rule.toLowerCase()
    const slash = text.indexOf('/')
    const address = slash < 0 ? text : text.slice(0, slash)
    const family = isIP(address)
    if (family) {
      const type = family === 4 ? 'ipv4' : 'ipv6'
      const list = new BlockList()
      if (slash < 0) {
        list.addAddress(address, type)
        this.addresses.addAddress(address, type)
      } else {
        const prefix = Number(text.slice(slash + 1))
        if (!/^\d{1,3}$/.test(text.slice(slash + 1)) || prefix > (family === 4 ? 32 : 128)) throw inputError('SCHEMA_VIOLATION', {file, ...at(), field: where}, `"${rule}" is not a CIDR range`)
        list.addSubnet(address, prefix, type)
        this.addresses.addSubnet(address, prefix, type)
      }
      this.ranges.push({list, rule: `${where} ${rule}`, text})
      return
    }
    const wildcard = text.startsWith('*.')
    const domain = (wildcard ? text.slice(2) : text).replace(/\.$/, '')
    if (!/^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/.test(domain)) {
      throw inputError('SCHEMA_VIOLATION', {file, ...at(), field: where}, `"${rule}" is not a domain, a *.domain wildcard, an IP address or a CIDR range`)
    }
    ;(wildcard ? this.wildcards : this.exact).set(domain, `${where} ${rule}`)
  }

  exactDomains(): string[] {
    return [...this.exact.keys()]
  }

  wildcardRules(): string[] {
    return [...this.wildcards.keys()].map((d) => `*.${d}`)
  }

  /** The address and CIDR rules as written (lower-cased). */
  addressRules(): string[] {
    return this.ranges.map((r) => r.text)
  }

  /** The rule matching a domain: itself exactly, or a wildcard for one of its parents. */
  domain(host: string): string | null {
    const exact = this.exact.get(host)
    if (exact) return exact
    for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
      const rule = this.wildcards.get(host.slice(dot + 1))
      if (rule) return rule
    }
    return null
  }

  /** The rule matching an address (the combined list first; the naming walk only on a match). */
  address(ip: string, family: 4 | 6): string | null {
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (!this.addresses.check(ip, type)) return null
    return this.ranges.find((r) => r.list.check(ip, type))?.rule ?? null
  }
}

export interface EgressPolicy {
  file: string
  name: string
  profile: Profile
  network: boolean
  allowlistOnly: boolean
  allowPrivate: boolean
  ports: number[] | null
  allow: RuleSet
  block: RuleSet
  metadata: RuleSet
  private: RuleSet
}

interface EgressDoc {
  metadata: {name: string}
  spec: {profile: Profile; network?: boolean; allowlistOnly?: boolean; allowPrivate?: boolean; allow?: string[]; block?: string[]; ports?: number[]}
}

function builtin(rules: readonly string[], where: string): RuleSet {
  const set = new RuleSet()
  for (const r of rules) set.add(r, where, '(built in)', () => ({}))
  return set
}

export function parseEgress(text: string, file: string, limits: Limits): EgressPolicy {
  const loaded = loadYaml(text, file, limits)
  validateKind('EgressPolicy', loaded)
  const {metadata, spec} = loaded.value as EgressDoc
  const defaults = PROFILES[spec.profile]
  const rules = (list: string[] | undefined, field: 'allow' | 'block') => {
    const set = new RuleSet()
    for (const [i, r] of (list ?? []).entries()) set.add(r, `spec.${field}[${i}]`, file, () => locate(loaded, ['spec', field, i]))
    return set
  }
  return {
    file,
    name: metadata.name,
    profile: spec.profile,
    network: spec.network ?? true,
    allowlistOnly: spec.allowlistOnly ?? defaults.allowlistOnly,
    allowPrivate: spec.allowPrivate ?? false,
    ports: spec.ports ?? defaults.ports,
    allow: rules(spec.allow, 'allow'),
    block: rules(spec.block, 'block'),
    metadata: builtin(METADATA, METADATA_RULE),
    private: builtin(PRIVATE_RANGES, 'private address range'),
  }
}

export interface EgressTarget {
  host: string
  port: number
  /** The address when the host is an IP literal (IPv4-mapped IPv6 as the IPv4 it maps). */
  ip: string | null
  family: 4 | 6 | null
}

const SCHEMES = new Set(['http:', 'https:', 'ws:', 'wss:'])

/**
 * The IPv6 prefixes (/96) whose last 32 bits are an IPv4 address a host or a translator reaches:
 * mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, SIIT's translated ::ffff:0:a.b.c.d (RFC 6145), and
 * NAT64's well-known 64:ff9b:: (RFC 6052) and local-use 64:ff9b:1:: (RFC 8215) prefixes.
 */
const IPV4_EMBEDDING = ['::ffff:', '::ffff:0:', '::', '64:ff9b::', '64:ff9b:1::'] as const

/** The IPv4 address an IPv6 one carries under one of the IPV4_EMBEDDING prefixes, if any. */
function embeddedIpv4(ip: string): string | null {
  const m = /^(?:::ffff:|::ffff:0:|::|64:ff9b::|64:ff9b:1::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ip)
  if (!m) return null
  const hi = Number.parseInt(m[1]!, 16)
  const lo = Number.parseInt(m[2]!, 16)
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}

/**
 * `URL` or `HOST[:PORT]` as a connection target. A URL's port is its own or its scheme's; a bare
 * host's is 443. Other schemes than http(s)/ws(s) are refused: their hosts are not normalized.
 */
export function parseTarget(target: string): EgressTarget {
  const hasScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)
  let url: URL
  try {
    url = new URL(hasScheme ? target : `https://${target}`)
  } catch {
    throw new AirlockError('INVALID_INPUT', `"${target}" is not a URL or HOST[:PORT]`, {field: 'TARGET'})
  }
  if (!SCHEMES.has(url.protocol)) throw new AirlockError('USAGE', `"${target}": give an http(s) or ws(s) URL, or HOST[:PORT]`, {field: 'TARGET'})
  if (!hasScheme && (url.pathname !== '/' || url.search || url.hash || url.username)) throw new AirlockError('INVALID_INPUT', `"${target}" is not HOST[:PORT]`, {field: 'TARGET'})
  // One trailing dot is the fully-qualified spelling of the same name; any other empty label
  // (`pypi.org..`, `.pypi.org`, `pypi..org`) is no name a resolver would look up the same way.
  let host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '')
  if (host === '') throw new AirlockError('INVALID_INPUT', `"${target}" names no host`, {field: 'TARGET'})
  if (!url.hostname.startsWith('[') && host.split('.').some((label) => label === '')) throw new AirlockError('INVALID_INPUT', `"${target}": the host ${JSON.stringify(url.hostname)} has an empty label`, {field: 'TARGET'})
  const port = url.port ? Number(url.port) : url.protocol === 'http:' || url.protocol === 'ws:' ? 80 : 443
  let family = isIP(host) as 0 | 4 | 6
  if (family === 6) {
    const v4 = embeddedIpv4(host)
    if (v4) {
      host = v4
      family = 4
    }
  }
  return {host, port, ip: family ? host : null, family: family || null}
}

export interface EgressDecision {
  decision: 'allow' | 'deny'
  /** The rule that decided, as written (`spec.allow[2] *.pypi.org`, `default blocklist …`). */
  rule: string
  host: string
  port: number
}

/** The always-denied rule a metadata name of variable form matches, or null. */
function metadataPattern(host: string): string | null {
  for (const {pattern, rule} of METADATA_NAME_PATTERNS) if (pattern.test(host)) return `${METADATA_RULE} ${rule}`
  return null
}

/** One decision, in a fixed order: no network → metadata → block → ports → private → allow → profile. */
export function checkEgress(policy: EgressPolicy, target: EgressTarget): EgressDecision {
  const {host, port} = target
  const out = (decision: 'allow' | 'deny', rule: string): EgressDecision => ({decision, rule, host, port})
  if (!policy.network) return out('deny', 'spec.network: false')
  const match = (set: RuleSet) => (target.ip ? set.address(target.ip, target.family!) : set.domain(host))
  const metadata = match(policy.metadata) ?? (target.ip ? null : metadataPattern(host))
  if (metadata) return out('deny', `${metadata} (always denied)`)
  const blocked = match(policy.block)
  if (blocked) return out('deny', blocked)
  if (policy.ports && !policy.ports.includes(port)) return out('deny', `spec.ports: ${port} is not one of ${policy.ports.join(', ')} (profile ${policy.profile})`)
  const allowed = match(policy.allow)
  if (target.ip && !policy.allowPrivate && !allowed) {
    const range = match(policy.private)
    if (range) return out('deny', `${range} (spec.allowPrivate is false)`)
  }
  if (allowed) return out('allow', allowed)
  if (policy.allowlistOnly) return out('deny', `spec.allowlistOnly: ${host} is not in spec.allow (profile ${policy.profile})`)
  return out('allow', `profile ${policy.profile}: not blocked`)
}

/** What `egress render` needs besides the policy: resolved names, the DNS resolver, when. */
export interface RenderInput {
  /** Addresses for the exact domains of the policy (wildcards cannot be resolved). */
  resolved: Map<string, string[]>
  /** Where the answers came from (a file, or the system resolver), for the header. */
  source: string
  /** The one resolver DNS may go to; null: no DNS at all. */
  resolver: string | null
  at: Date
}

/** The exact domains of the allow and block lists: what needs resolving before rendering. */
export function domainsToResolve(policy: EgressPolicy): {allow: string[]; block: string[]} {
  return {allow: policy.allow.exactDomains(), block: policy.block.exactDomains()}
}

/**
 * The policy as an nftables ruleset for a sandbox's network namespace: default drop; loopback
 * and established traffic; the metadata addresses always dropped; DNS only to the resolver;
 * blocked and private addresses dropped; allowed addresses (rules and resolved names) on the
 * allowed ports accepted; anything else accepted only when the profile is not allowlist-only.
 */
export function renderNftables(policy: EgressPolicy, input: RenderInput): string {
  const v4 = (xs: string[]) => xs.filter((x) => isIP(x.split('/')[0]!) === 4)
  const v6 = (xs: string[]) => xs.filter((x) => isIP(x.split('/')[0]!) === 6)
  const set = (xs: string[]) => `{ ${xs.join(', ')} }`
  const ports = policy.ports ? `tcp dport ${set(policy.ports.map(String))} ` : ''
  const resolvedFor = (domains: string[]) => domains.flatMap((d) => input.resolved.get(d) ?? [])
  const {allow: allowNames, block: blockNames} = domainsToResolve(policy)
  const allowed = [...policy.allow.addressRules(), ...resolvedFor(allowNames)]
  const blocked = [...policy.block.addressRules(), ...resolvedFor(blockNames)]
  const privates = policy.allowPrivate ? [] : [...PRIVATE_RANGES]
  const lines: string[] = [
    `# airlock egress policy "${policy.name}" (${policy.file}), profile ${policy.profile}; rendered ${input.at.toISOString()}`,
    `# names resolved from ${input.source}: ${[...allowNames, ...blockNames].map((d) => `${d} -> ${(input.resolved.get(d) ?? ['(none)']).join(' ')}`).join('; ') || 'none'}`,
  ]
  const wildcards = [...policy.allow.wildcardRules(), ...policy.block.wildcardRules()]
  if (wildcards.length) lines.push(`# not enforceable at the address level (need a proxy that sees names): ${wildcards.join(', ')}`)
  lines.push('table inet airlock_egress {', '  chain output {', '    type filter hook output priority filter; policy drop;', '    oif "lo" accept')
  if (policy.network) {
    lines.push('    ct state established,related accept')
    // The IPv6 spellings a translator turns into an IPv4 metadata address are dropped too (the mapped ::ffff: form leaves as IPv4).
    const low32 = (a: string) => {
      const [w, x, y, z] = a.split('.').map(Number) as [number, number, number, number]
      return `${((w << 8) | x).toString(16)}:${((y << 8) | z).toString(16)}`
    }
    const translated = v4([...METADATA_ADDRESSES]).flatMap((a) => IPV4_EMBEDDING.filter((p) => p !== '::ffff:' && p !== '::').map((p) => `${p}${low32(a)}`))
    lines.push(`    ip daddr ${set(v4([...METADATA_ADDRESSES]))} drop`, `    ip6 daddr ${set([...v6([...METADATA_ADDRESSES]), ...translated])} drop`)
    if (input.resolver) {
      const fam = isIP(input.resolver) === 6 ? 'ip6' : 'ip'
      lines.push(`    ${fam} daddr ${input.resolver} udp dport 53 accept`, `    ${fam} daddr ${input.resolver} tcp dport 53 accept`)
    }
    lines.push('    udp dport 53 drop', '    tcp dport 53 drop')
    for (const [fam, xs] of [['ip', v4(blocked)], ['ip6', v6(blocked)]] as const) if (xs.length) lines.push(`    ${fam} daddr ${set(xs)} drop`)
    // An address the policy allows by name is let through even inside a private range.
    for (const [fam, xs] of [['ip', v4(allowed)], ['ip6', v6(allowed)]] as const) if (xs.length) lines.push(`    ${fam} daddr ${set(xs)} ${ports}accept`)
    for (const [fam, xs] of [['ip', v4(privates)], ['ip6', v6(privates)]] as const) if (xs.length) lines.push(`    ${fam} daddr ${set(xs)} drop`)
    if (!policy.allowlistOnly) lines.push(`    ${ports || 'meta l4proto { tcp, udp } '}accept`)
  }
  lines.push('  }', '}', '')
  return lines.join('\n')
}
