/**
 * The gates file `airlock init` scaffolds and the embedded example fleet ships: preflight (what
 * can be checked anywhere, plus the lab-host gates) and postsession. It passes `airlock
 * preflight` on a fresh fleet: the host gates are not_run there and do not fail the run.
 */

/** The gates.yaml text; `toolPolicyHash` pins the fleet's tool policy (sha256:<hex>, as `airlock tool hash` prints it). */
export function exampleGates(opts: {toolPolicyHash: string; runtime?: string; scripts?: string; sandboxRoles?: string[]}): string {
  const runtime = opts.runtime ?? 'file:/var/lib/airlock/runtime-state.json'
  // The validate scripts: the fleet's own platform/validate/, or (a fleet made by init) airlock's ($AIRLOCK_ROOT).
  const run = (name: string) => (opts.scripts ? `bash "${opts.scripts}/${name}"` : `bash platform/validate/${name}`)
  return `# Gate suites: checks that end pass, fail or not_run, each run signed as one receipt.
#   airlock preflight            before a canary or preview session (CI runs it before a promotion)
#   airlock postsession          after one
#   airlock gate list            what each suite runs
# Gates with requires: [host] need a lab host with nested virtualization (--host); without it they
# are not_run and do not fail the run. A shadow gate (mode: shadow) is recorded but never fails it.
# run: gates run in a shell (/bin/sh) in the repository's work tree; $AIRLOCK_ROOT is where airlock is installed.
apiVersion: airlock/v1
kind: GateSuite
suites:
  preflight:
    gates:
      - id: static-validate
        uses: builtin/static-validate
        timeout: 5m${
          opts.sandboxRoles
            ? `
        with:
          # Sandbox specs are authorized (Cedar Create, Run) for this principal, whoever runs the suite.
          principal: {roles: [${opts.sandboxRoles.join(', ')}], mfa_verified: true}`
            : ''
        }
      - id: history
        uses: builtin/history
        timeout: 5m
      - id: image-verify
        uses: builtin/image-verify
        needs: [history]
        timeout: 5m
      - id: secret-scan
        uses: builtin/secret-scan
        timeout: 10m
      - id: tool-policy-hash
        uses: builtin/tool-policy-hash
        with:
          # Change it with the tool policy (airlock tool hash prints it).
          expected: "${opts.toolPolicyHash}"
      - id: digest-align
        uses: builtin/digest-align
        # What runs is read on the host that runs it (the reconciler's state file).
        requires: [host]
        with:
          runtime: "${runtime}"
          channel: canary
        timeout: 1m
      - id: nested-smoke
        run: ${run('nested-smoke.sh')}
        requires: [host]
        # /dev/kvm, nested virtualization on, and a guest that boots: a check not run is not a pass.
        expect: {pass: 3, fail: 0}
        timeout: 10m
      - id: acceptance
        run: ${run('acceptance.sh')}
        requires: [host]
        needs: [nested-smoke]
        expect: {pass: 6, fail: 0}
        timeout: 30m
  postsession:
    gates:
      - id: audit-integrity
        uses: builtin/audit-integrity
        # This host's audit log verifies (entries, chain, signed and published checkpoints);
        # not_run on a host with no log yet, so not required.
        required: false
      - id: rollback-drill
        uses: builtin/rollback-drill
        # On a throwaway clone: sign and promote a test digest, roll it back, verify; timed.
        with:
          channel: canary
          recovery_target: 60s
        timeout: 5m
      - id: secret-rescan
        uses: builtin/secret-scan
        timeout: 10m
      - id: digest-align
        uses: builtin/digest-align
        requires: [host]
        with:
          runtime: "${runtime}"
          channel: canary
        timeout: 1m
`
}
