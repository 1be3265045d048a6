/**
 * Tool policy: every bad call and every broken policy denied with the rule that decided, and
 * approvals that hold for exactly one call. Real Ed25519 keys; the policy parsed from YAML text.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {signEnvelope} from '../../../control-plane/crypto/dsse.js'
import {digestOfJson} from '../../../control-plane/crypto/digest.js'
import {generateSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import type {TrustPolicy} from '../../../control-plane/manifests/models.js'
import {APPROVAL_PAYLOAD_TYPE, approvalCheck, makeApproval} from '../../../control-plane/policy/tools/approval.js'
import {exampleToolPolicy} from '../../../control-plane/init/examples.js'
import {parseEgress} from '../../../control-plane/policy/egress/egress.js'
import {checkTool, compileAll, listTools, parseToolPolicy, requireClean, schemaHash} from '../../../control-plane/policy/tools/tools.js'
import {ROOT} from '../../helpers.js'

/** The cloud metadata services' names and addresses (written out: the test states the set, not the code). */
const METADATA_NAMES = ['instance-data', 'instance-data.ec2.internal', 'metadata', 'metadata.google.internal', 'metadata.goog', 'metadata.azure.internal']
const METADATA_ADDRESSES = ['169.254.169.254', '169.254.170.2', '169.254.170.23', '168.63.129.16', '192.0.0.192', '100.100.100.200', 'fd00:ec2::254', 'fd00:ec2::23', 'fd20:ce::254', 'fd00:c1::a9fe:a9fe', 'fe80::a9fe:a9fe']
/** The scaffold's path pattern: under /workspace/, no `..` segment anywhere, no control characters. */
const WORKSPACE_PATH_PATTERN = String.raw`^/workspace(?![\s\S]*/\.\.(?:/|$))/[^\u0000-\u001f\u007f]*$`

const readFile = {type: 'object', required: ['path'], additionalProperties: false, properties: {path: {type: 'string', maxLength: 64, pattern: WORKSPACE_PATH_PATTERN}}}
const sendEmail = {type: 'object', required: ['to', 'subject'], additionalProperties: false, properties: {to: {type: 'string', format: 'email'}, subject: {type: 'string', maxLength: 100}, count: {type: 'integer'}}}
const open = {type: 'object'}

function tool(name: string, parameters: object, extra: Record<string, unknown> = {}, hash = schemaHash(parameters)) {
  return {name, risk: 'L0', sideEffects: [], parameters, schemaHash: hash, ...extra}
}

function policyText(spec: Record<string, unknown>): string {
  return JSON.stringify({apiVersion: 'airlock/v1', kind: 'ToolPolicy', metadata: {name: 't'}, spec}, null, 2)
}

const parse = (spec: Record<string, unknown>) => parseToolPolicy(policyText(spec), 'tool-policy.yaml', DEFAULT_LIMITS)

const base = parse({
  forbiddenCapabilities: ['shell', 'credential-read'],
  allow: [
    tool('read_file', readFile),
    tool('send_email', sendEmail, {risk: 'L3', approval: 'required', sideEffects: ['external-message']}),
    tool('open', open),
    tool('wire_money', open, {risk: 'L5'}),
  ],
  deny: [{name: 'exec', reason: 'arbitrary commands'}],
})

