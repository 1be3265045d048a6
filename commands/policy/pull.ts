import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {hostname} from 'node:os'
import {Flags} from '@oclif/core'
import {AirlockError} from '../../control-plane/errors.js'
import type {PullReport} from '../../control-plane/policy/pull.js'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import {AirlockCommand, anchorFlag, auditDirFlag} from '../_base.js'
import {bundleCacheDir, readInput, trustOf} from '../_policy.js'
import {registryAccessFlags, registryClients, registryFlags, registryLimits} from '../_registry.js'
import {forTerminal as t, jsonText} from '../../control-plane/terminal.js'

export default class PolicyPull extends AirlockCommand {
  static override summary = 'Fetch, verify and cache a scope’s policy bundle; say which policy is in effect and why.'
  static override description =
    `From a policy serve server (--server), an OCI registry (--from oci://REGISTRY/REPO[:TAG], the tag defaulting to the scope's: global, org-ID, team-ORG.TEAM, user-ID) or a static HTTPS location (--from https://…/SCOPE.json). The source is only transport: the bundle is verified here the same way whatever it came from (signatures and threshold, key validity, lifetime, expiry, scope, version floor), and a registry's "same digest" or a bucket's 304 is believed only about the verified cached bundle it gave.

When the source cannot give a valid bundle, --offline-mode decides: fail_closed (deny everything), cached_with_expiry (the verified cache until --max-age after it was fetched, never past its expiry), cached_indefinite (the verified cache), default_policy (the embedded default policy). Exit 1 when everything is denied.

Registries get the token flow as image fetch-signature has it: AIRLOCK_REGISTRY_USER/PASSWORD, docker login's ~/.docker/config.json, or AIRLOCK_REGISTRY_TOKEN.`
  static override flags = {
    ...auditDirFlag,
    server: Flags.string({description: 'bundle server URL (policy serve), e.g. https://policy.internal:8443', exactlyOne: ['server', 'from']}),
    from: Flags.string({description: 'oci://REGISTRY/REPO[:TAG|@sha256:…] (an OCI registry) or https://…/SCOPE.json (a static bucket)', exactlyOne: ['server', 'from']}),
    scope: Flags.string({description: 'global, org:ID, team:ORG/TEAM or user:ID', required: true}),
    ca: Flags.string({description: 'CA certificate (PEM) the server, bucket or registry certificate must chain to'}),
    'plain-http': registryAccessFlags['plain-http'],
    'max-manifest-bytes': registryFlags['max-manifest-bytes'],
    'max-blob-bytes': registryFlags['max-blob-bytes'],
    'max-total-bytes': registryFlags['max-total-bytes'],
    trust: Flags.string({description: 'trust policy file (default: manifests/trust.yaml at HEAD, whose history must verify back to the pinned trust anchor)'}),
    ...anchorFlag,
    'offline-mode': Flags.string({options: ['fail_closed', 'cached_with_expiry', 'cached_indefinite', 'default_policy'], default: 'fail_closed', description: 'what holds when the server cannot give a valid bundle'}),
    'max-age': Flags.string({description: 'cached_with_expiry: how long after fetching a cached bundle stays in effect', default: '24h'}),
    'cache-dir': Flags.string({description: 'bundle cache (default: ~/.cache/airlock/bundles)'}),
    timeout: Flags.string({description: 'deadline for one fetch', default: '10s'}),
    'api-key-env': Flags.string({description: 'send the x-api-key header from this environment variable'}),
    watch: Flags.boolean({description: 'pull again every --interval', default: false}),
    interval: Flags.string({description: 'with --watch: time between pulls', default: '30s'}),
    count: Flags.integer({description: 'with --watch: stop after N pulls', min: 1}),
  }

  /** With --watch every pull is printed as a line when it happens, not once at the end. */
  private watching = false

