import {Args} from '@oclif/core'
import type {AirlockError} from '../../control-plane/errors.js'
import type {Plan} from '../../control-plane/plan/plan.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {identityFlags} from '../_identity.js'

interface Shown {
  file: string
  /** The file as saved: its claims, sealed by its digest (which anyone can recompute). */
  saved: Plan
  /** What its request computes now on HEAD (null: stale, outside the repository, or it does not compute). */
  recomputed: Plan | null
  /** True when the saved plan is what its request computes now. */
  matches: boolean
  differs: string[]
  /** Why `airlock apply` would refuse it now (null: it would apply it, as the one running this). */
  refusal: {code: string; message: string} | null
}

export default class PlanShow extends AirlockCommand {
  static override summary = "Show a saved plan as `apply` would judge it now: its request, and what that request computes on HEAD."
  static override description =
    "A saved plan is a proposal: its digest proves only that the file is as it was sealed, and anyone can reseal an edited one. So the plan's request is run again through the pipeline, as `airlock apply` does (nothing is written): what is shown is what the request computes now — the diff, the base's history, the authorization of whoever runs this — and whether that equals the file. When it cannot be recomputed (a stale plan, outside its repository), what is shown is labelled as the file's claims. Exit 1 when `apply` would refuse the plan for anything but who is asking."
  static override args = {plan: Args.string({description: 'plan file written by --out', required: true})}
  static override flags = {...identityFlags, ...anchorFlag}

  async run(): Promise<Shown> {
    const {args, flags} = await this.parse(PlanShow)
    await this.oneShotWasm()
    const {readRegularFile} = await import('../../control-plane/repo/files.js')
    const text = await readRegularFile(args.plan, {maxBytes: this.limits.maxFileBytes, missingCode: 'PLAN_INVALID'})
    const [{parsePlan}, {renderPlan}, {reviewSaved}, {asAirlockError}] = await Promise.all([
      import('../../control-plane/plan/plan.js'),
      import('../../control-plane/plan/render.js'),
      import('../../control-plane/pipeline/pipeline.js'),
      import('../../control-plane/errors.js'),
    ])
    const saved = parsePlan(text, args.plan, this.limits)
    let recomputed: Plan | null = null
    let differs: string[] = []
    let refusal: AirlockError | null
    try {
      const repo = await this.repository(flags.repo)
      ;({recomputed, differs, refusal} = await reviewSaved(repo, saved, await this.pipelineContext(repo, {...flags, reason: saved.reason})))
    } catch (error) {
      refusal = asAirlockError(error)
      if (refusal.code === 'INTERNAL') throw error
    }
    const shown: Shown = {file: args.plan, saved, recomputed, matches: recomputed !== null && differs.length === 0, differs, refusal: refusal ? {code: refusal.code, message: refusal.message} : null}
    if (refusal && refusal.code !== 'DENIED') this.failCheck()
    if (!this.jsonEnabled()) {
      const out = [`Saved plan ${t(args.plan)}, digest ${t(saved.digest)}`, `  request         ${describeRequest(saved)}`, `  made            ${t(saved.createdAt)} by ${t(saved.requestedBy.actor)} (as the file says)`]
      const why = refusal ? `${t(refusal.code)}: ${t(refusal.message)}` : ''
      if (recomputed) {
        out.push(
          differs.length === 0
            ? '  recomputed      the same plan: what follows is what its request computes now'
            : `  recomputed      NOT THE SAME: the file's ${t(differs.join(', '))} differ from what its request computes now; what follows is what it computes now`,
          '',
        )
        const verdict = refusal
          ? {ok: false, text: `\`airlock apply\` would refuse this saved plan now (${why}).`}
          : {ok: true, text: `\`airlock apply ${t(args.plan)}\` would apply this, if whoever applies is allowed then (authorization is decided again).`}
        process.stdout.write(`${out.join('\n')}\n${renderPlan(recomputed, {color: this.color(), verdict})}`)
      } else {
        out.push(`  recomputed      NOT RECOMPUTED (${why}): what follows is the file's claims, unchecked`, '')
        process.stdout.write(`${out.join('\n')}\n${renderPlan(saved, {color: this.color(), verdict: {ok: false, text: `The plan above is what the file claims, not what airlock computed; \`airlock apply\` would refuse it now (${why}).`}})}`)
      }
    }
    return shown
  }
}

/** The request as asked: its kind and its short fields (long ones, such as a bundle, by size; files by path). */
function describeRequest(plan: Plan): string {
  const str = (x: unknown) => t(String(x))
  const parts = [str(plan.request.kind)]
  for (const [k, v] of Object.entries(plan.request)) {
    if (k === 'kind') continue
    if (Array.isArray(v)) parts.push(`${str(k)}=[${v.map((f) => str(typeof f === 'object' && f && 'path' in f ? (f as {path: unknown}).path : f)).join(', ')}]`)
    else if (typeof v === 'string') parts.push(`${str(k)}=${v.length > 80 ? `(${Buffer.byteLength(v)} bytes)` : str(v)}`)
    else if (v && typeof v === 'object') parts.push(`${str(k)}={${Object.entries(v).map(([a, b]) => `${str(a)}: ${str(b)}`).join(', ')}}`)
    else parts.push(`${str(k)}=${str(v)}`)
  }
  return parts.join(' ')
}
