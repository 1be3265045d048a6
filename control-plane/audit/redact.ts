/**
 * Redaction before persistence (DESIGN.md principle 6): one table of what is a secret or personal
 * data, used by every writer of evidence — the audit log (`redactEvent`, a keyed placeholder), the
 * receipts and reports (`redactReceiptText`, an unkeyed one) and the gate excerpts
 * (gates/redact.ts, `[REDACTED]`).
 *
 * A value found becomes a typed placeholder. In the audit log it carries a keyed hash,
 * `[REDACTED:<type>:<first 16 hex of HMAC-SHA256(key, value)>]`, so two events naming the same
 * value can be correlated without the value being stored; whoever lacks the host's key cannot
 * test a guess. Fleet-wide artifacts (receipts, reports) carry `[REDACTED:<type>]` only: any
 * key they could use would be as public as they are, and a low-entropy value (a card number, a
 * phone number) hashed under a public key is brute-forced in seconds.
 *
 * What the log needs is not touched: hex digests (sha256:…), commit ids, key ids, base64
 * signatures. The heuristics that would catch them (any long mixed-case run, a bare base64 line)
 * apply to gate excerpts only, which are for reading; their digest is the evidence.
 */
import {createHmac} from 'node:crypto'
import {isIPv4, isIPv6} from 'node:net'

/** Where a rule applies: everywhere, or only to free-form command output (gate excerpts). */
export type RuleScope = 'secret' | 'personal' | 'ip' | 'excerpt'

export interface RedactionRule {
  /** The placeholder's type: what the value was. */
  type: string
  scope: RuleScope
  pattern: RegExp
  /** Keep capture group 1 (e.g. `password=`) and redact the rest of the match. */
  keepPrefix?: boolean
  /** A second look at a match the pattern cannot make (a JWT's header, Luhn, SSN ranges). */
  accept?: (value: string) => boolean
}

// Sentinels stand in for what is already redacted while the later rules run, so no rule matches
// inside a placeholder or across one; the negated classes below exclude them.
const OPEN = '\uE000'
const CLOSE = '\uE001'
const S = '\\uE000\\uE001'

const base64urlJson = (segment: string): Record<string, unknown> | null => {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** A JWT (JWS compact or unsecured): its header is a JSON object naming an `alg`. */
const isJwt = (token: string): boolean => typeof base64urlJson(token.split('.')[0]!)?.alg === 'string'

/** Luhn's check digit, over the digits of a card number written with spaces or dashes. */
export function luhn(text: string): boolean {
  const digits = text.replace(/[ -]/g, '')
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2
    sum += d
  }
  return sum % 10 === 0
}

/**
 * A card number: 13–19 digits passing Luhn, starting as an issuer's range does (Visa 4,
 * Mastercard 51–55 and 2221–2720, Amex 34/37, Discover 6011/644–649/65, JCB 35, Diners 30/36/38,
 * UnionPay 62, Maestro 50/56–69). The issuer prefix keeps epoch milliseconds (17…) out.
 */
function isCard(text: string): boolean {
  const d = text.replace(/[ .-]/g, '')
  if (d.length < 13 || d.length > 19) return false
  const two = Number(d.slice(0, 2))
  const four = Number(d.slice(0, 4))
  const issuer = d[0] === '4' || (two >= 50 && two <= 69) || (four >= 2221 && four <= 2720) || [30, 34, 35, 36, 37, 38].includes(two)
  return issuer && luhn(d)
}

/** A US SSN, dashed or spaced, outside the ranges never issued (area 000, 666, 900–999; group 00; serial 0000). */
function isSsn(text: string): boolean {
  const [area, group, serial] = text.split(/[ -]/)
  return area !== '000' && area !== '666' && area![0] !== '9' && group !== '00' && serial !== '0000'
}

/** A phone number has 7 to 15 digits (E.164's maximum). */
const phoneDigits = (text: string): boolean => {
  const n = text.replace(/\D/g, '').length
  return n >= 7 && n <= 15
}

/**
 * The rules, in order: the first to match a span redacts it. Secrets first (the widest shapes
 * before the narrower ones they contain), then personal data, then the excerpt heuristics.
 */
