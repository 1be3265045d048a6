/**
 * The report page's verifier: the rules airlock's Node code applies to receipts (dsse.ts,
 * envelope.ts countSigners, manifests/load.ts keysFor) and checkpoints (audit/note.ts parseNote,
 * verifyNote, parseCheckpoint), written once as plain functions that run in two places:
 *
 * - in the auditor's browser: html.ts inlines each function's source (`Function.prototype.toString`)
 *   into the page's one script, so what the page runs is what the unit tests run;
 * - in Node, where the unit tests call them directly against airlock's own verifiers.
 *
 * So every function here is self-contained: it uses only its arguments, the other functions of
 * PAGE_FUNCTIONS (by name), and what browsers and Node both have (crypto.subtle, TextEncoder,
 * TextDecoder, Date). No module-level constants, no imports at run time.
 *
 * Ed25519 has one rule whichever engine computes it, so a signature never passes in one and
 * fails in the other (ed25519-parity.test.ts holds the table):
 * 1. the signature has 64 bytes and the key 32;
 * 2. the key is a canonical encoding of a point of prime order L (no small-order key, no key with
 *    a small-order component): such keys let one signature verify under several keys or messages;
 * 3. S < L (a second spelling of the same signature is refused);
 * 4. the cofactorless equation [S]B = R + [k]A holds on R's exact bytes. WebCrypto (BoringSSL in
 *    Chromium, OpenSSL in Node) checks exactly that. @noble/ed25519 in strict mode (zip215: false)
 *    checks the cofactored equation; with a prime-order key and a prime-order R both agree, so
 *    the noble engine first refuses an R with a small-order component.
 */

/** The subset of @noble/ed25519 (v3) the page uses. */
export interface NobleApi {
  Point: {
    fromBytes(bytes: Uint8Array, zip215?: boolean): NoblePoint
  }
  verifyAsync(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array, opts: {zip215: boolean}): Promise<boolean>
}

export interface NoblePoint {
  isSmallOrder(): boolean
  isTorsionFree(): boolean
}

/** What computes Ed25519 for the page once rules 1–3 hold. */
export interface Ed25519Engine {
  name: 'webcrypto' | 'noble'
  /** Rule 2's verdict per key (hex), worked out once: a report checks thousands of signatures by a few keys. */
  keyProblems: Map<string, string>
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>
}

export interface PageKey {
  keyid: string
  publicKey: string
  roles: string[]
  validFrom: string | null
  validUntil: string | null
}

export interface PageReceipt {
  path: string
  envelope: {payloadType: string; payload: string; signatures: Array<{keyid: string; sig: string}>}
  time: string
}

export interface PageCheckpoint {
  path: string
  origin: string
  size: number
  root: string
  text: string
  publishedAt: string
}

/** One row's result: verified, or why not. */
export interface Verdict {
  ok: boolean
  why: string
  /** The keys whose signatures verified (receipts: key ids; checkpoints: name+key ID). */
  signers: string[]
}

export interface Ed25519Result {
  ok: boolean
  /** Why not (empty when ok). */
  why: string
}

/** Base64 decoded as Node's Buffer.from(text, 'base64') does: both alphabets, other characters skipped, stop at the first '='. */
export function base64Lenient(text: string): Uint8Array {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  const out: number[] = []
  let acc = 0
  let bits = 0
  for (const ch of text) {
    if (ch === '=') break
    let v = alphabet.indexOf(ch)
    if (ch === '-') v = 62
    if (ch === '_') v = 63
    if (v === -1) continue
    acc = ((acc << 6) | v) & 0xffffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out.push((acc >> bits) & 0xff)
    }
  }
  return Uint8Array.from(out)
}

export function base64Encode(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  let out = ''
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0)
    out += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]!
    out += i + 1 < bytes.length ? alphabet[(n >> 6) & 63]! : '='
    out += i + 2 < bytes.length ? alphabet[n & 63]! : '='
  }
  return out
}

/** Standard padded base64 in its one canonical spelling (note.ts decodeBase64), else null. */
export function base64Canonical(text: string): Uint8Array | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null
  const bytes = base64Lenient(text)
  return base64Encode(bytes) === text ? bytes : null
}

