/**
 * The audit folder's config.json: what this host's operator configured for the log. Absent, the
 * defaults hold (no retention floor, no archive, IP addresses kept). Malformed is INVALID_INPUT
 * naming the field: a log whose settings cannot be read is not written with guessed ones.
 *
 *   {"retentionFloorDays": 365, "archive": true, "redactIpAddresses": true}
 */
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import {readRegularFile} from '../repo/files.js'

export interface AuditConfig {
  /** The shortest retention `audit prune` accepts, in days (0: none). */
  retentionFloorDays: number
  /** Seal pruned bodies into a signed archive segment instead of dropping them. */
  archive: boolean
  /** Redact IPv4/IPv6 addresses in events too (personal data in some jurisdictions). */
  redactIpAddresses: boolean
}

export const DEFAULT_AUDIT_CONFIG: Readonly<AuditConfig> = Object.freeze({retentionFloorDays: 0, archive: false, redactIpAddresses: false})

export async function readAuditConfig(dir: string): Promise<AuditConfig> {
  const file = join(dir, 'config.json')
  let text: string
  try {
    text = await readRegularFile(file, {maxBytes: 64 * 1024})
  } catch (error) {
    if ((error as AirlockError).details?.errno === 'ENOENT') return {...DEFAULT_AUDIT_CONFIG}
    throw error
  }
  let config: Record<string, unknown>
  try {
    config = JSON.parse(text) as Record<string, unknown>
  } catch (error) {
    throw new AirlockError('INVALID_INPUT', `${file}: not JSON (${(error as Error).message})`, {file})
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new AirlockError('INVALID_INPUT', `${file}: not a JSON object`, {file})
  const known = Object.keys(DEFAULT_AUDIT_CONFIG)
  for (const key of Object.keys(config)) if (!known.includes(key)) throw new AirlockError('INVALID_INPUT', `${file}: ${key}: unknown setting (known: ${known.join(', ')})`, {file, field: key})
  const floor = config.retentionFloorDays ?? 0
  if (typeof floor !== 'number' || !Number.isSafeInteger(floor) || floor < 0) throw new AirlockError('INVALID_INPUT', `${file}: retentionFloorDays: not a whole number of days`, {file, field: 'retentionFloorDays'})
  const flag = (name: 'archive' | 'redactIpAddresses'): boolean => {
    const v = config[name] ?? false
    if (typeof v !== 'boolean') throw new AirlockError('INVALID_INPUT', `${file}: ${name}: not true or false`, {file, field: name})
    return v
  }
  return {retentionFloorDays: floor, archive: flag('archive'), redactIpAddresses: flag('redactIpAddresses')}
}
