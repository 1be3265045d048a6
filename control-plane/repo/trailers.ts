/** Trailers of a commit message: the `Key: value` lines of its last paragraph. */
export function parseTrailers(message: string): Record<string, string> {
  const paragraphs = message.trimEnd().split(/\n\s*\n/)
  const last = paragraphs.length > 1 ? paragraphs[paragraphs.length - 1]! : ''
  const out: Record<string, string> = Object.create(null) as Record<string, string>
  for (const line of last.split('\n')) {
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line)
    if (!m) return {}
    out[m[1]!] = m[2]!
  }
  return out
}
