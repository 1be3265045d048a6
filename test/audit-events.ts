/**
 * The audit log's events as the integration tests read them back: parsed from the lines the
 * store wrote, typed as far as the tests look (the OCSF validator checks the whole of each).
 */
import {readEntries} from '../control-plane/audit/log.js'

export interface LoggedEvent {
  class_uid: number
  activity_id: number
  type_uid: number
  status_id: number
  message: string
  metadata: {profiles: string[]}
  api?: {operation: string}
  policy?: {uid?: string}
  authorizations?: Array<{policy?: {uid?: string}}>
  compliance?: {control: string}
  unmapped?: {airlock?: {drill?: string; operation?: string; outcome?: string; commit?: string; approval?: {kind: string}}}
}

/** Every event of the log in `dir`, in order. */
export async function loggedEvents(dir: string): Promise<LoggedEvent[]> {
  const out: LoggedEvent[] = []
  for await (const e of readEntries(dir)) out.push(JSON.parse(e.line.toString('utf8')) as LoggedEvent)
  return out
}
