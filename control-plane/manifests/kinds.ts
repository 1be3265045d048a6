/**
 * What a desired-state file is: its path, its kind, how it is loaded and checked, the Cedar
 * resource a change to it is authorized as, and whether a change may carry it. One table, read
 * by change validation (every change the pipeline builds), authorization, history verification
 * and the loaders. A file under a signed folder that matches no kind is refused.
 */
import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import type {Repository} from '../repo/repository.js'
import {DEFAULT_TRUSTED_ROOT, EGRESS_FILE, EVIDENCE_DIR, GATES_FILE, IMAGES_DIR, SANDBOXES_DIR, SIGNATURES_DIR, TOOL_POLICY_FILE, TRUST_FILE, type TrustPolicy} from './models.js'

/** What a kind's checks may read besides the new text: the change's other files and the base. */
export interface KindContext {
  limits: Limits
  now: Date
  /** Every file of the change: path → new content (null: deleted). */
  files: ReadonlyMap<string, string | null>
  base: {repo: Repository; commit: string; trust: TrustPolicy}
}

export interface DesiredStateKind {
  kind: string
  /** Where files of this kind live, as people write it (for messages). */
  where: string
  /** The folder the kind lives in (its files may sit deeper). */
  folder: string
  /** Does `path` (with `text`, its content, where the path alone cannot say) hold this kind? */
  matches(path: string, text: string | null): boolean
  /** The Cedar `DesiredState` resource a change to it is authorized as (ChangeDesiredState). */
  resource: string
  /** Whether `airlock change` may carry an edit of it (receipts are written by apply only). */
  editable: boolean
  /** Whether a change may delete it. */
  deletable: boolean
  /**
   * The one kind of change (its plan operation) that writes a file of a kind no change may edit
   * (audit checkpoints: audit-publish, after its own checks); absent: only apply writes it.
   */
  writtenBy?: string
  /** Checks new content as its loader does; throws located errors (file, line, field). */
  check?(text: string, path: string, ctx: KindContext): void | Promise<void>
  /** Checks, once per change, what the kind's files say together (e.g. a policy set against its schema). */
  checkTogether?(paths: string[], ctx: KindContext): Promise<void>
}

/** Published audit checkpoints and the consistency proofs between them: a folder per log origin, a file per tree size (audit/published.ts). */
export const CHECKPOINT_FILE = /^docs\/evidence\/audit\/[a-z0-9._~-]+\/[0-9]{20}\.checkpoint$/
export const CONSISTENCY_FILE = /^docs\/evidence\/audit\/[a-z0-9._~-]+\/[0-9]{20}\.consistency$/

const under = (folder: string, rest: RegExp) => (path: string) => path.startsWith(`${folder}/`) && rest.test(path.slice(folder.length + 1))

