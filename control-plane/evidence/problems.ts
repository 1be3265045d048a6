import type {ErrorCode} from '../errors.js'

/** What history and receipt verification can find: a subset of the one code union. */
export type EvidenceProblemCode = Extract<
  ErrorCode,
  // receipts: shape, signatures, append-only, replay
  | 'MALFORMED' | 'UNKNOWN_KEY' | 'BAD_SIGNATURE' | 'KEY_NOT_VALID_AT_SIGNING' | 'THRESHOLD_NOT_MET'
  | 'RECEIPT_MODIFIED' | 'RECEIPT_DELETED' | 'BASE_MISMATCH'
  // commits: signatures, time
  | 'UNSIGNED_COMMIT' | 'BAD_COMMIT_SIGNATURE' | 'UNTRUSTED_COMMIT_SIGNER' | 'BACKDATED' | 'FUTURE_DATED'
  // a rollback drill's commit, outside the drill that made it
  | 'DRILL_COMMIT'
  // history: anchor, roots, completeness, objects, layout
  | 'ANCHOR_NOT_PINNED' | 'ANCHOR_NOT_IN_HISTORY' | 'MULTIPLE_ROOTS' | 'UNANCHORED_PARENT' | 'HISTORY_INCOMPLETE' | 'BROKEN_OBJECT' | 'NOT_A_FOLDER'
  // this clone's memory: a branch moved back from what was verified on it before
  | 'ROLLED_BACK'
>

/** One finding, naming the commit and (for a receipt) the file it is about. */
export interface EvidenceProblem {
  code: EvidenceProblemCode
  message: string
  receipt?: string
  commit?: string
}
