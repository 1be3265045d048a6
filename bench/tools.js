// Tool-policy benchmark (issue 11): `tool check` decisions/s in-process with a 200-tool policy,
// against the raw ajv validate call of the same tool's schema measured in the same run; and the
// one-shot `airlock tool check` process against `node -e ''`.
import {createRequire} from 'node:module'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {machine, median, processMs, rate as measure, ROOT, writeSection} from './report.js'

const WORK = join(ROOT, 'bench', '.work', 'tools')
const BIN = join(ROOT, 'bin', 'run.js')
const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 200000)
const RUNS = Number(process.env.BENCH_RUNS ?? 11)
const {parseToolPolicy, checkTool, schemaHash, validatorOf} = await import(join(ROOT, 'dist/control-plane/policy/tools/tools.js'))
const {DEFAULT_LIMITS} = await import(join(ROOT, 'dist/control-plane/limits.js'))

// 200 tools, each with a schema of a few typed, bounded fields; every fifth needs an approval.
const schema = (i) => ({
  type: 'object',
  required: ['path', 'mode'],
  additionalProperties: false,
  properties: {path: {type: 'string', maxLength: 4096, pattern: '^/workspace/'}, mode: {enum: ['r', 'w', `m${i}`]}, count: {type: 'integer', minimum: 0, maximum: 1000}, tags: {type: 'array', maxItems: 8, items: {type: 'string', maxLength: 64}}},
})
const tools = Array.from({length: 200}, (_, i) => ({name: `tool_${i}`, risk: i % 5 === 4 ? 'L3' : 'L0', sideEffects: [], ...(i % 5 === 4 ? {approval: 'required'} : {}), parameters: schema(i), schemaHash: schemaHash(schema(i))}))
const text = JSON.stringify({apiVersion: 'airlock/v1', kind: 'ToolPolicy', metadata: {name: 'bench'}, spec: {forbiddenCapabilities: ['shell'], allow: tools, deny: [{name: 'shell_exec'}]}})
rmSync(WORK, {recursive: true, force: true})
mkdirSync(WORK, {recursive: true})
const file = join(WORK, 'tool-policy.yaml')
writeFileSync(file, text)
const policy = parseToolPolicy(text, file, DEFAULT_LIMITS)

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

const time = (args) => processMs(args, WORK)
const oneShot = median(Array.from({length: RUNS}, () => time([BIN, 'tool', 'check', 'tool_10', '--params', JSON.stringify(calls[0].params), '--policy', file])))
const empty = median(Array.from({length: RUNS}, () => time(['-e', ''])))

const fmt = (n) => Math.round(n).toLocaleString('en-US')
writeSection(
  'tools',
  `## Tool policy (issue 11) — ${new Date().toISOString().slice(0, 10)}

Machine: ${machine()}. A 200-tool policy (each schema: four typed, bounded fields, one pattern; every fifth tool needs an approval), ${fmt(DECISIONS)} decisions per measurement, median of 3 (\`node bench/tools.js\`, part of \`npm run bench\`).

| what | result | baseline |
| --- | ---: | --- |
| raw ajv \`validate\` of the same schemas (same options), valid and invalid parameters | ${fmt(rawRate)} validations/s | |
| \`checkTool\` on a mix of calls (allowed, schema-refused, needs approval, denied, unknown, extra field) | ${fmt(ourRate)} decisions/s | ${(ourRate / rawRate).toFixed(2)}× raw |
| raw ajv \`validate\`, one valid call | ${fmt(rawAllow)} validations/s | |
| \`checkTool\`, the same valid call (deny list, lookup, prototype-key scan, validate) | ${fmt(allowRate)} decisions/s | ${(allowRate / rawAllow).toFixed(2)}× raw |
| one-shot \`airlock tool check\` (process, 200-tool policy file) | ${Math.round(oneShot)} ms | \`node -e ''\` ${Math.round(empty)} ms |
`,
)