  async run(): Promise<PullReport & {trustSource: TrustSource}> {
    const {flags} = await this.parse(PolicyPull)
    this.watching = flags.watch
    const [{pullBundle}, {parseScope}, {parseDuration}, {loadPolicyTree}, {canonicalJson, sha256Hex}] = await Promise.all([
      import('../../control-plane/policy/pull.js'),
      import('../../control-plane/policy/bundle.js'),
      import('../../control-plane/duration.js'),
      import('../../control-plane/policy/source.js'),
      import('../../control-plane/crypto/digest.js'),
    ])
    const scope = parseScope(flags.scope)
    const {parseSourceUrl} = await import('../../control-plane/policy/distribution/https.js')
    // Plain HTTP would carry the API key in clear: only to this machine (as --from https:// has it).
    const server = flags.server ? parseSourceUrl(flags.server, '--server') : undefined
    if (flags['plain-http'] && !flags.from?.startsWith('oci://')) throw new AirlockError('USAGE', '--plain-http: only with --from oci://… (a bucket or server names http:// in its URL)', {field: '--plain-http'})
    const {trust, source: trustSource} = await trustOf(flags, this)
    // What the host enforces from now on is recorded; a pull that cannot be recorded is not taken (fail closed).
    await this.openAudit(flags, true)
    const ca = flags.ca ? await readInput(flags.ca) : undefined
    const apiKey = flags['api-key-env'] ? process.env[flags['api-key-env']] : undefined
    const cacheDir = await bundleCacheDir(flags['cache-dir'])
    const maxAgeMs = parseDuration(flags['max-age'], '--max-age')
    const timeoutMs = parseDuration(flags.timeout, '--timeout')
    const intervalMs = parseDuration(flags.interval, '--interval')
    // The embedded default policy: the global policies shipped with airlock itself.
    const defaultPolicy = async () => {
      const tree = await loadPolicyTree(join(this.config.root, 'policies'), {display: (a) => a})
      const global = tree.policies.filter((p) => p.scope.kind === 'global').map((p) => [p.id, p.text])
      return {policies: global.length, digest: `sha256:${sha256Hex(canonicalJson(Object.fromEntries(global)))}`}
    }
    const [{serverSource}, {ociSource, scopeTag}, {httpsSource}, {parseOciRef}] = await Promise.all([
      import('../../control-plane/policy/pull.js'),
      import('../../control-plane/policy/distribution/oci.js'),
      import('../../control-plane/policy/distribution/https.js'),
      import('../../platform/registry/client.js'),
    ])
    // Where the bundle comes from; verified below the same way whichever it is.
    let source
    if (server) {
      source = serverSource(server.href, flags.scope, {ca, apiKey, timeoutMs, maxBytes: this.limits.maxReceiptBytes})
    } else if (flags.from!.startsWith('oci://')) {
      const ref = parseOciRef(flags.from!, '--from')
      if (!ref.tag && !ref.digest) ref.tag = scopeTag(scope)
      const limits = registryLimits({...flags, timeout: flags.timeout}, this.limits)
      const clients = await registryClients(ref.registry, {ca, plainHttp: flags['plain-http']}, limits)
      // Made once here so a bad --plain-http is a usage error (2), not a pull failure the offline mode hides.
      clients()
      source = ociSource(ref, clients)
    } else {
      source = httpsSource(parseSourceUrl(flags.from!, '--from'), {ca, timeoutMs, maxBytes: this.limits.maxReceiptBytes})
    }
    let report: PullReport
    for (let n = 1; ; n++) {
      report = await pullBundle({
        source,
        scope: flags.scope,
        trust,
        now: flags.watch ? new Date() : this.now,
        cacheDir,
        offlineMode: flags['offline-mode'] as 'fail_closed',
        maxAgeMs,
        defaultPolicy,
        limits: this.limits,
      })
      this.outcome = report.effective === 'deny-all' ? 'check_failed' : 'ok'
      const {bundlePullEvent} = await import('../../control-plane/audit/ocsf.js')
      await this.recordAudit(bundlePullEvent({now: new Date(), host: hostname(), toolVersion: this.config.version, server: source.id, ...report}))
      if (flags.watch && this.jsonEnabled()) process.stdout.write(`${jsonText({...report, trustSource})}\n`)
      else if (!this.jsonEnabled()) this.log(`${t(report.scope)}: ${t(report.effective.toUpperCase())}${report.version ? ` v${t(String(report.version))}` : ''} — ${t(report.reason)}`)
      if (!flags.watch || (flags.count !== undefined && n >= flags.count)) break
      await sleep(intervalMs)
    }
    return {...report, trustSource}
  }

  protected override logJson(json: unknown): void {
    if (!this.watching) super.logJson(json)
  }
}
