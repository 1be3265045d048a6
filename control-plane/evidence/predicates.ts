/**
 * The kinds of receipt the ledger accepts: in-toto Statements whose predicateType is registered
 * here. A kind says how to read its time (the time its signatures are judged at, which must not
 * go back along history nor lie beyond the verifier's clock) and the commit it says it was added
 * on, and checks its predicate's shape. A receipt of any other predicate type is MALFORMED.
 *
 * Registering a kind (gate results, audit checkpoints): describe it next to its statement, as
 * receipt.ts does for change receipts, add its statement to RegisteredStatement and its kind to
 * RECEIPT_KINDS.
 */
import {TEST_RESULT_RECEIPT} from '../gates/receipt.js'
import type {TestResultStatement} from '../gates/types.js'
import {CHANGE_RECEIPT, type ReceiptStatement} from './receipt.js'

/** The statement of every registered kind (callers switch on `predicateType`). */
export type RegisteredStatement = ReceiptStatement | TestResultStatement

export interface ReceiptKind<S extends RegisteredStatement = RegisteredStatement> {
  predicateType: S['predicateType']
  /** What is wrong with the predicate's shape, or null when it is one of this kind. */
  shapeProblem(predicate: Record<string, unknown>): string | null
  /** Where its time is written (for messages), and the time (an RFC 3339 string). */
  timeField: string
  time(statement: S): string
  /** The commit it says it was added on top of (null: the repository's first commit). */
  baseCommit(statement: S): string | null
  /** What it records, in a word, for listings (a change's operation). */
  label(statement: S): string
}

export const RECEIPT_KINDS: readonly ReceiptKind[] = [CHANGE_RECEIPT, TEST_RESULT_RECEIPT as unknown as ReceiptKind]

/** The registered kind of a predicate type, or undefined. */
export function receiptKind(predicateType: unknown): ReceiptKind | undefined {
  return RECEIPT_KINDS.find((k) => k.predicateType === predicateType)
}
