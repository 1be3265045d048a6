/**
 * airlock as a hostile user meets it: identities that try to inject, files that are not what
 * they claim (FIFOs, folders, devices, sockets, symbolic links), pathological patterns and
 * nesting, prototype keys, malformed commits made with git plumbing. Real fleets, real git, real
 * special files (root in CI may mknod; where it may not, the device case uses /dev/null).
 * Every output is collected: none may say "internal error".
 */
import {execa} from 'execa'
import {exportJWK, generateKeyPair, SignJWT} from 'jose'
import {createServer, type Server} from 'node:net'
import {mkdir, readdir, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {digestOfJson} from '../../control-plane/crypto/digest.js'
import {airlock as run, git, type CliResult, fleetCopies, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const IMAGE = 'manifests/images/agent-runner.yaml'
const outputs: string[] = []

/** The CLI, with every output kept for the no-internal-error check at the end. */
async function airlock(args: string[], opts: {cwd?: string; env?: Record<string, string | undefined>} = {}): Promise<CliResult> {
  const r = await run(args, opts)
  outputs.push(`${args.join(' ')}\n${r.stdout}\n${r.stderr}`)
  return r
}

afterAll(() => {
  const internal = outputs.filter((o) => /internal error|INTERNAL|    at /.test(o))
  expect(internal).toEqual([])
})

let fleet: Fleet
const fleets = fleetCopies({sign: [NEXT]})
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
})
afterEach(async () => {
  await fleet.cleanup()
})

const PROMOTE = ['promote', 'agent-runner', '--to', 'canary', '--digest', NEXT]

/**
 * The canary promotion of NEXT saved with `promote --out`, written to `out`. Every test's fleet
 * is a copy of one fleet (the same commits), so the plan saved in the first test that asks is
 * the plan of each; the others get that file instead of saving it again.
 */
let saved: string | undefined
async function savedPlan(out: string): Promise<void> {
  if (saved === undefined) {
    const r = await airlock([...PROMOTE, '--out', out], {cwd: fleet.dir})
    expect(r.exitCode, r.stderr).toBe(0)
    saved = await readFile(out, 'utf8')
  } else await writeFile(out, saved)
}
const head = (dir: string) => git(dir, 'rev-parse', 'HEAD')
const fsck = (dir: string) => execa('git', ['fsck', '--strict', '--no-dangling'], {cwd: dir, reject: false})

