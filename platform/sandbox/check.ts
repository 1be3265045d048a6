/**
 * Sandbox specs (`manifests/sandboxes/*.yaml`, kind SandboxSpec) checked against the hardening
 * baseline: a digest-pinned image of the fleet that verifies under its signature policy, bounded
 * resources and a timeout, default-deny egress, a tool policy that loads clean, seccomp
 * default-deny and no unconfined AppArmor or SELinux, no dangerous capabilities, a read-only root in
 * a user namespace, no host mounts or runtime sockets (mount paths judged by what they resolve to); and Cedar's answer to Create and Run for the principal, with the Sandbox
 * entity built from the spec. Every finding names its rule, file, line and field.
 */
import {posix} from 'node:path'
import {AirlockError} from '../../control-plane/errors.js'
import type {Identity} from '../../control-plane/identity/jwt.js'
import type {Limits} from '../../control-plane/limits.js'
import {parseDigestRef} from '../../control-plane/manifests/digest.js'
import {EGRESS_FILE, TOOL_POLICY_FILE, type GoldenImage, type TrustPolicy} from '../../control-plane/manifests/models.js'
import {locate} from '../../control-plane/manifests/yaml.js'
import type {SandboxDoc, SandboxSpec} from '../../control-plane/manifests/sandbox.js'
import {parseEgress} from '../../control-plane/policy/egress/egress.js'
import type {PolicyEngine} from '../../control-plane/policy/engine.js'
import {parseToolPolicy, requireClean} from '../../control-plane/policy/tools/tools.js'
import type {Repository} from '../../control-plane/repo/repository.js'

export interface SandboxFinding {
  rule: string
  file: string
  line?: number
  column?: number
  field: string
  message: string
}

/** Every Linux capability (capabilities(7)), without the CAP_ prefix. */
const CAPABILITIES = new Set([
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW',
  'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD',
  'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
])
/** What OCI runtimes (runc, crun, containerd, Docker) grant when nothing is dropped. */
const RUNTIME_DEFAULT = ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE']
/** Capabilities that let a workload reach past its sandbox: never granted. */
export const FORBIDDEN_CAPABILITIES = ['SYS_ADMIN', 'DAC_OVERRIDE', 'NET_ADMIN', 'DAC_READ_SEARCH', 'SYS_MODULE', 'SYS_PTRACE', 'SYS_RAWIO', 'BPF'] as const
const DENYING_SECCOMP = new Set(['errno', 'kill', 'kill-process', 'kill-thread', 'trap'])
const RUNTIME_SOCKET = /(^|\/)(docker|containerd|podman|crio|cri-dockerd|buildkitd)\.sock$|^\/(var\/)?run\/(docker|containerd|podman|crio)(\/|$)/
const SYSTEM_TARGETS = /^\/(proc|sys|dev|boot|etc)(\/|$)/
/** How OCI runtimes (Kubernetes, Docker, containerd) name their default seccomp and AppArmor profiles. */
const RUNTIME_DEFAULT_PROFILE = new Set(['runtime/default', 'runtimedefault', 'docker/default', 'docker-default'])
/** SELinux domains that confine nothing: a process in one reaches the whole host. */
const UNCONFINED_SELINUX = new Set(['spc_t', 'unconfined_t', 'unconfined_service_t', 'container_runtime_t', 'docker_t', 'kernel_t', 'init_t', 'initrc_t', 'sysadm_t', 'secadm_t', 'virtd_t', 'install_t', 'rpm_t'])
/** A named volume as Docker and Podman accept one; any other source that is not absolute is a path relative to somewhere. */
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

/**
 * A mount path as the kernel will be handed it, judged by what it resolves to, not how it is spelt:
 * repeated slashes, `.` and `..` resolved as POSIX does (`/tmp/../etc` is `/etc`), no trailing
 * slash. Empty, `~`-prefixed (a shell expands it; a runtime does not) and relative paths are not
 * paths a baseline can judge.
 */
export type MountPath = {kind: 'absolute'; path: string; climbs: boolean} | {kind: 'empty' | 'home' | 'relative' | 'control'}

export function mountPath(raw: string): MountPath {
  if (raw.trim() === '') return {kind: 'empty'}
  // A NUL ends the path for the kernel; any other control character is no path a person meant.
  if (/[\u0000-\u001f\u007f]/.test(raw)) return {kind: 'control'}
  if (raw.startsWith('~')) return {kind: 'home'}
  if (!raw.startsWith('/')) return {kind: 'relative'}
  const path = posix.normalize(raw).replace(/(?<=.)\/+$/, '')
  return {kind: 'absolute', path, climbs: raw.split('/').includes('..')}
}

