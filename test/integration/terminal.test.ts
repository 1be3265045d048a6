/**
 * Human output a hostile repository, plan file, server or token cannot drive: every control class
 * (C0 with ESC, CR and BS; DEL; C1 with the 8-bit CSI; the bidirectional overrides and isolates)
 * fed through the renderers that show it reaches neither stdout nor stderr raw. Then the seams:
 * `plan show` shows what a saved plan's request computes now, not what the file claims; a
 * reader that stops early ends the output quietly; `status` warns of private keys git would commit.
 */
import {spawn} from 'node:child_process'
import {createServer, type Server} from 'node:http'
import {createServer as createTcpServer} from 'node:net'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {airlock, BIN, git, NODE, type CliResult, fleetCopies, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
/** One of each control class; NUL only where a file can carry it (argv and environment cannot). */
const CONTROLS = '\u001b[2J\u001b[H\r\b\u0007\u007f\u009b31m\u0085\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069'
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

function clean(r: CliResult, what: string): void {
  expect(r.stdout, `${what}: stdout`).not.toMatch(RAW)
  expect(r.stderr, `${what}: stderr`).not.toMatch(RAW)
}

/** A saved plan edited and resealed with airlock's own code, as a proposer could: the receipt path, then the digest. */
async function reseal(file: string, edit: (plan: any) => void, slug: string | null): Promise<void> {
  const plan = JSON.parse(await readFile(file, 'utf8'))
  edit(plan)
  const [{digestOfJson}, {receiptPathFor}] = await Promise.all([import('../../control-plane/crypto/digest.js'), import('../../control-plane/evidence/receipt.js')])
  const {digest: _d, receiptPath: _r, ...unsigned} = plan
  // slug null: the receipt path kept as the pipeline computed it (which apply compares).
  if (slug !== null) plan.receiptPath = plan.changes.length ? receiptPathFor(unsigned, slug) : null
  const {digest: _d2, ...rest} = plan
  await writeFile(file, JSON.stringify({...rest, digest: digestOfJson(rest)}))
}

async function serve(handler: Parameters<typeof createServer>[0]): Promise<{server: Server; port: number}> {
  const server = createServer(handler)
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  return {server, port: (server.address() as AddressInfo).port}
}

let fleet: Fleet
const fleets = fleetCopies({sign: [NEXT]})
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
})
afterEach(() => fleet.cleanup())

