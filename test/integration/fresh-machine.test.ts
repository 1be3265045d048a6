/**
 * The README's test command on a machine without Debian's docker-registry: the registry tests
 * are skipped with one line saying why and how to run them, unless AIRLOCK_REQUIRE_REGISTRY=1
 * (which .ci/run sets) makes them required, and then they fail. The machine without the binary
 * is made by pointing AIRLOCK_DOCKER_REGISTRY at a path that does not exist.
 */
import {execa} from 'execa'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {NODE, ROOT} from '../helpers.js'

const vitest = (env: Record<string, string>) =>
  execa(NODE, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/integration/registry.test.ts'], {cwd: ROOT, env: {...env, NO_COLOR: '1'}, reject: false, all: true})

describe('npm test on a fresh machine', () => {
  it('skips the registry tests with one line without docker-registry, and fails them when they are required', async () => {
    const missing = {AIRLOCK_DOCKER_REGISTRY: '/nonexistent/docker-registry', AIRLOCK_REQUIRE_REGISTRY: ''}
    const skipped = await vitest(missing)
    expect(skipped.exitCode, skipped.all).toBe(0)
    expect(skipped.all.match(/registry tests skipped: .* is not installed \(apt-get install docker-registry/g)).toHaveLength(1)
    expect(skipped.all).toMatch(/6 skipped/)
    const required = await vitest({...missing, AIRLOCK_REQUIRE_REGISTRY: '1'})
    expect(required.exitCode).not.toBe(0)
    expect(required.all).toMatch(/is not installed/)
  }, 120_000)

  it('.ci/run makes the registry tests required', async () => {
    expect(await readFile(join(ROOT, '.ci', 'run'), 'utf8')).toMatch(/^export AIRLOCK_REQUIRE_REGISTRY=1$/m)
  })
})