export function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += (b < 16 ? '0' : '') + b.toString(16)
  return out
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** DSSE's pre-authentication encoding (dsse.ts pae): what a receipt's signature covers. */
export function dssePae(payloadType: string, payload: Uint8Array): Uint8Array {
  const enc = new TextEncoder()
  const type = enc.encode(payloadType)
  return concatBytes([enc.encode('DSSEv1 ' + type.length + ' '), type, enc.encode(' ' + payload.length + ' '), payload])
}

/** Rule 2: why a key is refused, or '' (a canonical encoding of a point of prime order). */
export function ed25519KeyProblem(noble: NobleApi, publicKey: Uint8Array): string {
  if (publicKey.length !== 32) return 'the key has ' + publicKey.length + ' bytes, not 32'
  let point: NoblePoint
  try {
    point = noble.Point.fromBytes(publicKey, false)
  } catch {
    return 'the key is not a canonical encoding of a curve point'
  }
  if (point.isSmallOrder()) return 'the key is a small-order point'
  if (!point.isTorsionFree()) return 'the key has a small-order component'
  return ''
}

/** Rules 1–3, then the engine (rule 4). */
export async function ed25519Verify(engine: Ed25519Engine, noble: NobleApi, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<Ed25519Result> {
  if (signature.length !== 64) return {ok: false, why: 'the signature has ' + signature.length + ' bytes, not 64'}
  const id = toHex(publicKey)
  let keyProblem = engine.keyProblems.get(id)
  if (keyProblem === undefined) {
    keyProblem = ed25519KeyProblem(noble, publicKey)
    engine.keyProblems.set(id, keyProblem)
  }
  if (keyProblem) return {ok: false, why: keyProblem}
  let s = 0n
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]!)
  if (s >= 0x1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3edn) return {ok: false, why: 'S is not below the group order (a non-canonical signature)'}
  let ok = false
  try {
    ok = await engine.verify(publicKey, message, signature)
  } catch {
    ok = false
  }
  return ok ? {ok: true, why: ''} : {ok: false, why: 'the signature does not match'}
}

