import {Args, Flags} from '@oclif/core'
import type {EgressDecision} from '../../control-plane/policy/egress/egress.js'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import {AirlockCommand, anchorFlag, auditDirFlag} from '../_base.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class EgressCheck extends AirlockCommand {
  static override summary = 'Would the egress policy let a sandbox connect to URL or HOST[:PORT]? allow (exit 0) or deny (exit 1), with the rule that decided.'
  static override description =
    'The policy is manifests/egress.yaml at HEAD (or --policy FILE). The target is parsed as a browser parses URLs: decimal, octal, hex and IPv4-mapped IPv6 spellings of an address are the address, userinfo is not the host, IDNs are punycode, one trailing dot changes nothing, and a host with an empty label (pypi.org.., .pypi.org) is invalid input. A bare HOST is port 443. The cloud metadata services (AWS, ECS, GCP, Azure, Oracle, Alibaba, DigitalOcean, OpenStack) are always denied, by address and by name, in every profile.'
  static override examples = ['<%= config.bin %> egress check https://pypi.org/simple/', '<%= config.bin %> egress check 169.254.169.254:80 --json']
  static override args = {target: Args.string({description: 'URL (http, https, ws, wss) or HOST[:PORT]', required: true})}
  static override flags = {
    ...auditDirFlag,
    policy: Flags.string({description: 'an EgressPolicy file (default: manifests/egress.yaml at HEAD, whose history must verify)'}),
    ...anchorFlag,
  }

  async run(): Promise<EgressDecision & {policy: string; trustSource: TrustSource}> {
    const {args, flags} = await this.parse(EgressCheck)
    const [{parseTarget, checkEgress}, {egressPolicy}] = await Promise.all([import('../../control-plane/policy/egress/egress.js'), import('../_policy.js')])
    // An enforced decision that cannot be recorded is not given (fail closed).
    await this.openAudit(flags, true)
    const {policy, source, sha256} = await egressPolicy(flags, this)
    const decision = checkEgress(policy, parseTarget(args.target))
    const [{egressDecisionEvent}, {hostname}] = await Promise.all([import('../../control-plane/audit/ocsf.js'), import('node:os')])
    const actor = (await this.requester(undefined)).actor
    await this.recordAudit(egressDecisionEvent({now: this.now, host: hostname(), toolVersion: this.config.version, actor, policy: {file: policy.file, sha256}, rule: decision.rule, destination: {host: decision.host, port: decision.port}, decision: decision.decision}))
    if (decision.decision === 'deny') this.failCheck()
    this.log(`${decision.decision.toUpperCase()} ${t(decision.host)}:${t(String(decision.port))}\n  rule ${t(decision.rule)}`)
    return {...decision, policy: policy.file, trustSource: source}
  }
}
