/**
 * Signed notes, checkpoints and tlog proofs against the published vectors (golang.org/x/mod's
 * sumdb/note and sumdb/tlog tests, the C2SP specifications' examples; vendored in
 * test/fixtures/note/, see its README), byte for byte, then every way of being malformed, each
 * refused with the AirlockError code and `details.problem` that names it.
 */
import {createHash, createPrivateKey} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {
  DEFAULT_NOTE_LIMITS,
  formatCheckpoint,
  formatTlogProof,
  isValidKeyName,
  noteKeyId,
  parseCheckpoint,
  parseNote,
  parseTlogProof,
  parseVerifierKey,
  signNote,
  verifierKeyOf,
  verifyNote,
  type NoteSigner,
  type VerifierKey,
} from '../../../control-plane/audit/note.js'
import {generateSigner, signerFromPem} from '../../../control-plane/crypto/keys.js'
import {AirlockError} from '../../../control-plane/errors.js'

interface GoVectors {
  text: string
  peterNeumann: {signerKey: string; verifierKey: string; keyId: string; signatureLine: string}
  enochRoot: {seedHex: string; verifierKey: string; keyId: string; signatureLine: string}
  signedByPeter: string
  signedByPeterThenEnoch: string
  badVerifierKeys: {wrongLengthKey: string; unknownAlgorithm: string}
  tree: {text: string; size: number; bad: string[]}
}
interface C2spVectors {
  signedNoteExample: {verifierKey: string; note: string}
  signedNoteIntro: {note: string}
  checkpointExample: {note: string; origin: string; size: number; rootHash: string}
  cosignedCheckpointExample: {note: string}
  proofExample: {proof: string}
}
const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../../fixtures/note/${name}`, import.meta.url), 'utf8')) as T
const GO = fixture<GoVectors>('golang-mod.json')
const C2SP = fixture<C2spVectors>('c2sp.json')

/** An airlock Signer from a raw 32-byte Ed25519 seed (PKCS#8 wraps it behind a fixed 16-byte prefix). */
function signerFromSeed(name: string, seed: Uint8Array): NoteSigner {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed])
  const pem = createPrivateKey({key: der, format: 'der', type: 'pkcs8'}).export({format: 'pem', type: 'pkcs8'}).toString()
  return {name, signer: signerFromPem(pem, name)}
}

/** Go's signer key `PRIVATE+KEY+<name>+<id>+base64(0x01 ‖ seed)`, read here only to reproduce its vectors. */
function goSigner(skey: string): NoteSigner {
  const parts = skey.split('+')
  // The base64 may hold '+' itself: rejoin what follows the key ID.
  return signerFromSeed(parts[2]!, Buffer.from(parts.slice(4).join('+'), 'base64').subarray(1))
}

const PETER = goSigner(GO.peterNeumann.signerKey)
const ENOCH = signerFromSeed('EnochRoot', Buffer.from(GO.enochRoot.seedHex, 'hex'))
const PETER_KEY = parseVerifierKey(GO.peterNeumann.verifierKey)
const ENOCH_KEY = parseVerifierKey(GO.enochRoot.verifierKey)

function thrown(fn: () => unknown): AirlockError {
  try {
    fn()
  } catch (e) {
    if (e instanceof AirlockError) return e
    throw e
  }
  throw new Error('nothing thrown')
}

/** The call throws an AirlockError with this code and problem, and a message matching `message`. */
function refuses(fn: () => unknown, code: string, problem: string, message?: RegExp): AirlockError {
  expect(fn).toThrowAirlockError(code)
  const err = thrown(fn)
  expect(err.details.problem).toBe(problem)
  if (message) expect(err.message).toMatch(message)
  return err
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const hash = (fill: number): Uint8Array => new Uint8Array(32).fill(fill)

describe('the published vectors', () => {
  describe('golang.org/x/mod sumdb/note', () => {
    it('derives both keys and their IDs from the seeds, byte for byte', () => {
      expect(noteKeyId('PeterNeumann', PETER.signer.publicKey)).toBe(GO.peterNeumann.keyId)
      expect(noteKeyId('EnochRoot', ENOCH.signer.publicKey)).toBe(GO.enochRoot.keyId)
      expect(verifierKeyOf('PeterNeumann', PETER.signer.publicKey).text).toBe(GO.peterNeumann.verifierKey)
      expect(verifierKeyOf('EnochRoot', ENOCH.signer.publicKey).text).toBe(GO.enochRoot.verifierKey)
    })

    it('reads the verifier keys', () => {
      expect(PETER_KEY).toMatchObject({name: 'PeterNeumann', keyId: 'c74f20a3', text: GO.peterNeumann.verifierKey})
      expect(Buffer.from(PETER_KEY.publicKey).equals(PETER.signer.publicKey)).toBe(true)
      expect(ENOCH_KEY).toMatchObject({name: 'EnochRoot', keyId: 'af0cfe78'})
    })

    it('signs the note exactly as note.Sign does', () => {
      expect(signNote(GO.text, [PETER])).toBe(GO.signedByPeter)
    })

    it('adds a second signature after the first, as ExampleSign_add_signatures does', () => {
      expect(signNote(parseNote(GO.signedByPeter), [ENOCH])).toBe(GO.signedByPeterThenEnoch)
      expect(signNote(GO.text, [PETER, ENOCH])).toBe(GO.signedByPeterThenEnoch)
    })

    it('replaces an existing signature by a key that signs again', () => {
      const stale = {...parseNote(GO.signedByPeter), signatures: [{...parseNote(GO.signedByPeter).signatures[0]!, base64: 'x08go/ZJ'}]}
      expect(signNote(stale, [PETER])).toBe(GO.signedByPeter)
    })

    it('reads the note: the text with its final newline, the key IDs and signatures', () => {
      const note = parseNote(Buffer.from(GO.signedByPeterThenEnoch))
      expect(note.text).toBe(GO.text)
      expect(note.signatures.map((s) => [s.name, s.keyId, s.signature.length])).toEqual([
        ['PeterNeumann', 'c74f20a3', 64],
        ['EnochRoot', 'af0cfe78', 64],
      ])
      expect(note.signatures[0]!.base64).toBe(GO.peterNeumann.signatureLine.slice(2 + 'PeterNeumann '.length, -1))
    })

    it('verifies with one key known and the other ignored (TestOpen)', () => {
      const v = verifyNote(Buffer.from(GO.signedByPeterThenEnoch), [PETER_KEY])
      expect(v.text).toBe(GO.text)
      expect(v.verifiedBy.map((k) => k.text)).toEqual([GO.peterNeumann.verifierKey])
      expect(v.unknown.map((s) => `${s.name}+${s.keyId}`)).toEqual(['EnochRoot+af0cfe78'])
    })

    it('verifies with both keys known', () => {
      const v = verifyNote(GO.signedByPeterThenEnoch, [PETER_KEY, ENOCH_KEY])
      expect(v.verifiedBy.map((k) => k.name)).toEqual(['PeterNeumann', 'EnochRoot'])
      expect(v.unknown).toEqual([])
    })

    it('refuses the note when no key is known (UnverifiedNoteError)', () => {
      refuses(() => verifyNote(GO.signedByPeterThenEnoch, []), 'UNKNOWN_KEY', 'NO_KNOWN_SIGNATURE', /none of the 0 known keys.*PeterNeumann\+c74f20a3, EnochRoot\+af0cfe78/)
    })

    it('refuses the note when a known key signature is altered (InvalidSignatureError)', () => {
      const line = GO.peterNeumann.signatureLine
      const bad = `${GO.text}\n${line.slice(0, 60)}ABCD${line.slice(60)}`
      refuses(() => verifyNote(bad, [PETER_KEY]), 'BAD_SIGNATURE', 'BAD_SIGNATURE', /PeterNeumann\+c74f20a3 does not verify/)
    })

    it("refuses Go's bad verifier keys", () => {
      // Go reads this key's base64 and refuses its 36-byte length; its last group has non-zero
      // padding bits, so the canonical-base64 check refuses it first here.
      refuses(() => parseVerifierKey(GO.badVerifierKeys.wrongLengthKey), 'KEY_INVALID', 'BAD_BASE64')
      refuses(() => parseVerifierKey(GO.badVerifierKeys.unknownAlgorithm), 'KEY_INVALID', 'UNKNOWN_ALGORITHM', /type 0x65/)
    })

    it('refuses every truncation and every one-byte change of a verifier key (TestNewVerifier)', () => {
      const key = Buffer.from(GO.peterNeumann.verifierKey)
      let refused = 0
      for (let i = 0; i <= key.length; i++) {
        for (let j = i + 1; j <= key.length; j++) {
          if (i === 0 && j === key.length) continue
          expect(() => parseVerifierKey(key.subarray(i, j).toString('latin1'))).toThrowAirlockError('KEY_INVALID')
          refused++
        }
      }
      for (let i = 0; i < key.length; i++) {
        const changed = Buffer.from(key)
        changed[i]!++
        expect(() => parseVerifierKey(changed.toString('latin1'))).toThrowAirlockError('KEY_INVALID')
        refused++
      }
      expect(refused).toBe((key.length * (key.length + 1)) / 2 - 1 + key.length)
    })

    it('reads the tlog tree text as a checkpoint (TestParseTree) and refuses its bad variants', () => {
      const cp = parseCheckpoint(GO.tree.text)
      expect(cp).toMatchObject({origin: 'go.sum database tree', size: GO.tree.size, extensions: []})
      expect(formatCheckpoint(cp)).toBe(GO.tree.text)
      refuses(() => parseCheckpoint(GO.tree.bad[0]!), 'MALFORMED', 'BAD_TREE_SIZE', /"0xabcdef"/)
      refuses(() => parseCheckpoint(GO.tree.bad[1]!), 'MALFORMED', 'BAD_ROOT_HASH')
    })
  })

  describe('the C2SP specifications', () => {
    it("verifies signed-note's example with its verifier key", () => {
      const key = parseVerifierKey(C2SP.signedNoteExample.verifierKey)
      expect(key).toMatchObject({name: 'example.com/foo', keyId: '530d903a'})
      expect(verifierKeyOf(key.name, key.publicKey).text).toBe(C2SP.signedNoteExample.verifierKey)
      const v = verifyNote(Buffer.from(C2SP.signedNoteExample.note), [key])
      expect(v.text).toBe('This is an example message.\n')
      expect(v.verifiedBy).toHaveLength(1)
    })

    it("separates signed-note's introduction at the last blank line (its text holds one)", () => {
      const note = parseNote(Buffer.from(C2SP.signedNoteIntro.note))
      expect(note.text).toBe('Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n')
      expect(note.signatures.map((s) => [s.name, s.signature.length])).toEqual([['quasimodo.example/salvatore', 64]])
      // Its key is not published: with none known, the note is not trusted.
      refuses(() => verifyNote(note, [C2SP.signedNoteExample.verifierKey].map(parseVerifierKey)), 'UNKNOWN_KEY', 'NO_KNOWN_SIGNATURE')
    })

    it("reads tlog-checkpoint's example", () => {
      const note = parseNote(C2SP.checkpointExample.note)
      const cp = parseCheckpoint(note.text)
      expect(cp.origin).toBe(C2SP.checkpointExample.origin)
      expect(cp.size).toBe(C2SP.checkpointExample.size)
      expect(b64(cp.rootHash)).toBe(C2SP.checkpointExample.rootHash)
      expect(formatCheckpoint(cp)).toBe(note.text)
      expect(note.signatures[0]!.name).toBe('example.com/behind-the-sofa')
    })

    it("reads tlog-cosignature's example: the witness's type 0x04 cosignature is an unknown key, ignored", () => {
      const note = parseNote(C2SP.cosignedCheckpointExample.note)
      expect(note.signatures.map((s) => [s.name, s.signature.length])).toEqual([
        ['example.com/behind-the-sofa', 64],
        ['witness.example.com/w1', 72],
      ])
      // Re-signed by a key we hold, the note verifies and both published signatures are ignored.
      const log = {name: 'example.com/behind-the-sofa', signer: generateSigner().signer}
      const v = verifyNote(signNote(note, [log]), [verifierKeyOf(log.name, log.signer.publicKey)])
      expect(v.verifiedBy.map((k) => k.name)).toEqual(['example.com/behind-the-sofa'])
      expect(v.unknown.map((s) => s.name)).toEqual(['example.com/behind-the-sofa', 'witness.example.com/w1'])
    })

    it("refuses tlog-proof's example only for its elided signatures, and reads its proof lines", () => {
      refuses(() => parseTlogProof(C2SP.proofExample.proof), 'MALFORMED', 'BAD_BASE64', /"hI2DJw\[\.\.\.\]1roloI="/)
      // The same proof with the checkpoint signed for real.
      const [head, rest] = [C2SP.proofExample.proof.slice(0, C2SP.proofExample.proof.indexOf('\n\n') + 2), C2SP.proofExample.proof.slice(C2SP.proofExample.proof.indexOf('\n\n') + 2)]
      const log = {name: 'example.com/fancylog', signer: generateSigner().signer}
      const checkpoint = signNote(parseNote(rest.replace(/ \S*\[\.\.\.\]\S*\n/g, ' AAAAAAA=\n')).text, [log])
      const proof = parseTlogProof(head + checkpoint)
      expect(Buffer.from(proof.extra!).toString('latin1')).toMatch(/^age-v1\.2\.1-darwin-arm64\.tar\.gz/)
      expect(proof.index).toBe(73894)
      expect(proof.proof.map(b64)).toEqual(head.split('\n').slice(3, 8))
      expect(proof.tree).toMatchObject({origin: 'example.com/fancylog', size: 109482})
      expect(proof.checkpoint).toBe(checkpoint)
      expect(formatTlogProof(proof)).toBe(head + checkpoint)
      expect(verifyNote(proof.note, [verifierKeyOf(log.name, log.signer.publicKey)]).verifiedBy).toHaveLength(1)
    })
  })
})

describe('round trips', () => {
  const a = {name: 'audit.example/log', signer: generateSigner().signer}
  const b = {name: 'witness.example/w', signer: generateSigner().signer}
  const keys = [verifierKeyOf(a.name, a.signer.publicKey), verifierKeyOf(b.name, b.signer.publicKey)]

  it('signs, parses and verifies a note with several signers', () => {
    const text = 'line one\n\nline three after an empty line\nünïcødé ✓\n'
    const note = signNote(text, [a, b])
    expect(parseNote(note).text).toBe(text)
    expect(verifyNote(note, keys).verifiedBy.map((k) => k.name)).toEqual([a.name, b.name])
    expect(signNote(parseNote(note), [])).toBe(note)
  })

  it('keeps a text that ends in empty lines', () => {
    const text = 'body\n\n\n'
    const note = signNote(text, [a])
    expect(verifyNote(note, keys).text).toBe(text)
  })

  it('round-trips a verifier key', () => {
    for (const k of keys) expect(parseVerifierKey(k.text)).toEqual(k)
  })

  it('formats, signs, parses and verifies a checkpoint with extension lines', () => {
    const cp = {origin: 'audit.example/log', size: 42, rootHash: hash(7), extensions: ['ext one', 'ext two']}
    const note = signNote(formatCheckpoint(cp), [a])
    expect(parseCheckpoint(verifyNote(note, keys).text)).toEqual(cp)
  })

  it('formats an empty tree as size 0', () => {
    expect(formatCheckpoint({origin: 'o', size: 0, rootHash: hash(0), extensions: []})).toBe(`o\n0\n${b64(hash(0))}\n`)
    expect(parseCheckpoint(`o\n0\n${b64(hash(0))}\n`).size).toBe(0)
  })

  it('formats and parses a proof with and without extra data and with no proof hashes', () => {
    const checkpoint = signNote(formatCheckpoint({origin: 'audit.example/log', size: 5, rootHash: hash(1), extensions: []}), [a])
    for (const p of [
      {index: 4, proof: [hash(2), hash(3)], checkpoint},
      {extra: Uint8Array.of(1, 2, 3), index: 0, proof: [hash(2)], checkpoint},
    ]) {
      const text = formatTlogProof(p)
      expect(parseTlogProof(Buffer.from(text))).toMatchObject(p)
    }
    const one = signNote(formatCheckpoint({origin: 'o', size: 1, rootHash: hash(1), extensions: []}), [a])
    expect(formatTlogProof({index: 0, proof: [], checkpoint: one})).toBe(`c2sp.org/tlog-proof@v1\nindex 0\n\n${one}`)
    expect(parseTlogProof(`c2sp.org/tlog-proof@v1\nindex 0\n\n${one}`).proof).toEqual([])
  })
})

describe('when a signed note is malformed', () => {
  const text = GO.text
  const sig = GO.peterNeumann.signatureLine
  const parse = (s: string) => () => parseNote(Buffer.from(s))

  it('refuses a note with no blank line', () => {
    refuses(parse(text + sig), 'MALFORMED', 'NO_BLANK_LINE', /no blank line/)
    refuses(parse(text), 'MALFORMED', 'NO_BLANK_LINE')
  })
  it('refuses a note with nothing after the blank line', () => {
    refuses(parse(`${text}\n`), 'MALFORMED', 'NO_SIGNATURES', /line 4: no signature lines/)
  })
  it('refuses a last signature line with no newline', () => {
    refuses(parse(`${text}\n${sig.slice(0, -1)}`), 'MALFORMED', 'NO_FINAL_NEWLINE')
  })
  it('refuses a hyphen, an en dash, or an em dash with no space in place of "— "', () => {
    refuses(parse(`${text}\n${sig.replace('—', '-')}`), 'MALFORMED', 'NOT_A_SIGNATURE_LINE', /line 4: .*em dash \(U\+2014\).*found U\+002D/)
    refuses(parse(`${text}\n${sig.replace('—', '–')}`), 'MALFORMED', 'NOT_A_SIGNATURE_LINE', /found U\+2013/)
    refuses(parse(`${text}\n${sig.replace('— ', '—')}`), 'MALFORMED', 'NOT_A_SIGNATURE_LINE', /U\+2014 not followed by a space/)
  })
  it('refuses a line after the signatures that is not one (TestOpen)', () => {
    refuses(parse(`${text}\n${sig}Unexpected line.\n`), 'MALFORMED', 'NOT_A_SIGNATURE_LINE', /line 5/)
  })
  it('refuses a key name with a space or a plus, or none', () => {
    refuses(parse(`${text}\n${sig.replace('PeterNeumann', 'Bad Name')}`), 'MALFORMED', 'BAD_BASE64')
    refuses(parse(`${text}\n${sig.replace('PeterNeumann', 'Peter+Neumann')}`), 'MALFORMED', 'BAD_KEY_NAME', /"Peter\+Neumann"/)
    refuses(parse(`${text}\n${sig.replace('PeterNeumann', 'Peter\u00a0Neumann')}`), 'MALFORMED', 'BAD_KEY_NAME')
    refuses(parse(`${text}\n${sig.replace('PeterNeumann ', ' ')}`), 'MALFORMED', 'BAD_KEY_NAME')
  })
  it('refuses bad base64: not base64, unpadded, non-canonical, empty, two spaces', () => {
    refuses(parse(`${text}\n${sig.replace('x08go/', 'x08go!')}`), 'MALFORMED', 'BAD_BASE64', /line 4: the signature .* is not canonical base64/)
    refuses(parse(`${text}\n${sig.replace('AM=\n', 'AM\n')}`), 'MALFORMED', 'BAD_BASE64')
    refuses(parse(`${text}\n${sig.replace('AM=\n', 'AN=\n')}`), 'MALFORMED', 'BAD_BASE64')
    refuses(parse(`${text}\n— PeterNeumann\n`), 'MALFORMED', 'BAD_BASE64')
    refuses(parse(`${text}\n— PeterNeumann \n`), 'MALFORMED', 'BAD_BASE64')
    refuses(parse(`${text}\n${sig.replace(' x08go', '  x08go')}`), 'MALFORMED', 'BAD_BASE64')
  })
  it('refuses trailing spaces on a signature line', () => {
    refuses(parse(`${text}\n${sig.replace('\n', ' \n')}`), 'MALFORMED', 'BAD_BASE64')
  })
  it('refuses a trailing space on the blank line (then there is none)', () => {
    refuses(parse(`${text} \n${sig}`), 'MALFORMED', 'NO_BLANK_LINE')
  })
  it('refuses a signature of fewer than 5 bytes', () => {
    refuses(parse(`${text}\n— PeterNeumann x08gow==\n`), 'MALFORMED', 'SIGNATURE_TOO_SHORT', /4 bytes/)
  })
  it('refuses CRLF line ends, naming the carriage return', () => {
    refuses(parse(`${text}\n${sig}`.replaceAll('\n', '\r\n')), 'MALFORMED', 'CONTROL_CHARACTER', /line 1: holds U\+000D \(a carriage return: .*CRLF/)
  })
  it('refuses any other control character, and a tab', () => {
    refuses(parse(`\x01${text}\n${sig}`), 'MALFORMED', 'CONTROL_CHARACTER', /U\+0001/)
    refuses(parse(`${text}\n${sig.replace(' x08', '\tx08')}`), 'MALFORMED', 'CONTROL_CHARACTER', /line 4: holds U\+0009 \(a tab\)/)
  })
  it('refuses invalid UTF-8, and a string with a lone surrogate', () => {
    refuses(() => parseNote(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${text}\n${sig}`)])), 'MALFORMED', 'NOT_UTF8')
    refuses(() => parseNote(Buffer.concat([Buffer.from([0xed, 0xa0, 0x80, 0x0a]), Buffer.from(`${text}\n${sig}`)])), 'MALFORMED', 'NOT_UTF8')
    refuses(() => parseNote(`\ud800${text}\n${sig}`), 'MALFORMED', 'NOT_UTF8')
  })
  it('keeps a byte-order mark as part of the text (it is signed)', () => {
    expect(parseNote(Buffer.from(`\ufeff${text}\n${sig}`)).text).toBe(`\ufeff${text}`)
    refuses(() => verifyNote(Buffer.from(`\ufeff${text}\n${sig}`), [PETER_KEY]), 'BAD_SIGNATURE', 'BAD_SIGNATURE')
  })
  it(`refuses more than ${DEFAULT_NOTE_LIMITS.maxSignatures} signatures, known keys or not (TestOpen)`, () => {
    const max = DEFAULT_NOTE_LIMITS.maxSignatures
    expect(parseNote(`${text}\n${sig.repeat(max)}`).signatures).toHaveLength(max)
    refuses(parse(`${text}\n${sig.repeat(max + 1)}`), 'TOO_LARGE', 'TOO_MANY_SIGNATURES', /more than 100 signature lines/)
    refuses(() => verifyNote(`${text}\n${sig.repeat(max + 1)}`, []), 'TOO_LARGE', 'TOO_MANY_SIGNATURES')
    refuses(() => parseNote(`${text}\n${sig.repeat(17)}`, {maxSignatures: 16}), 'TOO_LARGE', 'TOO_MANY_SIGNATURES')
  })
  it('refuses a note larger than the limit', () => {
    refuses(() => parseNote(Buffer.from(GO.signedByPeter), {maxBytes: 100}), 'TOO_LARGE', 'TOO_LARGE', /more than the 100 allowed/)
  })
})

