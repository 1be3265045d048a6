import {Flags} from '@oclif/core'
import {AirlockCommand} from '../_base.js'
import {auditDir, auditDirFlag, auditKeysOf, auditTrust, auditTrustFlags} from '../_audit.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import type {CheckpointResult} from '../../control-plane/audit/checkpoint.js'

export default class AuditCheckpoint extends AirlockCommand {
  static override summary = "Sign the audit log's current tree head: a C2SP checkpoint in checkpoints/<size>.checkpoint."
  static override description =
    'The log is verified first (fingerprints, chain, earlier checkpoints): a checkpoint never vouches for an edited entry. ' +
    'The key must be an audit key: in a repository (--repo or the working directory), trust.yaml at the verified HEAD (or --trust FILE) must list it with role audit.'
  static override flags = {
    ...auditDirFlag,
    ...auditTrustFlags,
    'audit-key': Flags.string({description: 'Ed25519 private key of role audit (default: AIRLOCK_AUDIT_KEY, a file or PEM text)'}),
  }

  async run(): Promise<CheckpointResult> {
    const {flags} = await this.parse(AuditCheckpoint)
    const dir = await auditDir(flags)
    const [{loadSigner}, {checkpointLog, readOrigin}, {AirlockError}] = await Promise.all([import('../../control-plane/crypto/keys.js'), import('../../control-plane/audit/log.js'), import('../../control-plane/errors.js')])
    const signer = await loadSigner({file: flags['audit-key'], env: process.env.AIRLOCK_AUDIT_KEY}, 'audit')
    if (flags.trust || (await this.inRepository(flags.repo))) {
      // Whoever can append cannot checkpoint: only a key the fleet lists with role audit signs.
      const origin = await readOrigin(dir)
      const {trust} = await auditTrust(flags, this)
      const known = await auditKeysOf(trust, origin, this.now)
      if (!known.some((k) => Buffer.from(k.publicKey).equals(Buffer.from(signer.publicKey)))) {
        throw new AirlockError('KEY_INVALID', `the audit key ${signer.keyid.slice(0, 16)}… is not a key of role audit in ${flags.trust ?? 'trust.yaml at HEAD'} (valid now); add it with \`airlock keys generate NAME --role audit --apply\``, {keyid: signer.keyid})
      }
    }
    const result = await checkpointLog(dir, signer, this.now)
    if (!this.jsonEnabled()) {
      this.log(`${result.existing ? 'Checkpoint already there' : 'Checkpoint written'}: ${t(result.path)}`)
      this.log(`origin ${t(result.origin)}, tree size ${result.size}, root ${Buffer.from(result.root, 'hex').toString('base64')}`)
    }
    return result
  }

  /** Whether --repo or the working directory is a git repository (then its trust decides). */
  private async inRepository(repo: string | undefined): Promise<boolean> {
    if (repo) return true
    const {findTopLevel} = await import('../../control-plane/repo/repository.js')
    return findTopLevel(process.cwd()).then(
      () => true,
      () => false,
    )
  }
}