/** WebCrypto's Ed25519, if the browser has it and it passes RFC 8032's first test vector; else null. */
export async function webCryptoEngine(): Promise<Ed25519Engine | null> {
  const subtle = globalThis.crypto?.subtle
  if (!subtle) return null
  const fromHex = (h: string) => Uint8Array.from(h.match(/../g)!.map((b) => parseInt(b, 16)))
  const verify = async (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => {
    const key = await subtle.importKey('raw', publicKey as Uint8Array<ArrayBuffer>, {name: 'Ed25519'}, false, ['verify'])
    return subtle.verify({name: 'Ed25519'}, key, signature as Uint8Array<ArrayBuffer>, message as Uint8Array<ArrayBuffer>)
  }
  try {
    const pk = fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
    const sig = fromHex('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b')
    if (!(await verify(pk, new Uint8Array(0), sig))) return null
    const bad = Uint8Array.from(sig)
    bad[0]! ^= 1
    if (await verify(pk, new Uint8Array(0), bad)) return null
  } catch {
    return null
  }
  return {name: 'webcrypto', keyProblems: new Map(), verify}
}

/** @noble/ed25519, strict (zip215: false), with R's small-order component refused first (rule 4). */
export function nobleEngine(noble: NobleApi): Ed25519Engine {
  return {
    name: 'noble',
    keyProblems: new Map(),
    async verify(publicKey, message, signature) {
      try {
        if (!noble.Point.fromBytes(signature.subarray(0, 32), false).isTorsionFree()) return false
      } catch {
        return false
      }
      return noble.verifyAsync(signature, message, publicKey, {zip215: false})
    },
  }
}

/** keysFor (manifests/load.ts): a key of the role, valid at the time (validFrom ≤ time < validUntil). */
export function keyValidAt(key: PageKey, role: string, time: string): boolean {
  const at = Date.parse(time)
  if (Number.isNaN(at) || !key.roles.includes(role)) return false
  if (key.validFrom !== null && !(Date.parse(key.validFrom) <= at)) return false
  if (key.validUntil !== null && !(at < Date.parse(key.validUntil))) return false
  return true
}

/**
 * A receipt, as countSigners (envelope.ts) counts it against trust.yaml's evidence threshold: signatures by keys
 * of role evidence, valid at the receipt's ledger time, over PAE(payloadType, payload). When none
 * does, the reason names the first signature at fault, most telling first: one that does not
 * match, one by an evidence key not valid then, one by a key that is not an evidence key.
 */
export async function verifyReceipt(receipt: PageReceipt, keys: PageKey[], engine: Ed25519Engine, noble: NobleApi, threshold = 1): Promise<Verdict> {
  const env = receipt.envelope
  const message = dssePae(env.payloadType, base64Lenient(env.payload))
  const seen: string[] = []
  let bad = ''
  let retired = ''
  let unknown = ''
  for (const {keyid, sig} of env.signatures) {
    const key = keys.find((k) => k.keyid === keyid && k.roles.includes('evidence'))
    const short = keyid.slice(0, 16) + '…'
    if (!key) {
      unknown = unknown || 'signed by ' + short + ', which is not an evidence key in trust.yaml'
      continue
    }
    if (seen.includes(keyid)) continue
    const result = await ed25519Verify(engine, noble, base64Lenient(key.publicKey), message, base64Lenient(sig))
    if (!result.ok) {
      bad = bad || 'the signature by ' + short + ' does not verify: ' + result.why
      continue
    }
    seen.push(keyid)
    if (!keyValidAt(key, 'evidence', receipt.time)) retired = retired || 'signed by ' + short + ', an evidence key not valid at ' + receipt.time
  }
  const signers = seen.filter((id) => keyValidAt(keys.find((k) => k.keyid === id)!, 'evidence', receipt.time))
  if (signers.length >= threshold && signers.length > 0) return {ok: true, why: '', signers}
  if (signers.length > 0) return {ok: false, why: 'signed by ' + signers.length + ' evidence key(s) valid then; trust.yaml asks for ' + threshold, signers: []}
  const why = bad || retired || unknown || 'carries no signature'
  return {ok: false, why, signers: []}
}

/** parseNote (audit/note.ts): the text (through its final newline) and the signature lines, or throws an Error saying why. */
export function parseSignedNote(note: string): {text: string; signatures: Array<{name: string; keyId: string; signature: Uint8Array}>} {
  if (/\p{Cs}/u.test(note)) throw new Error('holds a lone UTF-16 surrogate')
  if (new TextEncoder().encode(note).length > 1024 * 1024) throw new Error('larger than 1048576 bytes')
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) throw new Error('holds a control character other than newline')
  const split = note.lastIndexOf('\n\n')
  if (split === -1) throw new Error('no blank line between the text and the signatures')
  const text = note.slice(0, split + 1)
  const block = note.slice(split + 2)
  if (block === '') throw new Error('no signature lines after the blank line')
  if (!block.endsWith('\n')) throw new Error('the last signature line does not end with a newline')
  const lines = block.slice(0, -1).split('\n')
  if (lines.length > 100) throw new Error('more than 100 signature lines')
  const signatures = lines.map((line, i) => {
    if (!line.startsWith('\u2014 ')) throw new Error('signature line ' + (i + 1) + ' does not start with an em dash and a space')
    const rest = line.slice(2)
    const space = rest.indexOf(' ')
    const name = space === -1 ? rest : rest.slice(0, space)
    const b64 = space === -1 ? '' : rest.slice(space + 1)
    if (name === '' || /[\p{White_Space}+\u0000-\u001f]/u.test(name)) throw new Error('signature line ' + (i + 1) + ': a bad key name')
    const raw = base64Canonical(b64)
    if (!raw || b64 === '') throw new Error('signature line ' + (i + 1) + ': not canonical base64')
    if (raw.length < 5) throw new Error('signature line ' + (i + 1) + ': shorter than a key ID and a signature')
    return {name, keyId: toHex(raw.subarray(0, 4)), signature: raw.subarray(4)}
  })
  return {text, signatures}
}

/** The C2SP Ed25519 key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4], as hex (note.ts noteKeyId). */
export async function noteKeyIdOf(name: string, publicKey: Uint8Array): Promise<string> {
  const data = concatBytes([new TextEncoder().encode(name), Uint8Array.of(0x0a, 0x01), publicKey])
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>))
  return toHex(digest.subarray(0, 4))
}

