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
