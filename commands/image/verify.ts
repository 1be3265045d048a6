import {Args, Flags} from '@oclif/core'
import type {ImageSignatureResult} from '../../platform/images/verify.js'
import type {PinnedCheck} from '../../platform/images/policy.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import {readInput, verifiedHead} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

type Result = (ImageSignatureResult | {results: PinnedCheck[]; verified: number; failed: number}) & {trustSource: TrustSource}

export default class ImageVerify extends AirlockCommand {
  static override summary = 'Verify golden image signatures offline: a Sigstore bundle for a pinned digest, by key or by certificate identity.'
  static override description = `With neither --key nor --certificate-identity(-regexp), the image's own policy applies: the manifest whose repository is REF's (spec.verification, trust.yaml image keys, the pinned trusted root), and the bundle stored in manifests/signatures/ unless --bundle names one. --all verifies every digest pinned by a channel of every image.

Nothing is fetched: the trusted root is manifests/sigstore/trusted_root.json (or --trusted-root). Failure reasons: SIGNATURE_ERROR, SUBJECT_MISMATCH, UNTRUSTED_SIGNER, NO_TIMESTAMP, TLOG_ERROR, CERTIFICATE_ERROR, NOT_PINNED, NO_SIGNATURE (exit 1).`
  static override examples = [
    '<%= config.bin %> image verify registry.example.com/golden/agent-runner@sha256:… --bundle sig.json --key cosign.pub',
    '<%= config.bin %> image verify ghcr.io/acme/runner@sha256:… --bundle sig.json --certificate-identity https://github.com/acme/golden/.github/workflows/release.yml@refs/heads/main --certificate-oidc-issuer https://token.actions.githubusercontent.com',
    '<%= config.bin %> image verify --all',
  ]
  static override args = {ref: Args.string({description: 'repo@sha256:<64 hex> (a tag is refused)'})}
  static override flags = {
    ...anchorFlag,
    all: Flags.boolean({description: 'verify every digest pinned by every channel of every image', exclusive: ['bundle', 'key', 'certificate-identity', 'certificate-identity-regexp']}),
    bundle: Flags.string({description: 'Sigstore bundle (JSON); default: the one stored in manifests/signatures/'}),
    key: Flags.string({description: 'public key (PEM, ECDSA P-256 or Ed25519) the image must be signed with', exclusive: ['certificate-identity', 'certificate-identity-regexp']}),
    'certificate-identity': Flags.string({description: 'exact certificate subject of a keyless signer', exclusive: ['certificate-identity-regexp'], dependsOn: ['certificate-oidc-issuer']}),
    'certificate-identity-regexp': Flags.string({description: 'certificate subject pattern, anchored ^…$', dependsOn: ['certificate-oidc-issuer']}),
    'certificate-oidc-issuer': Flags.string({description: 'OIDC issuer of a keyless signer (exact)'}),
    'trusted-root': Flags.string({description: 'Sigstore trusted_root.json (default: manifests/sigstore/trusted_root.json of the repository)'}),
    'tlog-threshold': Flags.integer({description: 'transparency log entries required', min: 0, max: 10}),
    'timestamp-threshold': Flags.integer({description: 'verified timestamps required (keyless: at least 1)', min: 0, max: 10}),
  }

