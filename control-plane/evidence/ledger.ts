import {AirlockError} from '../errors.js'
import type {Envelope} from '../crypto/dsse.js'
import {checkNesting, type Limits} from '../limits.js'
import {EVIDENCE_DIR} from '../manifests/models.js'
import type {Repository} from '../repo/repository.js'
import {RECEIPT_PAYLOAD_TYPE, RECEIPT_PREDICATE_TYPE, STATEMENT_TYPE, type ReceiptStatement} from './receipt.js'

export interface ReceiptFile {
  path: string
  oid: string
}

export interface ParsedReceipt {
  path: string
  envelope: Envelope
  statement: ReceiptStatement
  appliedAt: Date
}

/** Receipts at `commit`: every `*.json` directly under docs/evidence/. */
export async function listReceipts(repo: Repository, commit: string): Promise<ReceiptFile[]> {
  return (await repo.listDir(commit, EVIDENCE_DIR)).filter((e) => e.type === 'blob' && e.name.endsWith('.json')).map((e) => ({path: e.path, oid: e.oid}))
}

function malformed(path: string, why: string): AirlockError {
  return new AirlockError('VERIFICATION_FAILED', `${path}: ${why}`, {receipt: path, reason: 'MALFORMED'})
}

/** Parses a receipt's envelope and statement, checking their shape (not their signatures). */
export function parseReceipt(text: string, path: string, limits: Limits): ParsedReceipt {
  if (Buffer.byteLength(text) > limits.maxReceiptBytes) throw malformed(path, `larger than ${limits.maxReceiptBytes} bytes`)
  try {
    checkNesting(text, path, 'json', limits.maxDepth)
  } catch (error) {
    throw malformed(path, (error as Error).message)
  }
  let envelope: Envelope
  try {
    envelope = JSON.parse(text) as Envelope
  } catch {
    throw malformed(path, 'not JSON')
  }
  if (!envelope || typeof envelope !== 'object' || typeof envelope.payload !== 'string' || typeof envelope.payloadType !== 'string' || !Array.isArray(envelope.signatures)) {
    throw malformed(path, 'not a DSSE envelope (payloadType, payload, signatures)')
  }
  if (envelope.payloadType !== RECEIPT_PAYLOAD_TYPE) throw malformed(path, `payloadType is ${envelope.payloadType}, expected ${RECEIPT_PAYLOAD_TYPE}`)
  if (!envelope.signatures.every((s) => s && typeof s.keyid === 'string' && typeof s.sig === 'string')) throw malformed(path, 'a signature lacks keyid or sig')
  let statement: ReceiptStatement
  try {
    const payload = Buffer.from(envelope.payload, 'base64').toString('utf8')
    checkNesting(payload, path, 'json', limits.maxDepth)
    statement = JSON.parse(payload) as ReceiptStatement
  } catch {
    throw malformed(path, 'payload is not a JSON in-toto statement')
  }
  if (statement?._type !== STATEMENT_TYPE || statement.predicateType !== RECEIPT_PREDICATE_TYPE || !Array.isArray(statement.subject) || typeof statement.predicate !== 'object') {
    throw malformed(path, `payload is not an in-toto Statement v1 with predicate ${RECEIPT_PREDICATE_TYPE}`)
  }
  const appliedAt = new Date(statement.predicate.appliedAt)
  if (Number.isNaN(appliedAt.getTime())) throw malformed(path, 'predicate.appliedAt is not a time')
  return {path, envelope, statement, appliedAt}
}

export async function readReceipt(repo: Repository, commit: string, path: string, limits: Limits): Promise<ParsedReceipt> {
  const found = await repo.readFile(commit, path)
  if (!found) throw new AirlockError('INVALID_INPUT', `${path}: no such receipt at ${commit.slice(0, 12)}`, {receipt: path})
  return parseReceipt(found.text, path, limits)
}
