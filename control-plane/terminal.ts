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
