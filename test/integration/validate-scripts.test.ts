/**
 * platform/validate/*.sh run for real on this host: whatever it can check is checked, the rest is
 * NOT_RUN with a reason, and the output is what the gate runner's `expect:` parses. No mocks: the
 * egress lab is real network namespaces and nftables when the host allows them (root with
 * CAP_NET_ADMIN, ip, nft); where it does not, the test checks that the script says so.
 */
import {execFileSync} from 'node:child_process'
import {closeSync, existsSync, openSync, statSync} from 'node:fs'
import {chmod, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {ROOT, initFleet, tempDir} from '../helpers.js'

const DIR = join(ROOT, 'platform', 'validate')
const KVM_BEFORE = existsSync('/dev/kvm')
const SCRIPTS = ['nested-smoke.sh', 'acceptance.sh', 'lib.sh']

interface Check {
  status: 'PASS' | 'FAIL' | 'NOT_RUN'
  name: string
  reason: string
}
interface Run {
  exitCode: number
  checks: Check[]
  byName: Record<string, Check>
  stdout: string
}

const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

/** Parses the output and asserts the contract: check lines, then a counts line that matches them. */
function parse(stdout: string, exitCode: number): Run {
  const lines = stdout.trimEnd().split('\n')
  const last = lines.pop()!
  const counts = /^PASS=(\d+) FAIL=(\d+) NOT_RUN=(\d+)$/.exec(last)
  expect(counts, `last line is the counts: ${last}`).not.toBeNull()
  const checks = lines.map((line) => {
    const m = /^(PASS|FAIL|NOT_RUN) ([a-z0-9-]+): (\S.*)$/.exec(line)
    expect(m, `a check line with a reason: ${line}`).not.toBeNull()
    return {status: m![1] as Check['status'], name: m![2]!, reason: m![3]!}
  })
  const n = (s: Check['status']) => checks.filter((c) => c.status === s).length
  expect([Number(counts![1]), Number(counts![2]), Number(counts![3])]).toEqual([n('PASS'), n('FAIL'), n('NOT_RUN')])
  expect(exitCode).toBe(n('FAIL') > 0 ? 1 : 0)
  return {exitCode, checks, byName: Object.fromEntries(checks.map((c) => [c.name, c])), stdout}
}

async function runScript(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<Run> {
  const r = await execa('bash', [join(DIR, script), ...args], {reject: false, env: {AIRLOCK_TRUST_ANCHOR: undefined, ...env}, extendEnv: true})
  return parse(String(r.stdout), r.exitCode ?? -1)
}

/** /dev/kvm is a character device this user can open read-write (r+ never creates the file, as the shell's <> would). */
const kvmUsable = () => {
  try {
    if (!statSync('/dev/kvm').isCharacterDevice()) return false
    closeSync(openSync('/dev/kvm', 'r+'))
    return true
  } catch {
    return false
  }
}

describe('the scripts are shell that passes its own checks', () => {
  it.each(SCRIPTS)('%s: bash -n', async (script) => {
    const r = await execa('bash', ['-n', join(DIR, script)], {reject: false})
    expect(r.stderr).toBe('')
    expect(r.exitCode).toBe(0)
  })

  // CI installs shellcheck (.ci/run); a developer machine without it skips only this case.
  it.skipIf(!has('shellcheck'))('shellcheck finds nothing, each script on its own and from any folder', async () => {
    const runs = await Promise.all(SCRIPTS.map((script) => execa('shellcheck', [join(DIR, script)], {reject: false, cwd: '/'})))
    runs.forEach((r, i) => {
      expect(r.stdout, SCRIPTS[i]).toBe('')
      expect(r.exitCode, SCRIPTS[i]).toBe(0)
    })
  })

  it('are executable (a gate runs them as `run: platform/validate/…`), use the strict mode and a total deadline', async () => {
    for (const script of ['nested-smoke.sh', 'acceptance.sh']) {
      expect((await stat(join(DIR, script))).mode & 0o111, script).toBe(0o111)
      const text = await readFile(join(DIR, script), 'utf8')
      expect(text).toContain('set -euo pipefail')
      expect(text).toContain('validate_supervise "$total_timeout"')
    }
  })
})

describe('nested-smoke on this host', () => {
  let run: Run
  beforeAll(async () => {
    run = await runScript('nested-smoke.sh')
  })

  it('reports the three checks, each with a status and a reason', () => {
    expect(run.checks.map((c) => c.name)).toEqual(['kvm-device', 'kvm-nested', 'guest-boot'])
  })

  it('never passes the KVM checks without a usable /dev/kvm', () => {
    if (existsSync('/dev/kvm')) return
    expect(run.byName['kvm-device']).toMatchObject({status: 'FAIL', reason: expect.stringContaining('/dev/kvm does not exist')})
    expect(run.byName['guest-boot']).toMatchObject({status: 'NOT_RUN', reason: expect.stringContaining('/dev/kvm')})
    expect(run.exitCode).toBe(1)
  })

  it('does not pass a guest boot without a hypervisor, and names what is missing', () => {
    if (has('firecracker') || has('qemu-system-x86_64')) return
    expect(run.byName['guest-boot']!.status).toBe('NOT_RUN')
    expect(run.byName['guest-boot']!.reason).toContain('neither firecracker nor qemu-system-x86_64')
  })

  it('reads the nested parameter only from kvm_intel or kvm_amd', () => {
    const param = ['kvm_intel', 'kvm_amd'].map((m) => `/sys/module/${m}/parameters/nested`).find((f) => existsSync(f))
    if (param) expect(run.byName['kvm-nested']!.reason).toContain(param)
    else expect(run.byName['kvm-nested']).toMatchObject({status: 'NOT_RUN', reason: expect.stringContaining('neither kvm_intel nor kvm_amd')})
  })
})

describe('acceptance on this host', () => {
  const SIX = ['tier1-health', 'digest-alignment', 'microvm-boot', 'egress-default-deny', 'dns-exfiltration', 'teardown-residue']
  let plain: Run
  let failing: Run
  let passing: Run
  let work: {dir: string; cleanup: () => Promise<void>}
  let fleet: Awaited<ReturnType<typeof initFleet>>
  let stable: string
  let canary: string
  const state = async (name: string, digest: string) => {
    const file = join(work.dir, name)
    await writeFile(file, JSON.stringify({apiVersion: 'airlock/v1', kind: 'RuntimeState', images: {'agent-runner': {digest}}}))
    return file
  }
  // The three runs go at once (each lab has its own namespaces): the suite waits for the slowest.
  beforeAll(async () => {
    work = await tempDir('airlock-acceptance-test-')
    const plainRun = runScript('acceptance.sh')
    fleet = await initFleet()
    const text = await readFile(join(fleet.dir, 'manifests/images/agent-runner.yaml'), 'utf8')
    canary = /canary:\n\s+digest: (sha256:[0-9a-f]{64})/.exec(text)![1]!
    stable = /stable:\n\s+digest: (sha256:[0-9a-f]{64})/.exec(text)![1]!
    // permissive: everything but DNS to other servers is accepted
    const loose = join(work.dir, 'loose.yaml')
    await writeFile(loose, 'apiVersion: airlock/v1\nkind: EgressPolicy\nmetadata:\n  name: loose\nspec:\n  profile: permissive\n  allowPrivate: true\n')
    const health = join(work.dir, 'health.sh')
    await writeFile(health, '#!/bin/sh\necho "tier-1 agent pool: 0 of 3 ready"\nexit 3\n')
    await chmod(health, 0o755)
    ;[plain, failing, passing] = await Promise.all([
      plainRun,
      runScript('acceptance.sh', ['--tier1-health', `command:${health}`, '--runtime', `file:${await state('drift.json', canary)}`, '--image', 'agent-runner', '--channel', 'stable', '--repo', fleet.dir, '--egress-policy', loose]),
      runScript('acceptance.sh', ['--tier1-health', 'command:true', '--runtime', `file:${await state('aligned.json', stable)}`, '--image', 'agent-runner', '--repo', fleet.dir]),
    ])
  })
  afterAll(async () => {
    await work.cleanup()
    await fleet.cleanup()
  })

  it('reports the six checks in order; what was not configured is NOT_RUN saying what to pass', () => {
    expect(plain.checks.map((c) => c.name)).toEqual(SIX)
    expect(plain.byName['tier1-health']).toMatchObject({status: 'NOT_RUN', reason: expect.stringContaining('--tier1-health')})
    expect(plain.byName['digest-alignment']).toMatchObject({status: 'NOT_RUN', reason: expect.stringContaining('--runtime')})
  })

  it('never passes the microVM boot without a usable /dev/kvm', () => {
    if (kvmUsable()) return
    expect(plain.byName['microvm-boot']).toMatchObject({status: 'NOT_RUN', reason: expect.stringContaining('/dev/kvm cannot be opened')})
  })

  it('checks egress in a real namespace lab where the host allows it, and otherwise says why not', async () => {
    const egress = plain.byName['egress-default-deny']!
    expect(egress.status).not.toBe('FAIL')
    if (egress.status === 'NOT_RUN') {
      expect(plain.byName['dns-exfiltration']!.status).toBe('NOT_RUN')
      if (process.getuid?.() !== 0) expect(egress.reason).toContain('not root')
      return
    }
    expect(plain.byName['dns-exfiltration']!.status).toBe('PASS')
    expect(plain.byName['teardown-residue']!.status).toBe('PASS')
    expect(plain.exitCode).toBe(0)
    // the lab is gone: no namespace of any acceptance run is left behind by this one
    const left = String((await execa('ip', ['netns', 'list'], {reject: false})).stdout)
    expect(left).not.toMatch(/airlock-acc-\d+-(sbx|out)/)
  })

  it('fails what it checked and found wrong: an unhealthy Tier-1, a drifted digest, a policy that lets traffic out', (ctx) => {
    const run = failing
    expect(run.exitCode).toBe(1)
    expect(run.byName['tier1-health']).toMatchObject({status: 'FAIL', reason: expect.stringContaining('exited 3: tier-1 agent pool: 0 of 3 ready')})
    expect(run.byName['digest-alignment']!.status).toBe('FAIL')
    expect(run.byName['digest-alignment']!.reason).toContain('DRIFT')
    expect(run.byName['digest-alignment']!.reason).toContain(`running ${canary}`)
    if (plain.byName['egress-default-deny']!.status !== 'PASS') return ctx.skip()
    // the permissive ruleset lets the direct connection and the DNS question on port 5353 out
    expect(run.byName['egress-default-deny']).toMatchObject({status: 'FAIL', reason: expect.stringContaining('still got through: direct port')})
    expect(run.byName['dns-exfiltration']).toMatchObject({status: 'FAIL', reason: expect.stringContaining('exfil-5353')})
  })

  it('passes what it checked and found right: a healthy Tier-1 and an aligned digest', () => {
    expect(passing.byName['tier1-health']!.status).toBe('PASS')
    expect(passing.byName['digest-alignment']).toMatchObject({status: 'PASS', reason: expect.stringContaining(`ALIGNED agent-runner/stable ${stable}`)})
  })
})

// The one stand-in in this file: no KVM exists on this host or on CI runners, so the guest-boot
// logic (which hypervisor, its arguments, reading the console) is driven with a stand-in QEMU and
// Firecracker that print what a kernel prints, with lib.sh's /dev/kvm probe answered yes. What
// this proves is the parsing and the honesty rules, not that a guest boots.
describe('the guest boot check, with a stand-in hypervisor', () => {
  const boot = async (hypervisor: 'qemu-system-x86_64' | 'firecracker', console: string, kernel: 'bzImage' | 'vmlinux', rootfs = false) => {
    const t = await tempDir('airlock-validate-boot-')
    try {
      await execa('mkdir', ['-p', join(t.dir, 'bin')])
      const fake = join(t.dir, 'bin', hypervisor)
      await writeFile(fake, `#!/bin/sh\nprintf '%s\\n' "$@" > "${t.dir}/args"\nprintf '%s\\n' ${JSON.stringify(console)}\n`)
      await chmod(fake, 0o755)
      await writeFile(join(t.dir, kernel), kernel === 'vmlinux' ? '\x7fELF-stand-in' : 'MZ-stand-in')
      await writeFile(join(t.dir, 'rootfs.img'), '')
      const script = `. ${JSON.stringify(join(DIR, 'lib.sh'))}\nvalidate_kvm_usable() { true; }\nvalidate_boot_guest "$1" "$2" 5 "$3"\nprintf '%s|%s' "$VALIDATE_BOOT_STATUS" "$VALIDATE_BOOT_DETAIL"`
      const r = await execa('bash', ['-euo', 'pipefail', '-c', script, 'boot', join(t.dir, kernel), rootfs ? join(t.dir, 'rootfs.img') : '', t.dir], {env: {PATH: `${join(t.dir, 'bin')}:/usr/bin:/bin`}, extendEnv: false})
      const [status, detail] = String(r.stdout).split('|')
      return {status, detail: detail!, args: await readFile(join(t.dir, 'args'), 'utf8')}
    } finally {
      await t.cleanup()
    }
  }

  it('passes only when the kernel banner appears on the console, and says which hypervisor booted what', async () => {
    const ok = await boot('qemu-system-x86_64', '[    0.000000] Linux version 6.1.0 (gcc) #1 SMP', 'bzImage')
    expect(ok.status).toBe('pass')
    expect(ok.detail).toMatch(/^qemu booted .*bzImage under KVM in \d+s; console: '\[ +0\.000000\] Linux version 6\.1\.0/)
    expect(ok.args.split('\n')).toEqual(expect.arrayContaining(['-enable-kvm', '-no-reboot', '-kernel', 'console=ttyS0 panic=-1']))
    const silent = await boot('qemu-system-x86_64', 'SeaBIOS (version 1.16)', 'bzImage')
    expect(silent.status).toBe('fail')
    expect(silent.detail).toContain('no kernel banner on the serial console')
  })

  it('with a root filesystem, fails a guest that booted but did not mount it', async () => {
    const r = await boot('firecracker', '[    0.000000] Linux version 6.1.0 (gcc) #1 SMP', 'vmlinux', true)
    expect(r.status).toBe('fail')
    expect(r.detail).toContain('did not mount the root filesystem')
    expect(r.args.split('\n')).toEqual(['--no-api', '--config-file', expect.stringMatching(/firecracker\.json$/), ''])
  })
})

describe('the total deadline', () => {
  it('turns a hang into a FAIL line of its own and still prints counts that match the lines', async () => {
    const t = await tempDir('airlock-validate-deadline-')
    try {
      const script = join(t.dir, 'hangs.sh')
      await writeFile(
        script,
        [
          '#!/usr/bin/env bash',
          'set -euo pipefail',
          `. ${JSON.stringify(join(DIR, 'lib.sh'))}`,
          'validate_supervise 1 "$0" "$@"',
          'check_pass first "done before the hang"',
          'sleep 30',
          'check_pass second "never reached"',
          '',
        ].join('\n'),
      )
      const r = await execa('bash', [script], {reject: false})
      const run = parse(String(r.stdout), r.exitCode ?? -1)
      expect(run.checks.map((c) => `${c.status} ${c.name}`)).toEqual(['PASS first', 'FAIL deadline'])
      expect(run.stdout).toContain('PASS=1 FAIL=1 NOT_RUN=0')
    } finally {
      await t.cleanup()
    }
  })
})

describe('after every run above', () => {
  it('the host has the /dev/kvm it had: probing never creates one', () => {
    expect(existsSync('/dev/kvm')).toBe(KVM_BEFORE)
  })
})
