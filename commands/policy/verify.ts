import {Args, Flags} from '@oclif/core'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {readInput, trustOf} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

interface VerifyResult {
  ok: true
  bundle: string
  scope: string
  version: number
  issuedAt: string
  expiresAt: string
  policies: number
  signers: string[]
  digest: string
  trustSource: TrustSource
}

export default class PolicyVerify extends AirlockCommand {
  static override summary = 'Verify a signed policy bundle: signatures and threshold, key validity, expiry, scope, version, policies.'
  static override description = 'The trust policy is manifests/trust.yaml at HEAD, whose history must verify back to the pinned trust anchor, or --trust FILE. Failure codes: BAD_SIGNATURE, THRESHOLD_NOT_MET, UNKNOWN_KEY, KEY_NOT_VALID_AT_ISSUE, LIFETIME_EXCEEDED (expiresAt − issuedAt beyond spec.bundles.maxLifetime), FUTURE_DATED, EXPIRED, SCOPE_MISMATCH, DOWNGRADE, INVALID_POLICY (exit 1); a file that is not a bundle envelope is exit 2.'
  static override args = {bundle: Args.string({description: 'bundle file', required: true})}
  static override flags = {
    trust: Flags.string({description: 'trust policy file (default: manifests/trust.yaml at HEAD, whose history must verify back to the pinned trust anchor)'}),
    ...anchorFlag,
    scope: Flags.string({description: 'the scope the bundle must be for'}),
    'min-version': Flags.integer({description: 'refuse versions below N (anti-rollback)', min: 1}),
  }

  async run(): Promise<VerifyResult> {
    const {args, flags} = await this.parse(PolicyVerify)
    const {parseBundle, verifyBundle, parseScope} = await import('../../control-plane/policy/bundle.js')
    if (flags.scope) parseScope(flags.scope)
    const {trust, source} = await trustOf(flags, this)
    const {envelope, payload} = parseBundle(await readInput(args.bundle), args.bundle)
    const verified = verifyBundle(envelope, payload, {trust, now: this.now, scope: flags.scope, minVersion: flags['min-version'], source: args.bundle, limits: this.limits})
    const result: VerifyResult = {
      ok: true,
      bundle: args.bundle,
      scope: payload.scope,
      version: payload.version,
      issuedAt: payload.issuedAt,
      expiresAt: payload.expiresAt,
      policies: payload.policies.length,
      signers: verified.signers,
      digest: verified.digest,
      trustSource: source,
    }
    if (!this.jsonEnabled()) this.log(`Verified ${t(args.bundle)}: ${t(payload.scope)} v${t(String(payload.version))}, ${payload.policies.length} policies, ${verified.signers.length} signature(s), expires ${t(payload.expiresAt)}`)
    return result
  }
}
