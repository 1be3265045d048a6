import {Args, Flags} from '@oclif/core'
import {AirlockCommand, planFlags, type PlanOutcome} from '../_base.js'

export default class ImageSign extends AirlockCommand {
  static override summary = 'Sign a golden image digest with a local key, as key-based `cosign sign` does, and store the bundle beside the manifests.'
  static override description =
    'Builds a Sigstore bundle (v0.3, DSSE, an in-toto statement whose subject is the manifest digest) with @sigstore/sign and a local ECDSA P-256 or Ed25519 key (PKCS#8 PEM, as `airlock keys generate --role image` writes). The bundle must verify under the image\'s policy before it is planned; with --apply it is committed to manifests/signatures/IMAGE/sha256-<hex>.sigstore.json. Nothing is sent to a log or a timestamp authority.'
  static override examples = ['<%= config.bin %> image sign registry.example.com/golden/agent-runner@sha256:… --key keys/image.key --apply']
  static override args = {ref: Args.string({description: 'repo@sha256:<64 hex> or IMAGE@sha256:<64 hex>', required: true})}
  static override flags = {
    ...planFlags,
    key: Flags.string({description: 'private key (PKCS#8 PEM, mode 0600) of a trust.yaml image key', required: true}),
  }

  async run(): Promise<PlanOutcome> {
    const {args, flags} = await this.parse(ImageSign)
    const repo = await this.repository(flags.repo)
    const [{parseDigestRef}, {loadImageKey}, {signImageBundle}, {findImageByRef, parseImage}, {collectEdits}, {IMAGES_DIR}, {AirlockError}] = await Promise.all([
      import('../../control-plane/manifests/digest.js'),
      import('../../control-plane/crypto/keys.js'),
      import('../../platform/images/sign.js'),
      import('../../control-plane/manifests/load.js'),
      import('../../control-plane/changes/desired-state.js'),
      import('../../control-plane/manifests/models.js'),
      import('../../control-plane/errors.js'),
    ])
    const ref = parseDigestRef(args.ref, 'REF')
    const key = await loadImageKey(flags.key)
    const base = await repo.base()
    const image = await findImageByRef(repo, base.commit, ref.repository, this.limits).catch(async (error: {code?: string}) => {
      if (error.code !== 'UNKNOWN_IMAGE') throw error
      return null
    })
    if (image) {
      const bundle = await signImageBundle(image.repository, ref.digest, key)
      return this.runChange(repo, {kind: 'store-signature', operation: 'image-sign', image: image.name, digest: ref.digest, bundle, details: {keyid: key.keyid, algorithm: key.algorithm}}, flags)
    }
    // An image whose manifest is new in the work tree (a pull request adding it): the bundle is
    // verified with the new manifest's policy and the base's trust, as the change that commits
    // both will be, and --apply writes it beside the manifest for \`airlock change\` to commit.
    const edits = await collectEdits(repo, this.limits)
    const manifest = edits
      .filter((e) => e.content !== null && e.path.startsWith(`${IMAGES_DIR}/`))
      .map((e) => parseImage(e.content!, e.path, '', this.limits))
      .find((i) => i.name === ref.repository || i.repository === ref.repository)
    if (!manifest) return (await findImageByRef(repo, base.commit, ref.repository, this.limits)) as never
    if (flags.out) throw new AirlockError('USAGE', `--out: ${manifest.file} is new in the work tree; --apply writes the signature beside it, and \`airlock change\` commits both`, {field: '--out'})
    const bundle = await signImageBundle(manifest.repository, ref.digest, key)
    const request = {kind: 'store-signature' as const, operation: 'image-sign' as const, image: manifest.name, digest: ref.digest, bundle, details: {keyid: key.keyid, algorithm: key.algorithm, newImage: true}, newManifest: {path: manifest.file, text: manifest.text}}
    return this.runChange(repo, request, flags, {stage: true})
  }
}