describe('tool check: calls', () => {
  it('allows a call the schema accepts, naming the allow rule', () => {
    expect(checkTool(base, {tool: 'read_file', params: {path: '/workspace/a'}})).toEqual({decision: 'allow', tool: 'read_file', rule: 'spec.allow[0] read_file'})
  })

  it.each([
    ['wrong type', {path: 7}, /params\/path must be string/],
    ['extra field', {path: '/workspace/a', mode: 'w'}, /params\/mode must NOT have additional properties \(not a known parameter\)/],
    ['oversized string', {path: `/workspace/${'a'.repeat(64)}`}, /params\/path must NOT have more than 64 characters/],
    ['missing field', {}, /params must have required property 'path'/],
    ['outside the pattern', {path: '/etc/shadow'}, /params\/path must match pattern/],
  ])('denies parameters the schema refuses: %s', (_name, params, rule) => {
    const d = checkTool(base, {tool: 'read_file', params})
    expect(d.decision).toBe('deny')
    expect(d.rule).toMatch(/^spec\.allow\[0\]\.parameters: /)
    expect(d.rule).toMatch(rule)
  })

  it('checks formats and never coerces types', () => {
    expect(checkTool(base, {tool: 'send_email', params: {to: 'not an address', subject: 's'}}).rule).toMatch(/params\/to must match format "email"/)
    expect(checkTool(base, {tool: 'send_email', params: {to: 'a@example.com', subject: 's', count: '3'}}).rule).toMatch(/params\/count must be integer/)
  })

  it.each([
    ['__proto__ at the top', JSON.parse('{"__proto__": {"admin": true}}'), '/__proto__'],
    ['constructor nested', JSON.parse('{"a": {"b": [{"constructor": {"prototype": 1}}]}}'), '/a/b/0/constructor'],
    ['prototype', {prototype: 1}, '/prototype'],
  ])('denies prototype-pollution keys even where the schema allows any field: %s', (_name, params, at) => {
    const d = checkTool(base, {tool: 'open', params})
    expect(d.decision).toBe('deny')
    expect(d.rule).toBe(`params${at}: a prototype key (__proto__, constructor, prototype) is never accepted`)
  })

  it('denies an unknown tool, and a tool named like an Object.prototype member', () => {
    expect(checkTool(base, {tool: 'rm_rf', params: {}})).toMatchObject({decision: 'deny', rule: 'spec.failClosed.unknownTool: rm_rf is not in spec.allow'})
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) expect(checkTool(base, {tool: name, params: {}}).decision).toBe('deny')
  })

  it('denies a denied tool with its reason', () => {
    expect(checkTool(base, {tool: 'exec', params: {}})).toMatchObject({decision: 'deny', rule: 'spec.deny[0] exec (arbitrary commands)'})
  })

  it('denies parameters over the size limit, and anything that is not an object', () => {
    expect(checkTool(base, {tool: 'open', params: {}, bytes: 70_000}).rule).toBe('spec.maxParamsBytes: the parameters are 70000 bytes, the limit is 65536')
    for (const params of [null, [], 'x', 3]) expect(checkTool(base, {tool: 'open', params}).rule).toBe('spec.allow[2] open: the parameters must be a JSON object')
  })

  it('asks for approval where the tool says so, and from the policy tier up', () => {
    const d = checkTool(base, {tool: 'send_email', params: {to: 'a@example.com', subject: 's'}})
    expect(d).toMatchObject({decision: 'needs_approval', rule: 'spec.allow[1].approval: required', paramsDigest: digestOfJson({subject: 's', to: 'a@example.com'})})
    expect(checkTool(base, {tool: 'wire_money', params: {}})).toMatchObject({decision: 'needs_approval', rule: 'spec.approvalFrom: L4 (wire_money is L5)'})
  })
})