/**
 * A published checkpoint, as verifyNote (audit/note.ts) checks it against the audit keys named for
 * the log's origin, valid when it was published:
 * 0. the note parses, and its text is the checkpoint the report lists (origin, size, root);
 * 1. the keys say which key signed: two different keys under one name and key ID are refused;
 *    a signature line whose name and key ID match no such key is ignored (witnesses, rotated keys);
 * 2. every line by such a key must verify: a forged line does not hide behind a good one;
 * 3. at least one such key signed.
 */
export async function verifyCheckpoint(checkpoint: PageCheckpoint, keys: PageKey[], engine: Ed25519Engine, noble: NobleApi, threshold = 1): Promise<Verdict> {
  let note: ReturnType<typeof parseSignedNote>
  try {
    note = parseSignedNote(checkpoint.text)
  } catch (e) {
    return {ok: false, why: 'not a signed note: ' + (e as Error).message, signers: []}
  }
  const lines = note.text.slice(0, -1).split('\n')
  if (lines.length < 3 || lines.slice(0, 3).includes('')) return {ok: false, why: 'the note is not a checkpoint (origin, tree size, root hash)', signers: []}
  const root = base64Canonical(lines[2]!)
  if (lines[0] !== checkpoint.origin) return {ok: false, why: 'the note is signed for origin ' + JSON.stringify(lines[0]) + ', not ' + JSON.stringify(checkpoint.origin), signers: []}
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1]!) || Number(lines[1]) !== checkpoint.size) return {ok: false, why: 'the note holds tree size ' + lines[1] + ', not ' + checkpoint.size, signers: []}
  if (!root || root.length !== 32 || lines[2] !== checkpoint.root) return {ok: false, why: 'the note holds root hash ' + lines[2] + ', not ' + checkpoint.root, signers: []}
  const known = new Map<string, Uint8Array>()
  for (const key of keys) {
    if (!keyValidAt(key, 'audit', checkpoint.publishedAt)) continue
    const raw = base64Lenient(key.publicKey)
    // As verifyNote's step 1: a trust list that cannot say which key signed is refused whole.
    if (raw.length !== 32) return {ok: false, why: 'audit key ' + key.keyid.slice(0, 16) + '… has ' + raw.length + ' bytes, not 32', signers: []}
    const id = checkpoint.origin + '+' + (await noteKeyIdOf(checkpoint.origin, raw))
    const other = known.get(id)
    if (other && toHex(other) !== toHex(raw)) return {ok: false, why: 'two different audit keys are named ' + id, signers: []}
    known.set(id, raw)
  }
  const data = new TextEncoder().encode(note.text)
  const signers: string[] = []
  for (const sig of note.signatures) {
    const id = sig.name + '+' + sig.keyId
    const key = known.get(id)
    if (!key) continue
    const result = await ed25519Verify(engine, noble, key, data, sig.signature)
    if (!result.ok) return {ok: false, why: 'the signature by ' + id + ' does not verify: ' + result.why, signers: []}
    if (!signers.includes(id)) signers.push(id)
  }
  if (signers.length === 0) {
    const by = note.signatures.map((s) => s.name + '+' + s.keyId).join(', ')
    return {ok: false, why: 'signed by none of the ' + known.size + ' audit keys valid at ' + checkpoint.publishedAt + ' (signed by ' + by + ')', signers: []}
  }
  if (signers.length < threshold) return {ok: false, why: 'signed by ' + signers.length + ' audit key(s); trust.yaml asks for ' + threshold, signers: []}
  return {ok: true, why: '', signers}
}

/** The functions html.ts inlines into the page, in an order where each is defined before the page's script runs. */
export const PAGE_FUNCTIONS: ReadonlyArray<(...args: never[]) => unknown> = [
  base64Lenient,
  base64Encode,
  base64Canonical,
  toHex,
  concatBytes,
  dssePae,
  ed25519KeyProblem,
  ed25519Verify,
  webCryptoEngine,
  nobleEngine,
  keyValidAt,
  verifyReceipt,
  parseSignedNote,
  noteKeyIdOf,
  verifyCheckpoint,
]
