import {createHash, generateKeyPairSync} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {isMainThread} from 'node:worker_threads'
import {execa, type Result} from 'execa'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const BIN = join(ROOT, 'bin', 'run.js')
/**
 * The project-local Node 22 (the `node` devDependency); the CLI under test runs on it, or on
 * AIRLOCK_TEST_NODE when set (ci.yml's Node 24 leg runs the CLI on that Node too).
 */
export const NODE = process.env.AIRLOCK_TEST_NODE || join(ROOT, 'node_modules', 'node', 'bin', 'node')

/**
 * airlock's commits are authored by whoever git says (`git var GIT_AUTHOR_IDENT`): the tests give
 * git that identity in the environment rather than depend on the machine's ~/.gitconfig.
 */
export const GIT_IDENTITY = {GIT_AUTHOR_NAME: 'Fleet Operator', GIT_AUTHOR_EMAIL: 'operator@example.com', GIT_COMMITTER_NAME: 'Fleet Operator', GIT_COMMITTER_EMAIL: 'operator@example.com'}
const CLEAN_ENV = {AIRLOCK_EVIDENCE_KEY: undefined, AIRLOCK_ACTOR: undefined, AIRLOCK_DEBUG: undefined, GITHUB_ACTIONS: undefined, GITLAB_CI: undefined, CI: undefined, NO_COLOR: '1', ...GIT_IDENTITY}

export interface CliResult {
  exitCode: number
  stdout: string
  stderr: string
  json: any
}