describe('when a note does not verify', () => {
  const text = GO.text
  const sig = GO.peterNeumann.signatureLine

  it('ignores a signature whose key ID is not the known key’s (same name), and then trusts nothing', () => {
    const other = sig.replace('x08g', 'xxxx')
    expect(parseNote(`${text}\n${other}`).signatures[0]!.keyId).not.toBe('c74f20a3')
    refuses(() => verifyNote(`${text}\n${other}`, [PETER_KEY]), 'UNKNOWN_KEY', 'NO_KNOWN_SIGNATURE')
    expect(verifyNote(`${text}\n${other}${sig}`, [PETER_KEY]).unknown.map((s) => s.name)).toEqual(['PeterNeumann'])
  })
  it('ignores a signature under another name with the known key ID', () => {
    const misnamed = sig.replace('PeterNeumann', 'CarmenSandiego')
    refuses(() => verifyNote(`${text}\n${misnamed}`, [PETER_KEY]), 'UNKNOWN_KEY', 'NO_KNOWN_SIGNATURE', /CarmenSandiego\+c74f20a3/)
  })
  it('refuses a bad repeat of a good signature by the same key (Go skips repeats unverified)', () => {
    const line = sig
    const forged = `${line.slice(0, 60)}ABCD${line.slice(60)}`
    refuses(() => verifyNote(`${text}\n${sig}${forged}`, [PETER_KEY]), 'BAD_SIGNATURE', 'BAD_SIGNATURE')
    expect(verifyNote(`${text}\n${sig}${sig}`, [PETER_KEY]).verifiedBy).toHaveLength(1)
  })
  it('refuses a changed text', () => {
    refuses(() => verifyNote(`${text.replace('answer', 'Answer')}\n${sig}`, [PETER_KEY]), 'BAD_SIGNATURE', 'BAD_SIGNATURE')
  })
  it('refuses a known signature of the wrong length', () => {
    const short = `— PeterNeumann ${b64(Buffer.concat([Buffer.from('c74f20a3', 'hex'), Buffer.alloc(63)]))}\n`
    refuses(() => verifyNote(`${text}\n${short}`, [PETER_KEY]), 'BAD_SIGNATURE', 'BAD_SIGNATURE')
  })
  it('refuses a trust list with two different keys under one name and key ID', () => {
    const forged = {...PETER_KEY, publicKey: ENOCH_KEY.publicKey}
    refuses(() => verifyNote(GO.signedByPeter, [PETER_KEY, forged]), 'KEY_INVALID', 'KEY_ID_MISMATCH')
    expect(verifyNote(GO.signedByPeter, [PETER_KEY, PETER_KEY]).verifiedBy).toHaveLength(1)
    // A real collision of the 4-byte key ID: a birthday search over random public keys (~2^16 tries).
    const seen = new Map<string, Uint8Array>()
    let pair: [Uint8Array, Uint8Array] | undefined
    for (let i = 0; !pair; i++) {
      const pub = new Uint8Array(createHash('sha256').update(`key ${i}`).digest())
      const id = noteKeyId('PeterNeumann', pub)
      const earlier = seen.get(id)
      if (earlier) pair = [earlier, pub]
      seen.set(id, pub)
    }
    const [k1, k2] = pair.map((p) => verifierKeyOf('PeterNeumann', p)) as [VerifierKey, VerifierKey]
    expect(k1.keyId).toBe(k2.keyId)
    refuses(() => verifyNote(GO.signedByPeter, [k1, k2]), 'KEY_INVALID', 'AMBIGUOUS_KEY', /two different known keys are named PeterNeumann\+/)
  })
})

