import {createInterface} from 'node:readline'
import {Flags} from '@oclif/core'
import {AirlockError, asAirlockError, toErrorJson} from '../control-plane/errors.js'
import type {AuthorizationRequest, EntityUid, PolicyDecision, PolicyEngine} from '../control-plane/policy/engine.js'
import {AirlockCommand, anchorFlag} from './_base.js'
import {identityFlags, tokenIdentity} from './_identity.js'
import type {TrustSource} from '../control-plane/pipeline/base.js'
import {bundleCacheDir, decisionPolicies, readInput, trustOf} from './_policy.js'
import {forTerminal as t, jsonText} from '../control-plane/terminal.js'

type Decision = PolicyDecision & {evaluationMs: number; trustSource?: TrustSource}

export default class Authorize extends AirlockCommand {
  static override summary = 'Evaluate one request (or one per stdin line with --batch) against the Cedar policies.'
  static override description = 'Flags follow the Cedar CLI: entity references as Type::"id", entities and context as Cedar JSON files. Exit 0 allow, 1 deny, 2 invalid input.'
  static override examples = [
    `<%= config.bin %> authorize --principal 'AgentKernel::User::"dana"' --action 'AgentKernel::Action::"Run"' --resource 'AgentKernel::Sandbox::"small"' --entities policies/tests/entities.json`,
  ]
  static override flags = {
    policies: Flags.string({description: 'policy folder or .cedar file (default: policies/ at HEAD, whose history must verify back to the pinned trust anchor)'}),
    schema: Flags.string({description: 'Cedar schema (default: schema.cedarschema in the policy folder)'}),
    entities: Flags.string({description: 'entities, Cedar JSON format'}),
    principal: Flags.string({description: 'principal, e.g. AgentKernel::User::"alice"'}),
    action: Flags.string({description: 'action, e.g. AgentKernel::Action::"Run"'}),
    resource: Flags.string({description: 'resource, e.g. AgentKernel::Sandbox::"s1"'}),
    context: Flags.string({description: 'context, a JSON file'}),
    batch: Flags.boolean({description: 'read one JSON request a line on stdin, write one decision a line', default: false}),
    'fail-closed': Flags.string({description: 'which evaluation errors force deny', options: ['any', 'forbid'], default: 'any'}),
    ...identityFlags,
    'from-cache': Flags.boolean({description: "use the bundles pulled by `policy pull`: global + the principal's org, teams and user", default: false}),
    'cache-dir': Flags.string({description: 'with --from-cache: the bundle cache (default: ~/.cache/airlock/bundles)'}),
    trust: Flags.string({description: 'with --from-cache: trust policy file the cached bundles are verified against (default: manifests/trust.yaml at HEAD, whose history must verify)'}),
    ...anchorFlag,
  }

  async run(): Promise<Decision | {decisions: number; invalid: number}> {
    const {flags} = await this.parse(Authorize)
    if (!flags.batch) await this.oneShotWasm()
    const [{parseEntityUid, PolicyEngine}, {parseExactJson}] = await Promise.all([import('../control-plane/policy/engine.js'), import('../control-plane/policy/json.js')])
    const readJson = async (file: string | undefined, fallback: unknown) => (file ? parseExactJson(await readInput(file), file) : fallback)
    let entities = (await readJson(flags.entities, [])) as unknown[]
    if (!Array.isArray(entities)) throw new AirlockError('INVALID_INPUT', `${flags.entities}: entities must be a JSON array (Cedar's entity format)`, {file: flags.entities})
    let principal: EntityUid | undefined
    if (flags.jwt) {
      if (flags.principal) throw new AirlockError('USAGE', '--principal and --jwt both name the principal; give one', {field: '--principal'})
      const identity = await tokenIdentity(flags, this.now)
      principal = identity.principal
      const {withIdentity} = await import('../control-plane/identity/jwt.js')
      entities = withIdentity(entities, identity)
    }
    if (flags['from-cache'] && flags.batch) throw new AirlockError('USAGE', '--from-cache chooses bundles by principal; use it without --batch', {field: '--from-cache'})
    const {tree, source: trustSource} = flags['from-cache'] ? await this.cachedTree(flags, principal ?? (flags.principal ? parseEntityUid(flags.principal, '--principal') : undefined), entities) : await decisionPolicies(flags, this)
    const engine = PolicyEngine.create(tree, flags['fail-closed'] as 'any' | 'forbid')
    if (flags.batch) return this.batch(engine, entities, parseEntityUid, parseExactJson, principal)

    for (const f of ['action', 'resource'] as const) if (!flags[f]) throw new AirlockError('USAGE', `--${f} is required (or use --batch)`, {field: `--${f}`})
    if (!principal && !flags.principal) throw new AirlockError('USAGE', '--principal (or --jwt) is required', {field: '--principal'})
    const request: AuthorizationRequest = {
      principal: principal ?? parseEntityUid(flags.principal!, '--principal'),
      action: parseEntityUid(flags.action!, '--action'),
      resource: parseEntityUid(flags.resource!, '--resource'),
      context: (await readJson(flags.context, {})) as Record<string, unknown>,
      entities,
    }
    const decision = {...timed(engine, request), trustSource}
    if (decision.decision === 'deny') this.failCheck()
    if (!this.jsonEnabled()) {
      const lines = [decision.decision.toUpperCase()]
      for (const r of decision.reasons) lines.push(`  ${decision.failedClosed ? 'error in' : 'reason'} ${t(r.id)} (${t(r.file)}:${t(String(r.line))})`)
      for (const e of decision.errors) lines.push(`  error  ${t(e.id)} (${t(e.file)}:${t(String(e.line))}): ${t(e.message)}`)
      if (decision.failedClosed) lines.push('  denied because a policy could not be evaluated (fail closed)')
      lines.push(`  evaluated in ${decision.evaluationMs.toFixed(3)} ms`)
      this.log(lines.join('\n'))
    }
    return decision
  }