describe('every control class, through each renderer', () => {
  it('status: a commit author cannot overwrite the history line', async () => {
    const {dir} = fleet
    const file = join(dir, 'manifests/images/agent-runner.yaml')
    await writeFile(file, (await readFile(file, 'utf8')).replace(/(canary:\n\s+digest: )sha256:[0-9a-f]{64}/, `$1${NEXT}`))
    const who = `Eve${CONTROLS}\u001b[1A\rhistory VERIFIED`
    await execa('git', ['commit', '-qam', `hand edit ${CONTROLS}`], {cwd: dir, env: {GIT_AUTHOR_NAME: who, GIT_AUTHOR_EMAIL: 'eve@example.com', GIT_COMMITTER_NAME: who, GIT_COMMITTER_EMAIL: 'eve@example.com'}})
    const r = await airlock(['status'], {cwd: dir})
    clean(r, 'status')
    expect(r.stdout).toMatch(/^history UNVERIFIED/m)
    expect(r.stdout).toContain('authored by  Eve\\x1b[2J')
    // --json is JSON's own escaping, unchanged.
    const j = await airlock(['status', '--json'], {cwd: dir})
    expect(JSON.stringify(j.json)).toContain('Eve\\u001b[2J')
  })

  it('plan show: Cedar file content in a handed-over diff, and a reason edited into the plan', async () => {
    const {dir, env} = fleet
    await writeFile(join(dir, 'policies/global/notes.cedar'), `// ${CONTROLS}\u0000 approved by security\n// \u001b[8A\u001b[J~ nothing to see\npermit(principal, action, resource) when { false };\n`)
    const out = join(dir, '..', 'change.json')
    const saved = await airlock(['change', '--reason', `tidy \u202eup`, '--out', out], {cwd: dir, env})
    expect(saved.exitCode, saved.stderr).toBe(0)
    clean(saved, 'change --out')
    const shown = await airlock(['plan', 'show', out], {cwd: dir})
    clean(shown, 'plan show')
    expect(shown.stdout).toContain('+// \\x1b[2J')
    // The same plan with a reason no request could carry: shown as the file's claim, escaped.
    await reseal(out, (p) => void (p.reason = `ok\u001b[2K\r${CONTROLS}\napproved by the CISO`), 'change')
    const edited = await airlock(['plan', 'show', out], {cwd: dir})
    clean(edited, 'plan show (edited reason)')
    expect(edited.stdout).toMatch(/NOT RECOMPUTED/)
    expect(edited.stdout).not.toMatch(/^approved by the CISO/m)
  })

  it('errors and plans naming an image, a digest or a principal from a token', async () => {
    const {dir, env} = fleet
    const image = await airlock(['promote', `agent${CONTROLS}runner`, '--digest', NEXT, '--to', 'canary'], {cwd: dir, env})
    expect(image.exitCode).toBe(2)
    clean(image, 'promote (image name)')
    expect(image.stderr).toContain('agent\\x1b[2J')
    const verify = await airlock(['image', 'verify', `registry.example.com/golden/x${CONTROLS}@${NEXT}`], {cwd: dir})
    clean(verify, 'image verify')
    // A verified token whose subject carries bidirectional controls (identity text lets them through).
    const {generateKeyPair, exportJWK, SignJWT} = await import('jose')
    const {publicKey, privateKey} = await generateKeyPair('ES256')
    const jwks = join(dir, '..', 'jwks.json')
    await writeFile(jwks, JSON.stringify({keys: [{...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256'}]}))
    const jwt = await new SignJWT({sub: 'dana\u202egnp.exe\u2066x\u2069'}).setProtectedHeader({alg: 'ES256', kid: 'k1'}).setIssuer('https://idp.example.com').setAudience('airlock').setIssuedAt().setExpirationTime('10m').sign(privateKey)
    const plan = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--jwt', jwt, '--jwks', jwks, '--issuer', 'https://idp.example.com', '--audience', 'airlock'], {cwd: dir, env})
    clean(plan, 'promote (JWT subject)')
    expect(plan.stdout + plan.stderr).toContain('dana\\u{202e}gnp.exe')
  })

  it('authorize: a policy id (a Cedar annotation) and evaluation errors', async () => {
    const {dir} = fleet
    const policies = join(dir, '..', 'hostile-policies')
    await mkdir(join(policies, 'global'), {recursive: true})
    await writeFile(join(policies, 'global', 'p.cedar'), `@id("allow\u001b[2J\u009b31m\u202e\u2066")\npermit(principal, action, resource);\n@id("err\u001b[2J\u009b31m\u202e\u2067")\nforbid(principal, action, resource) when { context.missing${''} == 1 };\n`)
    const r = await airlock(['authorize', '--policies', policies, '--principal', 'AgentKernel::User::"a"', '--action', 'AgentKernel::Action::"Run"', '--resource', 'AgentKernel::Sandbox::"s"'], {cwd: dir})
    clean(r, 'authorize')
    expect(r.stdout).toContain('error  err\\x1b[2J\\x9b31m\\u{202e}')
  })

  it('--json and authorize --batch: C1, DEL and the bidirectional controls JSON.stringify leaves raw are \\u escapes, the same JSON', async () => {
    const {dir} = fleet
    const name = `read${CONTROLS}file`
    const tool = await airlock(['tool', 'check', name, '--params', '{}', '--json'], {cwd: dir})
    expect(tool.exitCode).toBe(1)
    clean(tool, 'tool check --json')
    expect(tool.json.tool).toBe(name)
    const policies = join(dir, '..', 'hostile-policies')
    await mkdir(join(policies, 'global'), {recursive: true})
    await writeFile(join(policies, 'global', 'p.cedar'), `@id("allow\u009b31m\u202e\u007f")\npermit(principal, action, resource);\n`)
    const line = JSON.stringify({principal: 'AgentKernel::User::"a"', action: 'AgentKernel::Action::"Run"', resource: 'AgentKernel::Sandbox::"s"'})
    for (const json of [[], ['--json']]) {
      const r = await execa(NODE, [BIN, 'authorize', '--batch', '--policies', policies, ...json], {cwd: dir, input: `${line}\n{"principal": "\u009b2J\u2066"}\n`, reject: false})
      const out = {exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), json: undefined}
      clean(out, `authorize --batch ${json.join(' ')}`)
      const [first, second] = out.stdout.trim().split('\n').map((l) => JSON.parse(l))
      expect(first.reasons).toEqual(['allow\u009b31m\u202e\u007f'])
      expect(second.error.code).toBeDefined()
    }
  })

  it('policy pull: what a bundle server answers', async () => {
    const {dir} = fleet
    const {server, port} = await serve((_req, res) => res.writeHead(200, {'content-type': 'application/json'}).end(`\u001b[2J\u001b[H${CONTROLS} all policies verified`))
    try {
      const r = await airlock(['policy', 'pull', '--server', `http://127.0.0.1:${port}`, '--scope', 'global', '--cache-dir', join(dir, '..', 'cache')], {cwd: dir})
      expect(r.exitCode).toBe(1)
      clean(r, 'policy pull')
    } finally {
      server.close()
    }
  })

  it('image fetch-signature: what a registry says in its challenge', async () => {
    const {dir, env, imageKey} = fleet
    // A loopback registry that challenges with a token realm of C1 bytes (header values are bytes; Node's own server would refuse to send them).
    const server = createTcpServer((socket) => socket.end(Buffer.from('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="\u009b2J\u0085\u00e2\u0080\u00ae x"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'latin1')))
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    const port = (server.address() as AddressInfo).port
    try {
      const local = `127.0.0.1:${port}/golden/local`
      await writeFile(join(dir, 'manifests/images/local.yaml'), `apiVersion: airlock/v1\nkind: GoldenImage\nmetadata:\n  name: local\nspec:\n  repository: ${local}\n  tier: 2\n  channels:\n    canary:\n      digest: ${NEXT}\n      previous: null\n`)
      expect((await airlock(['image', 'sign', `local@${NEXT}`, '--key', imageKey, '--apply'], {cwd: dir, env})).exitCode).toBe(0)
      const c = await airlock(['change', '--reason', 'a local image', '--apply'], {cwd: dir, env})
      expect(c.exitCode, c.stderr).toBe(0)
      const r = await airlock(['image', 'fetch-signature', `${local}@${NEXT}`, '--plain-http'], {cwd: dir, env})
      expect(r.exitCode).not.toBe(0)
      expect(r.stderr).toContain('the token realm "\\x9b2J\\x85')
      clean(r, 'fetch-signature')
    } finally {
      server.close()
    }
  })

  it('evidence show: a receipt statement with controls JSON does not escape', async () => {
    const {dir, env} = fleet
    const p = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', `canary \u202eok\u2066`, '--apply'], {cwd: dir, env})
    expect(p.exitCode, p.stderr).toBe(0)
    for (const args of [['evidence', 'show', 'promote'], ['evidence', 'list'], ['status']]) clean(await airlock(args, {cwd: dir}), args.join(' '))
  })
})

describe('plan show claims only what holds', () => {
  /**
   * The canary promotion of NEXT saved with `promote --out`, written to `out`. Every test's fleet
   * is a copy of one fleet (the same commits), so the plan saved in the first test that asks is
   * the plan of each; the others get that file instead of saving it again.
   */
  let saved: string | undefined
  async function savedPlan(out: string): Promise<void> {
    if (saved === undefined) {
      const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--out', out], {cwd: fleet.dir})
      expect(r.exitCode, r.stderr).toBe(0)
      saved = await readFile(out, 'utf8')
    } else await writeFile(out, saved)
  }

  it('shows what the request computes now, not a decision edited to deny', async () => {
    const {dir, env} = fleet
    const out = join(dir, '..', 'plan.json')
    await savedPlan(out)
    await reseal(out, (p) => void (p.authorization = {...p.authorization, decision: 'deny', reasons: [], note: 'refused by policy'}), null)
    const shown = await airlock(['plan', 'show', out], {cwd: dir})
    expect(shown.exitCode, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(/authorization {3}ALLOW/)
    expect(shown.stdout).not.toMatch(/would be refused/)
    const json = await airlock(['plan', 'show', out, '--json'], {cwd: dir})
    expect(json.json).toMatchObject({saved: {authorization: {decision: 'deny'}}, recomputed: {authorization: {decision: 'allow'}}, matches: true, refusal: null})
    // And apply agrees with what plan show said.
    expect((await airlock(['apply', out, '--json'], {cwd: dir, env})).exitCode).toBe(0)
  })

  it('shows the changes a request makes, not changes emptied from the file (and apply refuses it)', async () => {
    const {dir, env} = fleet
    const out = join(dir, '..', 'plan.json')
    await savedPlan(out)
    await reseal(out, (p) => void (p.changes = []), 'agent-runner-canary')
    const shown = await airlock(['plan', 'show', out], {cwd: dir})
    expect(shown.exitCode).toBe(1)
    expect(shown.stdout).not.toMatch(/No changes/)
    expect(shown.stdout).toMatch(/NOT THE SAME: the file's changes, receiptPath differ/)
    expect(shown.stdout).toContain(`+      digest: ${NEXT}`)
    expect(shown.stdout).toMatch(/would refuse this saved plan now \(PLAN_MISMATCH/)
    const json = await airlock(['plan', 'show', out, '--json'], {cwd: dir})
    expect(json.json).toMatchObject({matches: false, differs: ['changes', 'receiptPath'], refusal: {code: 'PLAN_MISMATCH'}})
    const applied = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(applied.json.error.code).toBe('PLAN_MISMATCH')
  })

  it('labels a stale plan as the file\'s claims', async () => {
    const {dir} = fleet
    const out = join(dir, '..', 'plan.json')
    await savedPlan(out)
    await git(dir, 'commit', '-q', '--allow-empty', '-m', 'moves HEAD')
    const shown = await airlock(['plan', 'show', out], {cwd: dir})
    expect(shown.exitCode).toBe(1)
    expect(shown.stdout).toMatch(/NOT RECOMPUTED \(STALE_PLAN/)
    expect(shown.stdout).toMatch(/what the file claims, not what airlock computed/)
  })
})

describe('small seams', () => {
  /** Runs the CLI with its stdout (and maybe stderr) read by nobody: the pipe is closed at once. */
  function closedPipe(args: string[], cwd: string, closeStderr = false): Promise<{code: number | null; stderr: string}> {
    return new Promise((done) => {
      const child = spawn(NODE, [BIN, ...args], {cwd, stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}})
      child.stdout.destroy()
      if (closeStderr) child.stderr.destroy()
      let stderr = ''
      child.stderr.on('data', (d) => (stderr += d))
      child.on('close', (code) => done({code, stderr}))
    })
  }

  it('ends quietly, with the command\'s own exit code, when the reader stops early (| head -1)', async () => {
    const {dir} = fleet
    for (const args of [['status'], ['--help'], ['evidence', 'list'], ['status', '--json']]) {
      const r = await closedPipe(args, dir)
      expect(r, args.join(' ')).toEqual({code: 0, stderr: ''})
    }
    expect(await closedPipe(['evidence', 'show', 'nothing-matches'], dir, true)).toMatchObject({code: 2})
    const shell = await execa('sh', ['-c', `"${NODE}" "${BIN}" status | head -1`], {cwd: dir, reject: false})
    expect(shell.stderr).toBe('')
  })

  it('status warns of a private key git would commit, by git\'s own ignore rules', async () => {
    const {dir} = fleet
    const quiet = await airlock(['status', '--json'], {cwd: dir})
    expect(quiet.json.exposedKeys).toEqual([])
    await mkdir(join(dir, 'deploy'))
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', join(dir, 'deploy', 'id_ed25519')])
    const r = await airlock(['status'], {cwd: dir})
    expect(r.exitCode).toBe(0)
    expect(r.stderr).toMatch(/warning: deploy\/id_ed25519 holds a private key and is not ignored by git/)
    // Ignored in .git/info/exclude: git's rule, so no warning.
    await writeFile(join(dir, '.git/info/exclude'), 'deploy/id_ed25519\n')
    expect((await airlock(['status', '--json'], {cwd: dir})).json.exposedKeys).toEqual([])
    // The scaffold's .gitignore emptied: airlock's own keys are exposed; one committed is tracked.
    await writeFile(join(dir, '.gitignore'), '')
    await writeFile(join(dir, 'manifests', 'leak.txt'), `notes\n${await readFile(fleet.key, 'utf8')}`)
    await git(dir, 'add', 'manifests/leak.txt')
    const j = await airlock(['status', '--json'], {cwd: dir})
    expect(j.json.exposedKeys).toEqual(expect.arrayContaining([{path: 'keys/evidence.key', tracked: false}, {path: 'keys/image.key', tracked: false}, {path: 'manifests/leak.txt', tracked: true}]))
    expect(j.json.exposedKeys.map((k: {path: string}) => k.path)).not.toContain('deploy/id_ed25519.pub')
    // Other tools' private keys: OpenPGP, SSH2 (RFC 4716), PuTTY.
    await writeFile(join(dir, 'deploy', 'signing.asc'), '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----\n')
    await writeFile(join(dir, 'deploy', 'ssh2.key.txt'), '---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\r\nP2/56w==\r\n---- END SSH2 ENCRYPTED PRIVATE KEY ----\r\n')
    await writeFile(join(dir, 'deploy', 'id.ppk'), 'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPrivate-Lines: 1\nAAAA\n')
    const others = (await airlock(['status', '--json'], {cwd: dir})).json.exposedKeys.map((k: {path: string}) => k.path)
    expect(others).toEqual(expect.arrayContaining(['deploy/signing.asc', 'deploy/ssh2.key.txt', 'deploy/id.ppk']))
  })
})
