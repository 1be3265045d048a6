import {Flags} from '@oclif/core'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class EgressRender extends AirlockCommand {
  static override summary = "Render the egress policy as an nftables ruleset for a sandbox's network namespace."
  static override description =
    'Default drop; loopback and established traffic accepted; the cloud metadata addresses (IPv4 and IPv6) always dropped; DNS only to --resolver (default: the first nameserver of /etc/resolv.conf); blocked and private ranges dropped; allowed addresses on the allowed ports accepted. Domain rules are enforced by the addresses they resolve to: --resolve FILE ({"name": ["address", …]}) or, without it, the system resolver now; the ruleset says which names it resolved, from where and when. Wildcards cannot be resolved and are listed as not enforceable at the address level. Load it with `nft -f`.'
  static override examples = ['<%= config.bin %> egress render --format nftables --resolve answers.json > egress.nft && nft -c -f egress.nft']
  static override flags = {
    format: Flags.string({description: 'output format', options: ['nftables'], default: 'nftables'}),
    policy: Flags.string({description: 'an EgressPolicy file (default: manifests/egress.yaml at HEAD, whose history must verify)'}),
    ...anchorFlag,
    resolve: Flags.string({description: 'JSON file of answers: {"name": ["address", …]} (default: ask the system resolver)'}),
    resolver: Flags.string({description: 'the one DNS server the sandbox may ask (default: first nameserver in /etc/resolv.conf)'}),
  }

  async run(): Promise<{ruleset: string; resolved: Record<string, string[]>; source: string; resolver: string | null; trustSource: TrustSource}> {
    const {flags} = await this.parse(EgressRender)
    const [{renderNftables, domainsToResolve}, {AirlockError}, {egressPolicy, readInput}, {isIP}] = await Promise.all([
      import('../../control-plane/policy/egress/egress.js'),
      import('../../control-plane/errors.js'),
      import('../_policy.js'),
      import('node:net'),
    ])
    const {policy, source: trustSource} = await egressPolicy(flags, this)
    const names = domainsToResolve(policy)
    const resolved = new Map<string, string[]>()
    let source: string
    if (flags.resolve) {
      const {parseExactJson} = await import('../../control-plane/policy/json.js')
      const answers = parseExactJson(await readInput(flags.resolve, this.limits.maxFileBytes), flags.resolve) as Record<string, unknown>
      if (!answers || typeof answers !== 'object' || Array.isArray(answers)) throw new AirlockError('INVALID_INPUT', `${flags.resolve}: give {"name": ["address", …]}`, {file: flags.resolve})
      for (const [name, addrs] of Object.entries(answers)) {
        if (!Array.isArray(addrs) || !addrs.every((a) => typeof a === 'string' && isIP(a))) throw new AirlockError('INVALID_INPUT', `${flags.resolve}: ${name}: a list of IP addresses`, {file: flags.resolve, field: name})
        resolved.set(name.toLowerCase().replace(/\.$/, ''), addrs as string[])
      }
      source = flags.resolve
    } else {
      const {lookup} = await import('node:dns/promises')
      for (const name of [...names.allow, ...names.block]) resolved.set(name, (await lookup(name, {all: true}).catch(() => [])).map((a) => a.address))
      source = 'the system resolver'
    }
    let resolver = flags.resolver ?? null
    if (!flags.resolver) {
      const {readFile} = await import('node:fs/promises')
      resolver = /^\s*nameserver\s+(\S+)/m.exec(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''))?.[1] ?? null
    }
    if (resolver !== null && !isIP(resolver)) throw new AirlockError('USAGE', `--resolver: "${resolver}" is not an IP address`, {field: '--resolver'})
    const ruleset = renderNftables(policy, {resolved, source: `${source} at ${this.now.toISOString()}`, resolver, at: this.now})
    if (!this.jsonEnabled()) process.stdout.write(t(ruleset, {keepNewlines: true}))
    return {ruleset, resolved: Object.fromEntries(resolved), source, resolver, trustSource}
  }
}