/** Runs the built CLI as a real process (what users and CI run). */
export async function airlock(args: string[], opts: {cwd?: string; env?: Record<string, string | undefined>} = {}): Promise<CliResult> {
  const r: Result = await execa(NODE, [BIN, ...args], {cwd: opts.cwd ?? ROOT, env: {...CLEAN_ENV, ...opts.env}, extendEnv: true, reject: false})
  const stdout = String(r.stdout)
  let json: unknown
  if (args.includes('--json')) {
    try {
      json = JSON.parse(stdout)
    } catch {
      json = undefined
    }
  }
  return {exitCode: r.exitCode ?? -1, stdout, stderr: String(r.stderr), json}
}

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await execa('git', args, {cwd, env: {GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t'}})
  return String(r.stdout)
}

/** Commits the work tree's edits of desired state the honest way: `airlock change --apply`. */
export async function commitChange(dir: string, env: Record<string, string>, reason: string): Promise<void> {
  const r = await airlock(['change', '--reason', reason, '--apply', '--json'], {cwd: dir, env})
  if (r.exitCode !== 0) throw new Error(`airlock change failed: ${r.stdout} ${r.stderr}`)
}

/** The pid of a process that has run and exited (for locks and temporary files of a writer that is gone). */
export async function gonePid(): Promise<number> {
  const child = execa('true')
  await child
  return child.pid!
}

export async function tempDir(prefix = 'airlock-test-'): Promise<{dir: string; cleanup: () => Promise<void>}> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return {dir, cleanup: () => rm(dir, {recursive: true, force: true})}
}

export type Fleet = {dir: string; key: string; imageKey: string; env: Record<string, string>; cleanup: () => Promise<void>}

/**
 * A scratch fleet made by `airlock init --apply`: a real repository with real keys; each digest in
 * `sign` is then signed with the fleet's image key by `airlock image sign --apply` (one commit
 * each), so it may be promoted.
 *
 * The fleet is a copy (`cp -a`) of a template made that way once per test run and per `sign` list,
 * shared by the test files of the run (`sharedTemplate`): fleets of one run share their keys. A
 * test that needs keys no other fleet holds (a foreign signer) passes `fresh: true`.
 */
export async function initFleet(opts: {sign?: string[]; fresh?: boolean} = {}): Promise<Fleet> {
  if (opts.fresh) return buildFleet(opts.sign ?? [])
  return copyFleet(await sharedTemplate(opts.sign ?? []))
}

/** `airlock init --apply`, then `airlock image sign --apply` for each digest: new keys each call. */
async function buildFleet(sign: string[], into?: string): Promise<Fleet> {
  const t = into ? {dir: into, cleanup: () => rm(into, {recursive: true, force: true})} : await tempDir()
  const dir = join(t.dir, 'fleet')
  const r = await airlock(['init', dir, '--apply'])
  if (r.exitCode !== 0) throw new Error(`init failed: ${r.stderr}`)
  const key = join(dir, 'keys', 'evidence.key')
  const imageKey = join(dir, 'keys', 'image.key')
  const env = {AIRLOCK_EVIDENCE_KEY: key}
  for (const digest of sign) {
    const s = await airlock(['image', 'sign', `agent-runner@${digest}`, '--key', imageKey, '--reason', 'built by the release pipeline', '--apply'], {cwd: dir, env})
    if (s.exitCode !== 0) throw new Error(`image sign failed: ${s.stderr}`)
  }
  return {dir, key, imageKey, env, cleanup: t.cleanup}
}

/** A fleet of its own: a copy of `from` (repository, work tree, git config, key files and their modes) at `<new tmp>/fleet`. */
async function copyFleet(from: string): Promise<Fleet> {
  const t = await tempDir()
  const dir = join(t.dir, 'fleet')
  await execa('cp', ['-a', from, dir])
  const key = join(dir, 'keys', 'evidence.key')
  return {dir, key, imageKey: join(dir, 'keys', 'image.key'), env: {AIRLOCK_EVIDENCE_KEY: key}, cleanup: t.cleanup}
}

const TEMPLATES = join(tmpdir(), 'airlock-test-templates')

/**
 * The vitest run this worker belongs to: the main process, the parent of a `forks` worker or the
 * process of a `threads` worker. Templates are per run: a run never sees a fleet made by another
 * run (older commit times, older code).
 */
const RUN = isMainThread ? process.ppid : process.pid

/** What the template is made by: the built CLI (dist/, bin/) and the Node that runs it. */
let codeDigest: Promise<string> | undefined
async function code(): Promise<string> {
  codeDigest ??= (async () => {
    const h = createHash('sha256').update(NODE)
    const files = (await readdir(join(ROOT, 'dist'), {recursive: true, withFileTypes: true})).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort()
    for (const f of [join(ROOT, 'bin', 'run.js'), ...files]) h.update(f).update(await readFile(f))
    return h.digest('hex').slice(0, 16)
  })()
  return codeDigest
}

/**
 * The template fleet of this run for `sign`: `<tmp>/airlock-test-templates/<run>-<code>-<sign>/fleet`,
 * made by `buildFleet` in a folder of its own and renamed into place (a worker that loses the race
 * to another one making the same template uses the other's). Templates are never changed: fleets
 * are copies. Templates of runs that have ended (their process is gone) are removed.
 */
async function sharedTemplate(sign: string[]): Promise<string> {
  const name = `${RUN}-${await code()}-${createHash('sha256').update(JSON.stringify(sign)).digest('hex').slice(0, 12)}`
  const final = join(TEMPLATES, name)
  if (existsSync(join(final, 'fleet', '.git', 'HEAD'))) return join(final, 'fleet')
  await mkdir(TEMPLATES, {recursive: true})
  await removeEndedRuns()
  const building = await mkdtemp(join(TEMPLATES, `.build-${name}-`))
  try {
    await buildFleet(sign, building)
    await rename(building, final)
  } catch (error) {
    await rm(building, {recursive: true, force: true})
    if (!existsSync(join(final, 'fleet', '.git', 'HEAD'))) throw error
  }
  return join(final, 'fleet')
}

async function removeEndedRuns(): Promise<void> {
  for (const entry of await readdir(TEMPLATES).catch(() => [] as string[])) {
    const pid = Number(/^\.?(?:build-)?(\d+)-/.exec(entry)?.[1])
    if (pid && pid !== RUN && !running(pid)) await rm(join(TEMPLATES, entry), {recursive: true, force: true})
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * A fleet per test without paying for init and signing in each one: every `copy()` is a copy of
 * the run's template for `opts` (see `initFleet`), in a temporary directory of its own, at the
 * same path inside it (`<tmp>/fleet`). With `prepare`, the copies are of a fleet of this file
 * made once from that template and then given to `prepare` (setup every test of the file
 * repeats: a key generated, a plan saved); `dispose()` (afterAll) removes it. Each test still
 * starts from a fleet nothing else has touched; the copies share their keys, so a test that
 * needs a fleet with other keys (a foreign signer) calls `initFleet({fresh: true})`.
 */
export function fleetCopies(opts: {sign?: string[]; prepare?: (fleet: Fleet) => Promise<void>} = {}): {copy: () => Promise<Fleet>; dispose: () => Promise<void>} {
  let prepared: Promise<Fleet> | undefined
  return {
    async copy() {
      if (!opts.prepare) return initFleet(opts)
      prepared ??= initFleet(opts).then(async (fleet) => {
        await opts.prepare!(fleet)
        return fleet
      })
      return copyFleet((await prepared).dir)
    },
    async dispose() {
      await prepared?.then((fleet) => fleet.cleanup(), () => undefined)
    },
  }
}

/**
 * A new Ed25519 private key (PKCS #8 PEM, as `airlock keys generate` writes it) in a 0600 file of
 * its own, trusted by no fleet: the key of a foreign signer, without making a fleet around it.
 */
export async function foreignKey(): Promise<{key: string; cleanup: () => Promise<void>}> {
  const t = await tempDir('airlock-key-')
  const key = join(t.dir, 'foreign.key')
  const {privateKey} = generateKeyPairSync('ed25519')
  await writeFile(key, privateKey.export({format: 'pem', type: 'pkcs8'}), {mode: 0o600})
  return {key, cleanup: t.cleanup}
}

/**
 * Commits the work tree as it is, SSH-signed with `keyFile` the way airlock signs, but by hand:
 * past airlock's own checks, as a holder of the evidence key could. For tests about what is read
 * from such a commit in a history that verifies.
 */
export async function commitSignedByHand(dir: string, keyFile: string, message: string): Promise<string> {
  const [{loadSigner}, {sshSign}] = await Promise.all([import('../control-plane/crypto/keys.js'), import('../control-plane/crypto/sshsig.js')])
  await git(dir, 'add', '-A')
  const tree = await git(dir, 'write-tree')
  const parent = await git(dir, 'rev-parse', 'HEAD')
  const time = Math.max(Math.floor(Date.now() / 1000), Number(await git(dir, 'log', '-1', '--format=%ct')))
  const who = `Key Holder <holder@example.com> ${time} +0000`
  const text = `tree ${tree}\nparent ${parent}\nauthor ${who}\ncommitter ${who}\n\n${message}\n`
  const sig = sshSign(Buffer.from(text), await loadSigner({file: keyFile})).trimEnd().replaceAll('\n', '\n ')
  const split = text.indexOf('\n\n')
  const r = await execa('git', ['hash-object', '-t', 'commit', '-w', '--stdin'], {cwd: dir, input: `${text.slice(0, split)}\ngpgsig ${sig}${text.slice(split)}`})
  await git(dir, 'update-ref', 'HEAD', String(r.stdout))
  return String(r.stdout)
}
