import {Flags} from '@oclif/core'
import {AirlockCommand, planFlags, type PlanOutcome} from '../_base.js'
import {decisionPolicies} from '../_policy.js'

export default class PolicyBundle extends AirlockCommand {
  static override summary = 'Build, sign and (with --apply) publish the policies of one scope as a bundle under bundles/.'
  static override examples = ['<%= config.bin %> policy bundle --scope org:acme --expires 24h --key keys/policy-a.key --key keys/policy-b.key --apply']
  static override flags = {
    ...planFlags,
    scope: Flags.string({description: 'global, org:ID, team:ORG/TEAM or user:ID', required: true}),
    expires: Flags.string({description: 'validity from now, e.g. 24h or 7d', default: '24h'}),
    key: Flags.string({description: 'policy signing key (repeat for a threshold)', required: true, multiple: true}),
    version: Flags.integer({description: 'bundle version (default: last published + 1)', min: 1}),
    policies: Flags.string({description: 'policy folder (default: policies/ at HEAD, whose history must verify back to the pinned trust anchor: what is signed is what is committed)'}),
    schema: Flags.string({description: 'Cedar schema (default: schema.cedarschema in the policy folder)'}),
  }

  async run(): Promise<PlanOutcome> {
    const {flags} = await this.parse(PolicyBundle)
    const [{parseScope}, {signPolicyBundle}, {parseDuration}, {loadSigner}] = await Promise.all([
      import('../../control-plane/policy/bundle.js'),
      import('../../control-plane/policy/publish.js'),
      import('../../control-plane/duration.js'),
      import('../../control-plane/crypto/keys.js'),
    ])
    const scope = parseScope(flags.scope)
    const expiresInMs = parseDuration(flags.expires, '--expires')
    const signers = await Promise.all(flags.key.map((file) => loadSigner({file}, 'policy')))
    const repo = await this.repository(flags.repo)
    const {tree} = await decisionPolicies({...flags, repo: repo.dir}, this)
    const bundle = await signPolicyBundle(repo, {tree, scope, expiresInMs, signers, version: flags.version, now: this.now, limits: this.limits})
    return this.runChange(repo, {kind: 'policy-bundle', scope: flags.scope, bundle}, flags)
  }
}