const NOT_A_PATH: Record<Exclude<MountPath['kind'], 'absolute'>, [rule: string, why: string]> = {
  empty: ['mount-path-empty', 'is empty'],
  control: ['mount-path-control', 'holds a control character (a NUL would end it early)'],
  home: ['mount-path-home', 'starts with ~, which a shell expands and a runtime does not: give the absolute path'],
  relative: ['mount-path-relative', 'is relative: the runtime resolves it against a folder this spec does not name; give an absolute path'],
}

/** `CAP_SYS_ADMIN`, `sys_admin`, `SYS_ADMIN` → `SYS_ADMIN`. */
function capName(raw: string): string {
  return raw.toUpperCase().replace(/^CAP_/, '')
}

/** What the baseline needs from the fleet at the verified commit, and from the outside world. */
export interface SandboxContext {
  repo: Repository
  commit: string
  trust: TrustPolicy
  images: GoldenImage[]
  identity: Identity
  limits: Limits
  /** Verifies a digest of a managed image under its signature policy (throws IMAGE_… when not). */
  verifyImage(image: GoldenImage, digest: string): Promise<void>
  /** The repository's Cedar policies at the commit (null: none, so nothing is permitted). */
  engine: Pick<PolicyEngine, 'authorize'> | null
}

/** What loading a policy file of the fleet gave: read and parsed once for every spec naming it. */
type Loaded<T> = {missing: true} | {missing: false; value: T} | {missing: false; error: AirlockError}

/** The checks of one run share their loads: specs mostly name the same egress and tool policies. */
class FleetFiles {
  private readonly loads = new Map<string, Promise<Loaded<unknown>>>()
  constructor(private readonly ctx: SandboxContext) {}

  load<T>(path: string, parse: (text: string) => T): Promise<Loaded<T>> {
    let loading = this.loads.get(path)
    if (!loading) {
      loading = this.ctx.repo.readFile(this.ctx.commit, path).then((found): Loaded<unknown> => {
        if (!found) return {missing: true}
        try {
          return {missing: false, value: parse(found.text)}
        } catch (error) {
          if (!(error instanceof AirlockError)) throw error
          return {missing: false, error}
        }
      })
      this.loads.set(path, loading)
    }
    return loading as Promise<Loaded<T>>
  }
}

/** Every spec against the baseline, loading each policy file they name once. */
export async function checkSandboxes(specs: SandboxSpec[], ctx: SandboxContext): Promise<SandboxReport[]> {
  const files = new FleetFiles(ctx)
  const reports: SandboxReport[] = []
  for (const spec of specs) reports.push(await checkSandbox(spec, ctx, files))
  return reports
}

export interface SandboxReport {
  file: string
  name: string
  passed: boolean
  image: {repository: string; digest: string; verified: boolean} | null
  authorization: Record<'Create' | 'Run', {decision: 'allow' | 'deny'; reasons: string[]; errors: string[]}>
  findings: SandboxFinding[]
}

async function checkSandbox(spec: SandboxSpec, ctx: SandboxContext, files: FleetFiles): Promise<SandboxReport> {
  const {doc, file} = spec
  const s = doc.spec
  const findings: SandboxFinding[] = []
  const find = (rule: string, path: Array<string | number>, message: string) => {
    const field = ['spec', ...path].reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : `${acc}.${p}`), '').slice(1)
    findings.push({rule, file, ...locate(spec.loaded, ['spec', ...path]), field, message})
  }

  // Image: a managed image's channel, or a digest reference to a managed image; then verified.
  let image: SandboxReport['image'] = null
  const target = resolveImage(spec, ctx, find)
  if (target) {
    image = {repository: target.image.repository, digest: target.digest, verified: false}
    try {
      await ctx.verifyImage(target.image, target.digest)
      image.verified = true
    } catch (error) {
      if (!(error instanceof AirlockError)) throw error
      find('image-verified', ['image'], `${target.image.repository}@${target.digest} does not verify under ${target.image.name}'s signature policy: ${error.code} ${error.message}`)
    }
  }

  // Limits.
  // A missing field is named itself; its line is that of the nearest field present.
  if (s.resources?.memoryMb === undefined) find('resources-bounded', ['resources', 'memoryMb'], 'no memory limit')
  if (s.resources?.vcpus === undefined) find('resources-bounded', ['resources', 'vcpus'], 'no vCPU limit')
  if (s.timeoutSeconds === undefined) find('timeout', ['timeoutSeconds'], 'no timeout: a stuck or hostile job would run for ever')

  await checkEgress(s, ctx, files, find)
  await checkToolPolicy(s, ctx, files, find)

  // Confinement.
  const sec = s.security ?? {}
  checkSeccomp(sec.seccomp, find)
  checkCapabilities(sec.capabilities, find)
  if (sec.privileged === true) find('not-privileged', ['security', 'privileged'], 'a privileged sandbox has every capability and every device')
  if (sec.readOnlyRoot !== true) find('read-only-root', ['security', 'readOnlyRoot'], 'the root file system must be read-only (true)')
  if (sec.userNamespace !== true) find('user-namespace', ['security', 'userNamespace'], 'root in the sandbox must not be root outside: run it in a user namespace (true)')
  checkLsm(sec, find)
  for (const [i, m] of (s.mounts ?? []).entries()) checkMount(m, i, find)

  const authorization = await authorize(spec, ctx, image, find)
  return {file, name: spec.name, passed: findings.length === 0, image, authorization, findings}
}

