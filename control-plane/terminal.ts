/**
 * The one sanitizer for human output: text that did not come from airlock's own code (names,
 * commit subjects, file contents, messages quoting them) passes here before a terminal sees it.
 * C0 and C1 controls, DEL, and the bidirectional overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069) are shown escaped, as git shows unusual bytes, so such text cannot move the
 * cursor, erase what was printed, hide itself or reorder what is shown. Newlines and tabs are
 * kept only where the layout needs them. `--json` output is JSON-escaped instead.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

export function forTerminal(text: string, opts: {keepNewlines?: boolean} = {}): string {
  return text.replace(UNSAFE, (c) => {
    if (opts.keepNewlines && (c === '\n' || c === '\t')) return c
    const code = c.codePointAt(0)!
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`
  })
}

/**
 * A message (an error, a refusal) as lines of a stream a person reads, each line under `prefix`:
 * a message may span lines (Cedar's problems), but a newline in a value it quotes (a registry's
 * or a bundle's text) then starts a line that still says whose it is, never one that passes for
 * a line of airlock's own output.
 */
export function messageLines(prefix: string, message: string): string {
  return `${forTerminal(message, {keepNewlines: true})
    .split('\n')
    .map((line) => `${prefix}${line}`)
    .join('\n')}\n`
}

/** What JSON.stringify leaves raw that a terminal would still act on: DEL, the C1 controls, the bidirectional overrides and isolates. */
const JSON_UNSAFE = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

/**
 * JSON text for output (`--json`, JSON lines): JSON.stringify escapes C0 controls but leaves C1
 * (the 8-bit CSI), DEL and the bidirectional controls raw; these are written as \u escapes too,
 * so the same JSON value reaches a terminal that shows it unable to drive it.
 */
export function jsonText(value: unknown, space?: number): string {
  return String(JSON.stringify(value, null, space)).replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** airlock's own styling, and nothing else: the SGR sequences plan rendering paints with. */
const OWN_STYLE = /\u001b\[(?:1|2|22|31|32|33|39)m/y

/**
 * The last guard on the way out, for a stream a person reads: every control `forTerminal` escapes
 * is escaped here too, except newlines and tabs (the layout's) and airlock's own colours. Renderers
 * still sanitize each field (a newline in a name must not start a line of its own); this only
 * makes sure a field someone forgot cannot reach the terminal raw.
 */
export function forHumanStream(text: string): string {
  return text.replace(UNSAFE, (c, offset: number) => {
    if (c === '\n' || c === '\t') return c
    if (c === '\u001b') {
      OWN_STYLE.lastIndex = offset
      if (OWN_STYLE.test(text)) return c
    }
    return forTerminal(c)
  })
}

type Write = typeof process.stdout.write
const unguarded = new WeakMap<NodeJS.WriteStream, Write>()

/**
 * Puts `forHumanStream` in the write path of stdout and stderr for the rest of the process (a
 * command's human output): strings and bytes alike. Returns the unguarded writers, for output
 * that is data (JSON lines).
 */
export function guardHumanOutput(): {stdout: Write; stderr: Write} {
  for (const stream of [process.stdout, process.stderr]) {
    if (unguarded.has(stream)) continue
    const write = stream.write
    unguarded.set(stream, write)
    stream.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      const text = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : null
      return (write as (...a: unknown[]) => boolean).call(this, text === null ? chunk : forHumanStream(text), ...rest)
    } as Write
  }
  return {stdout: unguarded.get(process.stdout)!.bind(process.stdout) as Write, stderr: unguarded.get(process.stderr)!.bind(process.stderr) as Write}
}
