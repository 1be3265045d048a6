/**
 * Audit logs for the proof tests, their lines made by log.ts's serializer and written straight to
 * events.jsonl (so a test can edit, cut or replace them): entries with their fingerprint and hash
 * chain, pruned entries, checkpoints signed as C2SP notes with a real Ed25519 key named by the origin.
 */
import {mkdirSync, mkdtempSync, writeFileSync, appendFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {generateSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import {leafHash, MerkleLog} from '../../../control-plane/audit/merkle.js'
import {formatCheckpoint, signNote, verifierKeyOf, type VerifierKey} from '../../../control-plane/audit/note.js'
import {prunedLine as pruned, serializeEntry} from '../../../control-plane/audit/log.js'

/** One entry's line (no newline) and its fingerprint, by log.ts's serializer. */
export function entryLine(origin: string, index: number, prev: string | null, body: Record<string, unknown> = {}): {line: string; fingerprint: string} {
  return serializeEntry({activity_id: 1, class_uid: 6003, type_uid: 600301, time: 1_700_000_000_000 + index, message: `event ${index}`, ...body}, {index, prev, origin})
}

export function prunedLine(index: number, fingerprint: string, prev: string | null): string {
  return pruned({index, fingerprint, prev, time: 1_700_000_000_000})
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