type Find = (rule: string, path: Array<string | number>, message: string) => void

function resolveImage(spec: SandboxSpec, ctx: SandboxContext, find: Find): {image: GoldenImage; digest: string} | null {
  const {name, channel, ref} = spec.doc.spec.image
  if (ref !== undefined) {
    if (name !== undefined || channel !== undefined) {
      find('image-pinned', ['image'], 'give image.name and image.channel, or image.ref, not both')
      return null
    }
    let parsed
    try {
      parsed = parseDigestRef(ref, 'image.ref')
    } catch (error) {
      if (!(error instanceof AirlockError)) throw error
      find('image-pinned', ['image', 'ref'], `${error.message.replace(/^image\.ref: /, '')} (a tag is never a pin)`)
      return null
    }
    const image = ctx.images.find((i) => i.repository === parsed.repository)
    if (!image) {
      find('image-managed', ['image', 'ref'], `${parsed.repository} is not an image of this fleet (no manifests/images/ file has it as spec.repository)`)
      return null
    }
    return {image, digest: parsed.digest}
  }
  if (name === undefined || channel === undefined) {
    find('image-pinned', ['image'], 'give image.name and image.channel (a managed image), or image.ref (repo@sha256:…)')
    return null
  }
  const image = ctx.images.find((i) => i.name === name)
  if (!image) {
    find('image-managed', ['image', 'name'], `${name} is not an image of this fleet (${ctx.images.map((i) => i.name).join(', ') || 'it has none'})`)
    return null
  }
  const pin = Object.hasOwn(image.channels, channel) ? image.channels[channel] : undefined
  if (!pin) {
    find('image-managed', ['image', 'channel'], `${name} has no channel ${channel} (${Object.keys(image.channels).join(', ')})`)
    return null
  }
  return {image, digest: pin.digest}
}

async function checkEgress(s: SandboxDoc['spec'], ctx: SandboxContext, files: FleetFiles, find: Find): Promise<void> {
  if (s.egress?.network === false) return
  const path = s.egress?.policy ?? EGRESS_FILE
  const at = s.egress?.policy ? ['egress', 'policy'] : s.egress ? ['egress'] : []
  const loaded = await files.load(path, (text) => parseEgress(text, path, ctx.limits))
  if (loaded.missing) return find('egress-default-deny', at, `no egress policy at ${path}: give one, or egress.network: false`)
  if ('error' in loaded) return find('egress-default-deny', at, `the egress policy does not load: ${loaded.error.message}`)
  const policy = loaded.value
  if (policy.network && !policy.allowlistOnly) find('egress-default-deny', at, `${path} (profile ${policy.profile}) lets through what it does not block; a sandbox needs allowlist-only egress (profile restrictive) or none`)
  if (s.egress?.profile && s.egress.profile !== policy.profile) find('egress-profile', ['egress', 'profile'], `the sandbox expects profile ${s.egress.profile}, but ${path} has ${policy.profile}`)
}

async function checkToolPolicy(s: SandboxDoc['spec'], ctx: SandboxContext, files: FleetFiles, find: Find): Promise<void> {
  const path = s.toolPolicy ?? TOOL_POLICY_FILE
  const at = s.toolPolicy ? ['toolPolicy'] : []
  // What `airlock change` requires of a tool policy: it loads, and denies nothing by accident.
  const loaded = await files.load(path, (text) => requireClean(parseToolPolicy(text, path, ctx.limits)))
  // Without a tool policy every tool call is denied: only a named one that is missing is wrong.
  if (loaded.missing) return s.toolPolicy ? find('tool-policy', at, `no tool policy at ${path}`) : undefined
  if ('error' in loaded) find('tool-policy', at, `the tool policy does not load clean: ${loaded.error.message}`)
}

