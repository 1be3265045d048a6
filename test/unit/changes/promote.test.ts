/**
 * promote/: the builders a promote and a rollback are planned from, on a real git repository
 * holding one image manifest (made with the Repository API; no CLI in between).
 */
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {buildPromote} from '../../../control-plane/changes/promote.js'
import {buildRollback} from '../../../control-plane/changes/rollback.js'
import {initRepository, Repository} from '../../../control-plane/repo/repository.js'
import {ROOT, tempDir} from '../../helpers.js'

const CANARY = 'sha256:3d6f8af6557ed74aa31ea7a55094612aa0081a616bdff356a4db4b26cb384aa2'
const STABLE = 'sha256:933b5a75825b94cc7e9400ec677fd011404ff36f31dd3fb1c472495eaf38adc6'
const NEXT = `sha256:${'d4'.repeat(32)}`
let t: Awaited<ReturnType<typeof tempDir>>
let repo: Repository
let commit: string

beforeAll(async () => {
  t = await tempDir()
  await initRepository(t.dir)
  repo = await Repository.open(t.dir)
  const text = await readFile(join(ROOT, 'manifests/images/agent-runner.yaml'), 'utf8')
  commit = await repo.createCommit({base: null, changes: [{path: 'manifests/images/agent-runner.yaml', content: text}], message: 'fleet\n', author: {name: 't', email: 't@example.com'}, time: 1_800_000_000})
})
afterAll(() => t.cleanup())

describe('buildPromote', () => {
  it('sets the channel to the digest and records what it replaces as the rollback target', async () => {
    const d = await buildPromote(repo, commit, {kind: 'promote', image: 'agent-runner', to: 'canary', digest: NEXT}, DEFAULT_LIMITS)
    expect(d.changes).toHaveLength(1)
    expect(d.changes[0]!.after).toContain(`digest: ${NEXT}`)
    expect(d.changes[0]!.after).toContain(`previous: ${CANARY}`)
    expect(d.pins).toEqual([expect.objectContaining({digest: NEXT})])
  })

  it('promotes what another channel holds, and changes nothing when it is already there', async () => {
    const d = await buildPromote(repo, commit, {kind: 'promote', image: 'agent-runner', from: 'canary', to: 'stable'}, DEFAULT_LIMITS)
    expect(d.changes[0]!.after).toContain(`previous: ${STABLE}`)
    const same = await buildPromote(repo, commit, {kind: 'promote', image: 'agent-runner', to: 'canary', digest: CANARY}, DEFAULT_LIMITS)
    expect(same.changes).toEqual([])
    expect(same.pins).toEqual([])
  })

  it('refuses both or neither of --digest and --from, a channel to itself, an unknown channel or image, another repository', async () => {
    await expect(buildPromote(repo, commit, {kind: 'promote', image: 'agent-runner', to: 'canary'}, DEFAULT_LIMITS)).rejects.toThrowAirlockError('USAGE')
    await expect(buildPromote(repo, commit, {kind: 'promote', image: 'agent-runner', from: 'canary', to: 'canary'}, DEFAULT_LIMITS)).rejects.toThrowAirlockError('USAGE')
    await expect(buildPromote(repo, commit, {kind: 'promote', image: 'agent-runner', to: '__proto__', digest: NEXT}, DEFAULT_LIMITS)).rejects.toThrowAirlockError('UNKNOWN_CHANNEL')
    await expect(buildPromote(repo, commit, {kind: 'promote', image: 'nope', to: 'canary', digest: NEXT}, DEFAULT_LIMITS)).rejects.toThrowAirlockError('UNKNOWN_IMAGE')
    await expect(buildPromote(repo, commit, {kind: 'promote', image: 'agent-runner', to: 'canary', digest: `other.example/x@${NEXT}`}, DEFAULT_LIMITS)).rejects.toThrowAirlockError('INVALID_INPUT')
    await expect(buildPromote(repo, commit, {kind: 'promote', image: 'agent-runner', to: 'canary', digest: 'latest'}, DEFAULT_LIMITS)).rejects.toThrowAirlockError('NOT_PINNED')
  })
})

describe('buildRollback', () => {
  it('restores the recorded rollback target as a forward change; the digest rolled back from becomes previous', async () => {
    const d = await buildRollback(repo, commit, {kind: 'rollback', image: 'agent-runner', channel: 'canary', to: 'previous'}, 'boot failures', DEFAULT_LIMITS)
    expect(d.changes[0]!.after).toContain(`digest: ${STABLE}`)
    expect(d.changes[0]!.after).toMatch(new RegExp(`canary:\\n\\s+digest: ${STABLE}\\n\\s+previous: ${CANARY}`))
  })

  it('needs a reason, and a malformed --to is the digest parser’s code', async () => {
    await expect(buildRollback(repo, commit, {kind: 'rollback', image: 'agent-runner', channel: 'canary', to: 'previous'}, '  ', DEFAULT_LIMITS)).rejects.toThrowAirlockError('USAGE')
    await expect(buildRollback(repo, commit, {kind: 'rollback', image: 'agent-runner', channel: 'canary', to: 'sha256:abc'}, 'x', DEFAULT_LIMITS)).rejects.toThrowAirlockError('BAD_DIGEST')
  })
})
