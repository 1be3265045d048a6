/**
 * `airlock sandbox check` on a fleet made by `airlock init`: the scaffold's spec passes; every
 * baseline violation, built into a spec of its own, is found with its rule, file, line and field;
 * Cedar's Create and Run decide on the Sandbox entity built from the spec; and the fleet a spec is
 * checked against must be a verified HEAD.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {parse, stringify} from 'yaml'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {SandboxDoc} from '../../control-plane/manifests/sandbox.js'
import {airlock, type CliResult, commitChange, commitSignedByHand, git, initFleet} from '../helpers.js'

type Spec = SandboxDoc['spec']
type DeepRequired<T> = T extends object ? {[K in keyof T]-?: DeepRequired<T[K]>} : T
/** The scaffold's spec: every part an edit below touches is there. */
type Full = DeepRequired<Spec>

let fleet: Awaited<ReturnType<typeof initFleet>>
let scaffold: {spec: Full}

beforeAll(async () => {
  fleet = await initFleet()
  scaffold = parse(await readFile(join(fleet.dir, 'manifests/sandboxes/agent-runner.yaml'), 'utf8'))
  // A looser egress policy beside the default one, and a Cedar limit of 2 GiB per sandbox.
  await writeFile(join(fleet.dir, 'manifests/egress-open.yaml'), 'apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: open\nspec:\n  profile: moderate\n')
  await writeFile(
    join(fleet.dir, 'policies/global/sandbox-memory.cedar'),
    '@id("sandboxes-at-most-2-gib")\nforbid (principal, action in [AgentKernel::Action::"Create", AgentKernel::Action::"Run"], resource)\nunless { resource.max_memory_mb <= 2048 };\n',
  )
  await commitChange(fleet.dir, fleet.env, 'a looser egress policy for the tests; sandboxes at most 2 GiB')
  // A tool policy whose first schema no longer matches its recorded hash (kept beside the real
  // one). `change` refuses to commit one, so a key holder commits it by hand: sandbox check must
  // still find it in whatever a verified HEAD holds.
  const tools = await readFile(join(fleet.dir, 'manifests/tool-policy.yaml'), 'utf8')
  await writeFile(join(fleet.dir, 'manifests/tools-drifted.yaml'), tools.replace('maxLength: 4096', 'maxLength: 8192'))
  await commitSignedByHand(fleet.dir, fleet.key, 'a drifted tool policy')
})
afterAll(() => fleet.cleanup())

/** The scaffold's spec with `edit` applied to its spec, written to a file of its own. */
async function variant(name: string, edit: (spec: Full) => void): Promise<string> {
  const doc = structuredClone(scaffold)
  edit(doc.spec)
  const file = join(fleet.dir, `${name}.yaml`)
  await writeFile(file, stringify(doc))
  return file
}

const digest = (c: string) => `sha256:${c.repeat(64)}`

