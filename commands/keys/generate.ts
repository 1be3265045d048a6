import {join} from 'node:path'
import {Args, Flags} from '@oclif/core'
import {ROLES} from '../../control-plane/manifests/models.js'
import {AirlockCommand, planFlags, type PlanOutcome} from '../_base.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class KeysGenerate extends AirlockCommand {
  static override summary = 'Generate a key in keys/NAME.key (Ed25519, or ECDSA P-256 for images); with --apply, add its public half to trust.yaml.'
  static override description =
    'Without --apply nothing is written: a new key is generated in memory and the trust.yaml change it needs is shown. With --apply the private key is written to keys/NAME.key (mode 0600; keys/ is git-ignored) only once the trust change is committed, or not at all; an existing keys/NAME.key is reused. A new key cannot go into a saved plan (--out): its private half would be lost.'
  static override args = {name: Args.string({description: 'key name (keys/NAME.key)', required: true})}
  static override flags = {
    ...planFlags,
    role: Flags.string({description: 'role the key gets in trust.yaml', options: [...ROLES], required: true}),
    'valid-from': Flags.string({description: 'start of the key validity (RFC 3339 time; default: now)'}),
    'valid-until': Flags.string({description: 'end of the key validity (RFC 3339 time)'}),
    algorithm: Flags.string({description: 'key type; ecdsa-p256 (what cosign generates) only for image keys', options: ['ed25519', 'ecdsa-p256'], default: 'ed25519'}),
  }

  async run(): Promise<PlanOutcome & {key: {id: string; publicKey: string; file: string; created: boolean}}> {
    const {args, flags} = await this.parse(KeysGenerate)
    const repo = await this.repository(flags.repo)
    const {keyFor} = await import('../../control-plane/changes/add-key.js')
    const file = join(repo.dir, 'keys', `${args.name}.key`)
    const algorithm = flags.algorithm as 'ed25519' | 'ecdsa-p256'
    const key = await keyFor(file, args.name, algorithm)
    const publicKey = Buffer.from(key.publicKey).toString('base64')
    const how = key.pem ? (flags.apply ? 'New key for' : 'New key (not written; --apply writes it with the trust change) for') : 'Using'
    if (!this.jsonEnabled()) this.log(`${how} ${t(file)}\n  key id     ${key.keyid}\n  algorithm  ${algorithm}\n  public key ${publicKey}\n`)
    const request = {kind: 'add-key' as const, name: args.name, role: flags.role as 'evidence', algorithm, publicKey, validFrom: flags['valid-from'] ?? this.now.toISOString().replace(/\.\d{3}Z$/, 'Z'), ...(flags['valid-until'] ? {validUntil: flags['valid-until']} : {})}
    // A new private key is a pipeline input: written only once the change trusting it is committed.
    const outcome = await this.runChange(repo, {request, ...(key.pem ? {newKey: {file, pem: key.pem}} : {})}, flags)
    return {...outcome, key: {id: key.keyid, publicKey, file, created: Boolean(key.pem && outcome.applied)}}
  }
}