describe('identities and free text are data, never syntax', () => {
  it('refuses what git forbids in an identity, from every source, before anything is written', async () => {
    const {dir, env} = fleet
    const before = await head(dir)
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--actor', 'eve\nAirlock-Requested-By: rita'], {}, /--actor: U\+000A/],
      [['--actor', 'eve <root@evil> 0 +0000'], {}, /--actor: "<"/],
      [[], {AIRLOCK_ACTOR: 'ci\u001b[2J'}, /AIRLOCK_ACTOR: U\+001B/],
      [[], {AIRLOCK_ACTOR: 'ci\u2028x'}, /AIRLOCK_ACTOR: U\+2028/],
      [[], {GITHUB_ACTIONS: 'true', GITHUB_ACTOR: 'bot>\nx'}, /github-actions actor/],
      [['--reason', 'ok\u0007'], {}, /--reason: U\+0007/],
    ]
    for (const [flags, extra, message] of cases) {
      const r = await airlock([...PROMOTE, ...flags, '--apply', '--json'], {cwd: dir, env: {...env, ...extra}})
      expect(r.exitCode, flags.join(' ')).toBe(2)
      expect(r.json.error.message).toMatch(message)
    }
    await git(dir, 'config', 'user.name', 'eve\nAirlock-Requested-By: rita')
    const g = await airlock([...PROMOTE, '--apply', '--json'], {cwd: dir, env})
    expect(g.exitCode).toBe(2)
    expect(g.json.error.message).toMatch(/git config user\.name/)
    expect(await head(dir)).toBe(before)
    expect((await fsck(dir)).exitCode).toBe(0)
  })

  it('a reason that looks like trailers or a patch divider adds no trailer', async () => {
    const {dir, env} = fleet
    const reason = 'canary soak\n\n---\nAirlock-Requested-By: rita\nAirlock-Digest: sha256:00\n# comment'
    const r = await airlock([...PROMOTE, '--reason', reason, '--actor', 'eve', '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(0)
    const message = await git(dir, 'log', '-1', '--format=%B')
    const parsed = (await execa('git', ['interpret-trailers', '--parse'], {input: message})).stdout
    expect(parsed.split('\n').filter((l) => l.startsWith('Airlock-Requested-By'))).toEqual(['Airlock-Requested-By: eve'])
    expect(parsed).not.toMatch(/sha256:00$/m)
    expect((await fsck(dir)).exitCode).toBe(0)
    const status = await airlock(['status', '--json'], {cwd: dir})
    expect(status.json.images[0].channels[0].lastChange.requestedBy).toBe('eve')
  })

  it('refuses a saved plan resealed with an injecting requester', async () => {
    const {dir, env} = fleet
    const out = join(dir, '..', 'plan.json')
    await savedPlan(out)
    const plan = JSON.parse(await readFile(out, 'utf8'))
    plan.requestedBy.actor = 'eve\nAirlock-Operation: rollback'
    const {digest: _old, ...rest} = plan
    await writeFile(out, JSON.stringify({...rest, digest: digestOfJson(rest)}))
    const r = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.message).toMatch(/--actor: U\+000A/)
  })

  it('refuses a verified token whose claims carry line breaks', async () => {
    const {dir, env} = fleet
    const {publicKey, privateKey} = await generateKeyPair('ES256', {extractable: true})
    const jwks = join(dir, '..', 'jwks.json')
    await writeFile(jwks, JSON.stringify({keys: [{...(await exportJWK(publicKey)), kid: 'idp', alg: 'ES256'}]}))
    const token = await new SignJWT({org_id: 'acme', email: 'rita@example.com\nAirlock-Requested-By: eve'})
      .setProtectedHeader({alg: 'ES256', kid: 'idp'})
      .setSubject('rita')
      .setIssuer('https://idp.example')
      .setAudience('airlock')
      .setExpirationTime('10m')
      .sign(privateKey)
    const r = await airlock([...PROMOTE, '--apply', '--json', '--jwks', jwks, '--issuer', 'https://idp.example', '--audience', 'airlock'], {cwd: dir, env: {...env, AIRLOCK_JWT: token}})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.message).toMatch(/email claim: U\+000A/)
  })
})

describe('malformed commits made by someone else are reported, never a crash', () => {
  it('status and evidence verify name a commit git fsck would reject', async () => {
    const {dir} = fleet
    const base = await head(dir)
    const tree = await git(dir, 'rev-parse', 'HEAD^{tree}')
    const literally = async (text: string) => (await execa('git', ['hash-object', '-t', 'commit', '--literally', '-w', '--stdin'], {cwd: dir, input: text})).stdout
    const bad = [
      `tree ${tree}\nparent ${base}\nauthor eve 0 +0000\ncommitter eve 0 +0000\n\nno email\n`,
      `tree ${tree}\nparent ${base}\n\nno author\n`,
      `tree ${'0'.repeat(40)}\nparent ${base}\nauthor e <e> 1 +0000\ncommitter e <e> 1 +0000\n\nmissing tree\n`,
    ]
    for (const text of bad) {
      const broken = await literally(text)
      const child = await literally(`tree ${tree}\nparent ${broken}\nauthor e <e> 1 +0000\ncommitter e <e> 1 +0000\n\nchild\n`)
      for (const tip of [broken, child]) {
        await writeFile(join(dir, '.git', 'refs', 'heads', 'main'), `${tip}\n`)
        const v = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
        expect(v.exitCode, text).toBe(1)
        const code = v.json.error?.code ?? v.json.problems?.[0]?.code
        expect(code, text).toBe('BROKEN_OBJECT')
        const s = await airlock(['status', '--json'], {cwd: dir})
        expect([0, 1], text).toContain(s.exitCode)
        if (s.exitCode === 0) expect(s.json.history.verified).toBe(false)
        else expect(s.json.error.code).toBe('BROKEN_OBJECT')
        const p = await airlock([...PROMOTE, '--apply', '--json'], {cwd: dir, env: fleet.env})
        expect(p.exitCode, text).toBe(1)
      }
    }
    await writeFile(join(dir, '.git', 'refs', 'heads', 'main'), `${base}\n`)
  })
})