describe('tool policy: broken files deny, and are reported', () => {
  it('a drifted schema hash denies, showing both hashes', () => {
    const p = parse({allow: [tool('read_file', readFile, {}, `sha256:${'0'.repeat(64)}`)]})
    const d = checkTool(p, {tool: 'read_file', params: {path: '/workspace/a'}})
    expect(d.decision).toBe('deny')
    expect(d.hashes).toEqual({recorded: `sha256:${'0'.repeat(64)}`, computed: schemaHash(readFile)})
    expect(d.rule).toContain(schemaHash(readFile))
    expect(p.findings[0]).toMatchObject({code: 'SCHEMA_HASH_MISMATCH', file: 'tool-policy.yaml', field: 'spec.allow[0].schemaHash', line: expect.any(Number)})
  })

  it('the hash is of the canonical form: key order and spacing do not change it', () => {
    expect(schemaHash({b: 1, a: [1, {d: 2, c: 3}]})).toBe(schemaHash(JSON.parse('{ "a" : [1, {"c":3,"d":2}], "b":1 }')))
    expect(schemaHash({a: 1})).not.toBe(schemaHash({a: 2}))
  })

  it('a tool both allowed and denied: deny wins, and the file is reported', () => {
    const p = parse({allow: [tool('exec', open)], deny: [{name: 'exec'}]})
    expect(checkTool(p, {tool: 'exec', params: {}})).toMatchObject({decision: 'deny', rule: 'spec.deny[0] exec; also in spec.allow[0] exec, deny wins'})
    expect(p.findings).toEqual([expect.objectContaining({code: 'ALLOWED_AND_DENIED', field: 'spec.allow[0].name', line: expect.any(Number)})])
    expect(listTools(p)).toEqual([])
    expect(() => requireClean(p)).toThrowAirlockError('SCHEMA_VIOLATION')
  })

  it.each([
    ['an unknown keyword', {type: 'object', additionalProperty: false}, /does not compile: strict mode: unknown keyword: "additionalProperty"/],
    ['an unknown format', {type: 'object', properties: {a: {type: 'string', format: 'no-such-format'}}}, /unknown format "no-such-format"/],
    ['a remote $ref', {type: 'object', properties: {a: {$ref: 'https://schemas.example.test/a.json'}}}, /can't resolve reference/],
    ['a root that is not an object', {type: 'string'}, /the schema needs type: object/],
    ['a backtracking pattern', {type: 'object', properties: {a: {type: 'string', pattern: '^(a+)+$'}}}, /can backtrack exponentially/],
  ])('a schema that does not compile denies the tool (fail closed): %s', (_name, schema, message) => {
    const p = parse({allow: [tool('t', schema)]})
    const d = checkTool(p, {tool: 't', params: {a: 'x'}})
    expect(d.decision).toBe('deny')
    expect(d.rule).toMatch(message)
    expect(compileAll(p)).toEqual([expect.objectContaining({code: 'SCHEMA_ERROR', tool: 't'})])
    expect(listTools(p)).toEqual([])
  })

  it('a tool with a forbidden capability is denied and absent from the list', () => {
    const p = parse({forbiddenCapabilities: ['shell'], allow: [tool('run', open, {capabilities: ['filesystem-read', 'shell']}), tool('ok', open)]})
    expect(checkTool(p, {tool: 'run', params: {}}).rule).toMatch(/^spec\.allow\[0\]\.capabilities: run has capability shell, forbidden by spec\.forbiddenCapabilities\[0\]/)
    expect(listTools(p).map((t) => t.name)).toEqual(['ok'])
  })

  it('lists only what may be called: denied tools are absent, not marked', () => {
    expect(listTools(base).map((t) => t.name)).toEqual(['read_file', 'send_email', 'open', 'wire_money'])
    expect(listTools(base).some((t) => t.name === 'exec')).toBe(false)
  })

  it.each([
    ['a YAML bomb', `a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`, 'YAML_ERROR'],
    ['deep nesting', `${'['.repeat(200)}${']'.repeat(200)}`, 'TOO_LARGE'],
    ['a failClosed flag set loose', policyText({failClosed: {unknownTool: 'allow'}, allow: []}), 'SCHEMA_VIOLATION'],
    ['a tool listed twice', policyText({allow: [tool('a', open), tool('a', open)]}), 'SCHEMA_VIOLATION'],
  ])('refuses a file with %s (exit 2)', (_name, text, code) => {
    expect(() => parseToolPolicy(text, 'tool-policy.yaml', DEFAULT_LIMITS)).toThrowAirlockError(code)
  })

  it('the policy hash is the canonical hash of the document', () => {
    const a = parse({allow: [tool('read_file', readFile)]})
    const b = parseToolPolicy(`apiVersion: airlock/v1\nkind: ToolPolicy\nmetadata: {name: t}\nspec:\n  allow:\n    - ${JSON.stringify(tool('read_file', readFile))}\n`, 'x.yaml', DEFAULT_LIMITS)
    expect(a.hash).toBe(b.hash)
    expect(a.hash).toMatch(/^sha256:[0-9a-f]{64}$/)
  })
})

describe('tool approvals', () => {
  const approver = generateSigner().signer
  const other = generateSigner().signer
  const trust = (keys: Signer[], threshold = 1, validUntil?: Date): TrustPolicy => ({
    file: 'manifests/trust.yaml',
    oid: null,
    org: '',
    keys: keys.map((k) => ({id: k.keyid, algorithm: 'ed25519', publicKey: k.publicKey, roles: ['approval'], validFrom: new Date('2026-01-01T00:00:00Z'), ...(validUntil ? {validUntil} : {})})),
    thresholds: {evidence: 1, policy: 1, image: 1, audit: 1, approval: threshold},
    bundles: {maxLifetimeMs: 0},
    doc: null,
  })
  const now = new Date('2026-12-01T12:00:00Z')
  const params = {to: 'a@example.com', subject: 'weekly report'}
  const sendEmailTool = base.allowed.get('send_email')!
  const approve = (signer = approver, at = now, ttlMs = 15 * 60_000, p: object = params) => makeApproval(sendEmailTool, digestOfJson(p), {signer, approvedBy: 'dana', reason: 'weekly', now: at, ttlMs}).token
  const call = (token: string, t = trust([approver]), at = now, p: object = params, limits = DEFAULT_LIMITS) => checkTool(base, {tool: 'send_email', params: p}, approvalCheck(token, t, at, limits))

  it('an approval for exactly this call allows it, naming who approved and until when', () => {
    const d = call(approve())
    expect(d).toMatchObject({decision: 'allow', rule: 'spec.allow[1] send_email, approved (spec.allow[1].approval: required)', approval: {approvedBy: 'dana', keyids: [approver.keyid], expiresAt: '2026-12-01T12:15:00.000Z'}})
  })

  it.each([
    ['other parameters', () => call(approve(), undefined, undefined, {...params, to: 'b@example.com'}), /it approves parameters sha256:\w+, these are sha256:/],
    ['expired', () => call(approve(), undefined, new Date('2026-12-01T12:15:00Z')), /expired at 2026-12-01T12:15:00.000Z/],
    ['issued in the future', () => call(approve(approver, new Date('2026-12-01T13:00:00Z'))), /issued in the future/],
    ['issued beyond the clock skew of the limits', () => call(approve(approver, new Date('2026-12-01T12:01:00Z')), undefined, undefined, undefined, {...DEFAULT_LIMITS, clockSkewMs: 30_000}), /issued in the future/],
    ['an untrusted key', () => call(approve(other)), /signed by 0 trusted approval key\(s\) valid now, 1 needed .*UNKNOWN_KEY/],
    ['a key past its validity', () => call(approve(), trust([approver], 1, new Date('2026-06-01T00:00:00Z'))), /signed by 0 trusted.*KEY_NOT_VALID_AT_SIGNING/],
    ['below the threshold', () => call(approve(), trust([approver, other], 2)), /signed by 1 trusted approval key\(s\) valid now, 2 needed.*THRESHOLD_NOT_MET/],
    ['signatures stripped', () => call(Buffer.from(JSON.stringify({...JSON.parse(Buffer.from(approve(), 'base64url').toString()), signatures: []})).toString('base64url')), /THRESHOLD_NOT_MET the approval: carries no signature/],
    ['not base64url', () => call('not a token!'), /not base64url/],
    ['garbage', () => call(Buffer.from('{"x":1}').toString('base64url')), /not a DSSE envelope/],
  ])('denies with the approval problem: %s', (_name, run, problem) => {
    const d = run()
    expect(d.decision).toBe('deny')
    expect(d.rule).toMatch(/^approval: /)
    expect(d.rule).toMatch(problem)
  })

  it('a payload edited after signing, or signed as another type, does not verify', () => {
    const envelope = JSON.parse(Buffer.from(approve(), 'base64url').toString())
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString())
    const edited = {...envelope, payload: Buffer.from(JSON.stringify({...statement, expiresAt: '2027-01-01T00:00:00.000Z'})).toString('base64')}
    expect(call(Buffer.from(JSON.stringify(edited)).toString('base64url')).rule).toMatch(/signed by 0 trusted.*BAD_SIGNATURE/)
    const retyped = signEnvelope('application/vnd.in-toto+json', Buffer.from(JSON.stringify(statement)), [approver])
    expect(call(Buffer.from(JSON.stringify(retyped)).toString('base64url')).rule).toMatch(new RegExp(`not ${APPROVAL_PAYLOAD_TYPE.replaceAll('.', '\\.').replaceAll('+', '\\+')}`))
  })

  it('an approval carries a fresh nonce; one without (the old format) or with a malformed one is refused', () => {
    const nonceOf = (token: string) => JSON.parse(Buffer.from(JSON.parse(Buffer.from(token, 'base64url').toString()).payload, 'base64').toString()).nonce
    const [a, b] = [approve(), approve()]
    expect(nonceOf(a)).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(nonceOf(a)).not.toBe(nonceOf(b))
    expect(call(a)).toMatchObject({decision: 'allow', approval: {nonce: nonceOf(a)}})
    const statement = JSON.parse(Buffer.from(JSON.parse(Buffer.from(a, 'base64url').toString()).payload, 'base64').toString())
    const resign = (st: object) => Buffer.from(JSON.stringify(signEnvelope(APPROVAL_PAYLOAD_TYPE, Buffer.from(JSON.stringify(st)), [approver]))).toString('base64url')
    const {nonce: _n, ...old} = statement
    expect(call(resign(old))).toMatchObject({decision: 'deny', rule: expect.stringMatching(/^approval: it carries no nonce \(made before approvals were single-use\)/)})
    expect(call(resign({...statement, nonce: '../x'})).rule).toMatch(/^approval: its nonce is not 22 to 64 base64url characters/)
  })

  it('tolerates the one clock skew of the limits (5 minutes), no more', () => {
    expect(call(approve(approver, new Date('2026-12-01T12:04:00Z'))).decision).toBe('allow')
    expect(DEFAULT_LIMITS.clockSkewMs).toBe(5 * 60_000)
  })

  it('a redefined tool voids its approvals', () => {
    const token = approve()
    const changed = parse({allow: [tool('send_email', {...sendEmail, properties: {...sendEmail.properties, cc: {type: 'string'}}}, {approval: 'required'})]})
    const d = checkTool(changed, {tool: 'send_email', params}, approvalCheck(token, trust([approver]), now))
    expect(d.rule).toMatch(/it approves send_email with schema sha256:\w+; the schema is now sha256:/)
  })

  it('an approval lives at most 24 h', () => {
    expect(() => approve(approver, now, 25 * 3_600_000)).toThrowAirlockError('USAGE')
  })
})