export const REDACTION_RULES: readonly RedactionRule[] = [
  {type: 'private-key', scope: 'secret', pattern: /-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|$)/g},
  // A GCP service account key's private_key, in its JSON form (the PEM escaped with \n).
  {type: 'gcp-private-key', scope: 'secret', pattern: new RegExp(`("private_key"\\s*:\\s*")(?:[^"\\\\${S}]|\\\\.)+`, 'g'), keepPrefix: true},
  // A PEM body without its BEGIN line (cut off, or printed alone): base64 lines of a key's width.
  // (Mixed case: a hex digest or commit id on a line of its own is evidence, not a key.)
  {type: 'pem-body', scope: 'excerpt', pattern: /^(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[a-z])[A-Za-z0-9+/]{40,}={0,2}$/gm},
  {type: 'jwt', scope: 'secret', pattern: /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g, accept: isJwt},
  {type: 'aws-access-key-id', scope: 'secret', pattern: /(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}/g},
  {type: 'aws-secret-access-key', scope: 'secret', pattern: /(\baws_?secret_?access_?key["']?\s*[:=]\s*["']?)[A-Za-z0-9/+=]{40}/gi, keepPrefix: true},
  {type: 'github-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,255}/g},
  {type: 'github-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,255}/g},
  {type: 'slack-webhook', scope: 'secret', pattern: /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/_-]+/g},
  {type: 'slack-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])(?:xox[abposr]|xapp)-[A-Za-z0-9-]{10,}/g},
  {type: 'api-key', scope: 'secret', pattern: /(?<![A-Za-z0-9])sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}/g},
  {type: 'url-credential', scope: 'secret', pattern: new RegExp(`((?<![a-z0-9+.-])[a-z][a-z0-9+.-]*:\\/\\/[^\\s:@/${S}]+:)[^\\s@/${S}]+(?=@)`, 'gi'), keepPrefix: true},
  {type: 'bearer-token', scope: 'secret', pattern: /(\bBearer\s+)[A-Za-z0-9._~+/=-]{16,}/gi, keepPrefix: true},
  {type: 'huggingface-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}/g},
  {type: 'groq-key', scope: 'secret', pattern: /(?<![A-Za-z0-9])gsk_[A-Za-z0-9]{40,}/g},
  {type: 'linear-key', scope: 'secret', pattern: /(?<![A-Za-z0-9])lin_api_[A-Za-z0-9]{30,}/g},
  {type: 'docker-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])dckr_pat_[A-Za-z0-9_-]{20,}/g},
  {type: 'figma-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])figd_[A-Za-z0-9_-]{30,}/g},
  {type: 'tailscale-key', scope: 'secret', pattern: /(?<![A-Za-z0-9])tskey-[A-Za-z0-9-]{20,}/g},
  {type: 'grafana-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])gl(?:sa|c)_[A-Za-z0-9_+/=-]{32,}/g},
  {type: 'databricks-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])dapi[a-f0-9]{32}(?:-\d)?(?![A-Za-z0-9])/g},
  {type: 'npm-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/g},
  {type: 'stripe-key', scope: 'secret', pattern: /(?<![A-Za-z0-9])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/g},
  {type: 'google-api-key', scope: 'secret', pattern: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{30,40}(?![A-Za-z0-9_-])/g},
  {type: 'gitlab-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])(?:glpat|glptt|gldt|glrt|glsoat|glcbt|gloas)-[0-9A-Za-z_-]{20,}/g},
  {type: 'sendgrid-key', scope: 'secret', pattern: /(?<![A-Za-z0-9])SG\.[\w-]{16,32}\.[\w-]{16,64}/g},
  {type: 'shopify-token', scope: 'secret', pattern: /(?<![A-Za-z0-9])shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}/g},
  {type: 'azure-storage-key', scope: 'secret', pattern: /(AccountKey=)[A-Za-z0-9+/]{40,}={0,2}/g, keepPrefix: true},
  {type: 'basic-auth', scope: 'secret', pattern: /(\bBasic\s+)[A-Za-z0-9+/]{8,}={0,2}/gi, keepPrefix: true},
  // curl -u user:password, --user user:password
  {type: 'credential', scope: 'secret', pattern: /((?:^|[\s"'=])(?:-u|--user)[\s=]+[^\s:"']+:)[^\s"']+/g, keepPrefix: true},
  // --password VALUE, --token=VALUE, -p's long forms and their kin on a command line.
  {type: 'credential', scope: 'secret', pattern: /((?<![A-Za-z0-9_-])--?[A-Za-z-]*(?:password|passwd|passphrase|token|secret|api-?key|access-?key)[A-Za-z-]*(?:=|\s+))[^\s"'(-][^\s"']*/gi, keepPrefix: true},
  // key: value, key=value, key => value, "key": "value", and the same JSON-escaped inside a string
  // (\"password\": \"…\"). A quoted value is taken whole, spaces included, its quotes kept.
  {
    type: 'credential',
    scope: 'secret',
    pattern: new RegExp(`(\\b[A-Za-z_]*(?:password|passwd|passphrase|pwd|token|secret|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret)[A-Za-z_]*["'\\\\]*\\s*(?:=>|[:=])\\s*(\\\\?["']))(?:(?!\\\\?\\2)[^${S}])+`, 'gi'),
    keepPrefix: true,
  },
  {
    type: 'credential',
    scope: 'secret',
    pattern: new RegExp(`(\\b[A-Za-z_]*(?:password|passwd|passphrase|pwd|token|secret|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret)[A-Za-z_]*["'\\\\]*\\s*(?:=>|[:=])\\s*)[^\\s"'&;,\\\\${S}]+`, 'gi'),
    keepPrefix: true,
  },
  // pass=VALUE (but PASS=6, a count as gates print it, is not a password).
  {type: 'credential', scope: 'secret', pattern: new RegExp(`(\\bpass\\s*(?:=>|[:=])\\s*)(?!\\d+(?![^\\s"'&;,\\\\${S}]))[^\\s"'&;,\\\\${S}]+`, 'gi'), keepPrefix: true},
  {type: 'email', scope: 'personal', pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])/g},
  {type: 'card', scope: 'personal', pattern: /(?<![\w.+-])\d(?:[ .-]?\d){12,18}(?!\w|[.-]\d)/g, accept: isCard},
  {type: 'ssn', scope: 'personal', pattern: /(?<![\w.+-])\d{3}([- ])\d{2}\1\d{4}(?!\w|[.-]\d)/g, accept: isSsn},
  // Nine digits in a row are an SSN only where the text says so (otherwise they are ids and counts).
  {type: 'ssn', scope: 'personal', pattern: /(\b(?:ssn|social security(?: number| no\.?)?)\W{0,5})\d{9}(?!\d)/gi, keepPrefix: true},
  // E.164 (+ and up to 15 digits, separators allowed), NANP (555) 123-4567 / 555-123-4567 /
  // 555.123.4567, and national trunk-0 forms (020 7946 0958). Never bare digit runs: those are
  // timestamps, counts and ids.
  {type: 'phone', scope: 'personal', pattern: /(?<![\w.+-])\+[1-9]\d{0,3}(?:[ .-]?\(?\d{1,4}\)?){1,5}(?!\w|[.-]\d)/g, accept: phoneDigits},
  {type: 'phone', scope: 'personal', pattern: /(?<![\w.+-])(?:\(\d{3}\) ?|\d{3}[-.])\d{3}[-.]\d{4}(?!\w|[.-]\d)/g},
  {type: 'phone', scope: 'personal', pattern: /(?<![\w.+-])0\d{2,4} \d{3,4} \d{3,4}(?!\w|\.\d| \d)/g},
  {type: 'ip', scope: 'ip', pattern: /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])/g, accept: (v) => isIPv4(v)},
  {type: 'ip', scope: 'ip', pattern: /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%[\w.]+)?(?![\w:.])/g, accept: (v) => /[0-9A-Fa-f]/.test(v) && isIPv6(v.replace(/%.*$/, ''))},
  // Anything else shaped like a generated secret: 32+ characters mixing upper case, lower case and
  // digits (a hex digest, all lower case, is kept). Excerpts only: a base64 signature looks the same.
  {type: 'high-entropy', scope: 'excerpt', pattern: /(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[A-Z])(?=[A-Za-z0-9+/_-]*[a-z])[A-Za-z0-9+/_-]{32,}={0,2}/g},
]

/** What a redaction pass looks for, and how a found value is written. */
export interface RedactionPass {
  scopes: ReadonlySet<RuleScope>
  placeholder: (type: string, value: string) => string
}

/** `text` with every value a rule of the pass finds replaced by its placeholder. */
export function redactWith(text: string, pass: RedactionPass): string {
  // The sentinels are ours: a text that brings its own loses them.
  let work = text.replace(/[\uE000\uE001]/g, '\uFFFD')
  const found: string[] = []
  for (const rule of REDACTION_RULES) {
    if (!pass.scopes.has(rule.scope)) continue
    rule.pattern.lastIndex = 0
    work = work.replace(rule.pattern, (match: string, ...rest: unknown[]) => {
      const prefix = rule.keepPrefix && typeof rest[0] === 'string' ? rest[0] : ''
      const value = match.slice(prefix.length)
      if (rule.accept && !rule.accept(value)) return match
      found.push(pass.placeholder(rule.type, value))
      return `${prefix}${OPEN}${String.fromCodePoint(0xf0000 + found.length - 1)}${CLOSE}`
    })
  }
  if (found.length === 0) return work === text ? text : work
  return work.replace(/\uE000([\s\S]{2})\uE001/g, (_, cp: string) => found[cp.codePointAt(0)! - 0xf0000]!)
}

const ALL: ReadonlySet<RuleScope> = new Set(['secret', 'personal'])
const WITH_IP: ReadonlySet<RuleScope> = new Set(['secret', 'personal', 'ip'])

export interface RedactOptions {
  /** The host's redaction key (HMAC-SHA256): equal values under one key give equal placeholders. */
  key: Uint8Array
  /** Redact IPv4 and IPv6 addresses too (off by default: they are often what an event is about). */
  ipAddresses?: boolean
}

const keyedPass = (opts: RedactOptions): RedactionPass => ({
  scopes: opts.ipAddresses ? WITH_IP : ALL,
  placeholder: (type, value) => `[REDACTED:${type}:${createHmac('sha256', opts.key).update(value, 'utf8').digest('hex').slice(0, 16)}]`,
})

/** Shorter strings hold nothing a rule finds (the shortest, `pass=x` or `a@b.co`, has six characters). */
const SHORTEST = 6
/**
 * A short plain word — letters, digits, `_ . / -`, at most 12 characters, fewer than 7 digits —
 * holds nothing a rule finds: every secret shape is longer or needs `: = @ +` or a space, every
 * number a rule finds has 7 digits or more, and an IP address (when redacted) has dots.
 */
const PLAIN = /^[A-Za-z0-9_./-]{0,12}$/
const digits = (text: string): number => {
  let n = 0
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) n++
  return n
}

/** Strings up to this long are remembered with their redaction: events repeat most of their values. */
const CACHED_LENGTH = 256
const CACHE_ENTRIES = 4096

/** One cache of redacted strings per key and setting (a log keeps one key for its life). */
const caches = new WeakMap<Uint8Array, Map<boolean, {pass: RedactionPass; done: Map<string, string>}>>()

function cachedPass(opts: RedactOptions): (text: string) => string {
  let byIp = caches.get(opts.key)
  if (!byIp) caches.set(opts.key, (byIp = new Map()))
  const ip = opts.ipAddresses === true
  let c = byIp.get(ip)
  if (!c) byIp.set(ip, (c = {pass: keyedPass(opts), done: new Map()}))
  const {pass, done} = c
  return (text) => {
    if (text.length < SHORTEST || (PLAIN.test(text) && !(ip && text.includes('.')) && digits(text) < 7)) return text
    if (text.length > CACHED_LENGTH) return redactWith(text, pass)
    let out = done.get(text)
    if (out === undefined) {
      out = redactWith(text, pass)
      if (done.size >= CACHE_ENTRIES) done.clear()
      done.set(text, out)
    }
    return out
  }
}

/** Free text for the audit log: secrets and personal data as keyed placeholders. */
export function redactText(text: string, opts: RedactOptions): string {
  return redactWith(text, keyedPass(opts))
}

/**
 * An event, redacted before it is persisted: every string value at any depth (object keys are
 * the schema's names and are kept). Returns a new object; numbers, booleans and null are kept.
 */
export function redactEvent<T>(event: T, opts: RedactOptions): T {
  const redactString = cachedPass(opts)
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactString(v)
    if (Array.isArray(v)) return v.map(walk)
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
    return v
  }
  return walk(event) as T
}

const secretsPass: RedactionPass = {scopes: new Set(['secret']), placeholder: (type) => `[REDACTED:${type}]`}
const receiptPass: RedactionPass = {scopes: ALL, placeholder: (type) => `[REDACTED:${type}]`}

/** Text for fleet-wide artifacts (receipts, commit messages, reports): the same detection, `[REDACTED:<type>]`. */
export function redactReceiptText(text: string): string {
  return redactWith(text, receiptPass)
}

/** Text for a receipt that must stay an identity (an actor, a principal): secrets only, never personal data. */
export function redactSecretsOnly(text: string): string {
  return redactWith(text, secretsPass)
}