/** The `kind:` a YAML document declares at its top level (read without parsing; the check parses). */
function declared(text: string | null): string | null {
  return text === null ? null : (/^kind:[ \t]*["']?([A-Za-z]+)["']?[ \t]*(?:#.*)?$/m.exec(text)?.[1] ?? null)
}

/** Files whose kind their path decides: what they declare never makes them another kind. */
const OWN_FILES: ReadonlySet<string> = new Set([TRUST_FILE, EGRESS_FILE, TOOL_POLICY_FILE, GATES_FILE])

/**
 * A policy a sandbox spec may name besides the default one: `manifests/NAME.yaml` that declares
 * the kind (`kind: EgressPolicy`), as well as the kind's own file. Another kind's own file is
 * that kind, whatever it declares (a tool policy replaced by an egress policy is a tool policy
 * that does not load, authorized as one).
 */
const ownFileOrNamed = (file: string, kind: string) => (path: string, text: string | null) =>
  path === file || (!OWN_FILES.has(path) && under('manifests', /^[^/]+\.yaml$/)(path) && declared(text) === kind)

function checkJson(text: string, path: string): void {
  try {
    JSON.parse(text)
  } catch (error) {
    throw new AirlockError('INVALID_INPUT', `${path}: not JSON (${(error as Error).message})`, {file: path})
  }
}

/** NAME.yaml and NAME.yml both, once the change is made: one file per image. */
async function checkNoTwin(path: string, ctx: KindContext): Promise<void> {
  const twin = path.endsWith('.yml') ? path.replace(/\.yml$/, '.yaml') : path.replace(/\.yaml$/, '.yml')
  const there = ctx.files.has(twin) ? ctx.files.get(twin) !== null : (await ctx.base.repo.readFile(ctx.base.commit, twin)) !== undefined
  if (there) throw new AirlockError('SCHEMA_VIOLATION', `${path}: this image is also defined by ${twin}; one file per image (remove one of them)`, {file: path, other: twin})
}

export const DESIRED_STATE: readonly DesiredStateKind[] = [
  {
    kind: 'TrustPolicy',
    where: TRUST_FILE,
    folder: 'manifests',
    matches: (p) => p === TRUST_FILE,
    resource: 'TrustPolicy',
    editable: true,
    deletable: false,
    // Parsable, and every role in use satisfiable by the keys valid now: a trust policy no
    // later change could be checked against is never committed.
    async check(text, path, ctx) {
      const [{parseTrust}, {checkTrustSatisfiable}] = await Promise.all([import('./load.js'), import('./trust.js')])
      checkTrustSatisfiable(parseTrust(text, path, null, ctx.limits), ctx.now)
    },
  },
  {
    kind: 'GoldenImage',
    where: `${IMAGES_DIR}/NAME.yaml`,
    folder: IMAGES_DIR,
    matches: under(IMAGES_DIR, /^[^/]+\.ya?ml$/),
    resource: 'GoldenImage',
    editable: true,
    deletable: true,
    async check(text, path, ctx) {
      const {parseImage} = await import('./load.js')
      parseImage(text, path, '', ctx.limits)
      await checkNoTwin(path, ctx)
    },
  },
  {
    kind: 'EgressPolicy',
    where: `${EGRESS_FILE}, or manifests/NAME.yaml declaring kind: EgressPolicy (for a sandbox spec to name)`,
    folder: 'manifests',
    matches: ownFileOrNamed(EGRESS_FILE, 'EgressPolicy'),
    resource: 'EgressPolicy',
    editable: true,
    deletable: true,
    async check(text, path, ctx) {
      ;(await import('../policy/egress/egress.js')).parseEgress(text, path, ctx.limits)
    },
  },
  {
    kind: 'ToolPolicy',
    where: `${TOOL_POLICY_FILE}, or manifests/NAME.yaml declaring kind: ToolPolicy (for a sandbox spec to name)`,
    folder: 'manifests',
    matches: ownFileOrNamed(TOOL_POLICY_FILE, 'ToolPolicy'),
    resource: 'ToolPolicy',
    editable: true,
    deletable: true,
    // Committed only when it denies nothing by accident (drifted hashes, broken schemas, conflicts).
    async check(text, path, ctx) {
      const {parseToolPolicy, requireClean} = await import('../policy/tools/tools.js')
      requireClean(parseToolPolicy(text, path, ctx.limits))
    },
  },
  {
    kind: 'SandboxSpec',
    where: `${SANDBOXES_DIR}/NAME.yaml`,
    folder: SANDBOXES_DIR,
    matches: under(SANDBOXES_DIR, /^[^/]+\.yaml$/),
    resource: 'SandboxSpec',
    editable: true,
    deletable: true,
    // The shape here; the hardening baseline is `airlock sandbox check` (it needs the principal and the images).
    async check(text, path, ctx) {
      ;(await import('./sandbox.js')).parseSandboxSpec(text, path, ctx.limits)
    },
  },
  {
    kind: 'GateSuite',
    where: GATES_FILE,
    folder: 'manifests',
    matches: (p) => p === GATES_FILE,
    resource: 'GateSuite',
    editable: true,
    deletable: true,
    // The schema, known builtins and their with:, durations, unique ids, needs without cycles.
    async check(text, path, ctx) {
      const [{parseGateSuites}, {BUILTINS}] = await Promise.all([import('../gates/suite.js'), import('../gates/builtins/index.js')])
      parseGateSuites(text, path, ctx.limits, BUILTINS)
    },
  },
  {
    kind: 'ImageSignature',
    where: `${SIGNATURES_DIR}/IMAGE/sha256-<hex>[.N].sigstore.json`,
    folder: SIGNATURES_DIR,
    matches: under(SIGNATURES_DIR, /^[a-z0-9-]+\/sha256-[0-9a-f]{64}(\.[1-9][0-9]{0,2})?\.sigstore\.json$/),
    resource: 'ImageSignature',
    editable: true,
    deletable: true,
    // Whether it verifies is the pipeline's signature step, for every digest a change pins.
    check: (text, path) => checkJson(text, path),
  },
  {
    kind: 'ImageSignaturePayload',
    where: `${SIGNATURES_DIR}/IMAGE/sha256-<hex>[.N].payload.json`,
    folder: SIGNATURES_DIR,
    matches: under(SIGNATURES_DIR, /^[a-z0-9-]+\/sha256-[0-9a-f]{64}(\.[1-9][0-9]{0,2})?\.payload\.json$/),
    resource: 'ImageSignature',
    editable: true,
    deletable: true,
    check: (text, path) => checkJson(text, path),
  },
  {
    kind: 'TrustedRoot',
    where: `${DEFAULT_TRUSTED_ROOT.slice(0, DEFAULT_TRUSTED_ROOT.lastIndexOf('/'))}/NAME.json`,
    folder: 'manifests/sigstore',
    matches: under('manifests/sigstore', /^[^/]+\.json$/),
    resource: 'TrustedRoot',
    editable: true,
    deletable: true,
    check: (text, path) => checkJson(text, path),
  },
  {
    kind: 'Policy',
    where: 'policies/…/NAME.cedar',
    folder: 'policies',
    matches: (p) => p.startsWith('policies/') && p.endsWith('.cedar') && !p.startsWith('policies/tests/'),
    resource: 'Policy',
    editable: true,
    deletable: true,
    // The policy set as the change leaves it, validated strictly against its schema.
    async checkTogether(_paths, ctx) {
      const [{loadPolicyTreeAt}, {validateTree, invalidPolicy}] = await Promise.all([import('../policy/repo-tree.js'), import('../policy/engine.js')])
      const tree = await loadPolicyTreeAt(ctx.base.repo, ctx.base.commit, ctx.files)
      const problems = tree ? validateTree(tree) : []
      if (problems.length > 0) throw invalidPolicy(problems)
    },
  },
  {
    kind: 'PolicySchema',
    where: 'policies/schema.cedarschema',
    folder: 'policies',
    matches: (p) => p === 'policies/schema.cedarschema',
    resource: 'Policy',
    editable: true,
    deletable: true,
    checkTogether: (paths, ctx) => DESIRED_STATE.find((k) => k.kind === 'Policy')!.checkTogether!(paths, ctx),
  },
  {
    kind: 'PolicyTest',
    where: 'policies/tests/NAME.yaml (cases) or NAME.json (entities)',
    folder: 'policies/tests',
    matches: under('policies/tests', /^[^/]+\.(ya?ml|json)$/),
    resource: 'Policy',
    editable: true,
    deletable: true,
    async check(text, path, ctx) {
      if (path.endsWith('.json')) return checkJson(text, path)
      ;(await import('./yaml.js')).loadYaml(text, path, ctx.limits)
    },
  },
  {
    kind: 'PolicyBundle',
    where: 'bundles/global.bundle.json, bundles/orgs/ORG.bundle.json, bundles/teams/ORG/TEAM.bundle.json, bundles/users/USER.bundle.json',
    folder: 'bundles',
    matches: (p) => /^bundles\/(global|orgs\/[^/]+|teams\/[^/]+\/[^/]+|users\/[^/]+)\.bundle\.json$/.test(p),
    resource: 'PolicyBundle',
    editable: true,
    deletable: true,
    // Signed by the base's policy keys, within its lifetime, and stored where its own scope puts it.
    async check(text, path, ctx) {
      const {parseBundle, verifyBundle, bundlePath, parseScope} = await import('../policy/bundle.js')
      const {envelope, payload} = parseBundle(text, path)
      verifyBundle(envelope, payload, {trust: ctx.base.trust, now: ctx.now, source: path, limits: ctx.limits})
      let home: string | null = null
      try {
        home = bundlePath(parseScope(payload.scope))
      } catch {
        home = null
      }
      if (home !== path) throw new AirlockError('SCOPE_MISMATCH', `${path}: a bundle for ${payload.scope} belongs in ${home ?? '(no valid path)'}`, {file: path, scope: payload.scope})
    },
  },
  {
    kind: 'Receipt',
    where: `${EVIDENCE_DIR}/NAME.json`,
    folder: EVIDENCE_DIR,
    matches: under(EVIDENCE_DIR, /^[^/]+\.json$/),
    resource: 'Receipt',
    editable: false,
    deletable: false,
  },
  {
    kind: 'AuditCheckpoint',
    where: `${EVIDENCE_DIR}/audit/ORIGIN/<size, 20 digits>.checkpoint`,
    folder: `${EVIDENCE_DIR}/audit`,
    matches: (p) => CHECKPOINT_FILE.test(p),
    resource: 'AuditLog',
    editable: false,
    deletable: false,
    // Verified against the base's audit keys and the last published checkpoint by the change
    // that writes it (changes/audit-publish.ts); here, that it reads as a checkpoint where it lies.
    writtenBy: 'audit-publish',
    async check(text, path, ctx) {
      ;(await import('../audit/published.js')).readCheckpointFile(path, text, ctx.limits)
    },
  },
  {
    kind: 'AuditConsistencyProof',
    where: `${EVIDENCE_DIR}/audit/ORIGIN/<size, 20 digits>.consistency`,
    folder: `${EVIDENCE_DIR}/audit`,
    matches: (p) => CONSISTENCY_FILE.test(p),
    resource: 'AuditLog',
    editable: false,
    deletable: false,
    writtenBy: 'audit-publish',
    async check(text, path) {
      ;(await import('../audit/published.js')).parseConsistency(text, path)
    },
  },
  {
    kind: 'SecretsBaseline',
    where: '.airlock-secrets-baseline (at the repository root)',
    folder: '',
    matches: (p) => p === SECRETS_BASELINE_FILE,
    resource: 'SecretsBaseline',
    editable: true,
    deletable: true,
    // Fingerprints with reasons, and nothing that looks like a secret (the scan runs over its text).
    async check(text, path, ctx) {
      await (await import('../gates/secrets/baseline.js')).parseSecretsBaseline(text, path, ctx.limits)
    },
  },
  {
    kind: 'Documentation',
    where: `README.md or .gitkeep in a signed folder; in ${EVIDENCE_DIR}/ itself, its README.md (the generated index) or .gitkeep`,
    folder: '',
    matches: (p) => /(^|\/)(README\.md|\.gitkeep)$/.test(p) && (SIGNED_FOLDERS.some((f) => p.startsWith(`${f}/`)) || EVIDENCE_DOCUMENTATION.has(p)),
    resource: 'Manifest',
    editable: true,
    deletable: true,
  },
]

/** The files of the evidence folder that are not receipts: its index (`evidence/index-md.ts` writes it) and a placeholder. */
export const EVIDENCE_DOCUMENTATION: ReadonlySet<string> = new Set([`${EVIDENCE_DIR}/README.md`, `${EVIDENCE_DIR}/.gitkeep`])

/** Folders whose every change must be a commit signed by a trusted evidence key (besides docs/evidence/). */
export const SIGNED_FOLDERS = ['manifests', 'bundles', 'policies'] as const

/** The secrets baseline (kind SecretsBaseline): a root file, signed and verified like the signed folders. */
export const SECRETS_BASELINE_FILE = '.airlock-secrets-baseline'

/** Files at the repository root whose every change must be signed, as the signed folders' are. */
export const SIGNED_FILES = [SECRETS_BASELINE_FILE] as const

/** Top-level names (the signed folders and files) a commit changing needs an evidence signature for (besides docs/evidence/). */
export const SIGNED_PATHS: readonly string[] = [...SIGNED_FOLDERS, ...SIGNED_FILES]

/** Folders that must be folders: a symbolic link there would send reads and writes outside the repository. */
export const LAYOUT_FOLDERS = ['manifests', 'manifests/images', 'bundles', 'policies', 'docs', EVIDENCE_DIR] as const

/** The kind of desired state `path` holds (its content, `text`, decides where the path alone cannot), or null. */
export function kindOf(path: string, text: string | null = null): DesiredStateKind | null {
  return DESIRED_STATE.find((k) => k.matches(path, text)) ?? null
}

/** Is `path` under a folder whose changes must be signed (or the evidence folder), or a signed root file? */
export function inSignedFolder(path: string): boolean {
  return (SIGNED_FILES as readonly string[]).includes(path) || [...SIGNED_FOLDERS, EVIDENCE_DIR].some((f) => path.startsWith(`${f}/`))
}

/** The kind of `path`, which must be one: a file no kind describes is refused, naming what could be there. */
export function requireKind(path: string, text: string | null = null): DesiredStateKind {
  const kind = kindOf(path, text)
  if (kind) return kind
  const top = path.split('/')[0]
  const here = DESIRED_STATE.filter((k) => k.folder === top || k.folder.startsWith(`${top}/`)).map((k) => `${k.kind} (${k.where})`)
  throw new AirlockError('UNKNOWN_KIND', `${path}: no kind of desired state lives here${here.length ? `; ${top}/ holds ${here.join(', ')}` : ''}`, {file: path})
}

/** Is this a file the listing of `kind`'s folder should read (e.g. image manifests in manifests/images/)? */
export function isKind(kind: string, path: string, text: string | null = null): boolean {
  return kindOf(path, text)?.kind === kind
}