describe('airlock sandbox check', () => {
  it("passes the scaffold's spec: pinned and verified image, Cedar allows Create and Run", async () => {
    const r = await airlock(['sandbox', 'check', '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(0)
    expect(r.json.passed).toBe(true)
    const [report] = r.json.sandboxes
    expect(report).toMatchObject({file: 'manifests/sandboxes/agent-runner.yaml', name: 'agent-runner', findings: [], image: {repository: 'registry.example.com/golden/agent-runner', verified: true}})
    expect(report.authorization.Create).toMatchObject({decision: 'allow', reasons: [expect.stringMatching(/^global-local-operators-sandboxes-in-scratch-fleets \(policies\/global\/sandboxes\.cedar:\d+\)$/)]})
    expect(report.authorization.Run.decision).toBe('allow')
    const text = await airlock(['sandbox', 'check'], {cwd: fleet.dir})
    expect(text.stdout).toMatch(/^PASS manifests\/sandboxes\/agent-runner\.yaml \(agent-runner\) {2}registry\.example\.com\/golden\/agent-runner@sha256:[0-9a-f]{12}… verified$/m)
  })

  describe('each problem of a spec, each in a file of its own (one check of all the files, in JSON and as text)', () => {
    const cases: Array<[name: string, edit: (s: Full) => void, rule: string, field: string, message: RegExp]> = [
      ['a tag', (s: Full) => ((s as Spec).image = {ref: 'registry.example.com/golden/agent-runner:latest'}), 'image-pinned', 'spec.image.ref', /a tag is never a pin/],
      ['an image the fleet does not manage', (s: Full) => ((s as Spec).image = {ref: `docker.io/library/alpine@${digest('a')}`}), 'image-managed', 'spec.image.ref', /docker\.io\/library\/alpine is not an image of this fleet/],
      ['an unknown image name', (s: Full) => ((s as Spec).image = {name: 'nope', channel: 'stable'}), 'image-managed', 'spec.image.name', /nope is not an image of this fleet \(agent-runner\)/],
      ['an unknown channel', (s: Full) => (s.image.channel = 'nightly'), 'image-managed', 'spec.image.channel', /agent-runner has no channel nightly \(canary, stable\)/],
      ['an unsigned digest of a managed image', (s: Full) => ((s as Spec).image = {ref: `registry.example.com/golden/agent-runner@${digest('b')}`}), 'image-verified', 'spec.image', /does not verify under agent-runner's signature policy: IMAGE_NO_SIGNATURE/],
      ['a missing timeout', (s: Full) => delete (s as Spec).timeoutSeconds, 'timeout', 'spec.timeoutSeconds', /no timeout/],
      ['no memory limit', (s: Full) => delete (s as Spec).resources!.memoryMb, 'resources-bounded', 'spec.resources.memoryMb', /no memory limit/],
      ['a host mount', (s: Full) => (s as Spec).mounts!.push({type: 'bind', source: '/var/lib/secrets', target: '/data', readOnly: true}), 'no-host-mounts', 'spec.mounts[2].type', /a host path \(\/var\/lib\/secrets\)/],
      ['the docker socket', (s: Full) => (s as Spec).mounts!.push({type: 'volume', source: '/var/run/docker.sock', target: '/var/run/docker.sock', sizeMb: 1}), 'no-runtime-socket', 'spec.mounts[2].source', /container runtime's socket/],
      ['an unbounded mount', (s: Full) => (s as Spec).mounts!.push({type: 'tmpfs', target: '/cache'}), 'mounts-bounded', 'spec.mounts[2].sizeMb', /has no size limit/],
      ['a mount over /proc', (s: Full) => (s as Spec).mounts!.push({type: 'tmpfs', target: '/proc/sys', sizeMb: 1}), 'mount-target', 'spec.mounts[2].target', /not an absolute path outside/],
      ['seccomp allowing by default', (s: Full) => (s.security.seccomp.defaultAction = 'allow'), 'seccomp-default-deny', 'spec.security.seccomp.defaultAction', /allow lets every system call/],
      ['no seccomp', (s: Full) => delete (s as Spec).security!.seccomp, 'seccomp-default-deny', 'spec.security.seccomp.defaultAction', /no seccomp default action/],
      ['CAP_SYS_ADMIN added', (s: Full) => (s.security.capabilities.add = ['CAP_SYS_ADMIN']), 'no-dangerous-capabilities', 'spec.security.capabilities.add[0]', /CAP_SYS_ADMIN lets the workload reach past its sandbox/],
      ['net_admin added, in lower case', (s: Full) => (s.security.capabilities.add = ['chown', 'net_admin']), 'no-dangerous-capabilities', 'spec.security.capabilities.add[1]', /CAP_NET_ADMIN/],
      ['ALL added', (s: Full) => (s.security.capabilities.add = ['ALL']), 'no-dangerous-capabilities', 'spec.security.capabilities.add[0]', /ALL grants CAP_SYS_ADMIN/],
      ["the runtime's defaults kept", (s: Full) => (s.security.capabilities.drop = ['NET_RAW']), 'no-dangerous-capabilities', 'spec.security.capabilities.drop', /CAP_DAC_OVERRIDE is in the runtime's default set and is not dropped/],
      ['a capability that does not exist', (s: Full) => (s.security.capabilities.add = ['CAP_TELEPORT']), 'capabilities', 'spec.security.capabilities.add[0]', /CAP_TELEPORT is not a Linux capability/],
      ['a writable root', (s: Full) => (s.security.readOnlyRoot = false), 'read-only-root', 'spec.security.readOnlyRoot', /must be read-only/],
      ['no user namespace', (s: Full) => delete (s as Spec).security!.userNamespace, 'user-namespace', 'spec.security.userNamespace', /must not be root outside/],
      ['privileged', (s: Full) => (s.security.privileged = true), 'not-privileged', 'spec.security.privileged', /every capability/],
      ['egress that is not default-deny', (s: Full) => ((s as Spec).egress = {policy: 'manifests/egress-open.yaml'}), 'egress-default-deny', 'spec.egress.policy', /profile moderate\) lets through what it does not block/],
      ['a missing egress policy', (s: Full) => ((s as Spec).egress = {policy: 'manifests/none.yaml'}), 'egress-default-deny', 'spec.egress.policy', /no egress policy at manifests\/none\.yaml/],
      ['an egress profile the policy does not have', (s: Full) => (s.egress.profile = 'moderate'), 'egress-profile', 'spec.egress.profile', /expects profile moderate, but manifests\/egress\.yaml has restrictive/],
      ['a missing tool policy', (s: Full) => (s.toolPolicy = 'manifests/tools-gone.yaml'), 'tool-policy', 'spec.toolPolicy', /no tool policy at manifests\/tools-gone\.yaml/],
      ['a tool policy that does not load clean', (s: Full) => (s.toolPolicy = 'manifests/tools-drifted.yaml'), 'tool-policy', 'spec.toolPolicy', /does not load clean: manifests\/tools-drifted\.yaml:\d+:\d+: spec\.allow\[0\]\.schemaHash: the recorded hash/],
      ['more memory than Cedar allows', (s: Full) => (s.resources.memoryMb = 3072), 'cedar-create', 'spec', /Create is denied for AgentKernel::User::"local:operator@example\.com": forbidden by sandboxes-at-most-2-gib/],
    ]
    let files: string[]
    let json: CliResult
    let text: CliResult
    beforeAll(async () => {
      files = await Promise.all(cases.map(([name, edit]) => variant(name.replace(/\W+/g, '-'), edit)))
      json = await airlock(['sandbox', 'check', ...files, '--json'], {cwd: fleet.dir})
      text = await airlock(['sandbox', 'check', ...files], {cwd: fleet.dir})
    })

    it.each(cases.map((c, i) => [...c, i] as const))('finds %s', (_name, _edit, rule, field, message, i) => {
      const file = files[i]!
      expect(json.exitCode).toBe(1)
      expect(json.json.passed).toBe(false)
      const report = json.json.sandboxes[i]
      expect(report).toMatchObject({file, passed: false})
      const found = report.findings.find((f: {rule: string}) => f.rule === rule)
      expect(found, JSON.stringify(report.findings)).toMatchObject({rule, file, field, line: expect.any(Number), column: expect.any(Number)})
      expect(found.message).toMatch(message)
      expect(text.exitCode).toBe(1)
      expect(text.stdout).toContain(`FAIL ${file}`)
      expect(text.stdout).toMatch(new RegExp(`${file.replaceAll('/', '\\/').replaceAll('.', '\\.')}:${found.line}:${found.column}: ${field.replaceAll('.', '\\.').replaceAll('[', '\\[').replaceAll(']', '\\]')}: .* \\[${rule}\\]`))
    })
  })

  describe('when a path is spelt another way than it resolves, or confinement is switched off', () => {
    type Case = [name: string, edit: (s: Full) => void, rule: string, field: string]
    const mount = (m: Record<string, unknown>) => (s: Full) => (s as Spec).mounts!.push({type: 'tmpfs', sizeMb: 1, ...m} as never)
    const refused: Case[] = [
      ...['//etc', '/etc/', '/./etc', '/tmp/../etc', '/../etc', '/etc/.', '///proc', '/proc//sys/', '/dev/./shm', '/workspace/../../boot', '/.', '//', '/tmp/..'].map(
        (target): Case => [`target ${target}`, mount({target}), 'mount-target', 'spec.mounts[2].target'],
      ),
      ['target /tmp/../workspace (climbs)', mount({target: '/tmp/../workspace'}), 'mount-target', 'spec.mounts[2].target'],
      ...['/var/lib/../run/docker.sock', '//var/run/docker.sock', '/run/./containerd/containerd.sock', '/var/run/docker.sock/', '/run/podman/../docker.sock'].map(
        (source): Case => [`socket source ${source}`, mount({type: 'volume', source, target: '/sock'}), 'no-runtime-socket', 'spec.mounts[2].source'],
      ),
      ['socket target /var/run/x/../docker.sock', mount({target: '/var/run/x/../docker.sock'}), 'no-runtime-socket', 'spec.mounts[2].target'],
      ['relative target', mount({target: 'workspace'}), 'mount-path-relative', 'spec.mounts[2].target'],
      ['relative target ./etc', mount({target: './etc'}), 'mount-path-relative', 'spec.mounts[2].target'],
      ['~ target', mount({target: '~/work'}), 'mount-path-home', 'spec.mounts[2].target'],
      ['blank target', mount({target: ' '}), 'mount-path-empty', 'spec.mounts[2].target'],
      ['target with a NUL', mount({target: '/work\u0000/etc'}), 'mount-path-control', 'spec.mounts[2].target'],
      ['relative bind source', mount({type: 'bind', source: 'data', target: '/data'}), 'mount-path-relative', 'spec.mounts[2].source'],
      ['relative volume source climbing', mount({type: 'volume', source: '../../etc', target: '/data'}), 'mount-path-relative', 'spec.mounts[2].source'],
      ['volume source ./data', mount({type: 'volume', source: './data', target: '/data'}), 'mount-path-relative', 'spec.mounts[2].source'],
      ['~ source', mount({type: 'volume', source: '~/.ssh', target: '/data'}), 'mount-path-home', 'spec.mounts[2].source'],
      ['~user source', mount({type: 'volume', source: '~root', target: '/data'}), 'mount-path-home', 'spec.mounts[2].source'],
      ['blank source', mount({type: 'volume', source: '  ', target: '/data'}), 'mount-path-empty', 'spec.mounts[2].source'],
      ['a host path as a volume source, spelt //', mount({type: 'volume', source: '//var/lib/secrets', target: '/data'}), 'no-host-mounts', 'spec.mounts[2].source'],
      ['seccomp unconfined', (s) => ((s.security.seccomp as {profile?: string}).profile = 'unconfined'), 'seccomp-unconfined', 'spec.security.seccomp.profile'],
      ['seccomp Unconfined', (s) => ((s.security.seccomp as {profile?: string}).profile = 'Unconfined'), 'seccomp-unconfined', 'spec.security.seccomp.profile'],
      ['seccomp a node-local profile', (s) => ((s.security.seccomp as {profile?: string}).profile = 'localhost/profiles/audit.json'), 'seccomp-profile', 'spec.security.seccomp.profile'],
      ['seccomp runtime default that logs', (s) => ((s as Spec).security!.seccomp = {profile: 'runtime/default', defaultAction: 'log'}), 'seccomp-default-deny', 'spec.security.seccomp.defaultAction'],
      ['apparmor unconfined', (s) => ((s as Spec).security!.apparmor = {profile: 'unconfined'}), 'apparmor-unconfined', 'spec.security.apparmor.profile'],
      ['selinux spc_t', (s) => ((s as Spec).security!.selinux = {type: 'spc_t'}), 'selinux-unconfined', 'spec.security.selinux.type'],
      ['selinux unconfined_t', (s) => ((s as Spec).security!.selinux = {type: 'unconfined_t'}), 'selinux-unconfined', 'spec.security.selinux.type'],
      ['selinux disabled', (s) => ((s as Spec).security!.selinux = {disabled: true}), 'selinux-unconfined', 'spec.security.selinux.disabled'],
    ]
    const passing: Array<[name: string, edit: (s: Full) => void]> = [
      ['target /workspace//cache/', mount({target: '/workspace//cache/'})],
      ['target /etcetera', mount({target: '/etcetera'})],
      ['a named volume', mount({type: 'volume', source: 'build-cache', target: '/cache'})],
      ["seccomp: the runtime's default profile", (s) => ((s as Spec).security!.seccomp = {profile: 'RuntimeDefault'})],
      ['apparmor and selinux confining', (s) => Object.assign(s.security, {apparmor: {profile: 'runtime/default'}, selinux: {type: 'container_t', level: 's0:c1,c2'}})],
    ]

    async function expectFound(cases: Case[]): Promise<void> {
      const files = await Promise.all(cases.map(([, edit], i) => variant(`spelt-${cases[0]![2]}-${i}`, edit)))
      const r = await airlock(['sandbox', 'check', ...files, '--json'], {cwd: fleet.dir})
      expect(r.exitCode, r.stdout).toBe(1)
      for (const [i, [name, , rule, field]] of cases.entries()) {
        const report = r.json.sandboxes[i]
        expect(report.file, name).toBe(files[i])
        const found = report.findings.find((f: {rule: string; field: string}) => f.rule === rule && f.field === field)
        expect(found, `${name}: ${JSON.stringify(report.findings)}`).toMatchObject({line: expect.any(Number), column: expect.any(Number)})
      }
    }

    it('finds every spelling that resolves to a system path or a socket, and every path that is not absolute', async () => {
      await expectFound(refused.filter(([, , rule]) => rule.startsWith('mount') || rule.startsWith('no-')))
    })

    it('finds seccomp, AppArmor and SELinux switched off', async () => {
      await expectFound(refused.filter(([, , rule]) => !(rule.startsWith('mount') || rule.startsWith('no-'))))
    })

    it('passes paths that resolve outside the system folders, named volumes, and confining profiles', async () => {
      const files = await Promise.all(passing.map(([, edit], i) => variant(`fine-${i}`, edit)))
      const r = await airlock(['sandbox', 'check', ...files, '--json'], {cwd: fleet.dir})
      for (const [i, [name]] of passing.entries()) expect(r.json.sandboxes[i].findings, name).toEqual([])
      expect(r.exitCode).toBe(0)
    })

    it('names the resolved path in the finding', async () => {
      const file = await variant('spelt-etc', mount({target: '/tmp/../etc'}))
      const r = await airlock(['sandbox', 'check', file, '--json'], {cwd: fleet.dir})
      expect(r.json.sandboxes[0].findings.find((f: {rule: string}) => f.rule === 'mount-target').message).toMatch(/^\/tmp\/\.\.\/etc \(resolves to \/etc\) is not an absolute path outside/)
    })
  })

  it('Run is denied with Create when the memory limit is exceeded', async () => {
    const file = await variant('big', (s) => (s.resources.memoryMb = 3072))
    const r = await airlock(['sandbox', 'check', file, '--json'], {cwd: fleet.dir})
    expect(r.json.sandboxes[0].authorization).toMatchObject({Create: {decision: 'deny'}, Run: {decision: 'deny', reasons: [expect.stringMatching(/^sandboxes-at-most-2-gib/)]}})
  })

  it.each([
    ['a YAML bomb', 'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n', 'YAML_ERROR'],
    ['an unknown field', 'apiVersion: airlock/v1\nkind: SandboxSpec\nmetadata:\n  name: x\nspec:\n  image: {name: agent-runner, channel: stable}\n  hostNetwork: true\n', 'SCHEMA_VIOLATION'],
    ['a policy path climbing out of manifests/', 'apiVersion: airlock/v1\nkind: SandboxSpec\nmetadata:\n  name: x\nspec:\n  image: {name: agent-runner, channel: stable}\n  egress:\n    policy: manifests/../../etc/egress.yaml\n', 'SCHEMA_VIOLATION'],
  ])('refuses a spec file with %s (exit 2), naming the file', async (_name, text, code) => {
    const file = join(fleet.dir, 'bad.yaml')
    await writeFile(file, text)
    const r = await airlock(['sandbox', 'check', file, '--json'], {cwd: fleet.dir})
    expect(r.exitCode).toBe(2)
    expect(r.json.error.code).toBe(code)
    expect(r.json.error.message).toContain(file)
  })

  it('a sandbox spec change goes through the pipeline: validated, authorized as SandboxSpec, signed', async () => {
    const {dir, env} = fleet
    const file = join(dir, 'manifests/sandboxes/agent-runner.yaml')
    const before = await readFile(file, 'utf8')
    await writeFile(file, before.replace('timeoutSeconds: 1800', 'timeoutSeconds: "soon"'))
    const bad = await airlock(['change', '--json'], {cwd: dir, env})
    expect(bad.exitCode).toBe(2)
    expect(bad.json.error.message).toMatch(/^manifests\/sandboxes\/agent-runner\.yaml:\d+:\d+: spec\.timeoutSeconds: must be integer/)
    await writeFile(file, before.replace('timeoutSeconds: 1800', 'timeoutSeconds: 900'))
    const plan = await airlock(['change', '--reason', 'shorter jobs', '--json'], {cwd: dir, env})
    expect(plan.json.plan.authorization).toMatchObject({decision: 'allow', resource: 'AgentKernel::DesiredState::"SandboxSpec"'})
    await commitChange(dir, env, 'shorter jobs')
    expect((await airlock(['sandbox', 'check'], {cwd: dir})).exitCode).toBe(0)
    expect(await git(dir, 'cat-file', 'commit', 'HEAD')).toMatch(/^gpgsig -----BEGIN SSH SIGNATURE-----/m)
  })

  it('a spec committed without a signature is not checked: HEAD does not verify (exit 1), nor does evidence verify', async () => {
    const {dir} = fleet
    const file = join(dir, 'manifests/sandboxes/agent-runner.yaml')
    await writeFile(file, (await readFile(file, 'utf8')).replace(/ {2}security:\n(?: {4}.*\n)+/, '  security:\n    privileged: true\n'))
    await git(dir, 'commit', '-qam', 'quietly privileged')
    const r = await airlock(['sandbox', 'check', '--json'], {cwd: dir})
    expect(r.exitCode).toBe(1)
    expect(r.json.error.code).toBe('BASE_UNVERIFIED')
    expect(r.json.error.message).toMatch(/UNSIGNED_COMMIT/)
    const tools = await airlock(['tool', 'list', '--json'], {cwd: dir})
    expect(tools.json.error.code).toBe('BASE_UNVERIFIED')
    expect((await airlock(['evidence', 'verify'], {cwd: dir})).exitCode).toBe(1)
    await git(dir, 'reset', '-q', '--hard', 'HEAD~1')
  })
})
