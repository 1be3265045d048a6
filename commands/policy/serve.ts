import {resolve} from 'node:path'
import {Flags} from '@oclif/core'
import {AirlockError} from '../../control-plane/errors.js'
import {AirlockCommand, anchorFlag, auditDirFlag} from '../_base.js'
import {anchorInput, openRepository, readInput} from '../_policy.js'
import {forTerminal as t, jsonText} from '../../control-plane/terminal.js'

export default class PolicyServe extends AirlockCommand {
  static override summary = 'Serve signed policy bundles over HTTPS (GET /v1/bundles/<scope>, ETag / 304, /healthz, /readyz).'
  static override flags = {
    ...auditDirFlag,
    bundles: Flags.string({description: 'bundle folder (default: bundles/ at the newest HEAD whose history verifies back to the pinned trust anchor)'}),
    ...anchorFlag,
    'tls-cert': Flags.string({description: 'TLS certificate (PEM)'}),
    'tls-key': Flags.string({description: 'TLS private key (PEM)'}),
    host: Flags.string({description: 'address to listen on', default: '127.0.0.1'}),
    port: Flags.integer({description: 'port (0: any free port)', default: 8443, min: 0, max: 65535}),
    'insecure-http': Flags.boolean({description: 'plain HTTP, only on a loopback address', default: false}),
    'api-key-env': Flags.string({description: 'require the x-api-key header to equal this environment variable'}),
  }

  async run(): Promise<{url: string}> {
    const {flags} = await this.parse(PolicyServe)
    const [{startBundleServer, headSource, checkListen}, {resolveAnchor, verifyBase, baseRefusal}] = await Promise.all([import('../../control-plane/policy/server.js'), import('../../control-plane/pipeline/base.js')])
    if (Boolean(flags['tls-cert']) !== Boolean(flags['tls-key'])) throw new AirlockError('USAGE', '--tls-cert and --tls-key go together', {field: '--tls-cert'})
    const tls = flags['tls-cert'] && flags['tls-key'] ? {cert: await readInput(flags['tls-cert']), key: await readInput(flags['tls-key'])} : undefined
    let apiKey: string | undefined
    if (flags['api-key-env']) {
      apiKey = process.env[flags['api-key-env']]
      if (!apiKey) throw new AirlockError('USAGE', `--api-key-env: ${flags['api-key-env']} is not set`, {field: '--api-key-env'})
    }
    checkListen({tls, insecureHttp: flags['insecure-http'], host: flags.host})
    let from: string
    let source
    if (flags.bundles) {
      from = resolve(flags.bundles)
    } else {
      // bundles/ at HEAD once its history verifies back to the pinned anchor; refused at start without one.
      const repo = await openRepository(flags.repo)
      const anchor = await resolveAnchor(repo, anchorInput(flags))
      const verify = async (commit: string) => {
        const branch = (await repo.head()).ref
        const v = await verifyBase(repo, commit, {anchor: anchor.commit, limits: this.limits, now: new Date(), branch})
        const refused = baseRefusal(commit, v)
        if (refused) process.stderr.write(`airlock: not serving ${commit.slice(0, 12)}: ${t(refused.message)}\n`)
        return refused === null
      }
      const head = (await repo.base()).commit
      if (!anchor.commit || !(await verify(head))) throw baseRefusal(head, await verifyBase(repo, head, {anchor: anchor.commit, limits: this.limits, now: this.now}))!
      source = headSource(repo, verify)
      from = `bundles/ at the verified HEAD of ${repo.dir}`
    }
    // Every API key presented is an Authentication event in this host's log, on disk before the
    // answer (concurrent requests share one group commit); one that cannot be recorded is a 503.
    if (apiKey) await this.openAudit(flags, true)
    const [{authenticationEvent}, {hostname}] = await Promise.all([import('../../control-plane/audit/ocsf.js'), import('node:os')])
    const host = hostname()
    const onAuthentication = async ({accepted, scope}: {accepted: boolean; remote: string | null; scope: string}): Promise<void> => {
      await this.recordAudit(authenticationEvent({now: new Date(), accepted, via: 'policy-serve', host, toolVersion: this.config.version, ...(accepted ? {} : {reason: `missing or wrong API key (bundle ${scope})`, code: 'INVALID_TOKEN'})}))
    }
    const running = await startBundleServer({...(source ? {source} : {bundlesDir: from}), host: flags.host, port: flags.port, tls, insecureHttp: flags['insecure-http'], apiKey, onAuthentication})
    // One line saying where it listens (JSON with --json), then serve until SIGINT/SIGTERM.
    process.stdout.write(this.jsonEnabled() ? `${jsonText({url: running.url, bundles: from})}\n` : `Serving ${t(from)} on ${t(running.url)}\n`)
    await new Promise<void>((done) => {
      const stop = () => running.close().then(done)
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    return {url: running.url}
  }

  protected override logJson(): void {
    // The listening line above is the output; nothing more when the server stops.
  }
}
