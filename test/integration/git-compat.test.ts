/**
 * Repositories as git makes them: `airlock init` writes the core configuration `git init`
 * writes on this machine, and airlock's commits are authored and committed by whoever git says
 * (`git var GIT_AUTHOR_IDENT` / `GIT_COMMITTER_IDENT`), with the requester in the trailers.
 * Real git, a real HOME with its own ~/.gitconfig, git's system config switched off.
 */
import {execa} from 'execa'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {airlock, tempDir, fleetCopies, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const NO_IDENTITY = {GIT_AUTHOR_NAME: undefined, GIT_AUTHOR_EMAIL: undefined, GIT_COMMITTER_NAME: undefined, GIT_COMMITTER_EMAIL: undefined, EMAIL: undefined, GIT_CONFIG_NOSYSTEM: '1'}

let fleet: Fleet
let home: {dir: string; cleanup: () => Promise<void>}
const fleets = fleetCopies({sign: [NEXT]})
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
  home = await tempDir('airlock-home-')
})
afterEach(async () => {
  await fleet.cleanup()
  await home.cleanup()
})

const core = async (dir: string) =>
  (await execa('git', ['config', '--local', '--list'], {cwd: dir})).stdout
    .split('\n')
    .filter((l) => l.startsWith('core.'))
    .sort()

describe('repositories as git makes them', () => {
  it('init writes the core configuration git init writes here', async () => {
    const t = await tempDir()
    try {
      await execa('git', ['init', '-q', join(t.dir, 'native')])
      expect(await core(fleet.dir)).toEqual(await core(join(t.dir, 'native')))
      expect(await core(fleet.dir)).toContain('core.filemode=true')
    } finally {
      await t.cleanup()
    }
  })

  it("commits are authored by git's identity: the environment first, then ~/.gitconfig", async () => {
    const {dir, env} = fleet
    await writeFile(join(home.dir, '.gitconfig'), '[user]\n\tname = Dana Operator\n\temail = dana@example.com\n')
    const gitEnv = {...NO_IDENTITY, HOME: home.dir, XDG_CONFIG_HOME: join(home.dir, '.config')}
    const ident = async (kind: string, extra: Record<string, string> = {}) =>
      (await execa('git', ['var', kind], {cwd: dir, env: {...gitEnv, ...extra}})).stdout.replace(/ \d+ [+-]\d{4}$/, '')
    const r = await airlock(['promote', 'agent-runner', '--to', 'canary', '--digest', NEXT, '--actor', 'ci-bot', '--apply', '--json'], {cwd: dir, env: {...env, ...gitEnv, GIT_AUTHOR_NAME: 'Release Bot', GIT_AUTHOR_EMAIL: 'bot@example.com'}})
    expect(r.exitCode, r.stdout).toBe(0)
    const [author, committer] = (await execa('git', ['log', '-1', '--format=%an <%ae>%n%cn <%ce>'], {cwd: dir})).stdout.split('\n')
    expect(author).toBe(await ident('GIT_AUTHOR_IDENT', {GIT_AUTHOR_NAME: 'Release Bot', GIT_AUTHOR_EMAIL: 'bot@example.com'}))
    expect(author).toBe('Release Bot <bot@example.com>')
    expect(committer).toBe(await ident('GIT_COMMITTER_IDENT'))
    expect(committer).toBe('Dana Operator <dana@example.com>')
    expect((await execa('git', ['log', '-1', '--format=%(trailers:key=Airlock-Requested-By,valueonly)'], {cwd: dir})).stdout.trim()).toBe('ci-bot')
  })

  it("refuses with git's own message when git knows no identity, and commits nothing", async () => {
    const {dir, env} = fleet
    await mkdir(join(home.dir, '.config'), {recursive: true})
    const before = (await execa('git', ['rev-parse', 'HEAD'], {cwd: dir})).stdout
    // user.useConfigOnly: git does not guess an identity from the host name either.
    const r = await airlock(['promote', 'agent-runner', '--to', 'canary', '--digest', NEXT, '--apply', '--json'], {
      cwd: dir,
      env: {...env, ...NO_IDENTITY, HOME: home.dir, XDG_CONFIG_HOME: join(home.dir, '.config'), GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'user.useConfigOnly', GIT_CONFIG_VALUE_0: 'true'},
    })
    expect(r.exitCode).toBe(2)
    expect(r.json.error.message).toMatch(/Author identity unknown[\s\S]*Please tell me who you are/)
    expect((await execa('git', ['rev-parse', 'HEAD'], {cwd: dir})).stdout).toBe(before)
  })
})