/** A call's path with `..` in each position: none may pass a scaffolded tool. */
const TRAVERSALS = [
  '../workspace/a', '/workspace/..', '/workspace/../', '/workspace/../etc/passwd', '/workspace/a/..', '/workspace/a/../b', '/workspace/a/../..',
  '/workspace/a/../../etc/shadow', '/workspace/./../etc', '/workspace//../etc', '/workspace/a/b/../../../etc', '/workspace/a\n/../../etc', '/workspace/..\t/x',
]

describe('the scaffolded and embedded tool policies: paths that stay in /workspace/', () => {
  const policies = [
    ['init\'s scaffold', parseToolPolicy(exampleToolPolicy(), 'manifests/tool-policy.yaml', DEFAULT_LIMITS)],
    ['the embedded fleet', parseToolPolicy(readFileSync(join(ROOT, 'manifests/tool-policy.yaml'), 'utf8'), 'manifests/tool-policy.yaml', DEFAULT_LIMITS)],
  ] as const
  it.each(policies)('%s loads clean and denies .. in each position, for read_file and write_file', (_name, p) => {
    expect(compileAll(p)).toEqual([])
    for (const path of TRAVERSALS) {
      expect(checkTool(p, {tool: 'read_file', params: {path}}), path).toMatchObject({decision: 'deny', rule: expect.stringMatching(/^spec\.allow\[0\]\.parameters: params\/path must match pattern/)})
      expect(checkTool(p, {tool: 'write_file', params: {path, content: 'x'}}).decision, path).toBe('deny')
    }
    for (const path of ['/workspace/notes.md', '/workspace/a/b..c/..d', '/workspace/.hidden', '/workspace/a.../x']) expect(checkTool(p, {tool: 'read_file', params: {path}}).decision, path).toBe('allow')
  })

  it.each(policies)('%s: http_get is held to the egress policy; each metadata name and address is denied naming the egress rule', (_name, p) => {
    const egress = parseEgress('apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: e\nspec:\n  profile: permissive\n  allowPrivate: true\n', 'manifests/egress.yaml', DEFAULT_LIMITS)
    expect(checkTool(p, {tool: 'http_get', params: {url: 'https://pypi.org/simple/'}}, undefined, egress)).toMatchObject({decision: 'allow', egress: [{param: 'params/url', host: 'pypi.org', port: 443, rule: 'profile permissive: not blocked'}]})
    const targets = [...METADATA_NAMES.flatMap((n) => [n, `${n.toUpperCase()}.`]), ...METADATA_ADDRESSES.map((a) => (a.includes(':') ? `[${a}]` : a)), '0xA9FEA9FE', '[::ffff:169.254.169.254]']
    for (const t of targets) {
      const d = checkTool(p, {tool: 'http_get', params: {url: `https://${t}/latest/meta-data/`}}, undefined, egress)
      expect(d, t).toMatchObject({decision: 'deny', rule: expect.stringMatching(/^params\/url: the egress policy \(manifests\/egress\.yaml\) denies \S+: default blocklist \(cloud metadata\) \S+ \(always denied\)$/)})
    }
    // No egress policy to judge by: denied, never waved through.
    expect(checkTool(p, {tool: 'http_get', params: {url: 'https://pypi.org/'}}).rule).toMatch(/^params\/url: bound to the egress policy \(x-airlock-egress\), and there is no egress policy/)
    expect(checkTool(p, {tool: 'http_get', params: {url: 'https://pypi.org../'}}, undefined, egress).rule).toMatch(/^params\/url: bound to the egress policy \(x-airlock-egress\): .*empty label/)
    // Userinfo: WHATWG reads the host after the last '@', other parsers after the first.
    for (const url of ['https://a@169.254.169.254@pypi.org/', 'https://user:pw@pypi.org/', 'https://169.254.169.254%40@pypi.org/']) {
      expect(checkTool(p, {tool: 'http_get', params: {url}}, undefined, egress), url).toMatchObject({decision: 'deny', rule: expect.stringMatching(/userinfo/)})
    }
  })
})