  /** The effective policy set from pulled bundles for this principal (its entity says its org and teams). */
  private async cachedTree(flags: {'cache-dir'?: string; trust?: string; repo?: string; 'trust-anchor'?: string}, principal: EntityUid | undefined, entities: unknown[]) {
    if (!principal) throw new AirlockError('USAGE', '--principal (or --jwt) is required', {field: '--principal'})
    const {effectivePolicy} = await import('../control-plane/policy/hierarchy.js')
    const {trust, source} = await trustOf(flags, this)
    const cacheDir = await bundleCacheDir(flags['cache-dir'])
    const entity = (entities as Array<{uid?: EntityUid}>).find((e) => e.uid?.type === principal.type && e.uid?.id === principal.id)
    const effective = await effectivePolicy(cacheDir, (entity ?? {uid: principal}) as {uid: EntityUid}, trust, this.now, this.limits)
    if (!this.jsonEnabled()) {
      for (const b of effective.bundles) process.stderr.write(`using ${t(b.scope)} v${t(String(b.version))}\n`)
      for (const b of effective.skipped) process.stderr.write(`not using ${t(b.scope)}: ${t(b.why)}\n`)
    }
    return {tree: effective.tree, source}
  }

  private async batch(
    engine: PolicyEngine,
    entities: unknown[],
    parseUid: (text: string, field: string) => EntityUid,
    parseJson: (text: string, source: string) => unknown,
    principal?: EntityUid,
  ): Promise<{decisions: number; invalid: number}> {
    let decisions = 0
    let invalid = 0
    const uid = (v: unknown, field: string): EntityUid =>
      typeof v === 'string' ? parseUid(v, field) : v && typeof v === 'object' && 'type' in v && 'id' in v ? (v as EntityUid) : parseUid(String(v), field)
    let n = 0
    for await (const line of createInterface({input: process.stdin, crlfDelay: Infinity})) {
      n++
      if (!line.trim()) continue
      try {
        const r = parseJson(line, `stdin line ${n}`) as Record<string, unknown>
        const d = timed(engine, {
          principal: principal && r.principal === undefined ? principal : uid(r.principal, `line ${n}: principal`),
          action: uid(r.action, `line ${n}: action`),
          resource: uid(r.resource, `line ${n}: resource`),
          context: (r.context ?? {}) as Record<string, unknown>,
          entities: Array.isArray(r.entities) ? r.entities : entities,
        })
        decisions++
        this.writeData(`${jsonText({line: n, decision: d.decision, reasons: d.reasons.map((x) => x.id), errors: d.errors, failedClosed: d.failedClosed, evaluationMs: d.evaluationMs})}\n`)
      } catch (error) {
        invalid++
        this.writeData(`${jsonText({line: n, ...toErrorJson(asAirlockError(error))})}\n`)
      }
    }
    if (invalid > 0) this.outcome = 'invalid'
    if (!this.jsonEnabled()) process.stderr.write(`${decisions} decisions, ${invalid} invalid lines\n`)
    return {decisions, invalid}
  }

  protected override logJson(json: unknown): void {
    // In batch mode the decisions are the output; the summary goes to stderr only.
    if (json && typeof json === 'object' && 'decisions' in json) process.stderr.write(`${jsonText(json)}\n`)
    else super.logJson(json)
  }
}

function timed(engine: PolicyEngine, request: AuthorizationRequest): Decision {
  const start = performance.now()
  const d = engine.authorize(request)
  return {...d, evaluationMs: performance.now() - start}
}
