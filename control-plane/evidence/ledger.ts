import {AirlockError} from '../errors.js'
import type {Envelope} from '../crypto/dsse.js'
import {countSigners, envelopeJson, parseEnvelope} from '../crypto/envelope.js'
import type {Limits} from '../limits.js'
import {EVIDENCE_DIR, type TrustPolicy} from '../manifests/models.js'
import type {Repository} from '../repo/repository.js'
import {receiptKind, RECEIPT_KINDS, type ReceiptKind, type RegisteredStatement} from './predicates.js'
import type {EvidenceProblem} from './problems.js'
import {RECEIPT_PAYLOAD_TYPE, STATEMENT_TYPE} from './receipt.js'

export interface ReceiptFile {
  path: string
  oid: string
}

export interface ParsedReceipt {
  path: string
  envelope: Envelope
  statement: RegisteredStatement
  /** Its registered kind (by predicateType). */
  kind: ReceiptKind
  /** The time its signatures are judged at, as its kind reads it (a change receipt's appliedAt). */
  time: Date
  /** The commit it says it was added on (null: the repository's first commit). */
  baseCommit: string | null
}

/** Receipts at `commit`: every `*.json` directly under docs/evidence/. */
export async function listReceipts(repo: Repository, commit: string): Promise<ReceiptFile[]> {
  return (await repo.listDir(commit, EVIDENCE_DIR)).filter((e) => e.type === 'blob' && e.name.endsWith('.json')).map((e) => ({path: e.path, oid: e.oid}))
}

function malformed(path: string, message: string): AirlockError {
  return new AirlockError('MALFORMED', message.startsWith(`${path}: `) ? message : `${path}: ${message}`, {receipt: path, reason: 'MALFORMED'})
}

/**
 * Parses a receipt: a DSSE envelope (crypto/envelope.ts) of an in-toto Statement v1 whose
 * predicate type is registered (predicates.ts) and whose predicate has that kind's shape and a
 * valid time. Checks shape only, not signatures; anything else is MALFORMED naming the file.
 */
export function parseReceipt(text: string, path: string, limits: Limits): ParsedReceipt {
  let envelope: Envelope
  let statement: Record<string, unknown>
  try {
    envelope = parseEnvelope(text, path, {payloadType: RECEIPT_PAYLOAD_TYPE, limits: {maxBytes: limits.maxReceiptBytes, maxDepth: limits.maxDepth}})
    statement = envelopeJson(envelope, path, limits.maxDepth)
  } catch (error) {
    if (error instanceof AirlockError) throw malformed(path, error.message)
    throw error
  }
  const kind = receiptKind(statement.predicateType)
  if (statement._type !== STATEMENT_TYPE || !Array.isArray(statement.subject) || typeof statement.predicate !== 'object' || statement.predicate === null) {
    throw malformed(path, `the payload is not an in-toto Statement v1 (${STATEMENT_TYPE})`)
  }
  if (!kind) throw malformed(path, `predicateType ${JSON.stringify(statement.predicateType)} is not one airlock accepts (${RECEIPT_KINDS.map((k) => k.predicateType).join(', ')})`)
  const problem = kind.shapeProblem(statement.predicate as Record<string, unknown>)
  if (problem) throw malformed(path, problem)
  const typed = statement as unknown as RegisteredStatement
  const time = new Date(kind.time(typed))
  if (Number.isNaN(time.getTime())) throw malformed(path, `${kind.timeField} is not a time`)
  return {path, envelope, statement: typed, kind, time, baseCommit: kind.baseCommit(typed)}
}

export async function readReceipt(repo: Repository, commit: string, path: string, limits: Limits): Promise<ParsedReceipt> {
  const found = await repo.readFile(commit, path)
  if (!found) throw new AirlockError('INVALID_INPUT', `${path}: no such receipt at ${commit.slice(0, 12)}`, {receipt: path})
  return parseReceipt(found.text, path, limits)
}

/**
 * A receipt's signatures against a trust policy: enough distinct evidence keys (the policy's
 * evidence threshold) valid at the receipt's own time (crypto/envelope.ts counts them).
 */
export function checkReceiptSignatures(receipt: ParsedReceipt, trust: TrustPolicy): {signers: string[]; problem?: EvidenceProblem} {
  const quorum = countSigners(receipt.envelope, {trust, role: 'evidence', at: receipt.time, notValid: 'KEY_NOT_VALID_AT_SIGNING', what: receipt.path})
  if (!quorum.failure) return {signers: quorum.signers}
  return {signers: quorum.signers, problem: {code: quorum.failure.code, receipt: receipt.path, message: quorum.failure.message}}
}
