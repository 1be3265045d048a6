import {Args, Flags} from '@oclif/core'
import {AirlockCommand} from '../_base.js'
import {auditKeysOf, auditTrust, auditTrustFlags, verifierKeysFrom} from '../_audit.js'
import {readInput} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import type {ProofCheck} from '../../control-plane/audit/prove.js'

/** An entry line may be as long as the log reads (16 MiB), and a little more for its newline. */
const MAX_ENTRY_BYTES = 16 * 1024 * 1024 + 1

export default class AuditCheckProof extends AirlockCommand {
  static override summary = 'Check an audit entry\'s inclusion proof offline: the entry, its audit path, and the checkpoint\'s signature.'
  static override description =
    'The checkpoint must be signed by a --key verifier key, else by a role-audit key of trust.yaml at the verified HEAD of --repo (or --trust FILE), named by the checkpoint\'s origin. ' +
    'Exit 1 names what failed: UNKNOWN_KEY, BAD_SIGNATURE, ENTRY_MALFORMED, ENTRY_PRUNED, FINGERPRINT_MISMATCH, INDEX_MISMATCH, ORIGIN_MISMATCH or NOT_INCLUDED.'
  static override args = {proof: Args.string({description: 'the proof file (a C2SP tlog-proof, from `airlock audit prove`)', required: true})}
  static override flags = {
    ...auditTrustFlags,
    entry: Flags.string({description: 'a file holding the entry\'s line, as the log holds it', required: true}),
    key: Flags.string({description: 'a C2SP verifier key (<origin>+<key id>+<key>) or a file holding one; repeat for each', multiple: true}),
    origin: Flags.string({description: 'the log the entry must be in (its origin): a proof against another log fails'}),
  }

  async run(): Promise<ProofCheck & {keysFrom: string}> {
    const {args, flags} = await this.parse(AuditCheckProof)
    const [{checkEntryProof}, {parseTlogProof}] = await Promise.all([import('../../control-plane/audit/prove.js'), import('../../control-plane/audit/note.js')])
    const [proof, entry] = await Promise.all([readInput(args.proof), readInput(flags.entry, MAX_ENTRY_BYTES)])
    let keysFrom: string
    let keys
    if (flags.key?.length) {
      keys = await verifierKeysFrom(flags.key)
      keysFrom = '--key'
    } else {
      // trust.yaml's audit keys sign every host's log: named here by the origin the checkpoint claims, which the entry must then belong to.
      const {origin} = parseTlogProof(proof).tree
      const {trust} = await auditTrust(flags, this)
      keys = await auditKeysOf(trust, origin, this.now)
      keysFrom = flags.trust ?? 'trust.yaml at the verified HEAD'
    }
    const result = checkEntryProof(proof, entry, keys, flags.origin !== undefined ? {origin: flags.origin} : {})
    if (!result.ok) this.failCheck()
    if (!this.jsonEnabled()) {
      this.log(
        result.ok
          ? `OK: entry ${result.index} (fingerprint ${result.fingerprint}) is in ${t(result.origin)} at tree size ${result.size}, checkpoint signed by ${result.signedBy.map((k) => t(k)).join(', ')}`
          : `FAIL ${result.problem}: ${t(result.message ?? '')}`,
      )
    }
    return {...result, keysFrom}
  }
}