/**
 * Seccomp: the profile the spec describes (`defaultAction`), or the runtime's default profile
 * (every OCI runtime's default denies what it does not name). `unconfined` is no filter at all; a
 * profile airlock cannot read (a node's `localhost/…` file) cannot be judged, so it fails.
 */
function checkSeccomp(seccomp: SecurityOf<'seccomp'>, find: Find): void {
  const profile = seccomp?.profile
  const action = seccomp?.defaultAction
  if (profile !== undefined) {
    const name = profile.trim().toLowerCase()
    if (name === 'unconfined') return find('seccomp-unconfined', ['security', 'seccomp', 'profile'], `${profile}: the sandbox would run with no system call filter at all`)
    if (!RUNTIME_DEFAULT_PROFILE.has(name)) {
      find('seccomp-profile', ['security', 'seccomp', 'profile'], `${profile} is a profile airlock cannot read, so its default action cannot be judged: give runtime/default, or no profile and a denying defaultAction`)
    }
  } else if (action === undefined) return find('seccomp-default-deny', ['security', 'seccomp', 'defaultAction'], 'no seccomp default action: give errno (or kill)')
  if (action !== undefined && !DENYING_SECCOMP.has(action)) find('seccomp-default-deny', ['security', 'seccomp', 'defaultAction'], `${action} lets every system call the profile does not name through; use errno or kill`)
}

/** AppArmor and SELinux, where the spec sets them: absent is the runtime's confining default. */
function checkLsm(sec: NonNullable<SandboxDoc['spec']['security']>, find: Find): void {
  const apparmor = sec.apparmor?.profile
  if (apparmor !== undefined && apparmor.trim().toLowerCase() === 'unconfined') find('apparmor-unconfined', ['security', 'apparmor', 'profile'], `${apparmor}: the sandbox would run with no AppArmor profile`)
  const selinux = sec.selinux
  if (selinux?.disabled === true) find('selinux-unconfined', ['security', 'selinux', 'disabled'], 'SELinux labelling disabled: the sandbox would run unconfined')
  const type = selinux?.type?.trim().toLowerCase()
  if (type !== undefined && (UNCONFINED_SELINUX.has(type) || /(^|_)unconfined(_|$)/.test(type))) {
    find('selinux-unconfined', ['security', 'selinux', 'type'], `${selinux!.type} is an SELinux domain that confines nothing: use the runtime's container type (container_t)`)
  }
}

type SecurityOf<K extends keyof NonNullable<SandboxDoc['spec']['security']>> = NonNullable<SandboxDoc['spec']['security']>[K]
type Mount = NonNullable<SandboxDoc['spec']['mounts']>[number]

/** One mount, its source and target judged by what they resolve to. */
function checkMount(m: Mount, i: number, find: Find): void {
  const source = m.source === undefined ? null : mountPath(m.source)
  const target = mountPath(m.target)
  if (m.type === 'bind') find('no-host-mounts', ['mounts', i, 'type'], `a host path${m.source ? ` (${m.source})` : ''} is mounted into the sandbox`)
  else if (source?.kind === 'absolute') find('no-host-mounts', ['mounts', i, 'source'], `a host path (${m.source}) is mounted into the sandbox`)
  // A volume's source may be a volume's name; a bind's is always a path.
  if (source && source.kind !== 'absolute' && !(m.type !== 'bind' && source.kind === 'relative' && VOLUME_NAME.test(m.source!))) {
    const [rule, why] = NOT_A_PATH[source.kind]
    find(rule, ['mounts', i, 'source'], `${JSON.stringify(m.source)} ${why}`)
  }
  if (target.kind !== 'absolute') {
    const [rule, why] = NOT_A_PATH[target.kind]
    find(rule, ['mounts', i, 'target'], `${JSON.stringify(m.target)} ${why}`)
  }
  for (const [k, raw, p] of [['source', m.source, source], ['target', m.target, target]] as const) {
    if (p?.kind === 'absolute' && RUNTIME_SOCKET.test(p.path)) find('no-runtime-socket', ['mounts', i, k], `${spelt(raw!, p.path)} is a container runtime's socket: whoever holds it controls the host`)
  }
  if (m.type !== 'bind' && m.sizeMb === undefined) find('mounts-bounded', ['mounts', i, 'sizeMb'], `the ${m.type} mount at ${m.target} has no size limit`)
  if (target.kind === 'absolute') {
    if (target.path === '/' || SYSTEM_TARGETS.test(target.path)) find('mount-target', ['mounts', i, 'target'], `${spelt(m.target, target.path)} is not an absolute path outside /, /proc, /sys, /dev, /boot and /etc`)
    // A symbolic link in the image would take `..` elsewhere than POSIX's reading of the text.
    else if (target.climbs) find('mount-target', ['mounts', i, 'target'], `${m.target} climbs with ..: a symbolic link in the image decides where it lands; give the path without ..`)
  }
}

