/**
 * Values the first rule table let through (found by an attack review): more token families, the
 * command-line and header forms of passwords, JSON-escaped and quoted values, an SSN written
 * without dashes where the text says it is one, and a card number with dots. Each must become a
 * placeholder in the log, in receipts and in gate excerpts; the look-alikes stay.
 */
import {describe, expect, it} from 'vitest'
import {redactReceiptText, redactText} from '../../../control-plane/audit/redact.js'
import {redact as redactExcerpt} from '../../../control-plane/gates/redact.js'

const key = new Uint8Array(32).fill(7)
const PLANTED: Array<[string, string, string]> = [
  ['npm token', 'npm_' + 'Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2', 'npm %s'],
  ['stripe key', 'sk_live_' + '51H8abcdefghijklmnopqrstuv', 'stripe %s'],
  ['google api key', 'AIza' + 'SyA1234567890abcdefghijklmnopqrstu', 'google %s'],
  ['gitlab token', 'glpat-' + 'abcdefghij1234567890', 'gitlab %s'],
  ['sendgrid key', 'SG.' + 'abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg', 'sendgrid %s'],
  ['--password VALUE', 'Hunter2-Correct-Horse', 'mysql --password %s -h db'],
  ['--password=VALUE', 'Hunter2-Correct-Horse', 'mysql --password=%s'],
  ['Authorization: Basic', 'YWRtaW46aHVudGVyMg==', 'Authorization: Basic %s'],
  ['curl -u', 'S3cr3tPassw0rd', 'curl -u admin:%s https://x'],
  ['JSON-escaped password', 'hunter2 and more', '{\\"password\\": \\"%s\\"}'],
  ['pass=', 'opensesame', 'pass=%s'],
  ['passphrase:', 'correct horse', 'passphrase: "%s"'],
  ['password with a tab', 'tabbed', 'password\t=\t%s'],
  ['password =>', 'arrowed', 'password => %s'],
  ['SSN without dashes', '123456789', 'ssn %s'],
  ['card with dots', '4111.1111.1111.1111', 'card %s'],
]

describe('redaction: the forms the first table missed', () => {
  for (const [name, value, shape] of PLANTED) {
    it(`${name} never reaches the log, a receipt or a gate excerpt`, () => {
      const text = shape.replace('%s', value)
      for (const out of [redactText(text, {key}), redactReceiptText(text), redactExcerpt(text)]) {
        expect(out, out).not.toContain(value)
      }
    })
  }

  it('words that merely contain a keyword stay: a gate named secret-scan, a file token-cache.json', () => {
    const line = 'airlock-secret-scan (secretlint 13.1.0): 0 findings; see token-cache.json'
    expect(redactText(line, {key})).toBe(line)
    expect(redactExcerpt(line)).toBe(line)
  })

  it('nine digits that are not said to be an SSN stay (ids and counts)', () => {
    expect(redactText('build 123456789 finished', {key})).toBe('build 123456789 finished')
    expect(redactText('version 1.2.3.4 and 10.0.0.1', {key})).toBe('version 1.2.3.4 and 10.0.0.1')
  })
})
