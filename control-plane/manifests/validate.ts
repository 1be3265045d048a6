import {createRequire} from 'node:module'
import type {ErrorObject, ValidateFunction} from 'ajv'
import {inputError} from '../errors.js'
import {digestProblem} from './digest.js'
import goldenImageSchema from './schemas/golden-image.schema.json' with {type: 'json'}
import trustPolicySchema from './schemas/trust-policy.schema.json' with {type: 'json'}
import egressPolicySchema from './schemas/egress-policy.schema.json' with {type: 'json'}
import toolPolicySchema from './schemas/tool-policy.schema.json' with {type: 'json'}
import sandboxSpecSchema from './schemas/sandbox-spec.schema.json' with {type: 'json'}
import gateSuiteSchema from './schemas/gate-suite.schema.json' with {type: 'json'}
import secretsBaselineSchema from './schemas/secrets-baseline.schema.json' with {type: 'json'}
import {locate, type LoadedYaml} from './yaml.js'

export type Kind = 'GoldenImage' | 'TrustPolicy' | 'EgressPolicy' | 'ToolPolicy' | 'SandboxSpec' | 'GateSuite' | 'SecretsBaseline'

const SCHEMAS: Record<Kind, object> = {GoldenImage: goldenImageSchema, TrustPolicy: trustPolicySchema, EgressPolicy: egressPolicySchema, ToolPolicy: toolPolicySchema, SandboxSpec: sandboxSpecSchema, GateSuite: gateSuiteSchema, SecretsBaseline: secretsBaselineSchema}
const compiled = new Map<Kind, ValidateFunction>()

/**
 * The build compiles the schemas to standalone code (scripts/compile-schemas.js, same ajv
 * options); run from sources (tests), the schemas are compiled here instead.
 */
function validatorFor(kind: Kind): ValidateFunction {
  let fn = compiled.get(kind)
  if (!fn) {
    const require = createRequire(import.meta.url)
    let prebuilt: Record<Kind, ValidateFunction> | undefined
    try {
      prebuilt = require('./validators.cjs') as Record<Kind, ValidateFunction>
    } catch {
      prebuilt = undefined
    }
    if (prebuilt?.[kind]) fn = prebuilt[kind]
    else {
      const {Ajv} = require('ajv') as typeof import('ajv')
      fn = new Ajv({allErrors: false, strict: true}).compile(SCHEMAS[kind])
    }
    compiled.set(kind, fn)
  }
  return fn
}

function pathOf(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

function valueAt(root: unknown, path: string[]): unknown {
  let node = root
  for (const part of path) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined
  return node
}

function describe(err: ErrorObject, value: unknown): string {
  const params = err.params as Record<string, unknown>
  switch (err.keyword) {
    case 'required':
      return 'is required'
    case 'additionalProperties':
      return 'is not a known field'
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}`
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    case 'pattern':
    case 'anyOf':
      if (typeof value === 'string' && /^(digest|previous)$/.test(String(err.instancePath.split('/').pop()))) {
        return digestProblem(value)?.message ?? 'is not a sha256 digest'
      }
      return `${JSON.stringify(value)} is not in the expected form`
    default:
      return err.message ?? 'is invalid'
  }
}

/**
 * Validates a loaded document against its kind's JSON Schema. The first error is reported with
 * the file, line, column and dotted field path, so the message points at the text to fix.
 */
export function validateKind(kind: Kind, loaded: LoadedYaml): void {
  const validate = validatorFor(kind)
  if (validate(loaded.value)) return
  const err = validate.errors![0]!
  const path = pathOf(err.instancePath)
  const params = err.params as Record<string, unknown>
  const extra = (params.missingProperty ?? params.additionalProperty ?? params.propertyName) as string | undefined
  const fieldPath = extra !== undefined && err.keyword !== 'propertyNames' ? [...path, extra] : path
  const where = locate(loaded, extra !== undefined && err.keyword !== 'required' ? fieldPath : path, err.keyword === 'additionalProperties')
  const field = fieldPath.reduce<string>((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '') || '(document)'
  const value = valueAt(loaded.value, path)
  const problem = err.keyword === 'propertyNames' ? `"${extra}" is not a valid name (lowercase letters, digits and -)` : describe(err, value)
  const isDigest = err.keyword === 'pattern' || err.keyword === 'anyOf' ? digestProblem(String(value))?.code : undefined
  throw inputError(isDigest && /(digest|previous)$/.test(field) ? isDigest : 'SCHEMA_VIOLATION', {file: loaded.file, ...where, field}, problem)
}
