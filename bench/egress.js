// Egress benchmark (issue 11): `egress check` decisions/s in-process with a 1,000-rule policy
// (half domains and wildcards, half addresses and CIDR ranges), against a raw node:net
// BlockList.check over the same 500 address rules measured in the same run; and the one-shot
// `airlock egress check` process against `node -e ''`.
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {BlockList} from 'node:net'
import {cpus, loadavg} from 'node:os'
import {join} from 'node:path'
import {machine, median, processMs, rate as measure, ROOT, writeSection} from './report.js'

const LOAD = loadavg()[0].toFixed(1)
const WORK = join(ROOT, 'bench', '.work', 'egress')
const BIN = join(ROOT, 'bin', 'run.js')
const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 200000)
const RUNS = Number(process.env.BENCH_RUNS ?? 11)
const {parseEgress, parseTarget, checkEgress} = await import(join(ROOT, 'dist/control-plane/policy/egress/egress.js'))
const {DEFAULT_LIMITS} = await import(join(ROOT, 'dist/control-plane/limits.js'))

const domains = Array.from({length: 500}, (_, i) => (i % 2 ? `*.svc${i}.example.org` : `host${i}.example.net`))
const addresses = Array.from({length: 500}, (_, i) => (i % 2 ? `198.51.${i % 256}.0/24` : `203.0.${i % 256}.${i % 250}`))
const yaml = `apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: bench\nspec:\n  profile: permissive\n  allow:\n${domains.map((d) => `    - "${d}"`).join('\n')}\n  block:\n${addresses.map((a) => `    - "${a}"`).join('\n')}\n`
rmSync(WORK, {recursive: true, force: true})
mkdirSync(WORK, {recursive: true})
const file = join(WORK, 'egress.yaml')
writeFileSync(file, yaml)
const policy = parseEgress(yaml, file, {...DEFAULT_LIMITS, maxFileBytes: 4 << 20})

// Requests: domains that match a wildcard, one that matches nothing, addresses in and out of the ranges.
const texts = ['a.svc1.example.org', 'host10.example.net', 'nothing.example.com', '198.51.7.9', '192.0.2.1', '0xA9FEA9FE']
const targets = texts.map(parseTarget)
const rate = (fn) => measure(fn, DECISIONS)
const raw = new BlockList()
for (const a of addresses) a.includes('/') ? raw.addSubnet(a.split('/')[0], Number(a.split('/')[1])) : raw.addAddress(a)
const rawIps = ['198.51.7.9', '192.0.2.1', '203.0.4.4', '169.254.169.254']
const rawRate = median(Array.from({length: 3}, () => rate((i) => raw.check(rawIps[i % rawIps.length]))))
const ourRate = median(Array.from({length: 3}, () => rate((i) => checkEgress(policy, targets[i % targets.length]))))
const parseRate = median(Array.from({length: 3}, () => rate((i) => checkEgress(policy, parseTarget(texts[i % texts.length])))))

const time = (args) => processMs(args, WORK)
const oneShot = median(Array.from({length: RUNS}, () => time([BIN, 'egress', 'check', 'a.svc1.example.org', '--policy', file])))
const empty = median(Array.from({length: RUNS}, () => time(['-e', ''])))

const fmt = (n) => Math.round(n).toLocaleString('en-US')
writeSection(
  'egress',
  `## Egress policy (issues 11, 17) — ${new Date().toISOString().slice(0, 10)}

Machine: ${machine()}. A 1,000-rule policy (500 domains and wildcards allowed, 500 addresses and CIDR ranges blocked), ${fmt(DECISIONS)} decisions per measurement, median of 3 (\`node bench/egress.js\`, part of \`npm run bench\`). Load average when it started: ${LOAD} (on ${cpus().length} cores; absolute rates scale with it, the ratios to the raw baselines of the same run much less). The always-denied set is now 11 metadata addresses and 6 names plus AWS's regional pattern (issue 17); issue 11's figures with 2 addresses and 2 names: 0.30 M decisions/s parsed, 0.24 M from text.

| what | result | baseline |
| --- | ---: | --- |
| raw \`BlockList.check\` over the 500 address rules | ${fmt(rawRate)} checks/s | |
| \`checkEgress\` on parsed targets (domains, wildcards, addresses, metadata, private ranges, ports) | ${fmt(ourRate)} decisions/s | ${(ourRate / rawRate).toFixed(2)}× raw |
| \`parseTarget\` + \`checkEgress\` on the same targets as text (WHATWG URL parse each time) | ${fmt(parseRate)} decisions/s | ${(parseRate / rawRate).toFixed(2)}× raw |
| one-shot \`airlock egress check\` (process, 1,000-rule policy file) | ${Math.round(oneShot)} ms | \`node -e ''\` ${Math.round(empty)} ms |
`,
)
