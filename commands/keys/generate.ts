import {join} from 'node:path'
import {Args, Flags} from '@oclif/core'
import {AirlockCommand, planFlags, type PlanOutcome} from '../_base.js'

export default class KeysGenerate extends AirlockCommand {
  static override summary = 'Generate a key in keys/NAME.key (Ed25519, or ECDSA P-256 for images); with --apply, add its public half to trust.yaml.'
  static override description =
    'The private key is written to keys/NAME.key (mode 0600; keys/ is git-ignored) and reused if it is already there. The trust.yaml change is planned like every change and committed only with --apply.'
  static override args = {name: Args.string({description: 'key name (keys/NAME.key)', required: true})}
  static override flags = {
    ...planFlags,
    role: Flags.string({description: 'role the key gets in trust.yaml', options: ['evidence', 'policy', 'image', 'audit'], required: true}),
    'valid-from': Flags.string({description: 'start of the key validity (RFC 3339 time; default: now)'}),
    'valid-until': Flags.string({description: 'end of the key validity (RFC 3339 time)'}),
    algorithm: Flags.string({description: 'key type; ecdsa-p256 (what cosign generates) only for image keys', options: ['ed25519', 'ecdsa-p256'], default: 'ed25519'}),
  }

  async run(): Promise<PlanOutcome & {key: {id: string; publicKey: string; file: string; created: boolean}}> {
    const {args, flags} = await this.parse(KeysGenerate)
    const repo = await this.repository(flags.repo)
    const {ensureKeyFile} = await import('../../control-plane/plan/trust-key.js')
    const file = join(repo.dir, 'keys', `${args.name}.key`)
    const algorithm = flags.algorithm as 'ed25519' | 'ecdsa-p256'
    if (algorithm !== 'ed25519' && flags.role !== 'image') {
      const {AirlockError} = await import('../../control-plane/errors.js')
      throw new AirlockError('USAGE', `--algorithm ${algorithm}: only image keys may be ECDSA; evidence, policy and audit signatures are Ed25519`, {field: '--algorithm'})
    }
    const key = await ensureKeyFile(file, args.name, algorithm)
    const publicKey = Buffer.from(key.publicKey).toString('base64')
    if (!this.jsonEnabled()) this.log(`${key.created ? 'Wrote' : 'Using'} ${file}\n  key id     ${key.keyid}\n  algorithm  ${algorithm}\n  public key ${publicKey}\n`)
    const request = {kind: 'add-key' as const, name: args.name, role: flags.role as 'evidence', algorithm, publicKey, validFrom: flags['valid-from'] ?? this.now.toISOString().replace(/\.\d{3}Z$/, 'Z'), ...(flags['valid-until'] ? {validUntil: flags['valid-until']} : {})}
    const outcome = await this.runChange(repo, request, flags)
    return {...outcome, key: {id: key.keyid, publicKey, file, created: key.created}}
  }
}
