/**
 * Whatever the secret scan (the secret-scan gate: secretlint's recommended rules and airlock's
 * private-key rule) finds in free text, redaction finds too: the log, receipts and gate excerpts
 * never keep a value the scan would flag. One sample per family the scan knows.
 */
import {describe, expect, it} from 'vitest'
import {redactReceiptText, redactText} from '../../../control-plane/audit/redact.js'
import {redact as redactExcerpt} from '../../../control-plane/gates/redact.js'
import {scanText} from '../../../control-plane/gates/secrets/engine.js'

const key = new Uint8Array(32).fill(3)
const SAMPLES: Record<string, string> = {
  pgp: '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGXabcdBCADKv0dVZ5qmG2J7x4Rr8m3QqK9wz1v3T2pZ6oXeF0c9bJ4n8HmY\n=AbCd\n-----END PGP PRIVATE KEY BLOCK-----',
  huggingface: 'hf_' + 'AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh',
  groq: 'gsk_' + 'AbCdEfGhIjKlMnOpQrStWGdyb3FYAbCdEfGhIjKlMnOpQrStUvWx',
  linear: 'lin_api_' + 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd',
  docker: 'dckr_pat_' + 'AbCdEfGhIjKlMnOpQrStUvWxYz0',
  figma: 'figd_' + 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd',
  tailscale: 'tskey-auth-' + 'kAbCdEf1CNTRL-AbCdEfGhIjKlMnOpQrStUvWxYz012345',
  grafana: 'glsa_' + 'AbCdEfGhIjKlMnOpQrStUvWxYz012345_0a1b2c3d',
  databricks: 'dapi' + '0123456789abcdef0123456789abcdef',
  github: 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8',
  aws: 'AKIA' + 'IOSFODNN7EXAMPLE',
  npm: 'npm_' + 'Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2',
}

describe('redaction finds what the secret scan finds', () => {
  for (const [name, value] of Object.entries(SAMPLES)) {
    it(name, async () => {
      const text = `deploy note: ${value}`
      const found = await scanText(text, 'note.txt', key)
      const secretPart = value.split('\n').filter((l) => l.length > 20).at(-1) ?? value
      for (const out of [redactText(text, {key}), redactReceiptText(text), redactExcerpt(text)]) expect(out, `${name} (scan: ${found.map((f) => f.ruleId).join(', ') || 'none'})`).not.toContain(secretPart)
    })
  }
})
