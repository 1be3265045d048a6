/**
 * Egress policy: every way of spelling a denied address or host, refused with the rule that
 * decided, and the profiles' defaults. Targets are parsed as `airlock egress check` parses them.
 */
import {describe, expect, it} from 'vitest'
import {DEFAULT_LIMITS} from '../../../control-plane/limits.js'
import {checkEgress, parseEgress, parseTarget} from '../../../control-plane/policy/egress/egress.js'

/** The cloud metadata services' names and addresses (written out: the test states the set, not the code). */
const METADATA_NAMES = ['instance-data', 'instance-data.ec2.internal', 'metadata', 'metadata.google.internal', 'metadata.goog', 'metadata.azure.internal']
const METADATA_ADDRESSES = ['169.254.169.254', '169.254.170.2', '169.254.170.23', '168.63.129.16', '192.0.0.192', '100.100.100.200', 'fd00:ec2::254', 'fd00:ec2::23', 'fd20:ce::254', 'fd00:c1::a9fe:a9fe', 'fe80::a9fe:a9fe']

const policy = (spec: string) => parseEgress(`apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: t\nspec:\n${spec}`, 'egress.yaml', DEFAULT_LIMITS)
const restrictive = policy('  profile: restrictive\n  allow: [pypi.org, "*.pypi.org", allowed.test, 10.1.2.3]\n  block: ["*.evil.test"]\n')
const permissive = policy('  profile: permissive\n  block: [bad.test, 203.0.113.0/24]\n')
const check = (p: ReturnType<typeof policy>, target: string) => checkEgress(p, parseTarget(target))