describe('tool policy lint: a path parameter that can leave its stated root (PATH_ESCAPE)', () => {
  const pathTool = (pattern: string | undefined, name = 'path') => parse({allow: [tool('read_file', {type: 'object', properties: {[name]: {type: 'string', ...(pattern === undefined ? {} : {pattern})}}})]})

  it.each([
    ['the old scaffold\'s ^/workspace/', '^/workspace/', /params\/path accepts "\/workspace\/\.\.", which can leave its stated root \/workspace\//],
    ['a root without its slash', '^/workspace', /no stated root|accepts "\/workspacex\/etc\/passwd"/],
    ['.. refused only at the end', '^/workspace/(?!.*\\.\\.$)', /accepts "\/workspace\/\.\.\/"/],
    ['.. refused on one line only', '^/workspace(?!.*/\\.\\.(?:/|$))/', /accepts "\/workspace\/a\\n\/\.\.\/\.\.\/etc\/passwd"/],
    ['no pattern at all', undefined, /params\/path is a path with no stated root/],
    ['an unanchored pattern', '/workspace/', /no stated root/],
    ['the root /', '^/', /no stated root/],
  ])('%s: a finding that denies the tool, naming the file, line and field', (_name, pattern, message) => {
    const p = pathTool(pattern)
    const d = checkTool(p, {tool: 'read_file', params: {path: '/workspace/a'}})
    expect(d.decision).toBe('deny')
    expect(compileAll(p)).toEqual([expect.objectContaining({code: 'PATH_ESCAPE', tool: 'read_file', file: 'tool-policy.yaml', field: 'spec.allow[0].parameters.properties.path', message: expect.stringMatching(message)})])
    expect(() => requireClean(p)).toThrowAirlockError('SCHEMA_VIOLATION')
    expect(listTools(p)).toEqual([])
  })

  it('judges every parameter named like a path, nested ones too; others are not paths', () => {
    expect(compileAll(pathTool('^/workspace/', 'file_path'))[0]).toMatchObject({code: 'PATH_ESCAPE', field: 'spec.allow[0].parameters.properties.file_path'})
    expect(compileAll(pathTool('^/workspace/', 'targetPath'))[0]).toMatchObject({code: 'PATH_ESCAPE'})
    const nested = parse({allow: [tool('t', {type: 'object', properties: {copy: {type: 'object', properties: {src_path: {type: 'string', pattern: '^/workspace/'}}}}})]})
    expect(compileAll(nested)[0]).toMatchObject({code: 'PATH_ESCAPE', field: 'spec.allow[0].parameters.properties.copy.properties.src_path'})
    expect(compileAll(pathTool(undefined, 'pathway'))).toEqual([])
    expect(compileAll(pathTool(WORKSPACE_PATH_PATTERN))).toEqual([])
    expect(compileAll(pathTool(String.raw`^/srv/data(?![\s\S]*/\.\.(?:/|$))/[a-z0-9/._-]*$`))).toEqual([])
  })

  it.each([
    ['properties: path: true', {type: 'object', properties: {path: true}}, '.properties.path'],
    ['patternProperties naming path', {type: 'object', additionalProperties: false, patternProperties: {'^path$': {type: 'string'}}}, '.patternProperties.^path$'],
    ['patternProperties matching any name', {type: 'object', patternProperties: {'_path$': {type: 'string', pattern: '^/workspace/'}}}, '.patternProperties._path$'],
    ['a required path only additionalProperties describes', {type: 'object', required: ['path'], additionalProperties: {type: 'string'}}, '.additionalProperties'],
  ])('a path parameter stated outside properties (%s) is judged too', (_name, schema, where) => {
    const p = parse({allow: [tool('read_file', schema)]})
    expect(checkTool(p, {tool: 'read_file', params: {path: '/etc/passwd'}}).decision).toBe('deny')
    expect(compileAll(p)[0]).toMatchObject({code: 'PATH_ESCAPE', field: `spec.allow[0].parameters${where}`})
    const fixed = parse({allow: [tool('read_file', {type: 'object', required: ['path'], additionalProperties: {type: 'string', pattern: WORKSPACE_PATH_PATTERN}})]})
    expect(compileAll(fixed)).toEqual([])
  })

  it('the stated root is the absolute directory the pattern starts with', async () => {
    const {statedRoot} = await import('../../../control-plane/policy/tools/tools.js')
    expect(statedRoot('^/workspace/')).toBe('/workspace/')
    expect(statedRoot(WORKSPACE_PATH_PATTERN)).toBe('/workspace/')
    expect(statedRoot('^/workspace/proj-[a-z]+/')).toBe('/workspace/')
    expect(statedRoot('^/srv\\/data\\.d/')).toBe('/srv/data.d/')
    expect(statedRoot('^/workspace')).toBeNull()
    expect(statedRoot('^/workspace/\\.\\./')).toBeNull()
    expect(statedRoot('^/(?:workspace)/')).toBeNull()
    expect(statedRoot('workspace/')).toBeNull()
  })
})

describe('tool policy: x-airlock-egress where it binds nothing is a schema error', () => {
  it.each([
    ['on the root', {type: 'object', 'x-airlock-egress': true}],
    ['inside anyOf', {type: 'object', properties: {url: {anyOf: [{type: 'string', 'x-airlock-egress': true}]}}}],
    ['not a boolean', {type: 'object', properties: {url: {type: 'string', 'x-airlock-egress': 'yes'}}}],
  ])('%s', (_name, schema) => {
    const p = parse({allow: [tool('fetch', schema)]})
    expect(checkTool(p, {tool: 'fetch', params: {url: 'https://pypi.org/'}}).decision).toBe('deny')
    expect(compileAll(p)).toEqual([expect.objectContaining({code: 'SCHEMA_ERROR', tool: 'fetch'})])
  })

  it('binds each item of an array of URLs', () => {
    const p = parse({allow: [tool('fetch_all', {type: 'object', properties: {urls: {type: 'array', items: {type: 'string', 'x-airlock-egress': true}}}})]})
    const egress = parseEgress('apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: e\nspec:\n  profile: permissive\n', 'egress.yaml', DEFAULT_LIMITS)
    expect(checkTool(p, {tool: 'fetch_all', params: {urls: ['https://pypi.org/', 'http://instance-data/latest/']}}, undefined, egress).rule).toMatch(/^params\/urls\/1: the egress policy \(egress\.yaml\) denies instance-data:80: default blocklist/)
    expect(checkTool(p, {tool: 'fetch_all', params: {urls: ['https://pypi.org/']}}, undefined, egress).decision).toBe('allow')
  })
})
