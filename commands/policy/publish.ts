import {hostname} from 'node:os'
import {Flags} from '@oclif/core'
import {AirlockError} from '../../control-plane/errors.js'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import type {OciPublishPlan} from '../../control-plane/policy/distribution/oci.js'
import {AirlockCommand, anchorFlag, auditDirFlag} from '../_base.js'
import {readInput, verifiedHead} from '../_policy.js'
import {registryAccessFlags, registryClients, registryFlags, registryLimits} from '../_registry.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

type PublishResult = OciPublishPlan & {applied: boolean; pushed: string[]; bundle: string; trustSource: TrustSource}

export default class PolicyPublish extends AirlockCommand {
  static override summary = "Publish a scope's signed bundle (bundles/ at the verified HEAD) to an OCI registry as an artifact (plan by default)."
  static override description = `The bundle is read from the verified HEAD and verified as a host's policy pull would (signatures, threshold, key validity, lifetime, expiry, scope), then pushed as an OCI artifact: an image manifest with artifactType ${'application/vnd.airlock.policy-bundle.v1+json'}, the empty config, one layer holding the DSSE envelope's bytes. No referrers API is needed (Docker Hub has none): the artifact goes under an immutable version tag (<scope tag>-V<version>, e.g. org-acme-V7) and then under the scope's moving tag (global, org-ID, team-ORG.TEAM, user-ID), which hosts pull.

Without --apply, prints what would be pushed (digests, tags) and what the registry holds now. The scope tag is never moved back: DOWNGRADE when the registry's bundle verifies and is newer, EQUAL_VERSION_CONFLICT for the same version with other content, CONFLICT when the version tag names another artifact or the scope tag moved since the plan. A tag whose bundle does not verify (unsigned, expired, another scope, not a bundle) is replaced.

Credentials as image fetch-signature has them: AIRLOCK_REGISTRY_USER/PASSWORD, docker login's ~/.docker/config.json, or AIRLOCK_REGISTRY_TOKEN.`
  static override examples = ['<%= config.bin %> policy publish --to oci://ghcr.io/acme/policy --scope org:acme --apply', '<%= config.bin %> policy publish --to oci://registry.internal/policy:global']
  static override flags = {
    ...auditDirFlag,
    ...anchorFlag,
    to: Flags.string({description: "oci://REGISTRY/REPO, or oci://REGISTRY/REPO:TAG with the scope's tag", required: true}),
    scope: Flags.string({description: 'global, org:ID, team:ORG/TEAM or user:ID (default: the scope the tag in --to names)'}),
    apply: Flags.boolean({description: 'push (default: print the plan only)', default: false}),
    ...registryAccessFlags,
    ...registryFlags,
  }