/** `/tmp/../etc (resolves to /etc)`, or the path alone when it is spelt as it resolves. */
function spelt(raw: string, resolved: string): string {
  return raw === resolved ? raw : `${raw} (resolves to ${resolved})`
}

function checkCapabilities(caps: {drop?: string[]; add?: string[]} | undefined, find: Find): void {
  for (const list of ['drop', 'add'] as const) {
    for (const [i, raw] of (caps?.[list] ?? []).entries()) {
      const name = capName(raw)
      if (name !== 'ALL' && !CAPABILITIES.has(name)) find('capabilities', ['security', 'capabilities', list, i], `${raw} is not a Linux capability`)
    }
  }
  const drop = new Set((caps?.drop ?? []).map(capName))
  const add = (caps?.add ?? []).map(capName)
  if (add.includes('ALL')) return find('no-dangerous-capabilities', ['security', 'capabilities', 'add', add.indexOf('ALL')], `ALL grants ${FORBIDDEN_CAPABILITIES.map((c) => `CAP_${c}`).join(', ')}`)
  for (const cap of FORBIDDEN_CAPABILITIES) {
    const i = add.indexOf(cap)
    if (i >= 0) find('no-dangerous-capabilities', ['security', 'capabilities', 'add', i], `CAP_${cap} lets the workload reach past its sandbox`)
    else if (RUNTIME_DEFAULT.includes(cap) && !drop.has('ALL') && !drop.has(cap)) find('no-dangerous-capabilities', ['security', 'capabilities', 'drop'], `CAP_${cap} is in the runtime's default set and is not dropped: drop ALL, then add what the job needs`)
  }
}

/** Cedar's answers to Create and Run for the principal, on the Sandbox entity built from the spec. */
async function authorize(spec: SandboxSpec, ctx: SandboxContext, image: SandboxReport['image'], find: Find): Promise<SandboxReport['authorization']> {
  const s = spec.doc.spec
  const none = {decision: 'deny' as const, reasons: [], errors: []}
  const {engine} = ctx
  if (!engine) {
    find('cedar', [], 'the repository has no Cedar policies at this commit; nothing is permitted')
    return {Create: none, Run: none}
  }
  // The schema's Sandbox has a memory limit; without one (already a finding) Cedar is not asked.
  if (s.resources?.memoryMb === undefined) {
    const unasked = {...none, errors: ['not evaluated: the spec has no memory limit, which the Sandbox entity requires']}
    return {Create: unasked, Run: unasked}
  }
  // The engine is loaded already (the caller made it); its module formats entity references.
  const {formatUid} = await import('../../control-plane/policy/engine.js')
  const uid = {type: 'AgentKernel::Sandbox', id: spec.name}
  const attrs: Record<string, unknown> = {
    name: spec.name,
    agent_type: s.agentType ?? '',
    runtime: s.runtime ?? '',
    org_id: ctx.trust.org,
    max_memory_mb: s.resources.memoryMb,
    ...(s.resources?.vcpus !== undefined ? {vcpus: s.resources.vcpus} : {}),
    ...(s.timeoutSeconds !== undefined ? {timeout_seconds: s.timeoutSeconds} : {}),
    ...(image ? {image: `${image.repository}@${image.digest}`} : {}),
    egress_profile: s.egress?.network === false ? 'none' : (s.egress?.profile ?? ''),
  }
  const out = {} as SandboxReport['authorization']
  for (const action of ['Create', 'Run'] as const) {
    const d = engine.authorize({
      principal: ctx.identity.principal,
      action: {type: 'AgentKernel::Action', id: action},
      resource: uid,
      context: {},
      entities: [...ctx.identity.entities, {uid, attrs, parents: []}],
    })
    out[action] = {decision: d.decision, reasons: d.reasons.map((r) => `${r.id} (${r.file}:${r.line})`), errors: d.errors.map((e) => `${e.id}: ${e.message}`)}
    if (d.decision === 'deny') {
      const why = d.reasons.length ? `forbidden by ${out[action].reasons.join(', ')}` : d.failedClosed ? `an evaluation error (${out[action].errors.join('; ')}) failed closed` : 'no policy permits it'
      find(`cedar-${action.toLowerCase()}`, [], `${action} is denied for ${formatUid(ctx.identity.principal)}: ${why}`)
    }
  }
  return out
}

