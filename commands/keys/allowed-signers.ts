import {Flags} from '@oclif/core'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import {AirlockCommand, anchorFlag} from '../_base.js'
import {trustOf} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class KeysAllowedSigners extends AirlockCommand {
  static override summary = "Print git's allowed-signers file for the evidence keys of trust.yaml, so `git verify-commit` checks airlock's commits."
  static override description = 'One line per Ed25519 evidence key, with namespaces="git" and its validity window (git passes the commit time to ssh-keygen). The keys are those of trust.yaml at a HEAD whose history verifies back to the pinned trust anchor, or of --trust FILE.'
  static override examples = ['<%= config.bin %> keys allowed-signers > allowed_signers && git -c gpg.ssh.allowedSignersFile=allowed_signers verify-commit HEAD']
  static override flags = {
    trust: Flags.string({description: 'a trust policy file (default: manifests/trust.yaml at the verified HEAD)'}),
    ...anchorFlag,
  }

  async run(): Promise<{allowedSigners: string; trustSource: TrustSource}> {
    const {flags} = await this.parse(KeysAllowedSigners)
    const [{allowedSigners}, {trust, source}] = await Promise.all([import('../../control-plane/manifests/trust.js'), trustOf(flags, this)])
    const text = allowedSigners(trust)
    if (!this.jsonEnabled()) process.stdout.write(t(text, {keepNewlines: true}))
    return {allowedSigners: text, trustSource: source}
  }
}