  async run(): Promise<PublishResult> {
    const {flags} = await this.parse(PolicyPublish)
    const [{parseOciRef, formatOciRef}, {scopeTag, scopeOfTag, planOciPublish, pushPlanned}, {parseScope, parseBundle, verifyBundle}, {lastBundle}, {loadTrust}, {scopeName}] = await Promise.all([
      import('../../platform/registry/client.js'),
      import('../../control-plane/policy/distribution/oci.js'),
      import('../../control-plane/policy/bundle.js'),
      import('../../control-plane/policy/publish.js'),
      import('../../control-plane/manifests/load.js'),
      import('../../control-plane/policy/source.js'),
    ])
    const ref = parseOciRef(flags.to, '--to')
    if (ref.digest) throw new AirlockError('USAGE', '--to: a digest names what is there already; give oci://REGISTRY/REPO[:TAG]', {field: '--to'})
    const named = ref.tag ? scopeOfTag(ref.tag) : null
    if (ref.tag && !named) throw new AirlockError('USAGE', `--to: the tag "${ref.tag}" names no scope (global, org-ID, team-ORG.TEAM, user-ID); give oci://REGISTRY/REPO and --scope`, {field: '--to'})
    if (!flags.scope && !named) throw new AirlockError('USAGE', '--scope: which scope (or name its tag in --to)', {field: '--scope'})
    const scope = parseScope(flags.scope ?? named!)
    if (ref.tag && ref.tag !== scopeTag(scope)) throw new AirlockError('USAGE', `--to: the tag "${ref.tag}" is not ${scopeName(scope)}'s (${scopeTag(scope)})`, {field: '--to'})
    // A push changes what hosts enforce: one that cannot be recorded is not made (fail closed).
    await this.openAudit(flags, flags.apply)

    // The bundle and the trust it is checked under, from the one resolver: HEAD, once its history verifies.
    const head = await verifiedHead(flags, this)
    const trust = await loadTrust(head.repo, head.commit, this.limits)
    const {path, file} = await lastBundle(head.repo, head.commit, scope)
    if (!file) throw new AirlockError('INVALID_INPUT', `${path}: no ${scopeName(scope)} bundle at HEAD ${head.commit.slice(0, 12)} (make one with airlock policy bundle --scope ${scopeName(scope)} --apply)`, {file: path})
    const bytes = Buffer.from(file.text)
    // Exactly as a host's pull verifies it (a bundle no host would accept is never published).
    const verify = (body: Buffer, where: string) => {
      const {envelope, payload} = parseBundle(body.toString('utf8'), where, this.limits)
      const v = verifyBundle(envelope, payload, {trust, now: this.now, scope: scopeName(scope), source: where, limits: this.limits})
      return {version: payload.version, digest: v.digest, payload}
    }
    const local = verify(bytes, path)

    const limits = registryLimits(flags, this.limits)
    const client = (await registryClients(ref.registry, {ca: flags.ca ? await readInput(flags.ca) : undefined, plainHttp: flags['plain-http']}, limits))()
    const repo = {...ref, tag: null}
    const record = async (ok: boolean, detail: {version: number; digest: string; failure: {code: string; message: string} | null; reason: string}) => {
      const {bundlePublishEvent} = await import('../../control-plane/audit/ocsf.js')
      await this.recordAudit(bundlePublishEvent({now: new Date(), host: hostname(), toolVersion: this.config.version, destination: formatOciRef(repo), scope: scopeName(scope), effective: ok ? 'published' : 'refused', ...detail}))
    }
    let plan
    try {
      plan = await planOciPublish(client, repo, {bytes, payload: local.payload, digest: local.digest, scope}, verify)
    } catch (error) {
      if (flags.apply) await record(false, {version: local.version, digest: local.digest, reason: (error as Error).message, failure: {code: (error as AirlockError).code ?? 'INTERNAL', message: (error as Error).message}})
      throw error
    }
    let pushed: string[] = []
    if (flags.apply) {
      try {
        pushed = (await pushPlanned(client, repo, plan, bytes)).pushed
      } catch (error) {
        await record(false, {version: local.version, digest: local.digest, reason: (error as Error).message, failure: {code: (error as AirlockError).code ?? 'INTERNAL', message: (error as Error).message}})
        throw error
      }
      await record(true, {version: local.version, digest: local.digest, failure: null, reason: pushed.length ? `pushed ${pushed.join(', ')} (${plan.manifestDigest})` : 'already published'})
    }
    const {artifact: _artifact, ...shown} = plan
    const result: PublishResult = {...shown, applied: flags.apply, pushed, bundle: path, trustSource: head.source}
    if (!this.jsonEnabled()) this.log(render(result))
    return result
  }
}

function render(r: PublishResult): string {
  const remote =
    r.remote.state === 'absent'
      ? 'nothing under the scope tag yet'
      : r.remote.state === 'verified'
        ? `v${r.remote.version} (${r.remote.manifest}), verifies`
        : r.remote.state === 'unverified'
          ? `an artifact that does not verify (${r.remote.failure.code}): it is replaced`
          : `unreadable (${r.remote.failure.code}: ${r.remote.failure.message})`
  const lines = [
    `${r.applied ? (r.pushed.length ? 'Published' : 'Already published') : 'Plan: publish'} ${r.scope} v${r.version} (${r.bundle}, expires ${r.expiresAt}) to ${r.to}`,
    `  bundle   ${r.bundleDigest}`,
    `  manifest ${r.manifestDigest}  (layer ${r.layerDigest}, ${r.size} bytes)`,
    `  registry now: ${remote}`,
    ...r.tags.map((tag) => `  ${tag.action.padEnd(6)} ${tag.tag}${tag.from && tag.action === 'move' ? ` (from ${tag.from})` : ''}`),
  ]
  if (!r.applied && !r.noop) lines.push('Run with --apply to push.')
  return lines.map((l) => t(l)).join('\n')
}
