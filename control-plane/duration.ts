import {AirlockError} from './errors.js'

const UNITS: Record<string, number> = {s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000}

/** `90s`, `30m`, `24h`, `7d` → milliseconds. */
export function parseDuration(text: string, field: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text.trim())
  if (!m || Number(m[1]) === 0) throw new AirlockError('USAGE', `${field}: "${text}" is not a duration like 30m, 24h or 7d`, {field})
  return Number(m[1]) * UNITS[m[2]!]!
}