  async run(): Promise<Result> {
    const {args, flags} = await this.parse(ImageVerify)
    if (flags.all && args.ref) throw await usage('--all verifies every pinned digest; give either REF or --all')
    if (flags.all) return this.verifyAll(flags)
    if (!args.ref) throw await usage('REF: give repo@sha256:<digest>, or --all')
    const [{parseDigestRef}, verify, policyMod, {AirlockError}] = await Promise.all([
      import('../../control-plane/manifests/digest.js'),
      import('../../platform/images/verify.js'),
      import('../../platform/images/policy.js'),
      import('../../control-plane/errors.js'),
    ])
    const ref = parseDigestRef(args.ref, 'REF')
    const identity = flags['certificate-identity'] ?? flags['certificate-identity-regexp']
    const adHoc = flags.key !== undefined || identity !== undefined
    if (flags['certificate-oidc-issuer'] && !identity) throw new AirlockError('USAGE', '--certificate-oidc-issuer needs --certificate-identity or --certificate-identity-regexp', {field: '--certificate-oidc-issuer'})
    let policy: import('../../platform/images/verify.js').ImagePolicy
    let source: TrustSource = {kind: 'file', file: flags.key ?? flags['trusted-root'] ?? '(flags)'}
    let bundleText: string
    let bundleName: string
    if (adHoc) {
      if (!flags.bundle) throw new AirlockError('USAGE', '--bundle: name the bundle to verify with --key or a certificate identity', {field: '--bundle'})
      const regexp = flags['certificate-identity-regexp']
      if (regexp !== undefined) {
        const {checkAnchoredPattern} = await import('../../control-plane/manifests/pattern.js')
        const problem = checkAnchoredPattern(regexp)
        if (problem) throw new AirlockError('USAGE', `--certificate-identity-regexp ${problem}`, {field: '--certificate-identity-regexp'})
      }
      // A keyless identity needs the Sigstore trusted root: --trusted-root, else the one at the verified HEAD.
      let trustedRoot = verify.emptyTrustedRoot()
      if (flags['trusted-root']) trustedRoot = policyMod.parseTrustedRoot(await readInput(flags['trusted-root']), flags['trusted-root'], this.limits)
      else if (identity) {
        const head = await verifiedHead(flags, this)
        const {DEFAULT_TRUSTED_ROOT} = await import('../../control-plane/manifests/models.js')
        const found = await head.repo.readFile(head.commit, DEFAULT_TRUSTED_ROOT)
        if (!found) throw new AirlockError('USAGE', `--trusted-root: no ${DEFAULT_TRUSTED_ROOT} at HEAD; name a trusted_root.json`, {field: '--trusted-root'})
        trustedRoot = policyMod.parseTrustedRoot(found.text, DEFAULT_TRUSTED_ROOT, this.limits)
        source = head.source
      }
      policy = {
        keys: flags.key ? [await keyFromFile(verify.imageKey, flags.key)] : [],
        identities: identity ? [{issuer: flags['certificate-oidc-issuer']!, ...(regexp !== undefined ? {subjectRegExp: regexp} : {subject: identity})}] : [],
        trustedRoot,
        tlogThreshold: flags['tlog-threshold'] ?? 0,
        timestampThreshold: flags['timestamp-threshold'] ?? 0,
      }
      bundleText = await readInput(flags.bundle)
      bundleName = flags.bundle
    } else {
      // The image's own policy: its manifest, trust.yaml and signatures at the verified HEAD.
      const {repo, commit, source: head} = await verifiedHead(flags, this)
      source = head
      const {findImageByRef, loadTrust} = await import('../../control-plane/manifests/load.js')
      const image = await findImageByRef(repo, commit, ref.repository, this.limits)
      const trust = await loadTrust(repo, commit, this.limits)
      if (!flags.bundle) {
        const {record} = await policyMod.verifyPinned(repo, commit, image, ref.digest, trust, this.now, this.limits)
        return this.show(args.ref, record, source)
      }
      ;({policy} = await policyMod.imagePolicy(repo, commit, image, trust, this.now, this.limits))
      bundleText = await readInput(flags.bundle)
      bundleName = flags.bundle
    }
    const bundle = policyMod.parseJsonInput(bundleText, bundleName, this.limits)
    return this.show(args.ref, verify.verifyImageSignature(ref.digest, bundle, policy), source)
  }

  private show(ref: string, result: ImageSignatureResult, trustSource: TrustSource): Result {
    if (!this.jsonEnabled()) {
      const s = result.signer
      this.log(`Verified ${t(ref)}`)
      this.log(`  signer      ${'keyid' in s ? `key ${t(s.keyid)}` : `${t(s.subject)}\n  issuer      ${t(s.issuer)}`}`)
      this.log(`  bundle      ${t(result.bundleType)}`)
      for (const e of result.tlogEntries) this.log(`  tlog entry  index ${t(String(e.logIndex))}${e.integratedTime ? `, integrated ${t(String(e.integratedTime))}` : ''}`)
      this.log(`  thresholds  tlog ${result.thresholds.tlog}, timestamps ${result.thresholds.timestamp} (${result.timestamps} present)`)
    }
    return {...result, trustSource}
  }

  private async verifyAll(flags: {repo?: string; 'trust-anchor'?: string}): Promise<Result> {
    const {repo, commit, source} = await verifiedHead(flags, this)
    const [{loadImages, loadTrust}, {verifyAllPinned}] = await Promise.all([
      import('../../control-plane/manifests/load.js'),
      import('../../platform/images/policy.js'),
    ])
    const [images, trust] = await Promise.all([loadImages(repo, commit, this.limits), loadTrust(repo, commit, this.limits)])
    const results = await verifyAllPinned(repo, commit, images, trust, this.now, this.limits)
    const failed = results.filter((r) => !r.verified).length
    if (!this.jsonEnabled()) {
      for (const r of results) {
        const who = r.signer ? ('keyid' in r.signer ? `key ${t(r.signer.keyid.slice(0, 16))}…` : t(r.signer.subject)) : ''
        this.log(`${r.verified ? 'VERIFIED' : 'FAILED  '}  ${`${t(r.image)}/${t(r.channel)}`.padEnd(32)} ${t(r.digest.slice(0, 19))}…  ${r.verified ? who : `${t(String(r.reason))}: ${t(String(r.message))}`}`)
      }
      this.log(`\n${results.length - failed} verified, ${failed} failed`)
    }
    if (failed) this.failCheck()
    return {results, verified: results.length - failed, failed, trustSource: source}
  }
}

async function usage(message: string) {
  const {AirlockError} = await import('../../control-plane/errors.js')
  return new AirlockError('USAGE', message)
}

/** A --key file as an image key, known by the SHA-256 of its SubjectPublicKeyInfo (as trust.yaml ids of ECDSA keys are). */
async function keyFromFile(imageKey: typeof import('../../platform/images/verify.js').imageKey, file: string) {
  const [{createHash, createPublicKey}, {AirlockError}] = await Promise.all([import('node:crypto'), import('../../control-plane/errors.js')])
  let key
  try {
    key = createPublicKey(await readInput(file))
  } catch (error) {
    if (error instanceof AirlockError) throw error
    throw new AirlockError('KEY_INVALID', `${file}: not a PEM public key`, {file, field: '--key'})
  }
  return imageKey(createHash('sha256').update(key.export({format: 'der', type: 'spki'})).digest('hex'), key)
}
