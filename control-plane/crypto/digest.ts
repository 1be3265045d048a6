import {createHash} from 'node:crypto'
import canonicalize from 'canonicalize'

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** RFC 8785 canonical JSON: the bytes every digest and signature over a JSON value is taken on. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value)
  if (text === undefined) throw new TypeError('value has no canonical JSON form')
  return text
}

export function digestOfJson(value: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(value))}`
}
