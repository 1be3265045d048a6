// Tool-policy benchmark (issues 11, 17): `tool check` decisions/s in-process with a 200-tool policy,
// against the raw ajv validate call of the same tool's schema measured in the same run; a URL
// parameter bound to the egress policy (x-airlock-egress) against the raw BlockList check; and the
// one-shot `airlock tool check` process against `node -e ''`.
import {createRequire} from 'node:module'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {BlockList} from 'node:net'
import {cpus, loadavg} from 'node:os'
import {join} from 'node:path'
import {machine, median, processMs, rate as measure, ROOT, writeSection} from './report.js'

const LOAD = loadavg()[0].toFixed(1)
const WORK = join(ROOT, 'bench', '.work', 'tools')
const BIN = join(ROOT, 'bin', 'run.js')
const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 200000)
const RUNS = Number(process.env.BENCH_RUNS ?? 11)
const {parseToolPolicy, checkTool, schemaHash, validatorOf, compileAll, WORKSPACE_PATH_PATTERN} = await import(join(ROOT, 'dist/control-plane/policy/tools/tools.js'))
const {parseEgress} = await import(join(ROOT, 'dist/control-plane/policy/egress/egress.js'))
const {DEFAULT_LIMITS} = await import(join(ROOT, 'dist/control-plane/limits.js'))

// 200 tools, each with a schema of a few typed, bounded fields; every fifth needs an approval.
const schema = (i) => ({
  type: 'object',
  required: ['path', 'mode'],
  additionalProperties: false,
  properties: {path: {type: 'string', maxLength: 4096, pattern: WORKSPACE_PATH_PATTERN}, mode: {enum: ['r', 'w', `m${i}`]}, count: {type: 'integer', minimum: 0, maximum: 1000}, tags: {type: 'array', maxItems: 8, items: {type: 'string', maxLength: 64}}},
})
const tools = Array.from({length: 200}, (_, i) => ({name: `tool_${i}`, risk: i % 5 === 4 ? 'L3' : 'L0', sideEffects: [], ...(i % 5 === 4 ? {approval: 'required'} : {}), parameters: schema(i), schemaHash: schemaHash(schema(i))}))
// The scaffold's http_get: a URL parameter bound to the egress policy.
const httpGet = {type: 'object', required: ['url'], additionalProperties: false, properties: {url: {type: 'string', format: 'uri', maxLength: 2048, pattern: '^https://', 'x-airlock-egress': true}}}
tools.push({name: 'http_get', risk: 'L0', sideEffects: ['network'], parameters: httpGet, schemaHash: schemaHash(httpGet)})
const text = JSON.stringify({apiVersion: 'airlock/v1', kind: 'ToolPolicy', metadata: {name: 'bench'}, spec: {forbiddenCapabilities: ['shell'], allow: tools, deny: [{name: 'shell_exec'}]}})
rmSync(WORK, {recursive: true, force: true})
mkdirSync(WORK, {recursive: true})
const file = join(WORK, 'tool-policy.yaml')
writeFileSync(file, text)
const policy = parseToolPolicy(text, file, DEFAULT_LIMITS)
if (compileAll(policy).length) throw new Error(`the bench policy has findings: ${JSON.stringify(policy.findings[0])}`)
// The scaffolded fleet's egress policy (restrictive, five names allowed).
const egress = parseEgress(`apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: bench\nspec:\n  profile: restrictive\n  allow: [pypi.org, "*.pypi.org", files.pythonhosted.org, registry.npmjs.org, api.example-llm.test]\n`, 'egress.yaml', DEFAULT_LIMITS)
const urlCalls = [{tool: 'http_get', params: {url: 'https://pypi.org/simple/'}}, {tool: 'http_get', params: {url: 'https://METADATA.GOOG./x'}}, {tool: 'http_get', params: {url: 'https://evil.test/'}}]

