/**
 * Real audit logs for the proof tests, written by docs/audit.md's rules (until log.ts's appender
 * is on this branch): entries with their fingerprint and hash chain, pruned entries, checkpoints
 * signed as C2SP notes with a real Ed25519 key named by the log's origin.
 */
import {createHash} from 'node:crypto'
import {mkdirSync, mkdtempSync, writeFileSync, appendFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {generateSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import {leafHash, MerkleLog} from '../../../control-plane/audit/merkle.js'
import {formatCheckpoint, signNote, verifierKeyOf, type VerifierKey} from '../../../control-plane/audit/note.js'

export const sha256hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex')

/** One entry's line (no newline) and its fingerprint. */
export function entryLine(origin: string, index: number, prev: string | null, body: Record<string, unknown> = {}): {line: string; fingerprint: string} {
  const link = prev === null ? '' : `"prev_event":{"fingerprint":{"algorithm_id":3,"value":"${prev}"},"uid":"${index - 1}"},`
  const rest = `{"attestation_list":[{"chain_uid":${JSON.stringify(origin)},${link}"uid":"${index}"}],"activity_id":1,"class_uid":6003,"type_uid":600301,"time":${1_700_000_000_000 + index},"message":${JSON.stringify(`event ${index}`)}${Object.keys(body).length ? `,${JSON.stringify(body).slice(1, -1)}` : ''}}`
  const fingerprint = sha256hex(rest)
  const open = '{"attestation_list":[{'
  return {line: `${open}"fingerprint":{"algorithm_id":3,"value":"${fingerprint}"},${rest.slice(open.length)}`, fingerprint}
}

export function prunedLine(index: number, fingerprint: string, prev: string | null): string {
  return `{"pruned":{"uid":"${index}","fingerprint":"${fingerprint}","prev":${prev === null ? 'null' : `"${prev}"`},"time":1700000000000}}`
}

/** A log folder being written: its lines, fingerprints, and a signer for its checkpoints. */
export class TestLog {
  readonly lines: string[] = []
  readonly fingerprints: string[] = []
  readonly merkle = new MerkleLog()
  readonly key: VerifierKey

  constructor(
    readonly dir: string,
    readonly origin: string,
    readonly signer: Signer = generateSigner().signer,
  ) {
    mkdirSync(join(dir, 'checkpoints'), {recursive: true})
    writeFileSync(join(dir, 'origin'), `${origin}\n`)
    writeFileSync(join(dir, 'events.jsonl'), '')
    this.key = verifierKeyOf(origin, signer.publicKey)
  }

  static temp(origin = 'airlock.audit/test-host/0123456789abcdef', signer?: Signer): TestLog {
    return new TestLog(mkdtempSync(join(tmpdir(), 'airlock-prove-')), origin, signer)
  }

  append(n: number): this {
    let text = ''
    for (let i = 0; i < n; i++) {
      const index = this.lines.length
      const {line, fingerprint} = entryLine(this.origin, index, this.fingerprints.at(-1) ?? null)
      this.lines.push(line)
      this.fingerprints.push(fingerprint)
      this.merkle.append(leafHash(Buffer.from(fingerprint, 'hex')))
      text += `${line}\n`
    }
    appendFileSync(join(this.dir, 'events.jsonl'), text)
    return this
  }

  /** The signed checkpoint note of the log as it is now, written under checkpoints/ unless `write` is false. */
  checkpoint(write = true, signer: Signer = this.signer, name = this.origin): string {
    const note = signNote(formatCheckpoint({origin: this.origin, size: this.merkle.size, rootHash: this.merkle.root(), extensions: []}), [{name, signer}])
    if (write) writeFileSync(join(this.dir, 'checkpoints', `${String(this.merkle.size).padStart(20, '0')}.checkpoint`), note)
    return note
  }

  /** Rewrites events.jsonl from `lines` (after a test changed them). */
  rewrite(): void {
    writeFileSync(join(this.dir, 'events.jsonl'), this.lines.map((l) => `${l}\n`).join(''))
  }
}
