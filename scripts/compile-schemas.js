// Compiles the manifest JSON Schemas to standalone validator code at build time (ajv
// standalone), so commands do not import ajv or compile schemas on every start.
import {readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Ajv} from 'ajv'
import standaloneCode from 'ajv/dist/standalone/index.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dir = join(root, 'control-plane', 'manifests', 'schemas')
const schemas = {
  GoldenImage: JSON.parse(readFileSync(join(dir, 'golden-image.schema.json'), 'utf8')),
  TrustPolicy: JSON.parse(readFileSync(join(dir, 'trust-policy.schema.json'), 'utf8')),
  EgressPolicy: JSON.parse(readFileSync(join(dir, 'egress-policy.schema.json'), 'utf8')),
  ToolPolicy: JSON.parse(readFileSync(join(dir, 'tool-policy.schema.json'), 'utf8')),
  SandboxSpec: JSON.parse(readFileSync(join(dir, 'sandbox-spec.schema.json'), 'utf8')),
  GateSuite: JSON.parse(readFileSync(join(dir, 'gate-suite.schema.json'), 'utf8')),
  SecretsBaseline: JSON.parse(readFileSync(join(dir, 'secrets-baseline.schema.json'), 'utf8')),
}
// The same options as control-plane/manifests/validate.ts uses at run time.
const ajv = new Ajv({allErrors: false, strict: true, code: {source: true}, schemas: Object.values(schemas)})
const refs = Object.fromEntries(Object.entries(schemas).map(([kind, s]) => [kind, s.$id]))
writeFileSync(join(root, 'dist', 'control-plane', 'manifests', 'validators.cjs'), standaloneCode.default(ajv, refs))
console.log(`validators.cjs: ${Object.keys(refs).join(', ')}`)
