import {Args, Flags} from '@oclif/core'
import type {ApprovalStatement} from '../../control-plane/policy/tools/approval.js'
import {AirlockCommand, auditDirFlag} from '../_base.js'
import {egressFlag, egressFor, paramsFlag, readParams, toolPolicyFlags} from './_call.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class ToolApprove extends AirlockCommand {
  static override summary = 'Approve one tool call: print a signed, expiring token for TOOL with exactly these parameters, for `airlock tool check --approval`.'
  static override description =
    'The token is a DSSE envelope (base64url) holding the tool, its current schema hash, the parameters\' RFC 8785 SHA-256, who approved, why, and when it expires, signed with an Ed25519 key of role approval in trust.yaml. A call the policy denies is not approved; changing the parameters or the tool\'s schema voids the token.'
  static override examples = [`<%= config.bin %> tool approve send_email --params @call.json --reason 'weekly report to the finance list' --ttl 15m > approval.token`]
  static override args = {tool: Args.string({description: 'the tool', required: true})}
  static override flags = {
    ...auditDirFlag,
    ...toolPolicyFlags,
    ...egressFlag,
    ...paramsFlag,
    ttl: Flags.string({description: 'how long the approval holds: 90s, 15m, 2h (at most 24h)', default: '15m'}),
    reason: Flags.string({description: 'why: part of the signed statement', default: ''}),
    actor: Flags.string({description: 'who approves (default: AIRLOCK_ACTOR, the CI actor, or the local user)'}),
    'approval-key': Flags.string({description: 'Ed25519 private key of role approval (default: AIRLOCK_APPROVAL_KEY)'}),
    trust: Flags.string({description: 'with --policy: the trust policy the key must be in (default: manifests/trust.yaml at HEAD)'}),
  }

  async run(): Promise<{token: string; statement: ApprovalStatement}> {
    const {args, flags} = await this.parse(ToolApprove)
    // An approval is a credential: one that cannot be recorded is not issued (fail closed).
    await this.openAudit(flags, true)
    const [{checkTool}, {makeApproval}, {toolPolicy, trustOf}, {loadSigner}, {AirlockError}, {freeText}, {keysFor}] = await Promise.all([
      import('../../control-plane/policy/tools/tools.js'),
      import('../../control-plane/policy/tools/approval.js'),
      import('../_policy.js'),
      import('../../control-plane/crypto/keys.js'),
      import('../../control-plane/errors.js'),
      import('../../control-plane/identity/text.js'),
      import('../../control-plane/manifests/load.js'),
    ])
    const m = /^([1-9][0-9]{0,5})(s|m|h)$/.exec(flags.ttl)
    if (!m) throw new AirlockError('USAGE', `--ttl ${flags.ttl}: give seconds, minutes or hours, e.g. 90s, 15m, 2h`, {field: '--ttl'})
    const ttlMs = Number(m[1]) * {s: 1000, m: 60_000, h: 3_600_000}[m[2] as 's' | 'm' | 'h']
    const {policy} = await toolPolicy(flags, this)
    const call = {tool: args.tool, ...(await readParams(flags.params, policy))}
    const decision = checkTool(policy, call, undefined, await egressFor(policy, args.tool, flags, this))
    if (decision.decision === 'deny') throw new AirlockError('DENIED', `${args.tool}: the policy denies this call, so it cannot be approved (rule ${decision.rule})`, {rule: decision.rule})
    const signer = await loadSigner({file: flags['approval-key'], env: process.env.AIRLOCK_APPROVAL_KEY}, 'approval')
    const {trust} = await trustOf(flags, this)
    if (!keysFor(trust, 'approval', this.now).some((k) => k.id === signer.keyid)) {
      throw new AirlockError('UNKNOWN_KEY', `key ${signer.keyid.slice(0, 12)} is not an approval key of ${trust.file} valid now; its token would not verify (airlock keys generate NAME --role approval --apply)`, {keyid: signer.keyid})
    }
    const tool = policy.allowed.get(args.tool)!
    const requester = await this.requester(flags.actor)
    const made = makeApproval(tool, decision.paramsDigest ?? (await import('../../control-plane/crypto/digest.js')).digestOfJson(call.params), {
      signer,
      approvedBy: requester.actor,
      reason: freeText(flags.reason, '--reason'),
      now: this.now,
      ttlMs,
    })
    const [{approvalEvent}, {hostname}] = await Promise.all([import('../../control-plane/audit/ocsf.js'), import('node:os')])
    await this.recordAudit(approvalEvent({now: this.now, host: hostname(), toolVersion: this.config.version, actor: requester.actor, policy: {file: policy.file, sha256: policy.hash.replace(/^sha256:/, '')}, kind: 'issued', tool: args.tool, nonce: made.statement.nonce, paramsDigest: made.statement.paramsDigest, approvedBy: made.statement.approvedBy, expiresAt: made.statement.expiresAt}))
    if (this.jsonEnabled()) return made
    if (decision.decision === 'allow') process.stderr.write(`airlock: note: ${t(args.tool)} needs no approval (rule ${t(decision.rule)}); the token is made anyway\n`)
    process.stderr.write(`airlock: approved ${t(args.tool)} with parameters ${made.statement.paramsDigest} until ${made.statement.expiresAt}\n`)
    this.log(made.token)
    return made
  }
}
