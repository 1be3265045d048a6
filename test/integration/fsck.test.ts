/**
 * A tree with `manifests` twice (the signed folder and an attacker's) is what `git fsck
 * --strict` refuses as duplicateEntries and a plain bare repository accepts on push: git
 * checks out one, a lenient reader reads the other. airlock refuses to read it at all.
 */
import {execa} from 'execa'
import {afterAll, afterEach, beforeEach, describe, expect, it} from 'vitest'
import {airlock, git, fleetCopies, type Fleet} from '../helpers.js'

let fleet: Fleet
const fleets = fleetCopies()
afterAll(() => fleets.dispose())
beforeEach(async () => {
  fleet = await fleets.copy()
})
afterEach(async () => {
  await fleet.cleanup()
})

/** The attacker's manifests folder: the signed one with another image manifest in it. */
async function attackersManifests(dir: string): Promise<string> {
  const env = {...process.env, GIT_INDEX_FILE: `${dir}/.git/attacker-index`}
  const run = async (args: string[], input?: string) => (await execa('git', args, {cwd: dir, env, input})).stdout
  await run(['read-tree', 'HEAD:manifests'])
  const text = (await git(dir, 'show', 'HEAD:manifests/images/agent-runner.yaml')).replace(/sha256:[0-9a-f]{64}/g, `sha256:${'e'.repeat(64)}`)
  const blob = await run(['hash-object', '-w', '--stdin'], `${text}\n`)
  await run(['update-index', '--cacheinfo', `100644,${blob},images/agent-runner.yaml`])
  return run(['write-tree'])
}

/** HEAD's root tree with `manifests` twice, the attacker's first or second; unsigned, on top of HEAD. */
async function commitDuplicate(dir: string, attackerFirst: boolean): Promise<string> {
  const attacker = await attackersManifests(dir)
  const entries: Buffer[] = []
  for (const line of (await git(dir, 'ls-tree', '-z', 'HEAD')).split('\0').filter(Boolean)) {
    const [meta, name] = line.split('\t') as [string, string]
    const [mode, , oid] = meta.split(' ') as [string, string, string]
    const entry = (id: string) => Buffer.concat([Buffer.from(`${mode.replace(/^0/, '')} ${name}\0`), Buffer.from(id, 'hex')])
    if (name === 'manifests') entries.push(...(attackerFirst ? [entry(attacker), entry(oid)] : [entry(oid), entry(attacker)]))
    else entries.push(entry(oid))
  }
  const tree = (await execa('git', ['hash-object', '-t', 'tree', '--literally', '-w', '--stdin'], {cwd: dir, input: Buffer.concat(entries)})).stdout
  const commit = await git(dir, 'commit-tree', tree, '-p', 'HEAD', '-m', 'images: nothing to see here')
  await git(dir, 'update-ref', 'refs/heads/main', commit)
  return tree
}

/** The error's code, or the codes of the problems a report names. */
const codes = (json: any): string[] => [json?.error?.code, ...(json?.problems ?? []).map((p: {code?: string}) => p.code), ...(json?.history?.problems ?? []).map((p: {code?: string}) => p.code)].filter(Boolean)

describe('when HEAD is an unsigned commit whose root tree holds manifests twice', () => {
  it.each([
    ['the signed folder first', false],
    ["the attacker's first", true],
  ])('%s: git fsck --strict refuses it, and evidence verify and status exit 1 naming BROKEN_OBJECT', async (_, attackerFirst) => {
    const {dir} = fleet
    const tree = await commitDuplicate(dir, attackerFirst)
    const fsck = await execa('git', ['fsck', '--strict', '--no-dangling'], {cwd: dir, reject: false, all: true})
    expect(fsck.exitCode).not.toBe(0)
    expect(String(fsck.all)).toMatch(new RegExp(`${tree}: duplicateEntries:`))

    const verify = await airlock(['evidence', 'verify', '--json'], {cwd: dir})
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(1)
    expect(codes(verify.json)).toContain('BROKEN_OBJECT')

    const status = await airlock(['status', '--json'], {cwd: dir})
    expect(status.exitCode, status.stdout + status.stderr).toBe(1)
    expect(codes(status.json)).toContain('BROKEN_OBJECT')
  })
})