describe('when a verifier key is malformed', () => {
  const [name, id, key] = [PETER_KEY.name, PETER_KEY.keyId, GO.peterNeumann.verifierKey.split('+').slice(2).join('+')]
  it('refuses a key with fewer than three parts', () => {
    refuses(() => parseVerifierKey(`${name}+${id}`), 'KEY_INVALID', 'BAD_VERIFIER_KEY', /not <name>\+<key ID>\+<key>/)
  })
  it('refuses a key ID that does not match the name and key', () => {
    refuses(() => parseVerifierKey(`${name}+c74f20a4+${key}`), 'KEY_INVALID', 'KEY_ID_MISMATCH', /key ID c74f20a4 is not the key's, c74f20a3/)
    refuses(() => parseVerifierKey(`PeterNeuman+${id}+${key}`), 'KEY_INVALID', 'KEY_ID_MISMATCH')
  })
  it('refuses an uppercase or short key ID', () => {
    refuses(() => parseVerifierKey(`${name}+C74F20A3+${key}`), 'KEY_INVALID', 'BAD_VERIFIER_KEY', /8 lowercase hex/)
    refuses(() => parseVerifierKey(`${name}+c74f20a+${key}`), 'KEY_INVALID', 'BAD_VERIFIER_KEY')
  })
  it('refuses a bad name', () => {
    refuses(() => parseVerifierKey(`+${id}+${key}`), 'KEY_INVALID', 'BAD_KEY_NAME')
    refuses(() => parseVerifierKey(`Peter Neumann+${id}+${key}`), 'KEY_INVALID', 'BAD_KEY_NAME')
  })
  it('refuses a key of the wrong length, with a key ID that matches it', () => {
    const short = Buffer.concat([Buffer.of(1), Buffer.from(PETER_KEY.publicKey).subarray(0, 31)])
    const shortId = createHash('sha256').update(`${name}\n`).update(short).digest().subarray(0, 4).toString('hex')
    refuses(() => parseVerifierKey(`${name}+${shortId}+${b64(short)}`), 'KEY_INVALID', 'BAD_KEY_LENGTH', /has 31/)
  })
  it('refuses a verifier key for a bad name or key length', () => {
    refuses(() => verifierKeyOf('a+b', PETER_KEY.publicKey), 'KEY_INVALID', 'BAD_KEY_NAME')
    refuses(() => verifierKeyOf('ok', new Uint8Array(31)), 'KEY_INVALID', 'BAD_KEY_LENGTH')
  })
  it('knows a key name by the specification and Go: no Unicode space, no plus', () => {
    expect(['example.com/log', 'PeterNeumann', 'ünï/✓'].every(isValidKeyName)).toBe(true)
    expect(['', 'a b', 'a+b', 'a\u3000b', 'a\u2028b', 'a\u0085b', 'a\u00a0b', 'a\u202fb', 'a\u0001b'].some(isValidKeyName)).toBe(false)
  })
})

describe('when signing is asked something impossible', () => {
  it('refuses a text that is empty, does not end in newline, or holds a control character', () => {
    refuses(() => signNote('', [PETER]), 'INVALID_INPUT', 'EMPTY_TEXT')
    refuses(() => signNote('abc', [PETER]), 'INVALID_INPUT', 'NO_FINAL_NEWLINE')
    refuses(() => signNote('a\r\n', [PETER]), 'INVALID_INPUT', 'CONTROL_CHARACTER')
  })
  it('refuses a signer name that could not be read back', () => {
    refuses(() => signNote(GO.text, [{...PETER, name: 'bad name'}]), 'KEY_INVALID', 'BAD_KEY_NAME')
  })
  it('refuses no signers, the same key twice, and more signatures than a note may hold', () => {
    refuses(() => signNote(GO.text, []), 'INVALID_INPUT', 'NO_SIGNATURES')
    refuses(() => signNote(GO.text, [PETER, PETER]), 'INVALID_INPUT', 'DUPLICATE_SIGNER', /PeterNeumann\+c74f20a3 is given twice/)
    refuses(() => signNote(GO.text, [PETER, ENOCH], {maxSignatures: 1}), 'TOO_LARGE', 'TOO_MANY_SIGNATURES')
  })
  it('refuses an existing signature whose key ID is not its base64’s (Go: BADHASH)', () => {
    const note = {text: GO.text, signatures: [{name: 'PeterNeumann', keyId: 'c74f20a3', signature: new Uint8Array(0), base64: 'BADHASH='}]}
    refuses(() => signNote(note, [ENOCH]), 'INVALID_INPUT', 'KEY_ID_MISMATCH')
  })
})

describe('when a checkpoint is malformed', () => {
  const root = b64(hash(9))
  const cp = (size: string, h = root, extra = '') => `log.example/a\n${size}\n${h}\n${extra}`

  it('refuses a tree size with leading zeros, a sign, spaces or no digits', () => {
    for (const size of ['01', '00', '+1', '-1', ' 1', '1 ', '1e3', '0x10', '']) {
      refuses(() => parseCheckpoint(cp(size)), 'MALFORMED', size === '' ? 'EMPTY_LINE' : 'BAD_TREE_SIZE', size === '' ? /line 2: the tree size is empty/ : /line 2: tree size .* no leading zeroes/)
    }
  })
  it('refuses a tree size beyond 2^53-1', () => {
    expect(parseCheckpoint(cp('9007199254740991')).size).toBe(Number.MAX_SAFE_INTEGER)
    refuses(() => parseCheckpoint(cp('9007199254740992')), 'MALFORMED', 'BAD_TREE_SIZE')
  })
  it('refuses a root hash of the wrong length, not canonical base64, or with a trailing space', () => {
    refuses(() => parseCheckpoint(cp('1', b64(new Uint8Array(31)))), 'MALFORMED', 'BAD_ROOT_HASH', /31 bytes, not 32/)
    refuses(() => parseCheckpoint(cp('1', b64(new Uint8Array(33)))), 'MALFORMED', 'BAD_ROOT_HASH', /33 bytes/)
    refuses(() => parseCheckpoint(cp('1', root.replace('=', ''))), 'MALFORMED', 'BAD_ROOT_HASH', /not canonical base64/)
    refuses(() => parseCheckpoint(cp('1', `${root} `)), 'MALFORMED', 'BAD_ROOT_HASH')
  })
  it('refuses fewer than three lines, an empty origin, an empty extension line', () => {
    refuses(() => parseCheckpoint('log.example/a\n1\n'), 'MALFORMED', 'TOO_FEW_LINES')
    refuses(() => parseCheckpoint(`\n1\n${root}\n`), 'MALFORMED', 'EMPTY_LINE', /line 1: the origin is empty/)
    refuses(() => parseCheckpoint(cp('1', root, 'ext\n\n')), 'MALFORMED', 'EMPTY_LINE', /line 5: an extension line/)
  })
  it('refuses a text with no final newline, CRLF, or a control character', () => {
    refuses(() => parseCheckpoint(cp('1').slice(0, -1)), 'MALFORMED', 'NO_FINAL_NEWLINE')
    refuses(() => parseCheckpoint(cp('1').replaceAll('\n', '\r\n')), 'MALFORMED', 'CONTROL_CHARACTER', /carriage return/)
  })
  it('refuses to format what it would refuse to read', () => {
    const ok = {origin: 'o', size: 1, rootHash: hash(1), extensions: [] as string[]}
    refuses(() => formatCheckpoint({...ok, size: -1}), 'INVALID_INPUT', 'BAD_TREE_SIZE')
    refuses(() => formatCheckpoint({...ok, size: 1.5}), 'INVALID_INPUT', 'BAD_TREE_SIZE')
    refuses(() => formatCheckpoint({...ok, rootHash: new Uint8Array(20)}), 'INVALID_INPUT', 'BAD_ROOT_HASH')
    refuses(() => formatCheckpoint({...ok, origin: ''}), 'INVALID_INPUT', 'EMPTY_LINE')
    refuses(() => formatCheckpoint({...ok, origin: 'a\nb'}), 'INVALID_INPUT', 'CONTROL_CHARACTER')
    refuses(() => formatCheckpoint({...ok, extensions: ['']}), 'INVALID_INPUT', 'EMPTY_LINE')
    refuses(() => formatCheckpoint({...ok, extensions: ['a\tb']}), 'INVALID_INPUT', 'CONTROL_CHARACTER')
  })
})

describe('when a tlog proof is malformed', () => {
  const a = {name: 'audit.example/log', signer: generateSigner().signer}
  const checkpoint = signNote(formatCheckpoint({origin: 'audit.example/log', size: 5, rootHash: hash(1), extensions: []}), [a])
  const h = b64(hash(2))
  const proof = (lines: string[], cp = checkpoint) => `${lines.join('\n')}\n\n${cp}`

  it('reads the well-formed one', () => {
    expect(parseTlogProof(proof(['c2sp.org/tlog-proof@v1', 'index 4', h])).index).toBe(4)
  })
  it('refuses another header', () => {
    refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v2', 'index 4', h])), 'MALFORMED', 'BAD_HEADER', /line 1: not c2sp\.org\/tlog-proof@v1/)
    refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1 ', 'index 4', h])), 'MALFORMED', 'BAD_HEADER')
  })
  it('refuses an empty or malformed extra line', () => {
    for (const line of ['extra ', 'extra', 'extra YWJjZA', 'extra  YWJj', 'extraYWJj']) {
      refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1', line, 'index 4', h])), 'MALFORMED', 'BAD_EXTRA', /line 2/)
    }
    expect(parseTlogProof(proof(['c2sp.org/tlog-proof@v1', 'extra YWJj', 'index 4', h])).extra).toEqual(new Uint8Array(Buffer.from('abc')))
  })
  it('refuses a missing index or one with leading zeros, a sign or a trailing space', () => {
    for (const line of ['index 04', 'index -1', 'index 4 ', 'index', 'Index 4', h]) {
      refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1', line, h])), 'MALFORMED', 'BAD_INDEX', /line 2/)
    }
  })
  it('refuses an index outside the checkpoint’s tree', () => {
    refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1', 'index 5', h])), 'MALFORMED', 'INDEX_OUT_OF_RANGE', /index 5 is not in the checkpoint's tree of 5 leaves/)
  })
  it('refuses a proof hash of the wrong length or not base64', () => {
    refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1', 'index 4', h, b64(new Uint8Array(31))])), 'MALFORMED', 'BAD_PROOF_HASH', /line 4: the proof hash has 31 bytes/)
    refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1', 'index 4', `${h} `])), 'MALFORMED', 'BAD_PROOF_HASH', /line 3/)
  })
  it('refuses more than 64 proof hashes', () => {
    refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1', 'index 4', ...Array<string>(65).fill(h)])), 'MALFORMED', 'TOO_MANY_PROOF_HASHES')
  })
  it('refuses a proof with no checkpoint, or a checkpoint that is not one', () => {
    refuses(() => parseTlogProof(`c2sp.org/tlog-proof@v1\nindex 4\n${h}\n`), 'MALFORMED', 'NO_CHECKPOINT')
    refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1', 'index 4', h], 'x\n')), 'MALFORMED', 'NO_BLANK_LINE')
    refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1', 'index 4', h], signNote('o\n05\nAAAA\n', [a]))), 'MALFORMED', 'BAD_TREE_SIZE')
  })
  it('refuses CRLF anywhere in it', () => {
    refuses(() => parseTlogProof(proof(['c2sp.org/tlog-proof@v1', 'index 4', h]).replace('\n', '\r\n')), 'MALFORMED', 'CONTROL_CHARACTER', /line 1: .*carriage return/)
  })
  it('refuses to format what it would refuse to read', () => {
    refuses(() => formatTlogProof({extra: new Uint8Array(0), index: 0, proof: [], checkpoint}), 'INVALID_INPUT', 'BAD_EXTRA')
    refuses(() => formatTlogProof({index: -1, proof: [], checkpoint}), 'INVALID_INPUT', 'BAD_INDEX')
    refuses(() => formatTlogProof({index: 5, proof: [], checkpoint}), 'INVALID_INPUT', 'INDEX_OUT_OF_RANGE')
    refuses(() => formatTlogProof({index: 0, proof: [new Uint8Array(31)], checkpoint}), 'INVALID_INPUT', 'BAD_PROOF_HASH')
    refuses(() => formatTlogProof({index: 0, proof: Array<Uint8Array>(65).fill(hash(1)), checkpoint}), 'INVALID_INPUT', 'TOO_MANY_PROOF_HASHES')
    expect(() => formatTlogProof({index: 0, proof: [], checkpoint: 'not a note\n'})).toThrowAirlockError('MALFORMED')
  })
})