// Calls: allowed, refused by the schema, needing approval, denied, unknown.
const calls = [
  {tool: 'tool_10', params: {path: '/workspace/a.txt', mode: 'r', count: 3, tags: ['x']}},
  {tool: 'tool_11', params: {path: '/etc/passwd', mode: 'r'}},
  {tool: 'tool_14', params: {path: '/workspace/b', mode: 'w'}},
  {tool: 'shell_exec', params: {cmd: 'id'}},
  {tool: 'nope', params: {}},
  {tool: 'tool_199', params: {path: '/workspace/c', mode: 'm199', extra: 1}},
]
for (const t of policy.allowed.values()) validatorOf(policy, t)
const rate = (fn) => measure(fn, DECISIONS)
// The baseline: ajv's compiled validate of the same schemas, with the same options, called directly.
const require = createRequire(join(ROOT, 'package.json'))
const {Ajv2020} = require('ajv/dist/2020.js')
const addFormats = require('ajv-formats')
const ajv = new Ajv2020({strict: true, strictTypes: false, strictTuples: false, strictRequired: false, logger: false})
addFormats(ajv)
const raw = [ajv.compile(schema(10)), ajv.compile(schema(11)), ajv.compile(schema(14)), ajv.compile(schema(199))]
const rawParams = [calls[0].params, calls[1].params, calls[2].params, calls[5].params]
const rawRate = median(Array.from({length: 3}, () => rate((i) => raw[i % 4](rawParams[i % 4]))))
const ourRate = median(Array.from({length: 3}, () => rate((i) => checkTool(policy, calls[i % calls.length]))))
const allowRate = median(Array.from({length: 3}, () => rate(() => checkTool(policy, calls[0]))))
const rawAllow = median(Array.from({length: 3}, () => rate(() => raw[0](calls[0].params))))
const urlRate = median(Array.from({length: 3}, () => rate((i) => checkTool(policy, urlCalls[i % urlCalls.length], undefined, egress))))
const blockList = new BlockList()
blockList.addAddress('169.254.169.254')
const rawBlock = median(Array.from({length: 3}, () => rate(() => blockList.check('169.254.169.254'))))

const time = (args) => processMs(args, WORK)
const oneShot = median(Array.from({length: RUNS}, () => time([BIN, 'tool', 'check', 'tool_10', '--params', JSON.stringify(calls[0].params), '--policy', file])))
const empty = median(Array.from({length: RUNS}, () => time(['-e', ''])))

const fmt = (n) => Math.round(n).toLocaleString('en-US')
writeSection(
  'tools',
  `## Tool policy (issues 11, 17) — ${new Date().toISOString().slice(0, 10)}

Machine: ${machine()}. A 200-tool policy (each schema: four typed, bounded fields, one pattern — the scaffold's, refusing \`..\` segments, so every tool passes the PATH_ESCAPE lint; every fifth tool needs an approval) plus the scaffold's \`http_get\` bound to a restrictive egress policy, ${fmt(DECISIONS)} decisions per measurement, median of 3 (\`node bench/tools.js\`, part of \`npm run bench\`). Load average when it started: ${LOAD} (on ${cpus().length} cores; absolute rates scale with it, the ratios to the raw baselines of the same run much less). Issue 11's figures, before the lint, the \`..\`-refusing pattern and egress binding: 1.7 M mixed decisions/s, 2.4 M valid calls/s.

| what | result | baseline |
| --- | ---: | --- |
| raw ajv \`validate\` of the same schemas (same options), valid and invalid parameters | ${fmt(rawRate)} validations/s | |
| \`checkTool\` on a mix of calls (allowed, schema-refused, needs approval, denied, unknown, extra field) | ${fmt(ourRate)} decisions/s | ${(ourRate / rawRate).toFixed(2)}× raw |
| raw ajv \`validate\`, one valid call | ${fmt(rawAllow)} validations/s | |
| \`checkTool\`, the same valid call (deny list, lookup, prototype-key scan, validate) | ${fmt(allowRate)} decisions/s | ${(allowRate / rawAllow).toFixed(2)}× raw |
| \`checkTool\`, \`http_get\` with its URL judged by the egress policy (allowed, metadata name, not allowed) | ${fmt(urlRate)} decisions/s | |
| raw \`BlockList.check\` of one address | ${fmt(rawBlock)} checks/s | |
| one-shot \`airlock tool check\` (process, 200-tool policy file) | ${Math.round(oneShot)} ms | \`node -e ''\` ${Math.round(empty)} ms |
`,
)
