/**
 * The one sanitizer for human output: every control class a hostile name, subject or message
 * could carry comes out escaped, never as a byte a terminal would act on.
 */
import {describe, expect, it} from 'vitest'
import {forTerminal} from '../../control-plane/terminal.js'

const CLASSES: Array<[string, string, string]> = [
  ['C0 escape (cursor movement, erase line)', 'ok\u001b[3A\r\u001b[J', 'ok\\x1b[3A\\x0d\\x1b[J'],
  ['NUL and BEL', 'a\u0000b\u0007', 'a\\x00b\\x07'],
  ['backspace', 'evil\b\b\b\bgood', 'evil\\x08\\x08\\x08\\x08good'],
  ['DEL', 'x\u007f', 'x\\x7f'],
  ['C1 CSI (8-bit)', 'x\u009b2J', 'x\\x9b2J'],
  ['bidirectional override', 'admin\u202etxt.exe', 'admin\\u{202e}txt.exe'],
  ['bidirectional isolates', '\u2066a\u2067b\u2068c\u2069', '\\u{2066}a\\u{2067}b\\u{2068}c\\u{2069}'],
  ['newline and tab', 'a\nb\tc', 'a\\x0ab\\x09c'],
]

describe('forTerminal', () => {
  for (const [what, input, shown] of CLASSES) {
    it(`escapes ${what}`, () => {
      expect(forTerminal(input)).toBe(shown)
      expect(forTerminal(input)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/)
    })
  }

  it('keeps newlines and tabs only where the layout asks for them', () => {
    expect(forTerminal('a\nb\tc\u001b', {keepNewlines: true})).toBe('a\nb\tc\\x1b')
  })

  it('leaves printable text, including non-Latin scripts and emoji, as it is', () => {
    const text = 'Grüße — 日本語 — ✓ 🚀 <a@b.c>'
    expect(forTerminal(text)).toBe(text)
  })
})

describe('forHumanStream (the last guard on stdout and stderr)', () => {
  it("escapes every control class but keeps newlines, tabs and airlock's own colours", async () => {
    const {forHumanStream} = await import('../../control-plane/terminal.js')
    for (const [, input] of CLASSES.slice(0, -1)) expect(forHumanStream(input)).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/)
    expect(forHumanStream('\u001b[31mDENY\u001b[39m\n\tok')).toBe('\u001b[31mDENY\u001b[39m\n\tok')
    expect(forHumanStream('\u001b[8mhidden\u001b[2J')).toBe('\\x1b[8mhidden\\x1b[2J')
  })
})

describe('messageLines and jsonText', () => {
  it('a newline a message quotes starts a line that still says whose it is', async () => {
    const {messageLines} = await import('../../control-plane/terminal.js')
    expect(messageLines('airlock: ', 'the DSSE payload is x\nhistory VERIFIED\u001b[2J')).toBe('airlock: the DSSE payload is x\nairlock: history VERIFIED\\x1b[2J\n')
  })

  it('JSON with C1, DEL and bidirectional controls as \\u escapes: the same value, nothing raw', async () => {
    const {jsonText} = await import('../../control-plane/terminal.js')
    const value = {s: `a\u009b2J\u0085\u007f\u202e\u2066\u001b[H`, n: 1}
    const text = jsonText(value, 2)
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/)
    expect(JSON.parse(text)).toEqual(value)
  })
})
