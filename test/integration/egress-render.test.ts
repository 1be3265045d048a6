/**
 * `airlock egress render --format nftables`: the ruleset is checked by the kernel's own parser
 * (`nft -c -f`, Debian's nftables) for each profile and shape of policy. Without nft the checks
 * skip with one line saying why, unless AIRLOCK_REQUIRE_NFT=1 (set by .ci/run) makes them required.
 */
import {execa} from 'execa'
import {existsSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {DEFAULT_LIMITS} from '../../control-plane/limits.js'
import {parseEgress, renderNftables} from '../../control-plane/policy/egress/egress.js'
import {airlock, initFleet, ROOT, tempDir} from '../helpers.js'

/** Every cloud metadata address (written out: the test states the set, not the code). */
const METADATA_ADDRESSES = ['169.254.169.254', '169.254.170.2', '169.254.170.23', '168.63.129.16', '192.0.0.192', '100.100.100.200', 'fd00:ec2::254', 'fd00:ec2::23', 'fd20:ce::254', 'fd00:c1::a9fe:a9fe', 'fe80::a9fe:a9fe']
const NFT = ['/usr/sbin/nft', '/sbin/nft'].find((p) => existsSync(p))
const RUN = Boolean(NFT) || process.env.AIRLOCK_REQUIRE_NFT === '1'
if (!RUN) process.stderr.write('nftables checks skipped: nft is not installed (apt-get install nftables to run them; AIRLOCK_REQUIRE_NFT=1 makes them required)\n')

let t: Awaited<ReturnType<typeof tempDir>>
beforeAll(async () => {
  t = await tempDir()
})
afterAll(() => t?.cleanup())

const policy = (spec: string) => parseEgress(`apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: t\nspec:\n${spec}`, 'egress.yaml', DEFAULT_LIMITS)
const AT = new Date('2026-12-01T12:00:00Z')

async function nftAccepts(ruleset: string): Promise<void> {
  if (!NFT) throw new Error('nft is not installed: apt-get install nftables (.ci/run installs it)')
  const file = join(t.dir, `r${Math.random().toString(36).slice(2)}.nft`)
  await writeFile(file, ruleset)
  // nft -c needs CAP_NET_ADMIN for its cache; without it, check inside a fresh user and network
  // namespace (where the sandbox's ruleset would be loaded anyway).
  let r = await execa(NFT, ['-c', '-f', file], {reject: false})
  if (r.exitCode !== 0 && /Operation not permitted/.test(r.stderr)) r = await execa('unshare', ['--user', '--map-root-user', '--net', NFT, '-c', '-f', file], {reject: false})
  expect(r.exitCode, `${r.stderr}\n${ruleset}`).toBe(0)
}

describe.runIf(RUN)('egress render --format nftables', () => {
  it('every profile renders a ruleset nft accepts, default drop, metadata always dropped', async () => {
    const resolved = new Map([
      ['pypi.org', ['151.101.0.223', '2a04:4e42::223']],
      ['bad.test', ['203.0.113.9']],
    ])
    const cases = [
      '  profile: restrictive\n  allow: [pypi.org, "*.pypi.org", 10.1.2.3, "2001:db8::/32"]\n',
      '  profile: moderate\n  block: [bad.test, 203.0.113.0/24, 203.0.113.7]\n',
      '  profile: permissive\n  allowPrivate: true\n',
      '  profile: permissive\n  network: false\n',
    ]
    for (const spec of cases) {
      const ruleset = renderNftables(policy(spec), {resolved, source: 'answers.json', resolver: '10.0.0.2', at: AT})
      expect(ruleset).toMatch(/policy drop;/)
      if (!spec.includes('network: false')) {
        const v4 = METADATA_ADDRESSES.filter((a) => !a.includes(':'))
        const v6 = METADATA_ADDRESSES.filter((a) => a.includes(':'))
        expect(ruleset).toContain(`ip daddr { ${v4.join(', ')} } drop`)
        expect(ruleset).toContain(`ip6 daddr { ${v6.join(', ')}, ::ffff:0:a9fe:a9fe, 64:ff9b::a9fe:a9fe, 64:ff9b:1::a9fe:a9fe, `)
        for (const a of ['169.254.170.2', '168.63.129.16', '192.0.0.192', '100.100.100.200', 'fd00:ec2::254', 'fd00:ec2::23', 'fe80::a9fe:a9fe']) expect(ruleset).toContain(a)
        expect(ruleset.indexOf('169.254.169.254')).toBeLessThan(ruleset.indexOf(' accept', ruleset.indexOf('tcp dport 53 accept') + 20))
      } else expect(ruleset.match(/ accept/g)).toEqual([' accept']) // loopback only
      await nftAccepts(ruleset)
    }
    const r = renderNftables(policy(cases[0]!), {resolved, source: 'answers.json', resolver: '10.0.0.2', at: AT})
    expect(r).toMatch(/names resolved from answers\.json: pypi\.org -> 151\.101\.0\.223 2a04:4e42::223/)
    expect(r).toMatch(/not enforceable at the address level.*\*\.pypi\.org/)
    expect(r).toMatch(/ip daddr \{ 10\.1\.2\.3, 151\.101\.0\.223 \} tcp dport \{ 443 \} accept/)
    expect(r).not.toMatch(/\n\s+(tcp dport \{ 443 \} )?accept\n/)
  })

  it('the command renders the fleet policy with answers from a file; DNS only to the resolver', async () => {
    const fleet = await initFleet()
    try {
      const answers = join(t.dir, 'answers.json')
      await writeFile(answers, JSON.stringify({'pypi.org': ['151.101.0.223'], 'files.pythonhosted.org': ['151.101.64.223'], 'registry.npmjs.org': ['104.16.0.35']}))
      const r = await airlock(['egress', 'render', '--format', 'nftables', '--resolve', answers, '--resolver', '10.0.0.2'], {cwd: fleet.dir})
      expect(r.exitCode, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/ip daddr 10\.0\.0\.2 udp dport 53 accept[\s\S]*udp dport 53 drop/)
      await nftAccepts(r.stdout)
      const bad = await airlock(['egress', 'render', '--resolve', join(ROOT, 'package.json'), '--json'], {cwd: fleet.dir})
      expect(bad.exitCode).toBe(2)
    } finally {
      await fleet.cleanup()
    }
  })
})
