/**
 * The example tool policy and sandbox spec `airlock init` scaffolds (restrictive, and passing
 * `airlock sandbox check`); the embedded example fleet's are written from these too.
 */
import {Document} from 'yaml'
import {EGRESS_KEYWORD, schemaHash, WORKSPACE_PATH_PATTERN} from '../policy/tools/tools.js'

/** Under /workspace/, never through a `..` segment (leading, middle, trailing), no control characters. */
const workspacePath = {type: 'string', maxLength: 4096, pattern: WORKSPACE_PATH_PATTERN}

const TOOLS = [
  {name: 'read_file', description: 'Read a file of the workspace', risk: 'L0', sideEffects: [], capabilities: ['filesystem-read'], parameters: {type: 'object', required: ['path'], additionalProperties: false, properties: {path: workspacePath}}},
  {
    name: 'write_file',
    description: 'Write a file of the workspace',
    risk: 'L1',
    sideEffects: ['filesystem-write'],
    capabilities: ['filesystem-write'],
    parameters: {type: 'object', required: ['path', 'content'], additionalProperties: false, properties: {path: workspacePath, content: {type: 'string', maxLength: 262144}}},
  },
  {
    name: 'http_get',
    description: 'Fetch a URL the egress policy allows',
    risk: 'L0',
    sideEffects: ['network'],
    capabilities: ['network-http'],
    parameters: {type: 'object', required: ['url'], additionalProperties: false, properties: {url: {type: 'string', format: 'uri', maxLength: 2048, pattern: '^https://', [EGRESS_KEYWORD]: true}}},
  },
  {
    name: 'open_pull_request',
    description: 'Open a pull request with the workspace changes',
    risk: 'L3',
    sideEffects: ['external-write'],
    capabilities: ['network-http'],
    approval: 'required',
    parameters: {
      type: 'object',
      required: ['repository', 'title'],
      additionalProperties: false,
      properties: {repository: {type: 'string', maxLength: 200, pattern: '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$'}, title: {type: 'string', minLength: 1, maxLength: 200}, body: {type: 'string', maxLength: 65536}},
    },
  },
]

/** A restrictive tool policy: four tools with their schemas and hashes, shell denied. */
export function exampleToolPolicy(): string {
  const doc = new Document({
    apiVersion: 'airlock/v1',
    kind: 'ToolPolicy',
    metadata: {name: 'agent-tools', description: 'What agents in this fleet may call'},
    spec: {
      failClosed: {unknownTool: 'deny', schemaError: 'deny'},
      approvalFrom: 'L4',
      maxParamsBytes: 524288,
      forbiddenCapabilities: ['shell', 'network-raw', 'credential-read'],
      allow: TOOLS.map((t) => ({...t, schemaHash: schemaHash(t.parameters)})),
      deny: [
        {name: 'shell_exec', reason: 'arbitrary commands'},
        {name: 'read_secret', reason: 'credentials never reach an agent'},
      ],
    },
  })
  doc.commentBefore =
    ' Which tools agents may call, with which parameters. Anything not in allow is denied. schemaHash is the\n' +
    ' SHA-256 of the RFC 8785 form of parameters (airlock tool hash prints it); L4 and above need an approval.\n' +
    ' Paths stay under /workspace/ (no .. segment anywhere); x-airlock-egress: true holds a URL to manifests/egress.yaml.'
  return doc.toString()
}

/** A Tier-2 job on the example image's stable channel, inside the hardening baseline. */
export function exampleSandbox(image: string): string {
  const doc = new Document({
    apiVersion: 'airlock/v1',
    kind: 'SandboxSpec',
    metadata: {name: image, description: 'An ephemeral agent job on the stable golden image'},
    spec: {
      agentType: image,
      runtime: 'firecracker',
      image: {name: image, channel: 'stable'},
      resources: {vcpus: 2, memoryMb: 2048},
      timeoutSeconds: 1800,
      reapAfterSeconds: 300,
      egress: {profile: 'restrictive', policy: 'manifests/egress.yaml'},
      toolPolicy: 'manifests/tool-policy.yaml',
      security: {seccomp: {defaultAction: 'errno'}, capabilities: {drop: ['ALL']}, readOnlyRoot: true, userNamespace: true, privileged: false},
      mounts: [
        {type: 'tmpfs', target: '/workspace', sizeMb: 1024},
        {type: 'tmpfs', target: '/tmp', sizeMb: 256},
      ],
    },
  })
  doc.commentBefore = ' A Tier-2 sandbox job; airlock sandbox check holds it to the hardening baseline.'
  return doc.toString()
}