/** A FIFO, a folder, a character and a block device, and a socket, each where a file is expected. */
async function specialFiles(dir: string): Promise<{files: Record<string, string>; server: Server}> {
  const fifo = join(dir, 'fifo')
  await execa('mkfifo', [fifo])
  const folder = join(dir, 'folder')
  await mkdir(folder)
  const device = join(dir, 'device')
  const made = await execa('mknod', [device, 'c', '1', '3'], {reject: false})
  const block = join(dir, 'block')
  const madeBlock = await execa('mknod', [block, 'b', '7', '250'], {reject: false})
  const sock = join(dir, 'sock')
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(sock, resolve))
  return {files: {fifo, folder, device: made.exitCode === 0 ? device : '/dev/null', ...(madeBlock.exitCode === 0 ? {block} : {}), socket: sock}, server}
}

describe('files are what they claim', () => {
  it('every file flag refuses a FIFO, a folder, a device and a socket at once (exit 2)', async () => {
    const {dir, env} = fleet
    const {files, server} = await specialFiles(join(dir, '..'))
    try {
      const flags = (f: string): Array<[string, string[], Record<string, string>?]> => [
        ['--evidence-key', [...PROMOTE, '--apply', '--evidence-key', f]],
        ['--key', ['image', 'sign', `agent-runner@${NEXT}`, '--key', f, '--apply']],
        ['--jwks', [...PROMOTE, '--jwt', 'x.y.z', '--jwks', f, '--issuer', 'i', '--audience', 'a']],
        ['--entities', ['authorize', '--principal', 'AgentKernel::User::"a"', '--action', 'AgentKernel::Action::"Promote"', '--resource', 'AgentKernel::Channel::"c"', '--entities', f]],
        ['--context', ['authorize', '--principal', 'AgentKernel::User::"a"', '--action', 'AgentKernel::Action::"Promote"', '--resource', 'AgentKernel::Channel::"c"', '--context', f]],
        ['--bundle', ['image', 'verify', `agent-runner@${NEXT}`, '--bundle', f]],
        ['apply FILE', ['apply', f], env],
        ['plan show FILE', ['plan', 'show', f]],
        ['policy verify FILE', ['policy', 'verify', f]],
        ['--runtime file:', ['align', '--runtime', `file:${f}`]],
      ]
      for (const [kind, f] of Object.entries(files)) {
        const rows = await Promise.all(flags(f).map(async ([flag, args, extra]) => [flag, await airlock([...args, '--json'], {cwd: dir, env: extra ?? {}})] as const))
        for (const [flag, r] of rows) {
          expect(r.exitCode, `${flag} ${kind}: ${r.stdout}`).toBe(2)
          expect(r.json.error.message, `${flag} ${kind}`).toMatch(/not a regular file|cannot read/)
        }
      }
    } finally {
      server.close()
    }
  })

  it('--out never replaces a device, a FIFO or a folder, nor writes through a symbolic link', async () => {
    const {dir} = fleet
    const {files, server} = await specialFiles(join(dir, '..'))
    const outside = join(dir, '..', 'outside.json')
    await writeFile(outside, 'keep')
    const link = join(dir, '..', 'link.json')
    await symlink(outside, link)
    try {
      for (const target of [files.device, files.fifo, files.folder, link]) {
        const r = await airlock([...PROMOTE, '--out', target, '--json'], {cwd: dir})
        expect(r.exitCode, target).toBe(2)
        expect(r.json.error.code).toBe('TARGET_NOT_REGULAR')
      }
      if (files.device !== '/dev/null') expect((await stat(files.device)).isCharacterDevice()).toBe(true)
      expect(await readFile(outside, 'utf8')).toBe('keep')
    } finally {
      server.close()
    }
  })

  it('refuses evidence, manifests, policies or bundles that are symbolic links, committed or only in the work tree', async () => {
    const {dir, env} = fleet
    const outside = join(dir, '..', 'elsewhere')
    for (const folder of ['docs/evidence', 'manifests', 'policies', 'bundles']) {
      await rm(outside, {recursive: true, force: true})
      await mkdir(outside)
      const before = await head(dir)
      const abs = join(dir, folder)
      const linkFolder = async () => {
        await execa('cp', ['-a', `${abs}/.`, outside], {reject: false})
        await rm(abs, {recursive: true, force: true})
        await symlink(outside, abs)
      }
      await linkFolder()
      // Only in the work tree: an apply that would write through the link refuses before it
      // commits anything (one that reads policies from the commit and writes elsewhere may go on).
      const listed = await readdir(outside)
      const work = await airlock([...PROMOTE, '--apply', '--json'], {cwd: dir, env})
      if (folder === 'docs/evidence' || folder === 'manifests') {
        expect(work.exitCode, folder).toBe(2)
        expect(work.json.error.code, folder).toBe('PATH_OUTSIDE_REPO')
      }
      expect(await readdir(outside), folder).toEqual(listed)
      await rm(abs, {force: true})
      await git(dir, 'reset', '-q', '--hard', before)
      await linkFolder()
      // Committed: the history no longer verifies, and nothing is built on it.
      await git(dir, 'add', '-A', folder)
      await git(dir, 'commit', '-q', '-m', `${folder} as a link`)
      const committed = await airlock([...PROMOTE, '--apply', '--json'], {cwd: dir, env})
      expect(committed.exitCode, folder).not.toBe(0)
      const verify = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
      expect(verify.exitCode, folder).toBe(1)
      expect(verify.json.problems.map((p: {code: string}) => p.code), folder).toContain('NOT_A_FOLDER')
      expect((await readdir(outside)).filter((n) => n.includes('promote'))).toEqual([])
      await git(dir, 'reset', '-q', '--hard', before)
      await rm(abs, {recursive: true, force: true})
      await git(dir, 'checkout', '-q', '--', '.')
    }
  })

  it('refuses NAME.yaml and NAME.yml for one image', async () => {
    const {dir, env} = fleet
    await writeFile(join(dir, 'manifests/images/agent-runner.yml'), await readFile(join(dir, IMAGE), 'utf8'))
    const change = await airlock(['change', '--json'], {cwd: dir, env})
    expect(change.exitCode).toBe(2)
    expect(change.json.error.message).toMatch(/also defined by manifests\/images\/agent-runner\.yaml/)
    await git(dir, 'add', 'manifests/images/agent-runner.yml')
    await git(dir, 'commit', '-q', '-m', 'twin')
    for (const args of [['status'], PROMOTE]) {
      const r = await airlock([...args, '--json'], {cwd: dir, env})
      expect(r.exitCode).toBe(2)
      expect(r.json.error.message).toMatch(/one file per image/)
    }
  })
})

