import {Args} from '@oclif/core'
import {AirlockCommand, planFlags, type PlanOutcome} from '../_base.js'
import {readInput} from '../_policy.js'
import {registryAccessFlags, registryClients, registryFlags, registryLimits} from '../_registry.js'

export default class ImageFetchSignature extends AirlockCommand {
  static override summary = "Find a golden image's signature in its OCI registry and store it beside the manifests (plan by default)."
  static override description = `Looks where cosign keeps signatures: OCI 1.1 referrers (the referrers API, or the sha256-<hex> tag index where the registry has none) and the cosign v2 sha256-<hex>.sig tag. Signatures are fetched and verified one at a time; the first that verifies under the image's policy is planned into manifests/signatures/IMAGE/ and nothing after it is fetched; --apply commits it. Manifests and blobs are checked against their digests.

What a registry may make the command read is capped (REGISTRY LIMITS below): over a cap is REGISTRY_TOO_LARGE, past a deadline REGISTRY_TIMEOUT, each naming the limit and the flag that raises it.

Registries that answer 401 with a Bearer challenge (Docker Hub, GHCR, Harbor, Quay, ECR) get the token flow: anonymous, or with AIRLOCK_REGISTRY_USER and AIRLOCK_REGISTRY_PASSWORD, or what docker login left in ~/.docker/config.json (a credHelpers/credsStore helper when it is installed, else auths). Credentials go only to the token service the registry names, over HTTPS. A static bearer token can be given in AIRLOCK_REGISTRY_TOKEN.`
  static override examples = ['<%= config.bin %> image fetch-signature registry.example.com/golden/agent-runner@sha256:… --apply']
  static override args = {ref: Args.string({description: 'registry/repository@sha256:<64 hex> of a managed image', required: true})}
  static override flags = {
    ...planFlags,
    ...registryAccessFlags,
    ...registryFlags,
  }

  async run(): Promise<PlanOutcome> {
    const {args, flags} = await this.parse(ImageFetchSignature)
    const repo = await this.repository(flags.repo)
    const limits = registryLimits(flags, this.limits)
    const [{parseImageRef}, {bundleFromSigTag}, {findImageByRef, loadTrust, keysFor}, {ImageVerificationError}, {trustKeyObject}] = await Promise.all([
      import('../../platform/registry/client.js'),
      import('../../platform/registry/cosign.js'),
      import('../../control-plane/manifests/load.js'),
      import('../../platform/images/verify.js'),
      import('../../platform/images/policy.js'),
    ])
    const ref = parseImageRef(args.ref)
    const base = await repo.base()
    const image = await findImageByRef(repo, base.commit, `${ref.registry}/${ref.repository}`, this.limits)
    // The base's image keys, only to give a converted keyed cosign v2 signature the hint cosign
    // gives it; whether any candidate verifies is the pipeline's step, on a verified base.
    const keys = keysFor(await loadTrust(repo, base.commit, this.limits), 'image', this.now).map((k) => trustKeyObject(k))
    const client = (await registryClients(ref.registry, {ca: flags.ca ? await readInput(flags.ca) : undefined, plainHttp: flags['plain-http']}, limits))()
    // Lazily: the pipeline asks for the next candidate only when the one before did not verify.
    async function* candidates() {
      for await (const sig of client.signatures(ref)) {
        const stored = sig.layout === 'referrer' ? {bundleText: sig.bundleText} : bundleFromSigTag(sig, keys)
        const where = sig.layout === 'referrer' ? {via: sig.via, referrer: sig.manifest} : {tag: sig.tag}
        yield {
          request: {
            kind: 'store-signature' as const,
            operation: 'image-fetch-signature' as const,
            image: image.name,
            digest: ref.digest,
            bundle: stored.bundleText,
            ...('payloadText' in stored ? {payload: stored.payloadText} : {}),
            details: {registry: ref.registry, layout: sig.layout, ...where},
          },
          describe: {layout: sig.layout, ...(sig.layout === 'referrer' ? {via: sig.via} : {})},
        }
      }
    }
    const none = () => new ImageVerificationError('NO_SIGNATURE', `${args.ref}: the registry holds no signature (no Sigstore bundle referrer, no ${ref.digest.replace(':', '-')}.sig tag)`, {registry: ref.registry})
    return this.runChange(repo, {candidates: candidates(), none}, flags)
  }
}
