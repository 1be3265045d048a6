/**
 * Seams a new user hits: a failed init leaves the directory as it found it; status tells who
 * asked for a change from who authored it; a new image arrives in one pull request with airlock
 * alone; git verify-commit works from trust.yaml; a file of no known kind is refused by change.
 */
import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {airlock, git, tempDir, fleetCopies, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const BUILDER = `sha256:${'b2'.repeat(32)}`

describe('airlock init', () => {
  /** No git identity anywhere: an empty HOME, no GIT_* variables, no system config. */
  const noIdentity = async (home: string) => ({HOME: home, XDG_CONFIG_HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: undefined, GIT_AUTHOR_EMAIL: undefined, GIT_COMMITTER_NAME: undefined, GIT_COMMITTER_EMAIL: undefined, EMAIL: undefined})

  it('leaves a new directory, and the folders above it, absent when --apply fails (no git identity)', async () => {
    const t = await tempDir()
    try {
      const home = join(t.dir, 'home')
      await mkdir(home)
      const target = join(t.dir, 'a', 'b', 'fleet')
      const r = await airlock(['init', target, '--apply', '--json'], {cwd: t.dir, env: await noIdentity(home)})
      expect(r.exitCode).toBe(2)
      expect(r.json.error.message).toMatch(/identity/)
      expect(existsSync(join(t.dir, 'a'))).toBe(false)
      expect((await readdir(t.dir)).sort()).toEqual(['home'])
    } finally {
      await t.cleanup()
    }
  })

  it('leaves an existing empty directory empty when --apply fails', async () => {
    const t = await tempDir()
    try {
      const home = join(t.dir, 'home')
      await mkdir(home)
      const target = join(t.dir, 'fleet')
      await mkdir(target)
      const r = await airlock(['init', target, '--apply'], {cwd: t.dir, env: await noIdentity(home)})
      expect(r.exitCode).toBe(2)
      expect(await readdir(target)).toEqual([])
      expect((await readdir(t.dir)).sort()).toEqual(['fleet', 'home'])
    } finally {
      await t.cleanup()
    }
  })
})

describe('with a fleet', () => {
  let fleet: Fleet
  const fleets = fleetCopies({sign: [NEXT]})
  afterAll(() => fleets.dispose())
  beforeEach(async () => {
    fleet = await fleets.copy()
  })
  afterEach(() => fleet.cleanup())
  /** Fleets where NEXT was promoted to canary (reason "r"): one `promote --apply` for the file, copied per test. */
  const promotedFleets = fleetCopies({
    sign: [NEXT],
    prepare: async ({dir, env}) => {
      expect((await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'r', '--apply'], {cwd: dir, env})).exitCode).toBe(0)
    },
  })
  afterAll(() => promotedFleets.dispose())
  /** The test's fleet becomes a copy of one where NEXT was promoted to canary. */
  const promoted = async () => {
    await fleet.cleanup()
    fleet = await promotedFleets.copy()
  }

  it('status names who requested a change and who authored it, and calls no receipted change "outside airlock"', async () => {
    const {dir, env} = fleet
    const p = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'r', '--actor', 'release-bot', '--apply'], {cwd: dir, env})
    expect(p.exitCode).toBe(0)
    const r = await airlock(['status', '--json'], {cwd: dir})
    const [canary, stable] = ['canary', 'stable'].map((c) => r.json.images[0].channels.find((x: {channel: string}) => x.channel === c))
    expect(canary.lastChange).toMatchObject({operation: 'promote', requestedBy: 'release-bot', author: 'Fleet Operator <operator@example.com>', viaAirlock: true})
    // The stable pin was last set by init: a change with a receipt of its own, never "outside airlock".
    expect(stable.lastChange).toMatchObject({operation: 'init', viaAirlock: true, receipt: expect.stringMatching(/^docs\/evidence\/.*-init-/)})
    const text = await airlock(['status'], {cwd: dir})
    expect(text.stdout).toMatch(/requested by release-bot/)
    expect(text.stdout).toMatch(/authored by {2}Fleet Operator <operator@example\.com>/)
    expect(text.stdout).not.toMatch(/outside airlock/)
    // A commit that copies airlock's trailers but adds no receipt of its own is not airlock's.
    const file = join(dir, 'manifests/images/agent-runner.yaml')
    await writeFile(file, (await readFile(file, 'utf8')).replace(/(stable:\n\s+digest: )sha256:[0-9a-f]{64}/, `$1${NEXT}`))
    const receipt = canary.lastChange.receipt
    await git(dir, 'commit', '-qam', `hand edit\n\nAirlock-Operation: promote\nAirlock-Image: agent-runner\nAirlock-Channel: stable\nAirlock-Receipt: ${receipt}\nAirlock-Requested-By: release-bot`)
    const after = await airlock(['status', '--json'], {cwd: dir})
    const stable2 = after.json.images[0].channels.find((x: {channel: string}) => x.channel === 'stable')
    expect(stable2.lastChange).toMatchObject({viaAirlock: false, receipt: null, requestedBy: null, author: 't <t@t>', verified: false})
  })

  it('adds a new image in one pull request: image sign stages its signature, change commits both', async () => {
    const {dir, env, imageKey} = fleet
    await writeFile(
      join(dir, 'manifests/images/builder.yaml'),
      `apiVersion: airlock/v1\nkind: GoldenImage\nmetadata:\n  name: builder\nspec:\n  repository: registry.example.com/golden/builder\n  tier: 2\n  channels:\n    canary:\n      digest: ${BUILDER}\n      previous: null\n`,
    )
    const planned = await airlock(['image', 'sign', `builder@${BUILDER}`, '--key', imageKey, '--json'], {cwd: dir, env})
    expect(planned.exitCode, planned.stderr).toBe(0)
    expect(planned.json.outcome).toBe('planned')
    const sig = `manifests/signatures/builder/${BUILDER.replace(':', '-')}.sigstore.json`
    expect(existsSync(join(dir, sig))).toBe(false)
    const staged = await airlock(['image', 'sign', `builder@${BUILDER}`, '--key', imageKey, '--apply', '--json'], {cwd: dir, env})
    expect(staged.exitCode, staged.stderr).toBe(0)
    expect(staged.json).toMatchObject({outcome: 'staged', staged: [sig], applied: null})
    expect(await git(dir, 'status', '--porcelain')).toContain('manifests/signatures/builder/')
    const c = await airlock(['change', '--reason', 'add the builder image', '--apply', '--json'], {cwd: dir, env})
    expect(c.exitCode, c.stderr).toBe(0)
    expect(c.json.plan.changes.map((x: {path: string}) => x.path).sort()).toEqual(['manifests/images/builder.yaml', sig])
    expect(await git(dir, 'status', '--porcelain')).toBe('')
    expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)
    expect((await airlock(['image', 'verify', `registry.example.com/golden/builder@${BUILDER}`], {cwd: dir})).exitCode).toBe(0)
  })

  it('refuses, for a new image, a signature by a key the base does not trust', async () => {
    const {dir, env} = fleet
    await writeFile(
      join(dir, 'manifests/images/builder.yaml'),
      `apiVersion: airlock/v1\nkind: GoldenImage\nmetadata:\n  name: builder\nspec:\n  repository: registry.example.com/golden/builder\n  tier: 2\n  channels:\n    canary:\n      digest: ${BUILDER}\n`,
    )
    const other = join(dir, '..', 'other.key')
    await execa('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', other])
    await execa('chmod', ['600', other])
    const r = await airlock(['image', 'sign', `builder@${BUILDER}`, '--key', other, '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(1)
    expect(r.json.error.code).toMatch(/^IMAGE_/)
    expect(existsSync(join(dir, 'manifests/signatures/builder'))).toBe(false)
  })

  it('keys allowed-signers lets git verify-commit check every commit airlock made', async () => {
    const {dir} = fleet
    const r = await airlock(['keys', 'allowed-signers'], {cwd: dir})
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/^evidence namespaces="git",valid-after="\d{14}Z" ssh-ed25519 AAAA/m)
    const file = join(dir, '..', 'allowed_signers')
    await writeFile(file, r.stdout)
    for (const commit of (await git(dir, 'rev-list', 'HEAD')).split('\n')) {
      const v = await execa('git', ['-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${file}`, 'verify-commit', commit], {cwd: dir, reject: false})
      expect(v.exitCode, `${commit}: ${v.stderr}`).toBe(0)
      expect(v.stderr).toMatch(/Good "git" signature for evidence/)
    }
  })

  it('calls an unsigned commit that names a receipt in its trailers, but changes nothing, no change of airlock\'s', async () => {
    await promoted()
    const {dir} = fleet
    const receipt = (await airlock(['status', '--json'], {cwd: dir})).json.images[0].channels.find((x: {channel: string}) => x.channel === 'canary').lastChange.receipt
    // An empty commit (no signed folder changes, so it needs no signature and the history still
    // verifies) claiming to be the last change of canary, requested by someone important.
    await git(dir, 'commit', '-q', '--allow-empty', '-m', `promote\n\nAirlock-Operation: promote\nAirlock-Image: agent-runner\nAirlock-Channel: canary\nAirlock-Receipt: ${receipt}\nAirlock-Requested-By: alice (release manager, MFA)`)
    expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(0)
    const canary = (await airlock(['status', '--json'], {cwd: dir})).json.images[0].channels.find((x: {channel: string}) => x.channel === 'canary')
    expect(canary.lastChange).toMatchObject({operation: 'promote', requestedBy: expect.not.stringMatching(/alice/), viaAirlock: true, receipt})
    expect(canary.lastChange.commit).not.toBe(await git(dir, 'rev-parse', 'HEAD'))
  })

  it("authorizes and checks a kind's own file as that kind, whatever it declares", async () => {
    const {dir, env} = fleet
    // The tool policy replaced by an egress policy: a ToolPolicy that does not load, not an EgressPolicy.
    await writeFile(join(dir, 'manifests/tool-policy.yaml'), await readFile(join(dir, 'manifests/egress.yaml'), 'utf8'))
    const r = await airlock(['change', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(2)
    expect(r.json.error).toMatchObject({code: 'SCHEMA_VIOLATION', details: {file: 'manifests/tool-policy.yaml', field: 'kind'}})
  })

  it('keeps evidence verify passing after a leaked evidence key is removed from trust.yaml', async () => {
    const {dir, env} = fleet
    expect((await airlock(['keys', 'generate', 'e2', '--role', 'evidence', '--apply'], {cwd: dir, env})).exitCode).toBe(0)
    expect((await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'r', '--apply'], {cwd: dir, env})).exitCode).toBe(0)
    // Remove the first evidence key (it signed the receipts above), signing with the new one.
    const e2 = {AIRLOCK_EVIDENCE_KEY: join(dir, 'keys', 'e2.key')}
    const trust = await readFile(join(dir, 'manifests/trust.yaml'), 'utf8')
    const {parseDocument} = await import('yaml')
    const doc = parseDocument(trust)
    const keys = doc.getIn(['spec', 'keys']) as {items: Array<{get: (k: string) => unknown}>}
    const first = keys.items.findIndex((k) => k.get('name') === 'evidence')
    doc.deleteIn(['spec', 'keys', first])
    await writeFile(join(dir, 'manifests/trust.yaml'), doc.toString())
    const removed = await airlock(['change', '--reason', 'the evidence key leaked', '--apply', '--json'], {cwd: dir, env: e2})
    expect(removed.exitCode, removed.stdout + removed.stderr).toBe(0)
    const v = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(v.json.problems).toEqual([])
    expect(v.exitCode).toBe(0)
    // The removed key signs nothing new: apply's own check refuses its commit.
    const sneak = await airlock(['rollback', 'agent-runner', '--channel', 'canary', '--reason', 'x', '--apply', '--json'], {cwd: dir, env})
    expect(sneak.json.error).toMatchObject({code: 'KEY_INVALID', details: {problem: {code: 'UNTRUSTED_COMMIT_SIGNER'}}})
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(removed.json.applied.commit)
  })

  it('shows every line of a plan escaped: file contents cannot redraw the diff under review', async () => {
    const {dir, env} = fleet
    const file = join(dir, 'manifests/tool-policy.yaml')
    await writeFile(file, (await readFile(file, 'utf8')).replace('approval: none', 'approval: required'))
    await writeFile(join(dir, 'policies/README.md'), 'notes\u001b[8A\u001b[J\r~ manifests/tool-policy.yaml  (a comment typo fixed)\n')
    const r = await airlock(['change', '--reason', 'typo'], {cwd: dir, env})
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/)
    expect(r.stdout).toContain('\\x1b[8A')
    expect(r.stdout).toContain('  +notes')
  })

  it('refuses a branch taken back to an older verified commit (ROLLED_BACK), in this clone', async () => {
    await promoted()
    const {dir, env} = fleet
    const older = await git(dir, 'rev-parse', 'HEAD^')
    expect((await airlock(['status', '--json'], {cwd: dir})).json.history.verified).toBe(true)
    // A force-push back to the older (signed, verified) commit, as a writer without keys can.
    await git(dir, 'reset', '-q', '--hard', older)
    const status = await airlock(['status', '--json'], {cwd: dir})
    expect(status.json.history).toMatchObject({verified: false, problems: [expect.objectContaining({code: 'ROLLED_BACK', commit: older})]})
    const p = await airlock(['rollback', 'agent-runner', '--channel', 'canary', '--reason', 'x', '--apply', '--json'], {cwd: dir, env})
    expect(p.json.error.code).toBe('BASE_UNVERIFIED')
    expect(p.json.error.message).toMatch(/ROLLED_BACK/)
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(older)
  })

  it('applies a saved plan whose request details were edited without those details becoming trailers', async () => {
    const {dir, env, imageKey} = fleet
    const out = join(dir, '..', 'sign.json')
    expect((await airlock(['image', 'sign', `agent-runner@${BUILDER}`, '--key', imageKey, '--out', out], {cwd: dir})).exitCode).toBe(0)
    const plan = JSON.parse(await readFile(out, 'utf8'))
    plan.request.details = {...plan.request.details, channel: 'stable', to: `sha256:${'0'.repeat(64)}`, image: 'other'}
    // Resealed with airlock's own code, as a proposer could: the receipt path, then the digest.
    const [{digestOfJson}, {receiptPathFor}] = await Promise.all([import('../../control-plane/crypto/digest.js'), import('../../control-plane/evidence/receipt.js')])
    const {digest: _d, receiptPath: _r, ...unsigned} = plan
    plan.receiptPath = receiptPathFor(unsigned, 'agent-runner-signature')
    const {digest: _d2, ...rest} = plan
    await writeFile(out, JSON.stringify({...rest, digest: digestOfJson(rest)}))
    const r = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(r.exitCode, r.stdout).toBe(0)
    const message = await git(dir, 'log', '-1', '--format=%B')
    expect(message).not.toMatch(/Airlock-Channel|Airlock-Digest/)
    expect(message).toMatch(/^Airlock-Image: agent-runner$/m)
  })

  it('refuses in a change a file under a signed folder that matches no kind (UNKNOWN_KIND, exit 2)', async () => {
    const {dir, env} = fleet
    await writeFile(join(dir, 'manifests/gates.yml'), 'apiVersion: airlock/v1\nkind: Whatever\n')
    const r = await airlock(['change', '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode).toBe(2)
    expect(r.json.error).toMatchObject({code: 'UNKNOWN_KIND', details: {file: 'manifests/gates.yml'}})
    expect(r.json.error.message).toMatch(/GoldenImage \(manifests\/images\/NAME\.yaml\)/)
    expect(await git(dir, 'rev-list', '--count', 'HEAD')).toBe('2')
  })

  it('checks every file a change writes by its kind', async () => {
    const {dir, env} = fleet
    // A sandbox spec spelled .yml; a trust policy nothing could be signed under.
    await mkdir(join(dir, 'manifests/sandboxes'), {recursive: true})
    await writeFile(join(dir, 'manifests/sandboxes/x.yml'), 'apiVersion: airlock/v1\n')
    const yml = await airlock(['change', '--json'], {cwd: dir, env})
    expect(yml.json.error.code).toBe('UNKNOWN_KIND')
    await execa('rm', [join(dir, 'manifests/sandboxes/x.yml')])
    await writeFile(join(dir, 'manifests/trust.yaml'), 'apiVersion: airlock/v1\nkind: TrustPolicy\nspec: {keys: [], thresholds: {}}\n')
    const trust = await airlock(['change', '--json'], {cwd: dir, env})
    expect(trust.exitCode).toBe(2)
    expect(trust.json.error.details.file).toBe('manifests/trust.yaml')
  })
})
