import {AirlockCommand, anchorFlag} from '../_base.js'
import {identityFlags} from '../_identity.js'
import type {SandboxReport} from '../../platform/sandbox/check.js'
import type {TrustSource} from '../../control-plane/pipeline/base.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class SandboxCheck extends AirlockCommand {
  static override summary = 'Check sandbox specs against the hardening baseline and the Cedar policies: pass (exit 0) or the findings (exit 1), each with its rule, file, line and field.'
  static override description = `With no SPEC, every manifests/sandboxes/*.yaml at HEAD; SPEC files are read from disk (a proposed change, in CI). Either way the fleet they are checked against — images, signatures, trust, egress and tool policies, Cedar policies — is HEAD's, and HEAD's history must verify back to the trust anchor.

Baseline: the image is a managed image's channel, or a repo@sha256: digest of a managed image, and verifies under that image's signature policy (image-pinned, image-managed, image-verified); memory and vCPU limits (resources-bounded) and a timeout (timeout); egress allowlist-only or none (egress-default-deny, egress-profile); a tool policy that loads without problems (tool-policy); seccomp default-deny: a denying defaultAction or the runtime's default profile, never unconfined (seccomp-default-deny, seccomp-profile, seccomp-unconfined); AppArmor and SELinux, where set, not unconfined (apparmor-unconfined, selinux-unconfined); no CAP_SYS_ADMIN, CAP_DAC_OVERRIDE, CAP_NET_ADMIN, CAP_DAC_READ_SEARCH, CAP_SYS_MODULE, CAP_SYS_PTRACE, CAP_SYS_RAWIO or CAP_BPF, counting the runtime's default set when ALL is not dropped (no-dangerous-capabilities); not privileged, a read-only root, a user namespace; no host paths, no container runtime sockets, every mount sized, no mount over system paths, judged after resolving //, . and .. as POSIX does; empty, ~ and relative paths refused (no-host-mounts, no-runtime-socket, mounts-bounded, mount-target, mount-path-empty, mount-path-home, mount-path-relative, mount-path-control). Then Cedar must allow Create and Run for the principal (--jwt, or the local operator) on the Sandbox entity built from the spec (name, agent_type, runtime, max_memory_mb, vcpus, timeout_seconds, image, egress_profile, org_id).`
  static override examples = ['<%= config.bin %> sandbox check', '<%= config.bin %> sandbox check manifests/sandboxes/code-interpreter.yaml --json']
  static override strict = false
  static override args = {}
  static override flags = {...identityFlags, ...anchorFlag}

  async run(): Promise<{passed: boolean; commit: string; sandboxes: SandboxReport[]; trustSource: TrustSource}> {
    const {argv, flags} = await this.parse(SandboxCheck)
    await this.oneShotWasm()
    const {isKind} = await import('../../control-plane/manifests/kinds.js')
    const [{verifiedHead, readInput}, {actingIdentity}, {loadImages, loadTrust}, {SANDBOXES_DIR}, {loadPolicyTreeAt}, {checkSandboxes}, {parseSandboxSpec}, {verifyPinned}, {AirlockError}] = await Promise.all([
      import('../_policy.js'),
      import('../_identity.js'),
      import('../../control-plane/manifests/load.js'),
      import('../../control-plane/manifests/models.js'),
      import('../../control-plane/policy/repo-tree.js'),
      import('../../platform/sandbox/check.js'),
      import('../../control-plane/manifests/sandbox.js'),
      import('../../platform/images/policy.js'),
      import('../../control-plane/errors.js'),
    ])
    const {limits, now} = this
    const {repo, commit, source} = await verifiedHead(flags, this)
    const files = argv as string[]
    const sources: Array<{file: string; text: string}> = []
    if (files.length) for (const f of files) sources.push({file: f, text: await readInput(f, limits.maxFileBytes)})
    else {
      for (const e of await repo.listDir(commit, SANDBOXES_DIR)) {
        if (e.type === 'blob' && isKind('SandboxSpec', e.path)) sources.push({file: e.path, text: await repo.readBlob(e.oid)})
      }
      if (!sources.length) throw new AirlockError('INVALID_INPUT', `${SANDBOXES_DIR}/: no sandbox specs at HEAD (or name SPEC files)`, {file: SANDBOXES_DIR})
    }
    const specs = sources.map((s) => parseSandboxSpec(s.text, s.file, limits))
    const [trust, images, tree, identity] = await Promise.all([loadTrust(repo, commit, limits), loadImages(repo, commit, limits), loadPolicyTreeAt(repo, commit), actingIdentity(flags, repo, now)])
    const engine = tree && tree.policies.length ? (await import('../../control-plane/policy/engine.js')).PolicyEngine.create(tree) : null
    const ctx = {repo, commit, trust, images, identity, limits, engine, verifyImage: async (image: Parameters<typeof verifyPinned>[2], digest: string) => void (await verifyPinned(repo, commit, image, digest, trust, now, limits))}
    const sandboxes = await checkSandboxes(specs, ctx)
    const passed = sandboxes.every((r) => r.passed)
    if (!passed) this.failCheck()
    for (const r of sandboxes) {
      this.log(`${r.passed ? 'PASS' : 'FAIL'} ${t(r.file)} (${t(String(r.name))})${r.image ? `  ${t(r.image.repository)}@${t(r.image.digest.slice(0, 19))}…${r.image.verified ? ' verified' : ''}` : ''}`)
      for (const f of r.findings) this.log(`  ${t([f.file, f.line, f.column].filter((x) => x !== undefined).join(':'))}: ${f.field ? t(f.field) : '(spec)'}: ${t(f.message)} [${t(f.rule)}]`)
    }
    return {passed, commit, sandboxes, trustSource: source}
  }
}
