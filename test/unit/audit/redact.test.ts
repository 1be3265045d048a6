/**
 * Redaction before persistence: a table of planted values, each redacted with its type; a table
 * of look-alikes the log needs (digests, commit ids, dates, versions, UUIDs, key ids, signatures,
 * signed notes) left exactly as they are; keyed hashes stable per key and different across keys.
 */
import {createHash, randomBytes} from 'node:crypto'
import {describe, expect, it} from 'vitest'
import {formatCheckpoint, signNote} from '../../../control-plane/audit/note.js'
import {outcomeEvent} from '../../../control-plane/audit/ocsf.js'
import {luhn, redactEvent, redactReceiptText, redactSecretsOnly, redactText} from '../../../control-plane/audit/redact.js'
import {generateSigner} from '../../../control-plane/crypto/keys.js'
import {redact} from '../../../control-plane/gates/redact.js'
import type {Plan} from '../../../control-plane/plan/plan.js'

const key = Buffer.from('k'.repeat(32))
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const jwt = `${b64url({alg: 'RS256', typ: 'JWT', kid: 'k1'})}.${b64url({sub: 'repo:org/fleet', aud: 'airlock'})}.${randomBytes(64).toString('base64url')}`
const pem = generateSigner().pem

/** [type, text around the value, the value itself]. */
const PLANTED: Array<[string, string, string]> = [
  ['private-key', `key:\n${pem}\nend`, pem.trim()],
  ['gcp-private-key', '{"type": "service_account", "private_key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nAbC==\\n", "client_email": "x"}', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'],
  ['jwt', `token was ${jwt} ok`, jwt],
  ['jwt', `Authorization: Bearer ${jwt}`, jwt],
  ['bearer-token', 'Authorization: Bearer 8f1c2e7a9b3d4c5e6f70a1b2', '8f1c2e7a9b3d4c5e6f70a1b2'],
  ['aws-access-key-id', 'id AKIAIOSFODNN7EXAMPLE here', 'AKIAIOSFODNN7EXAMPLE'],
  ['aws-secret-access-key', 'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
  ...['ghp', 'gho', 'ghu', 'ghs', 'ghr'].map((p): [string, string, string] => ['github-token', `use ${p}_${'A1b2C3d4'.repeat(5)} now`, `${p}_${'A1b2C3d4'.repeat(5)}`]),
  ['github-token', `pat github_pat_11ABCDEFG0${'x'.repeat(40)}`, `github_pat_11ABCDEFG0${'x'.repeat(40)}`],
  ['slack-token', 'slack xoxb-1234567890-abcdefghijkl', 'xoxb-1234567890-abcdefghijkl'],
  ['slack-webhook', 'hook https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX', 'https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX'],
  ['api-key', `OPENAI sk-proj-${'Zz9'.repeat(10)}`, `sk-proj-${'Zz9'.repeat(10)}`],
  ['credential', 'login password=hunter2 then', 'hunter2'],
  ['credential', 'secret: s3cr3t-value', 's3cr3t-value'],
  ['credential', 'TOKEN="opaque-token-value"', 'opaque-token-value'],
  ['url-credential', 'clone https://deploy:pa55w0rd@git.example.com/r.git', 'pa55w0rd'],
  ['email', 'ask alice.smith+ops@example.co.uk about it', 'alice.smith+ops@example.co.uk'],
  ['phone', 'call +14155552671 now', '+14155552671'],
  ['phone', 'call +44 20 7946 0958 now', '+44 20 7946 0958'],
  ['phone', 'call (415) 555-2671 now', '(415) 555-2671'],
  ['phone', 'call 415-555-2671 now', '415-555-2671'],
  ['phone', 'call 415.555.2671 now', '415.555.2671'],
  ['phone', 'call 020 7946 0958 now', '020 7946 0958'],
  ['ssn', 'ssn 123-45-6789.', '123-45-6789'],
  ['ssn', 'ssn 078 05 1120', '078 05 1120'],
  ['card', 'visa 4111 1111 1111 1111 ok', '4111 1111 1111 1111'],
  ['card', 'mc 5500-0000-0000-0004 ok', '5500-0000-0000-0004'],
  ['card', 'amex 378282246310005', '378282246310005'],
]

/** What the log, receipts and checkpoints are made of: never redacted. */
const signer = generateSigner().signer
const signature = Buffer.from(signer.sign(new TextEncoder().encode('payload'))).toString('base64')
const checkpoint = signNote(formatCheckpoint({origin: 'airlock.audit/host-1/0123456789abcdef', size: 1234567, rootHash: createHash('sha256').update('x').digest(), extensions: []}), [{name: 'airlock.audit/host-1/0123456789abcdef', signer}])
const LOOK_ALIKES: string[] = [
  `sha256:${createHash('sha256').update('a').digest('hex')}`,
  createHash('sha256').update('b').digest('hex'),
  createHash('sha1').update('c').digest('hex'),
  `commit ${'1234567890'.repeat(4)} at 2026-12-01T10:00:00.000Z`,
  '2026-12-01 10:00:00 +0000',
  'time 1764583200000 size 4096 offset 123456789012',
  'versions 1.9.0-dev, 22.11.0, 2.4.1+build.7, v10.2.3',
  'uuid 123e4567-e89b-12d3-a456-426614174000',
  `keyid ${signer.keyid}`,
  `sig ${signature}`,
  `{"payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"${signer.keyid}","sig":"${signature}"}]}`,
  checkpoint,
  'registry.example/agent@sha256:' + 'ab'.repeat(32),
  'refs/heads/main docs/evidence/2026/12/promote-agent-base-stable.json',
  'Airlock::User::"alice" Airlock::Action::"Promote"',
  'ssn-like but never issued: 000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000',
  'not Luhn: 4111 1111 1111 1112, not an issuer: 1764583200000123',
  'ports 127.0.0.1:8080 and ::1 (ip addresses are off by default)',
  'phone-like counts: 1234567 entries, 12:30:45, 2026-12-01',
]

describe('planted values are redacted, typed and keyed', () => {
  it.each(PLANTED)('%s in %j', (type, text, value) => {
    const out = redactText(text, {key})
    expect(out).not.toContain(value)
    expect(out).toMatch(new RegExp(`\\[REDACTED:${type}:[0-9a-f]{16}\\]`))
    // Receipts: the same detection, no hash.
    const receipt = redactReceiptText(text)
    expect(receipt).not.toContain(value)
    expect(receipt).toContain(`[REDACTED:${type}]`)
    // Gate excerpts: the same table.
    expect(redact(text)).not.toContain(value)
  })

  it('IP addresses only when asked', () => {
    const text = 'from 192.168.10.20 and 2001:db8::8a2e:370:7334'
    expect(redactText(text, {key})).toBe(text)
    const out = redactText(text, {key, ipAddresses: true})
    expect(out).not.toMatch(/192\.168|2001:db8/)
    expect(out.match(/\[REDACTED:ip:[0-9a-f]{16}\]/g)).toHaveLength(2)
  })

  it('the value is hashed, the prefix that names it is kept', () => {
    expect(redactReceiptText('password=hunter2 & https://u:p4ss@h.example/')).toBe('password=[REDACTED:credential] & https://u:[REDACTED:url-credential]@h.example/')
  })

  it('a JWT needs a JSON header with alg: three dotted base64url runs are not enough', () => {
    const fake = `${b64url({typ: 'JWT'})}.${b64url({a: 1})}.c2lnbmF0dXJl`
    expect(redactReceiptText(fake)).toBe(fake)
    expect(redactReceiptText('file.name.with.dots and com.example.app.module')).toBe('file.name.with.dots and com.example.app.module')
  })

  it('Luhn', () => {
    expect(luhn('4111111111111111')).toBe(true)
    expect(luhn('4111111111111112')).toBe(false)
    expect(luhn('79927398713')).toBe(true)
  })
})

describe('what the log needs is not mangled', () => {
  it.each(LOOK_ALIKES)('%s', (text) => {
    expect(redactText(text, {key})).toBe(text)
    expect(redactReceiptText(text)).toBe(text)
  })

  it('an outcome event keeps its digests, commits and key ids and loses the planted reason', () => {
    const plan = {
      operation: 'promote',
      reason: `hotfix, token ghp_${'Q'.repeat(36)} by bob@example.com`,
      requestedBy: {actor: 'alice', via: 'cli'},
      baseCommit: 'b'.repeat(40),
      subjects: [{name: 'registry.example/agent', digest: {sha256: 'c'.repeat(64)}}],
      changes: [],
      receiptPath: 'docs/evidence/x.json',
      digest: `sha256:${'d'.repeat(64)}`,
    } as unknown as Plan
    const event = outcomeEvent({status: 'noop', plan}, {now: new Date(0), actor: 'alice', host: 'h', toolVersion: '1.0.0', mode: 'apply'})
    const out = redactEvent(event, {key})
    const json = JSON.stringify(out)
    expect(json).not.toContain('Q'.repeat(36))
    expect(json).not.toContain('bob@example.com')
    for (const kept of ['b'.repeat(40), 'c'.repeat(64), `sha256:${'d'.repeat(64)}`, 'docs/evidence/x.json']) expect(json).toContain(kept)
    // Only strings change: the shape, numbers and keys are the event's.
    expect(Object.keys(out)).toEqual(Object.keys(event))
    expect(out.time).toBe(0)
    expect(event.unmapped).not.toBe(out.unmapped)
  })
})

describe('keyed hashes', () => {
  const text = `a ghp_${'Z'.repeat(36)} b ghp_${'Z'.repeat(36)} c 4111 1111 1111 1111`
  it('are stable for one key, and the same value gives the same placeholder', () => {
    const once = redactText(text, {key})
    expect(redactText(text, {key})).toBe(once)
    const [a, b] = once.match(/\[REDACTED:github-token:[0-9a-f]{16}\]/g)!
    expect(a).toBe(b)
  })
  it('differ across keys', () => {
    const other = Buffer.from('o'.repeat(32))
    expect(redactText(text, {key: other})).not.toBe(redactText(text, {key}))
  })
  it('redacting twice changes nothing (unkeyed), and a text cannot bring its own sentinels', () => {
    const once = redactReceiptText(`password=hunter2 ${jwt}`)
    expect(redactReceiptText(once)).toBe(once)
    expect(redactReceiptText('\uE000\u{F0000}\uE001 password=x')).toBe('\uFFFD\u{F0000}\uFFFD password=[REDACTED:credential]')
  })
  it('identities keep personal data, lose secrets', () => {
    expect(redactSecretsOnly(`alice@example.com ghp_${'A'.repeat(36)}`)).toBe('alice@example.com [REDACTED:github-token]')
  })
})
