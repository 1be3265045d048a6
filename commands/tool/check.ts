import {Args, Flags} from '@oclif/core'
import type {ToolDecision, ToolFinding} from '../../control-plane/policy/tools/tools.js'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import {AirlockCommand, auditDirFlag} from '../_base.js'
import {egressFlag, egressFor, paramsFlag, readParams, toolPolicyFlags, warnFindings} from './_call.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class ToolCheck extends AirlockCommand {
  static override summary = 'May an agent call TOOL with these parameters? allow (exit 0), deny or needs_approval (exit 1), with the rule that decided.'
  static override description = `The policy is manifests/tool-policy.yaml at HEAD (or --policy FILE). Fail closed: a tool not in spec.allow is denied; a denied tool is denied even when also allowed; a tool whose parameter schema does not compile, whose recorded schemaHash is not its schema's, or that has a forbidden capability is denied; parameters are validated by ajv (JSON Schema 2020-12, formats checked, no type coercion, additionalProperties as the schema says), and prototype keys (__proto__, constructor, prototype), duplicate keys and oversized parameters are refused.

A tool with approval: required, or at or above spec.approvalFrom, answers needs_approval until --approval gives a token from \`airlock tool approve\` for exactly these parameters, signed by trusted approval keys and not expired. An approval allows one call: the check that allows it records its nonce in this host's store of used approvals (--state-dir, AIRLOCK_STATE_DIR, else $XDG_STATE_HOME/airlock or ~/.local/state/airlock), and a second use is APPROVAL_REPLAYED (exit 1).

A parameter whose schema says x-airlock-egress: true is judged by the egress policy (manifests/egress.yaml at HEAD, or --egress-policy FILE): what \`airlock egress check\` denies, the call may not fetch.`
  static override examples = [
    `<%= config.bin %> tool check read_file --params '{"path": "/workspace/notes.md"}'`,
    '<%= config.bin %> tool check send_email --params @call.json --approval "$(cat approval.token)"',
  ]
  static override args = {tool: Args.string({description: 'the tool the agent calls', required: true})}
  static override flags = {
    ...auditDirFlag,
    ...toolPolicyFlags,
    ...egressFlag,
    ...paramsFlag,
    approval: Flags.string({description: 'an approval token from `airlock tool approve` (or @FILE)'}),
    trust: Flags.string({description: 'with --policy: the trust policy approval keys come from (default: manifests/trust.yaml at HEAD)'}),
    'state-dir': Flags.string({description: 'where this host records used approvals (default: AIRLOCK_STATE_DIR, else $XDG_STATE_HOME/airlock, else ~/.local/state/airlock)'}),
  }

  async run(): Promise<ToolDecision & {policy: string; policyHash: string; findings: ToolFinding[]; trustSource: TrustSource; approvalUsed?: string}> {
    const {args, flags} = await this.parse(ToolCheck)
    // An enforced decision that cannot be recorded is not given (fail closed).
    await this.openAudit(flags, true)
    const [{checkTool}, {toolPolicy}] = await Promise.all([import('../../control-plane/policy/tools/tools.js'), import('../_policy.js')])
    const {policy, source} = await toolPolicy(flags, this)
    const call = {tool: args.tool, ...(await readParams(flags.params, policy))}
    let approval
    if (flags.approval !== undefined) {
      const [{approvalCheck}, {readInput, trustOf}] = await Promise.all([import('../../control-plane/policy/tools/approval.js'), import('../_policy.js')])
      const token = flags.approval.startsWith('@') ? (await readInput(flags.approval.slice(1), 64 * 1024)).trim() : flags.approval
      approval = approvalCheck(token, (await trustOf(flags, this)).trust, this.now, this.limits)
    }
    const decision = checkTool(policy, call, approval, await egressFor(policy, args.tool, flags, this))
    const [{approvalEvent, toolDecisionEvent}, {hostname}] = await Promise.all([import('../../control-plane/audit/ocsf.js'), import('node:os')])
    const actor = (await this.requester(undefined)).actor
    const ref = {file: policy.file, sha256: policy.hash.replace(/^sha256:/, '')}
    let approvalUsed: string | undefined
    if (decision.decision === 'allow' && decision.approval) {
      // Single use: the call is allowed only if this check is the one that records the approval used.
      const [{consumeApproval}, {stateDir}] = await Promise.all([import('../../control-plane/policy/tools/used-approvals.js'), import('../_policy.js')])
      const {nonce, expiresAt, approvedBy} = decision.approval
      const approval = {now: this.now, host: hostname(), toolVersion: this.config.version, actor, policy: ref, tool: decision.tool, nonce, paramsDigest: decision.paramsDigest!, approvedBy, expiresAt}
      try {
        approvalUsed = (await consumeApproval(await stateDir(flags['state-dir']), {nonce, expiresAt, approvedBy, tool: decision.tool, paramsDigest: decision.paramsDigest!}, this.now, this.limits)).entry
      } catch (error) {
        if ((error as {code?: string}).code === 'APPROVAL_REPLAYED') await this.recordAudit(approvalEvent({...approval, kind: 'replayed'}))
        throw error
      }
      await this.recordAudit(approvalEvent({...approval, kind: 'consumed'}))
    }
    await this.recordAudit(toolDecisionEvent({now: this.now, host: hostname(), toolVersion: this.config.version, actor, policy: ref, rule: decision.rule, tool: decision.tool, decision: decision.decision, parameters: call.params}))
    if (decision.decision !== 'allow') this.failCheck()
    await warnFindings(policy, this.jsonEnabled())
    const lines = [`${decision.decision.toUpperCase()} ${t(decision.tool)}`, `  rule ${t(decision.rule)}`]
    if (decision.hashes) lines.push(`  recorded ${t(String(decision.hashes.recorded))}`, `  computed ${t(String(decision.hashes.computed))}`)
    if (decision.decision === 'needs_approval') lines.push(`  params ${t(String(decision.paramsDigest))}`, `  approve with: airlock tool approve ${t(decision.tool)} --params …`)
    if (decision.approval) lines.push(`  approved by ${t(decision.approval.approvedBy)} (keys ${decision.approval.keyids.map((k) => t(k.slice(0, 12))).join(', ')}) until ${t(decision.approval.expiresAt)}`)
    for (const e of decision.egress ?? []) lines.push(`  egress ${t(e.param)} → ${t(e.host)}:${e.port} by ${t(e.rule)}`)
    if (approvalUsed) lines.push(`  approval used (single use): ${t(approvalUsed)}`)
    this.log(lines.join('\n'))
    return {...decision, policy: policy.file, policyHash: policy.hash, findings: policy.findings, trustSource: source, ...(approvalUsed ? {approvalUsed} : {})}
  }
}
