import {Args, Flags} from '@oclif/core'
import {AirlockCommand} from '../_base.js'
import {auditDir, auditDirFlag} from '../_audit.js'
import {displayPath} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'
import type {EntryProof} from '../../control-plane/audit/prove.js'

export default class AuditProve extends AirlockCommand {
  static override summary = 'Write the inclusion proof of an audit entry: a C2SP tlog-proof a third party checks offline.'
  static override description =
    'The proof holds the entry\'s index, its audit path and the signed checkpoint (--checkpoint FILE, else the newest). ' +
    'It is made only when the log still hashes to that checkpoint\'s root. Check it with `airlock audit check-proof PROOF --entry FILE`; ' +
    'the entry\'s line is in the --json output, or written with --entry-out.'
  static override args = {entry: Args.string({description: 'the entry\'s index (its uid, from 0)', required: true})}
  static override flags = {
    ...auditDirFlag,
    checkpoint: Flags.string({description: 'the signed checkpoint to prove against (default: the newest under checkpoints/)'}),
    out: Flags.string({description: 'write the proof to FILE (default: print it)'}),
    'entry-out': Flags.string({description: 'also write the entry\'s line to FILE, for the checker'}),
  }

  async run(): Promise<Omit<EntryProof, 'text'> & {proof: string; out: string | null; entryOut: string | null}> {
    const {args, flags} = await this.parse(AuditProve)
    const [{proveEntry}, {writeFileAtomic}, {AirlockError}] = await Promise.all([import('../../control-plane/audit/prove.js'), import('../../control-plane/repo/files.js'), import('../../control-plane/errors.js')])
    if (!/^(0|[1-9]\d{0,15})$/.test(args.entry) || !Number.isSafeInteger(Number(args.entry))) {
      throw new AirlockError('USAGE', `ENTRY: ${JSON.stringify(args.entry)} is not an entry index (a whole number from 0)`, {field: 'ENTRY'})
    }
    const dir = await auditDir(flags)
    const {text, ...proof} = await proveEntry(dir, Number(args.entry), flags.checkpoint !== undefined ? {checkpoint: flags.checkpoint} : {})
    if (flags.out) await writeFileAtomic(flags.out, text)
    if (flags['entry-out']) await writeFileAtomic(flags['entry-out'], `${proof.entry}\n`)
    if (!this.jsonEnabled()) {
      // The proof is data for a file or a pipe: printed as it is (a parsed note holds no control character).
      if (!flags.out) this.writeData(text)
      const said = [`entry ${proof.index} (fingerprint ${proof.fingerprint}) in ${t(proof.origin)} at tree size ${proof.size}, checkpoint ${t(displayPath(proof.checkpoint))}`]
      if (flags.out) said.push(`proof written to ${t(flags.out)}`)
      if (flags['entry-out']) said.push(`entry written to ${t(flags['entry-out'])}`)
      process.stderr.write(`${said.join('; ')}\n`)
    }
    return {...proof, proof: text, out: flags.out ?? null, entryOut: flags['entry-out'] ?? null}
  }
}
