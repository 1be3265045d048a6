/**
 * The tool commands on a fleet made by `airlock init` (which scaffolds a restrictive
 * manifests/tool-policy.yaml): list, check, hash and approve as real processes, approvals signed
 * with a real approval key added through the pipeline, and tool-policy changes validated,
 * authorized as ToolPolicy and signed.
 */
import {mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {airlock, commitChange, git, gonePid, initFleet} from '../helpers.js'

/** The cloud metadata services' names (written out: the test states the set, not the code). */
const METADATA_NAMES = ['instance-data', 'instance-data.ec2.internal', 'metadata', 'metadata.google.internal', 'metadata.goog', 'metadata.azure.internal']
/** The scaffold's path pattern. */
const WORKSPACE_PATH_PATTERN = String.raw`^/workspace(?![\s\S]*/\.\.(?:/|$))/[^\u0000-\u001f\u007f]*$`

let fleet: Awaited<ReturnType<typeof initFleet>>
let approvalKey: string
/** The host's store of used approvals, in the test's own folder (never the user's ~/.local/state). */
let state: {AIRLOCK_STATE_DIR: string}
beforeAll(async () => {
  fleet = await initFleet()
  state = {AIRLOCK_STATE_DIR: join(fleet.dir, '..', 'state')}
  approvalKey = join(fleet.dir, 'keys', 'approver.key')
  const r = await airlock(['keys', 'generate', 'approver', '--role', 'approval', '--reason', 'tool-call approvals', '--apply'], {cwd: fleet.dir, env: fleet.env})
  if (r.exitCode !== 0) throw new Error(r.stderr)
})
afterAll(() => fleet.cleanup())

const pr = JSON.stringify({repository: 'acme/fleet', title: 'Bump the runner'})

describe('airlock tool', () => {
  it('list shows only the tools an agent may call: denied ones are absent', async () => {
    const r = await airlock(['tool', 'list', '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(0)
    expect(r.json.tools.map((t: {name: string}) => t.name)).toEqual(['read_file', 'write_file', 'http_get', 'open_pull_request'])
    expect(r.json.tools[3]).toMatchObject({risk: 'L3', approval: true, sideEffects: ['external-write']})
    const text = await airlock(['tool', 'list'], {cwd: fleet.dir})
    expect(text.stdout).not.toMatch(/shell_exec|read_secret/)
  })

  it('check: allow (0), deny (1) with the rule, needs_approval (1)', async () => {
    const ok = await airlock(['tool', 'check', 'read_file', '--params', '{"path": "/workspace/notes.md"}', '--json'], {cwd: fleet.dir})
    expect(ok.exitCode).toBe(0)
    expect(ok.json).toMatchObject({decision: 'allow', rule: 'spec.allow[0] read_file', policy: 'manifests/tool-policy.yaml', policyHash: expect.stringMatching(/^sha256:/)})
    const denied = await airlock(['tool', 'check', 'shell_exec', '--params', '{"cmd": "id"}'], {cwd: fleet.dir})
    expect(denied.exitCode).toBe(1)
    expect(denied.stdout).toBe('DENY shell_exec\n  rule spec.deny[0] shell_exec (arbitrary commands)')
    const unknown = await airlock(['tool', 'check', 'format_disk', '--params', '{}', '--json'], {cwd: fleet.dir})
    expect(unknown.json).toMatchObject({decision: 'deny', rule: 'spec.failClosed.unknownTool: format_disk is not in spec.allow'})
    const ask = await airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--json'], {cwd: fleet.dir})
    expect(ask.exitCode).toBe(1)
    expect(ask.json).toMatchObject({decision: 'needs_approval', rule: 'spec.allow[3].approval: required', paramsDigest: expect.stringMatching(/^sha256:/)})
  })

  it('refuses parameters that are not one JSON object as written: duplicate keys (2), huge ones denied by size (1)', async () => {
    const dup = await airlock(['tool', 'check', 'read_file', '--params', '{"path": "/workspace/a", "path": "/etc/shadow"}', '--json'], {cwd: fleet.dir})
    expect(dup.exitCode).toBe(2)
    expect(dup.json.error.message).toMatch(/--params: not valid JSON \(Duplicate key 'path'/)
    const file = join(fleet.dir, 'huge.json')
    await writeFile(file, JSON.stringify({path: '/workspace/a', content: 'x'.repeat(600_000)}))
    const huge = await airlock(['tool', 'check', 'write_file', '--params', `@${file}`, '--json'], {cwd: fleet.dir})
    expect(huge.exitCode).toBe(1)
    expect(huge.json.rule).toMatch(/^spec\.maxParamsBytes: the parameters are 6000\d\d bytes, the limit is 524288$/)
    const proto = await airlock(['tool', 'check', 'read_file', '--params', '{"path": "/workspace/a", "__proto__": {"admin": true}}', '--json'], {cwd: fleet.dir})
    expect(proto.json).toMatchObject({decision: 'deny', rule: 'params/__proto__: a prototype key (__proto__, constructor, prototype) is never accepted'})
  })

  it('approve makes a token for exactly one call; check allows that call with it once, and nothing else', async () => {
    const approve = async () => {
      const made = await airlock(['tool', 'approve', 'open_pull_request', '--params', pr, '--reason', 'release bump', '--approval-key', approvalKey, '--ttl', '10m'], {cwd: fleet.dir})
      expect(made.exitCode).toBe(0)
      return made.stdout.trim()
    }
    const token = await approve()
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
    // Other parameters: denied, and the approval is not used up by the attempt.
    const other = await airlock(['tool', 'check', 'open_pull_request', '--params', JSON.stringify({repository: 'acme/fleet', title: 'Something else'}), '--approval', token, '--json'], {cwd: fleet.dir, env: state})
    expect(other.exitCode).toBe(1)
    expect(other.json.rule).toMatch(/^approval: it approves parameters sha256:/)
    const ok = await airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--approval', token, '--json'], {cwd: fleet.dir, env: state})
    expect(ok.exitCode).toBe(0)
    expect(ok.json).toMatchObject({decision: 'allow', approval: {approvedBy: expect.any(String), keyids: [expect.stringMatching(/^[0-9a-f]{64}$/)], nonce: expect.any(String)}})
    expect(ok.json.approvalUsed).toBe(join(state.AIRLOCK_STATE_DIR, 'used-approvals', ok.json.approval.nonce))
    // Same parameters, other spacing and key order: the same call (with a fresh approval).
    const same = await airlock(['tool', 'check', 'open_pull_request', '--params', '{ "title": "Bump the runner", "repository": "acme/fleet" }', '--approval', await approve()], {cwd: fleet.dir, env: state})
    expect(same.exitCode).toBe(0)
  })

  it('an approval used twice: the second use is APPROVAL_REPLAYED (exit 1)', async () => {
    const token = (await airlock(['tool', 'approve', 'open_pull_request', '--params', pr, '--approval-key', approvalKey], {cwd: fleet.dir})).stdout.trim()
    const first = await airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--approval', token, '--json'], {cwd: fleet.dir, env: state})
    expect(first.exitCode).toBe(0)
    const again = await airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--approval', token, '--json'], {cwd: fleet.dir, env: state})
    expect(again.exitCode).toBe(1)
    expect(again.json.error).toMatchObject({code: 'APPROVAL_REPLAYED', message: expect.stringMatching(/already used at \S+ .*an approval allows one call/)})
    const text = await airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--approval', token], {cwd: fleet.dir, env: state})
    expect(text.exitCode).toBe(1)
    expect(text.stderr).not.toMatch(/\n\s+at /)
  })

  it('an approval used by several processes at once: exactly one is allowed', async () => {
    const token = (await airlock(['tool', 'approve', 'open_pull_request', '--params', pr, '--approval-key', approvalKey], {cwd: fleet.dir})).stdout.trim()
    const runs = await Promise.all(Array.from({length: 4}, () => airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--approval', token, '--json'], {cwd: fleet.dir, env: state})))
    expect(runs.map((r) => r.exitCode).sort()).toEqual([0, 1, 1, 1])
    for (const r of runs.filter((x) => x.exitCode === 1)) expect(r.json.error.code).toBe('APPROVAL_REPLAYED')
  })

  it('an approval after a checker crashed mid-consumption: what it left decides consistently, and wedges nothing', async () => {
    // Simulated: the state a checker killed between writing its entry and linking it leaves
    // (a temporary file of a pid that is gone). The approval was not consumed: one use allowed.
    const dir = join(fleet.dir, '..', 'crash-state')
    const token = (await airlock(['tool', 'approve', 'open_pull_request', '--params', pr, '--approval-key', approvalKey], {cwd: fleet.dir})).stdout.trim()
    const nonce = JSON.parse(Buffer.from(JSON.parse(Buffer.from(token, 'base64url').toString()).payload, 'base64').toString()).nonce
    await mkdir(join(dir, 'used-approvals'), {recursive: true})
    const leftover = `${nonce}.${await gonePid()}-0123456789ab.airlock-tmp`
    await writeFile(join(dir, 'used-approvals', leftover), JSON.stringify({nonce, usedAt: new Date().toISOString()}))
    const env = {AIRLOCK_STATE_DIR: dir}
    expect((await airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--approval', token], {cwd: fleet.dir, env})).exitCode).toBe(0)
    expect(await readdir(join(dir, 'used-approvals'))).toEqual([nonce])
    expect((await airlock(['tool', 'check', 'open_pull_request', '--params', pr, '--approval', token, '--json'], {cwd: fleet.dir, env})).json.error.code).toBe('APPROVAL_REPLAYED')
  })

  it('approve refuses a denied call and a key that is not a trusted approval key', async () => {
    const denied = await airlock(['tool', 'approve', 'shell_exec', '--params', '{}', '--approval-key', approvalKey, '--json'], {cwd: fleet.dir})
    expect(denied.exitCode).toBe(1)
    expect(denied.json.error.code).toBe('DENIED')
    const wrongKey = await airlock(['tool', 'approve', 'open_pull_request', '--params', pr, '--approval-key', fleet.key, '--json'], {cwd: fleet.dir})
    expect(wrongKey.exitCode).toBe(1)
    expect(wrongKey.json.error.code).toBe('UNKNOWN_KEY')
  })

  it('hash prints the canonical hash of the policy and of each schema, and of a schema file', async () => {
    const r = await airlock(['tool', 'hash', '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(0)
    const check = await airlock(['tool', 'check', 'read_file', '--params', '{"path": "/workspace/a"}', '--json'], {cwd: fleet.dir})
    expect(r.json.hash).toBe(check.json.policyHash)
    expect(r.json.tools.every((t: {matches: boolean}) => t.matches)).toBe(true)
    const schema = join(fleet.dir, 'schema.json')
    await writeFile(schema, `{"type": "object",\n "required": ["path"], "additionalProperties": false, "properties": {"path": {"type": "string", "maxLength": 4096, "pattern": ${JSON.stringify(WORKSPACE_PATH_PATTERN)}}}}`)
    const one = await airlock(['tool', 'hash', '--schema', schema, '--json'], {cwd: fleet.dir})
    expect(one.json.hash).toBe(r.json.tools[0].computed)
  })

  it('a tool-policy change goes through the pipeline: a drifted hash or a conflict is refused, a good one signed', async () => {
    const {dir, env} = fleet
    const file = join(dir, 'manifests/tool-policy.yaml')
    const before = await readFile(file, 'utf8')
    // The schema edited without its hash: refused, naming the line.
    await writeFile(file, before.replace('maxLength: 4096', 'maxLength: 8192'))
    const drift = await airlock(['change', '--json'], {cwd: dir, env})
    expect(drift.exitCode).toBe(2)
    expect(drift.json.error.message).toMatch(/^manifests\/tool-policy\.yaml:\d+:\d+: spec\.allow\[0\]\.schemaHash: the recorded hash sha256:\w+ is not the parameter schema's sha256:\w+/)
    await writeFile(file, before.replace('    - name: shell_exec\n', '    - name: read_file\n      reason: no reading\n    - name: shell_exec\n'))
    const conflict = await airlock(['change', '--json'], {cwd: dir, env})
    expect(conflict.exitCode).toBe(2)
    expect(conflict.json.error.message).toMatch(/spec\.allow\[0\]\.name: read_file is both allowed here and denied by spec\.deny\[0\] read_file; deny wins/)
    // Deny write_file: applied, signed, and the tool is gone from the list.
    await writeFile(file, before.replace('  deny:\n', '  deny:\n    - name: write_file\n      reason: read-only agents\n').replace(/ {4}- name: write_file\n(?: {6}.*\n)+/, ''))
    const plan = await airlock(['change', '--reason', 'read-only agents', '--json'], {cwd: dir, env})
    expect(plan.json.plan.authorization).toMatchObject({decision: 'allow', resource: 'AgentKernel::DesiredState::"ToolPolicy"'})
    await commitChange(dir, env, 'read-only agents')
    expect(await git(dir, 'cat-file', 'commit', 'HEAD')).toMatch(/^gpgsig -----BEGIN SSH SIGNATURE-----/m)
    const list = await airlock(['tool', 'list', '--json'], {cwd: dir})
    expect(list.json.tools.map((t: {name: string}) => t.name)).toEqual(['read_file', 'http_get', 'open_pull_request'])
    expect((await airlock(['tool', 'check', 'write_file', '--params', '{}', '--json'], {cwd: dir})).json.rule).toBe('spec.deny[0] write_file (read-only agents)')
    expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)
  })

  it('--policy FILE checks a file of the caller, reporting its problems on stderr', async () => {
    const dir = join(fleet.dir, 'scratch')
    await mkdir(dir, {recursive: true})
    const file = join(dir, 'tools.yaml')
    const hash = `sha256:${'0'.repeat(64)}`
    await writeFile(file, `apiVersion: airlock/v1\nkind: ToolPolicy\nmetadata:\n  name: t\nspec:\n  allow:\n    - name: t\n      risk: L0\n      sideEffects: []\n      parameters: {type: object}\n      schemaHash: ${hash}\n`)
    const r = await airlock(['tool', 'check', 't', '--params', '{}', '--policy', file], {cwd: dir})
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toMatch(/^DENY t\n {2}rule spec\.allow\[0\]\.schemaHash: the recorded hash sha256:0{64} is not the parameter schema's (sha256:[0-9a-f]{64})\n {2}recorded sha256:0{64}\n {2}computed sha256:[0-9a-f]{64}$/)
    expect(r.stderr).toMatch(new RegExp(`^airlock: warning: ${file.replaceAll('/', '\\/')}:11:19: spec\\.allow\\[0\\]\\.schemaHash: .* \\(t is denied\\)$`, 'm'))
  })

  it('the scaffolded read_file and write_file refuse .. in each position', async () => {
    const paths = ['../workspace/etc', '/workspace/..', '/workspace/../etc/passwd', '/workspace/a/../../etc/shadow', '/workspace/a/..', '/workspace/a/../..']
    const runs = await Promise.all(paths.map((path) => airlock(['tool', 'check', 'read_file', '--params', JSON.stringify({path}), '--json'], {cwd: fleet.dir})))
    for (const [i, r] of runs.entries()) {
      expect(r.exitCode, paths[i]).toBe(1)
      expect(r.json.rule, paths[i]).toMatch(/^spec\.allow\[0\]\.parameters: params\/path must match pattern/)
    }
    expect((await airlock(['tool', 'check', 'write_file', '--params', JSON.stringify({path: '/workspace/a/../../etc/cron.d/x', content: 'x'})], {cwd: fleet.dir})).exitCode).toBe(1)
  })

  it('the scaffolded http_get is held to the egress policy: each metadata name denied, naming the egress rule', async () => {
    const urls = METADATA_NAMES.map((n, i) => (i % 2 ? `https://${n.toUpperCase()}/latest/meta-data/` : `https://${n}./computeMetadata/v1/`))
    const runs = await Promise.all(urls.map((url) => airlock(['tool', 'check', 'http_get', '--params', JSON.stringify({url}), '--json'], {cwd: fleet.dir})))
    for (const [i, r] of runs.entries()) {
      expect(r.exitCode, urls[i]).toBe(1)
      expect(r.json.rule, urls[i]).toBe(`params/url: the egress policy (manifests/egress.yaml) denies ${METADATA_NAMES[i]}:443: default blocklist (cloud metadata) ${METADATA_NAMES[i]} (always denied)`)
    }
    const ok = await airlock(['tool', 'check', 'http_get', '--params', '{"url": "https://pypi.org/simple/"}', '--json'], {cwd: fleet.dir})
    expect(ok.json).toMatchObject({decision: 'allow', egress: [{param: 'params/url', rule: 'spec.allow[0] pypi.org'}]})
  })

  it('a path parameter that can escape its stated root is a PATH_ESCAPE finding: the tool is denied, the change refused', async () => {
    const dir = join(fleet.dir, 'lint')
    await mkdir(dir, {recursive: true})
    const file = join(dir, 'tools.yaml')
    const params = {type: 'object', properties: {path: {type: 'string', pattern: '^/workspace/'}}}
    const {schemaHash} = await import('../../control-plane/policy/tools/tools.js')
    await writeFile(file, `apiVersion: airlock/v1\nkind: ToolPolicy\nmetadata:\n  name: t\nspec:\n  allow:\n    - name: read_file\n      risk: L0\n      sideEffects: []\n      parameters: ${JSON.stringify(params)}\n      schemaHash: ${schemaHash(params)}\n`)
    const r = await airlock(['tool', 'check', 'read_file', '--params', '{"path": "/workspace/notes.md"}', '--policy', file, '--json'], {cwd: dir})
    expect(r.exitCode).toBe(1)
    expect(r.json.findings).toEqual([expect.objectContaining({code: 'PATH_ESCAPE', field: 'spec.allow[0].parameters.properties.path', line: 10})])
    expect(r.json.rule).toMatch(/^spec\.allow\[0\]\.parameters\.properties\.path: params\/path accepts "\/workspace\/\.\.", which can leave its stated root \/workspace\//)
    const text = await airlock(['tool', 'check', 'read_file', '--params', '{"path": "/workspace/notes.md"}', '--policy', file], {cwd: dir})
    expect(text.stderr).toMatch(/^airlock: warning: .*tools\.yaml:10:\d+: spec\.allow\[0\]\.parameters\.properties\.path: params\/path accepts/m)
    // The same schema committed to the fleet is refused by `change`, naming the line.
    const fleetFile = join(fleet.dir, 'manifests/tool-policy.yaml')
    const before = await readFile(fleetFile, 'utf8')
    try {
      // The old scaffold's pattern, with the hashes recorded as they would be: only the lint objects.
      const path = (pattern: string) => ({type: 'string', maxLength: 4096, pattern})
      const readParams = (pattern: string) => ({type: 'object', required: ['path'], additionalProperties: false, properties: {path: path(pattern)}})
      const writeParams = (pattern: string) => ({type: 'object', required: ['path', 'content'], additionalProperties: false, properties: {path: path(pattern), content: {type: 'string', maxLength: 262144}}})
      const edited = before
        .replace(`pattern: ${WORKSPACE_PATH_PATTERN}`, 'pattern: ^/workspace/')
        .replace(schemaHash(readParams(WORKSPACE_PATH_PATTERN)), schemaHash(readParams('^/workspace/')))
        .replace(schemaHash(writeParams(WORKSPACE_PATH_PATTERN)), schemaHash(writeParams('^/workspace/')))
      expect(edited).not.toBe(before)
      await writeFile(fleetFile, edited)
      const change = await airlock(['change', '--json'], {cwd: fleet.dir, env: fleet.env})
      expect(change.exitCode).toBe(2)
      // (write_file, where an earlier test has not denied it, shares the pattern and has the same finding.)
      expect(change.json.error).toMatchObject({code: 'SCHEMA_VIOLATION', details: {findings: expect.arrayContaining([expect.objectContaining({code: 'PATH_ESCAPE', tool: 'read_file'})])}})
      expect(change.json.error.details.findings.every((f: {code: string}) => f.code === 'PATH_ESCAPE')).toBe(true)
      expect(change.json.error.message).toMatch(/^manifests\/tool-policy\.yaml:\d+:\d+: spec\.allow\[0\]\.parameters\.properties\.path: params\/path accepts "\/workspace\/\.\."/)
    } finally {
      await writeFile(fleetFile, before)
    }
  })
})