describe('linear-time patterns and depth limits', () => {
  it('a repository name built to backtrack is refused at once', async () => {
    const {dir, env} = fleet
    const text = await readFile(join(dir, IMAGE), 'utf8')
    const evil = `a.a-a${'a.0a-0'.repeat(40)}a`
    await writeFile(join(dir, IMAGE), text.replace(/repository: .*/, `repository: "${evil}"`))
    const r = await airlock(['change', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe('SCHEMA_VIOLATION')
  })

  it('refuses Cedar, plans, entities and YAML nested too deeply (TOO_LARGE, exit 2)', async () => {
    const {dir, env} = fleet
    const deep = 50_000
    await writeFile(join(dir, 'policies/global/deep.cedar'), `permit(principal, action, resource) when { ${'('.repeat(deep)}true${')'.repeat(deep)} };\n`)
    const cedar = await airlock(['policy', 'validate', '--json'], {cwd: dir})
    expect(cedar.exitCode).toBe(2)
    expect(cedar.json.error.code).toBe('TOO_LARGE')
    const change = await airlock(['change', '--json'], {cwd: dir, env})
    expect(change.exitCode).toBe(2)
    await rm(join(dir, 'policies/global/deep.cedar'))
    const plan = join(dir, '..', 'deep-plan.json')
    await writeFile(plan, `{"apiVersion":"airlock/v1","kind":"Plan","x":${'['.repeat(5000)}1${']'.repeat(5000)}}`)
    const shown = await airlock(['plan', 'show', plan, '--json'], {cwd: dir})
    expect(shown.exitCode).toBe(2)
    expect(shown.json.error.code).toBe('TOO_LARGE')
    const entities = join(dir, '..', 'deep.json')
    await writeFile(entities, `${'['.repeat(20_000)}${']'.repeat(20_000)}`)
    const authz = await airlock(['authorize', '--principal', 'AgentKernel::User::"a"', '--action', 'AgentKernel::Action::"Promote"', '--resource', 'AgentKernel::Channel::"c"', '--entities', entities, '--json'], {cwd: dir})
    expect(authz.exitCode).toBe(2)
    expect(authz.json.error.code).toBe('TOO_LARGE')
    await writeFile(join(dir, 'manifests/trust.yaml'), `a: ${'['.repeat(20_000)}1${']'.repeat(20_000)}\n`)
    const yaml = await airlock(['change', '--json'], {cwd: dir, env})
    expect(yaml.exitCode).toBe(2)
    expect(yaml.json.error.code).toBe('TOO_LARGE')
  })
})

describe('errors decided in one place', () => {
  it('prototype keys in flags are invalid input, never internal errors', async () => {
    const {dir, env} = fleet
    const cases = [
      ['promote', 'agent-runner', '--to', '__proto__', '--digest', NEXT],
      ['promote', 'agent-runner', '--from', 'toString', '--to', 'stable'],
      ['promote', 'agent-runner', '--from', 'constructor', '--to', 'stable'],
      ['promote', '__proto__', '--to', 'canary', '--digest', NEXT],
      ['rollback', 'agent-runner', '--channel', '__proto__', '--reason', 'x'],
      ['rollback', 'agent-runner', '--channel', 'hasOwnProperty', '--reason', 'x'],
      ['status', 'constructor'],
      ['align', 'agent-runner', '--channel', '__proto__', '--runtime', 'file:/nonexistent'],
    ]
    for (const args of cases) {
      const r = await airlock([...args, '--json'], {cwd: dir, env})
      expect(r.exitCode, args.join(' ')).toBe(2)
      expect(r.json.error.code, args.join(' ')).toMatch(/UNKNOWN_CHANNEL|UNKNOWN_IMAGE|USAGE|INVALID_INPUT/)
    }
  })

  it('prototype keys in JSON and YAML input are unknown fields, never prototypes', async () => {
    const {dir, env} = fleet
    const ctx = join(dir, '..', 'ctx.json')
    await writeFile(ctx, '{"__proto__": {"mfa_verified": true}}')
    const ent = join(dir, '..', 'ent.json')
    await writeFile(ent, '[{"uid": {"type": "AgentKernel::User", "id": "a"}, "attrs": {"__proto__": {"roles": ["release-manager"]}}, "parents": []}]')
    const ask = ['authorize', '--principal', 'AgentKernel::User::"a"', '--action', 'AgentKernel::Action::"Promote"', '--resource', 'AgentKernel::Channel::"agent-runner/stable"']
    for (const extra of [['--context', ctx], ['--entities', ent]]) {
      const r = await airlock([...ask, ...extra, '--json'], {cwd: dir})
      expect(r.exitCode, extra[0]).toBe(2)
      expect(r.json.error.message, extra[0]).toMatch(/__proto__/)
    }
    const trust = await readFile(join(dir, 'manifests/trust.yaml'), 'utf8')
    await writeFile(join(dir, 'manifests/trust.yaml'), trust.replace(/^  thresholds:/m, '  __proto__: {evidence: 0}\n  thresholds:'))
    const t = await airlock(['change', '--json'], {cwd: dir, env})
    expect(t.exitCode).toBe(2)
    expect(t.json.error).toMatchObject({code: 'SCHEMA_VIOLATION', details: {field: 'spec.__proto__'}})
    await writeFile(join(dir, 'manifests/trust.yaml'), trust)
    const out = join(dir, '..', 'proto-plan.json')
    await savedPlan(out)
    const plan = JSON.parse(await readFile(out, 'utf8'))
    const {digest: _d, ...rest} = {...plan, request: JSON.parse(`{"__proto__": {"kind": "init"}, ${JSON.stringify(plan.request).slice(1)}`)}
    await writeFile(out, JSON.stringify({...rest, digest: digestOfJson(rest)}))
    const p = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(p.exitCode).toBe(2)
    expect(p.json.error.code).toBe('PLAN_INVALID')
  })

  it('malformed bundles, an empty .git and invalid policies are exit 2 with the JSON error shape', async () => {
    const {dir} = fleet
    const envelope = {payloadType: 'application/vnd.airlock.policy-bundle.v1+json', payload: Buffer.from('{}').toString('base64'), signatures: [{keyid: 'k'.repeat(64), sig: 'c2ln'}]}
    const numeric = join(dir, '..', 'numeric.json')
    await writeFile(numeric, JSON.stringify({...envelope, signatures: [{keyid: envelope.signatures[0].keyid, sig: 12345}]}))
    const nokeyid = join(dir, '..', 'nokeyid.json')
    await writeFile(nokeyid, JSON.stringify({...envelope, signatures: [{sig: envelope.signatures[0].sig}]}))
    for (const f of [numeric, nokeyid]) {
      const r = await airlock(['policy', 'verify', f, '--json'], {cwd: dir})
      expect(r.exitCode, f).toBe(2)
      expect(r.json.error.message).toMatch(/signatures\[0\]\.(sig|keyid) must be a string/)
    }
    const empty = join(dir, '..', 'empty')
    await mkdir(join(empty, '.git'), {recursive: true})
    const e = await airlock(['status', '--json'], {cwd: empty})
    expect(e.exitCode).toBe(2)
    expect(e.json.error.code).toBe('NOT_A_REPOSITORY')
    await writeFile(join(dir, 'policies/global/broken.cedar'), 'permit(principal, action, resource) when { principal.nope };\n')
    const v = await airlock(['policy', 'validate', '--json'], {cwd: dir})
    expect(v.exitCode).toBe(2)
    expect(v.json.error).toMatchObject({code: 'INVALID_POLICY_SOURCE', details: {problems: expect.any(Array)}})
  })

  it('authorize --batch answers a bad line with the error shape, details included, and exits 2', async () => {
    const {dir} = fleet
    const lines = ['{"principal": "AgentKernel::User::\\"a\\"", "action": "AgentKernel::Action::\\"Promote\\"", "resource": "AgentKernel::Channel::\\"c\\""}', '{"principal": 5', '{"__proto__": {"x": 1}}']
    const r = await execa('node_modules/node/bin/node', ['bin/run.js', 'authorize', '--batch', '--policies', join(dir, 'policies'), '--json'], {input: lines.join('\n'), reject: false, cwd: join(__dirname, '..', '..')})
    outputs.push(r.stdout + r.stderr)
    expect(r.exitCode).toBe(2)
    const out = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))
    expect(out[0].decision).toMatch(/allow|deny/)
    expect(out[1].error).toMatchObject({code: 'INVALID_INPUT', message: expect.any(String), details: expect.any(Object)})
    expect(out[2].error.code).toMatch(/INVALID_INPUT|USAGE/)
  })
})