describe('egress check: no bypass', () => {
  it.each([
    ['169.254.169.254', '169.254.169.254'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
    ['https://169.254.169.254./', '169.254.169.254'],
    ['0xA9FEA9FE', '169.254.169.254'],
    ['2852039166:443', '169.254.169.254'],
    ['0251.0376.0251.0376', '169.254.169.254'],
    ['0xa9.0xfe.43518', '169.254.169.254'],
    ['169.254.43518', '169.254.169.254'],
    ['[::ffff:169.254.169.254]', '169.254.169.254'],
    ['http://[::ffff:a9fe:a9fe]:80/', '169.254.169.254'],
    ['[::169.254.169.254]', '169.254.169.254'],
    ['[64:ff9b::a9fe:a9fe]', '169.254.169.254'],
    ['http://allowed.test@169.254.169.254/', '169.254.169.254'],
    ['http://allowed.test:x@0xA9FEA9FE:443/', '169.254.169.254'],
    ['[fd00:ec2::254]', 'fd00:ec2::254'],
    ['[FD00:EC2:0:0:0:0:0:254]', 'fd00:ec2::254'],
    ['METADATA.GOOGLE.INTERNAL', 'metadata.google.internal'],
    ['metadata.google.internal.', 'metadata.google.internal'],
    ['https://Metadata.Azure.Internal:443/metadata/instance', 'metadata.azure.internal'],
  ])('%s is the metadata address, always denied', (target, host) => {
    for (const p of [restrictive, permissive, policy('  profile: permissive\n  allowPrivate: true\n  allow: [169.254.169.254, metadata.google.internal, "fd00:ec2::254"]\n')]) {
      const d = check(p, target)
      expect(d).toMatchObject({decision: 'deny', host})
      expect(d.rule).toMatch(/default blocklist \(cloud metadata\).*always denied/)
    }
  })

  it('private, loopback and link-local ranges are denied unless allowed', () => {
    for (const t of ['127.0.0.1', '0x7f.1', '2130706433', '[::1]', '10.0.0.1', '192.168.1.1', '172.16.0.1', '[fe80::1]', '[fc00::1]', '169.254.1.1', '0.0.0.0']) {
      expect(check(permissive, t).rule, t).toMatch(/private address range .*allowPrivate is false/)
    }
    expect(check(restrictive, '10.1.2.3')).toMatchObject({decision: 'allow', rule: 'spec.allow[3] 10.1.2.3'})
    expect(check(policy('  profile: permissive\n  allowPrivate: true\n'), '10.0.0.1').decision).toBe('allow')
  })

  it('wildcards match subdomains only; case, trailing dots, userinfo and look-alikes change nothing', () => {
    expect(check(restrictive, 'files.pypi.org')).toMatchObject({decision: 'allow', rule: 'spec.allow[1] *.pypi.org'})
    expect(check(restrictive, 'PyPI.org.')).toMatchObject({decision: 'allow', rule: 'spec.allow[0] pypi.org'})
    expect(check(restrictive, 'pypi.org.evil.test')).toMatchObject({decision: 'deny', rule: 'spec.block[0] *.evil.test'})
    expect(check(restrictive, 'notpypi.org').rule).toMatch(/allowlistOnly/)
    expect(check(restrictive, 'https://pypi.org@evil.test/')).toMatchObject({decision: 'deny', host: 'evil.test'})
    // Cyrillic і: the parser turns the look-alike into punycode, which no rule names.
    expect(check(restrictive, 'https://pyp\u0456.org/')).toMatchObject({decision: 'deny', host: expect.stringMatching(/^xn--/)})
    expect(check(restrictive, 'https://xn--pyp-lhd.org/').decision).toBe('deny')
  })

  it('ports: each profile’s defaults and a spec list', () => {
    expect(check(restrictive, 'pypi.org:80').rule).toMatch(/spec\.ports: 80 is not one of 443/)
    expect(check(restrictive, 'http://pypi.org/').rule).toMatch(/80 is not one of 443/)
    expect(check(policy('  profile: moderate\n'), 'example.org:8080').decision).toBe('deny')
    expect(check(policy('  profile: moderate\n'), 'http://example.org/').decision).toBe('allow')
    expect(check(permissive, 'example.org:2222')).toMatchObject({decision: 'allow', rule: 'profile permissive: not blocked'})
    expect(check(policy('  profile: permissive\n  ports: [22]\n'), 'example.org:22').decision).toBe('allow')
  })

  it('block wins over allow, addresses by CIDR, network: false denies everything', () => {
    expect(check(policy('  profile: permissive\n  allow: [bad.test]\n  block: [bad.test]\n'), 'bad.test').decision).toBe('deny')
    expect(check(permissive, '203.0.113.7')).toMatchObject({decision: 'deny', rule: 'spec.block[1] 203.0.113.0/24'})
    expect(check(policy('  profile: permissive\n  network: false\n'), 'pypi.org')).toMatchObject({decision: 'deny', rule: 'spec.network: false'})
  })

  it('refuses targets it cannot parse safely', () => {
    expect(() => parseTarget('ssh://host')).toThrowAirlockError('USAGE')
    expect(() => parseTarget('http://[::1')).toThrowAirlockError('INVALID_INPUT')
    expect(() => parseTarget('host/path')).toThrowAirlockError('INVALID_INPUT')
  })
})

describe('egress check: the cloud metadata services by every name and address', () => {
  // The most permissive policy there is: every profile default loosened, and the metadata
  // services themselves named in the allow list.
  const loosest = policy(`  profile: permissive\n  allowPrivate: true\n  ports: [80, 443, 8080]\n  allow: [${[...METADATA_ADDRESSES, ...METADATA_NAMES, '*.internal', '*.goog', '*.compute.internal'].map((x) => JSON.stringify(x)).join(', ')}]\n`)
  const all = [restrictive, permissive, policy('  profile: moderate\n'), loosest]
  const denied = (target: string) => {
    for (const p of all) {
      const d = check(p, target)
      expect(d.decision, `${target} under ${p.profile}`).toBe('deny')
      expect(d.rule, target).toMatch(/^default blocklist \(cloud metadata\) .* \(always denied\)$/)
    }
  }

  it.each([...METADATA_NAMES, 'instance-data.us-west-2.compute.internal', 'instance-data.eu-central-1.compute.internal'])('%s: as written, upper case, with a trailing dot, in a URL', (name) => {
    for (const t of [name, name.toUpperCase(), `${name}.`, `${name.toUpperCase()}.`, `http://${name}/latest/meta-data/`, `https://x@${name.toUpperCase()}.:443/`, `ws://${name}:80/`]) denied(t)
  })

  it('names spelled as the resolver reads them: full-width letters, ideographic full stops, percent-encoding', () => {
    for (const t of ['https://\uff4d\uff45\uff54\uff41\uff44\uff41\uff54\uff41/', 'https://metadata\u3002google\u3002internal/', 'http://metad%61ta.goog/', 'https://META%44ATA/', 'https://Instance-Data\uff0eec2\uff0einternal/']) denied(t)
  })

  it.each([...METADATA_ADDRESSES])('%s: the address, always denied', (address) => {
    denied(address.includes(':') ? `[${address}]` : address)
    denied(address.includes(':') ? `http://[${address.toUpperCase()}]:80/` : `http://${address}./`)
  })

  it('the IPv4 metadata addresses in their IPv6 and numeric spellings', () => {
    for (const t of ['[::ffff:168.63.129.16]', '2852039170', '0x646464C8', '[64:ff9b::c000:c0]', '0300.0.0.0300', '[::ffff:a9fe:aa02]']) denied(t)
  })

  it('the IPv4 metadata addresses behind a translator: NAT64 local-use 64:ff9b:1:: and SIIT ::ffff:0:, and the nftables render drops them', async () => {
    for (const t of ['[64:ff9b:1::a9fe:a9fe]', 'http://[64:ff9b:1:0:0:0:169.254.169.254]/', '[::ffff:0:a9fe:a9fe]', '[::ffff:0:169.254.170.2]', '[64:FF9B:1::A83F:8110]']) denied(t)
    const {renderNftables} = await import('../../../control-plane/policy/egress/egress.js')
    const rules = renderNftables(loosest, {resolved: new Map(), source: 'none', resolver: null, at: new Date(0)})
    const drop = rules.split('\n').find((l) => l.trim().startsWith('ip6 daddr') && l.includes('fd00:ec2::254'))!
    for (const a of ['64:ff9b::a9fe:a9fe', '64:ff9b:1::a9fe:a9fe', '::ffff:0:a9fe:a9fe', '64:ff9b::a83f:8110']) expect(drop).toContain(a)
  })

  it('a name that only looks like one is not denied as metadata', () => {
    for (const t of ['metadata.example.org', 'my-metadata', 'instance-data.example', 'metadata.googl']) expect(check(permissive, t).rule).not.toMatch(/cloud metadata/)
  })

  it.each(['pypi.org..', '.pypi.org', 'pypi..org', 'https://pypi.org../simple/', 'https://.metadata.goog/', 'metadata..', 'http://169.254.169.254../'])('%s has an empty label: invalid input, not a spelling of another host', (target) => {
    expect(() => parseTarget(target)).toThrowAirlockError('INVALID_INPUT')
    expect(() => parseTarget(target)).toThrow(/has an empty label/)
  })

  it('IDN targets are compared as their punycode, the form rules are written in', () => {
    const p = policy('  profile: restrictive\n  allow: [xn--bcher-kva.example, "*.xn--xample-9ua.org"]\n')
    expect(check(p, 'https://B\u00fccher.example/')).toMatchObject({decision: 'allow', host: 'xn--bcher-kva.example'})
    expect(check(p, 'xn--bcher-kva.example').decision).toBe('allow')
    expect(check(p, 'https://a.\u00c9xample.org/').decision).toBe('allow')
  })
})

describe('egress policy files', () => {
  it('names the file, line and field of a bad rule; refuses unknown fields and a YAML bomb', () => {
    expect(() => policy('  profile: permissive\n  allow:\n    - ok.test\n    - "10.0.0.0/99"\n')).toThrow(/egress\.yaml:9:7: spec\.allow\[1\]: "10\.0\.0\.0\/99" is not a CIDR range/)
    expect(() => policy('  profile: permissive\n  allow: ["-bad-.test"]\n')).toThrowAirlockError('SCHEMA_VIOLATION')
    expect(() => policy('  profile: lax\n')).toThrowAirlockError('SCHEMA_VIOLATION')
    expect(() => policy('  profile: permissive\n  __proto__: {network: false}\n')).toThrowAirlockError('SCHEMA_VIOLATION')
    const bomb = `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`
    expect(() => parseEgress(bomb, 'egress.yaml', DEFAULT_LIMITS)).toThrowAirlockError('YAML_ERROR')
  })
})
