/**
 * Secrets planted in --reason and --actor never reach the disk: a real promotion (applied
 * directly, and through a saved plan) in a scratch fleet, then every git object (as git reads it,
 * uncompressed), the reflogs and the work tree are searched for the planted values.
 */
import {readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, describe, expect, it} from 'vitest'
import {generateSigner} from '../../control-plane/crypto/keys.js'
import {airlock, git, initFleet, type Fleet} from '../helpers.js'

const NEXT = `sha256:${'a1'.repeat(32)}`
const OTHER = `sha256:${'b'.repeat(64)}`

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const GITHUB = `ghp_${'R7x'.repeat(12)}`
const JWT = `${b64url({alg: 'ES256', typ: 'JWT'})}.${b64url({sub: 'ci', aud: 'airlock'})}.${Buffer.alloc(64, 7).toString('base64url')}`
const PEM = generateSigner().pem.trim()
const PEM_BODY = PEM.split('\n')[1]!
const SSN = '219-09-9999'
const CARD = '4539 1488 0343 6467'
const PLANTED = [GITHUB, JWT, PEM_BODY, SSN, CARD, CARD.replaceAll(' ', '')]

const reason = `hotfix; ci token ${GITHUB}, session ${JWT}\nkey:\n${PEM}\ncustomer ${SSN} paid with ${CARD}`

/** Every file under `dir` (but .git/objects, read through git), as text. */
async function filesUnder(dir: string, skip: (path: string) => boolean): Promise<Array<{path: string; text: string}>> {
  const out: Array<{path: string; text: string}> = []
  for (const e of await readdir(dir, {withFileTypes: true, recursive: true})) {
    const path = join(e.parentPath, e.name)
    if (!e.isFile() || skip(path)) continue
    out.push({path, text: await readFile(path, 'latin1')})
  }
  return out
}

async function everythingOnDisk(fleet: Fleet, extra: string[] = []): Promise<Array<{path: string; text: string}>> {
  const objects = await execa('git', ['cat-file', '--batch-all-objects', '--batch'], {cwd: fleet.dir, encoding: 'buffer'})
  const files = await filesUnder(join(fleet.dir, '..'), (p) => p.includes(`${join('.git', 'objects')}/`))
  const saved = await Promise.all(extra.map(async (p) => ({path: p, text: await readFile(p, 'latin1')})))
  return [{path: 'git objects', text: Buffer.from(objects.stdout).toString('latin1')}, ...files, ...saved]
}

function expectNonePlanted(haystack: Array<{path: string; text: string}>): void {
  for (const {path, text} of haystack) for (const value of PLANTED) expect(text.includes(value), `${value.slice(0, 20)}… found in ${path}`).toBe(false)
}

describe('planted secrets in --reason and --actor never reach the disk', () => {
  let fleet: Fleet
  afterAll(() => fleet?.cleanup())

  it('a promotion applied, and one saved then applied: receipts, commits, reflogs and work tree hold only placeholders', async () => {
    fleet = await initFleet({sign: [NEXT, OTHER]})
    const {dir, env} = fleet
    const r = await airlock(['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', reason, '--actor', `deploy-bot ${GITHUB}`, '--apply', '--json'], {cwd: dir, env})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).not.toContain(GITHUB)

    const message = await git(dir, 'log', '-1', '--format=%B')
    for (const type of ['github-token', 'jwt', 'private-key', 'ssn', 'card']) expect(message).toContain(`[REDACTED:${type}]`)

    const receiptPath = (r.json.applied as {receipt: string}).receipt
    const receipt = JSON.parse(await readFile(join(dir, receiptPath), 'utf8')) as {payload: string}
    const statement = JSON.parse(Buffer.from(receipt.payload, 'base64').toString('utf8')) as {predicate: {reason: string; requestedBy: {actor: string}}}
    expect(statement.predicate.reason).toContain('[REDACTED:github-token]')
    expect(statement.predicate.requestedBy.actor).toBe('deploy-bot [REDACTED:github-token]')

    // A saved plan is written redacted, and applies: redacting its reason again changes nothing.
    const out = join(dir, '..', 'plan.json')
    const saved = await airlock(['promote', 'agent-runner', '--digest', OTHER, '--to', 'canary', '--reason', reason, '--out', out, '--json'], {cwd: dir, env})
    expect(saved.exitCode, saved.stderr).toBe(0)
    const applied = await airlock(['apply', out, '--json'], {cwd: dir, env})
    expect(applied.exitCode, applied.stderr).toBe(0)

    expect(await airlock(['evidence', 'verify', '--json'], {cwd: dir, env}).then((v) => v.exitCode)).toBe(0)
    expectNonePlanted(await everythingOnDisk(fleet, [out]))
  })
})
