/**
 * Everything that can be checked without a host, on the commit (never the work tree): each
 * desired-state file by its kind's own check (schemas, loaders, tool and egress policies that load
 * clean, bundles that verify), the Cedar policy set validated and its tests run (as `policy
 * test`), the sandbox specs against the baseline (as `sandbox check`), and the shell scripts under
 * platform/ with `bash -n` and shellcheck. A missing shellcheck is said in the reason and the
 * evidence, never skipped silently.
 *
 * Cedar's answer for a sandbox depends on who asks: the gate asks for the principal the fleet
 * declares in `with.principal` (roles, mfa_verified; its org is the fleet's), so the result is the
 * same whoever runs the suite; without it, for the local operator, as `sandbox check` does.
 *
 *   with:
 *     principal: {roles: [developer], mfa_verified: true}
 */
import {mkdtemp, mkdir, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join, relative} from 'node:path'
import {AirlockError, inputError} from '../../errors.js'
import type {Repository} from '../../repo/repository.js'
import type {BuiltinGate, Finding, GateContext} from '../types.js'

const TOOL = 'airlock-static-validate'

/** Every file under `folder` at `commit`, recursively. */
async function walk(repo: Repository, commit: string, folder: string): Promise<Array<{path: string; oid: string}>> {
  const out: Array<{path: string; oid: string}> = []
  for (const e of await repo.listDir(commit, folder)) {
    if (e.type === 'tree') out.push(...(await walk(repo, commit, e.path)))
    else if (e.type === 'blob') out.push({path: e.path, oid: e.oid})
  }
  return out
}

function finding(error: unknown, fallbackFile: string, rule = 'desired-state'): Finding {
  const e = error instanceof AirlockError ? error : new AirlockError('INTERNAL', String((error as Error)?.message ?? error))
  const d = e.details as {file?: unknown; line?: unknown; column?: unknown}
  return {
    tool: TOOL,
    ruleId: `static/${rule}/${e.code}`,
    level: 'error',
    message: e.message,
    file: typeof d.file === 'string' ? d.file : fallbackFile,
    ...(typeof d.line === 'number' ? {line: d.line} : {}),
    ...(typeof d.column === 'number' ? {column: d.column} : {}),
  }
}

/** Each desired-state file by its kind's check, and the kinds checked together once. */
async function checkDesiredState(ctx: GateContext, findings: Finding[]): Promise<number> {
  const [{kindOf}, {loadTrust}] = await Promise.all([import('../../manifests/kinds.js'), import('../../manifests/load.js')])
  const kctx = {limits: ctx.limits, now: ctx.now, files: new Map<string, string | null>(), base: {repo: ctx.repo, commit: ctx.commit, trust: await loadTrust(ctx.repo, ctx.commit, ctx.limits)}}
  const together = new Map<NonNullable<NonNullable<ReturnType<typeof kindOf>>['checkTogether']>, string[]>()
  let checked = 0
  for (const folder of ['manifests', 'policies', 'bundles']) {
    for (const {path, oid} of await walk(ctx.repo, ctx.commit, folder)) {
      if (ctx.signal.aborted) return checked
      const text = await ctx.repo.readBlob(oid)
      const kind = kindOf(path, text)
      if (!kind) {
        findings.push({tool: TOOL, ruleId: 'static/desired-state/UNKNOWN_KIND', level: 'error', message: `${path}: no kind of desired state lives here`, file: path})
        continue
      }
      checked++
      try {
        await kind.check?.(text, path, kctx)
      } catch (error) {
        findings.push(finding(error, path))
      }
      if (kind.checkTogether) together.set(kind.checkTogether, [...(together.get(kind.checkTogether) ?? []), path])
    }
  }
  for (const [check, paths] of together) {
    try {
      await check(paths, kctx)
    } catch (error) {
      findings.push(finding(error, paths[0]!, 'policy'))
    }
  }
  return checked
}

/** The policy tests at the commit, run as `airlock policy test` runs them (written to a scratch folder first). */
async function checkPolicyTests(ctx: GateContext, findings: Finding[]): Promise<{passed: number; failed: number} | 'none'> {
  const [{loadPolicyTreeAt}, {PolicyEngine, validateTree}, {runPolicyTests}] = await Promise.all([import('../../policy/repo-tree.js'), import('../../policy/engine.js'), import('../../policy/tests.js')])
  const files = await walk(ctx.repo, ctx.commit, 'policies/tests')
  const tree = await loadPolicyTreeAt(ctx.repo, ctx.commit)
  if (files.length === 0 || !tree || tree.policies.length === 0 || validateTree(tree).length > 0) return 'none'
  const scratch = await mkdtemp(join(tmpdir(), 'airlock-policy-tests-'))
  try {
    for (const f of files) {
      const abs = join(scratch, relative('policies/tests', f.path))
      await mkdir(dirname(abs), {recursive: true})
      await writeFile(abs, await ctx.repo.readBlob(f.oid))
    }
    const results = await runPolicyTests(PolicyEngine.create(tree), scratch, {limits: ctx.limits, display: (abs) => `policies/tests/${relative(scratch, abs)}`})
    for (const r of results.filter((x) => !x.ok)) findings.push({tool: TOOL, ruleId: 'static/policy-test', level: 'error', message: `${r.name}: ${r.message ?? 'failed'}`, file: r.file})
    return {passed: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length}
  } catch (error) {
    findings.push(finding(error, 'policies/tests', 'policy-test'))
    return {passed: 0, failed: 1}
  } finally {
    await rm(scratch, {recursive: true, force: true})
  }
}

/** `with.principal`: who the sandbox decisions are asked for. */
interface DeclaredPrincipal {
  roles: string[]
  mfa_verified: boolean
}

function readWith(value: Record<string, unknown>, where: {file: string; line?: number; field: string}): {principal?: DeclaredPrincipal} {
  const bad = (field: string, message: string) => inputError('SCHEMA_VIOLATION', {file: where.file, line: where.line, field: `${where.field}.${field}`}, message)
  for (const k of Object.keys(value)) if (k !== 'principal') throw bad(k, 'is not a known field (static-validate takes principal)')
  const p = value.principal
  if (p === undefined) return {}
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw bad('principal', 'must be a mapping: {roles: [...], mfa_verified: true|false}')
  const o = p as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'roles' && k !== 'mfa_verified') throw bad(`principal.${k}`, 'is not a known field (roles, mfa_verified)')
  if (!Array.isArray(o.roles) || o.roles.some((r) => typeof r !== 'string' || !/^[a-z][a-z0-9-]{0,63}$/.test(r))) throw bad('principal.roles', 'must be a list of role names (lower case, digits, -)')
  if (o.mfa_verified !== undefined && typeof o.mfa_verified !== 'boolean') throw bad('principal.mfa_verified', 'must be true or false')
  return {principal: {roles: o.roles as string[], mfa_verified: o.mfa_verified === true}}
}

/** The sandbox specs against the baseline and Cedar, as `airlock sandbox check` (for `with.principal`, else the local operator). */
async function checkSandboxSpecs(ctx: GateContext, findings: Finding[]): Promise<number> {
  const [{isKind}, {SANDBOXES_DIR}, {parseSandboxSpec}, {loadImages, loadTrust}, {loadPolicyTreeAt}, {checkSandboxes}, {verifyPinned}, {localIdentity, entitiesForClaims}] = await Promise.all([
    import('../../manifests/kinds.js'),
    import('../../manifests/models.js'),
    import('../../manifests/sandbox.js'),
    import('../../manifests/load.js'),
    import('../../policy/repo-tree.js'),
    import('../../../platform/sandbox/check.js'),
    import('../../../platform/images/policy.js'),
    import('../../identity/jwt.js'),
  ])
  const specs = []
  for (const e of await ctx.repo.listDir(ctx.commit, SANDBOXES_DIR)) {
    if (e.type !== 'blob' || !isKind('SandboxSpec', e.path)) continue
    try {
      specs.push(parseSandboxSpec(await ctx.repo.readBlob(e.oid), e.path, ctx.limits))
    } catch (error) {
      // Already reported by its kind's check.
      void error
    }
  }
  if (specs.length === 0) return 0
  const {repo, commit, limits, now} = ctx
  const [trust, images, tree, git] = await Promise.all([loadTrust(repo, commit, limits), loadImages(repo, commit, limits), loadPolicyTreeAt(repo, commit), repo.gitIdentity()])
  const engine = tree && tree.policies.length ? (await import('../../policy/engine.js')).PolicyEngine.create(tree) : null
  const declared = readWith(ctx.with, {file: 'manifests/gates.yaml', field: 'with'}).principal
  const identity = declared
    ? {principal: {type: 'AgentKernel::User', id: 'gate:static-validate'}, entities: entitiesForClaims({sub: 'gate:static-validate', org_id: trust.org, roles: declared.roles, mfa_verified: declared.mfa_verified}, true), authenticated: false, source: `the principal gates.yaml declares (roles ${declared.roles.join(', ') || 'none'}, mfa_verified ${declared.mfa_verified})`}
    : localIdentity(git.name || process.env.GIT_AUTHOR_NAME || 'operator', git.email || process.env.GIT_AUTHOR_EMAIL || 'operator@localhost')
  // Many specs name the same pinned digest: each is verified once for the run (a failure too).
  const verified = new Map<string, Promise<void>>()
  const verifyImage = (image: Parameters<typeof verifyPinned>[2], digest: string) => {
    const key = `${image.name}\0${digest}`
    let v = verified.get(key)
    if (!v) verified.set(key, (v = verifyPinned(repo, commit, image, digest, trust, now, limits).then(() => undefined)))
    return v
  }
  const reports = await checkSandboxes(specs, {repo, commit, trust, images, identity, limits, engine, verifyImage})
  for (const r of reports) for (const f of r.findings) findings.push({tool: TOOL, ruleId: `sandbox/${f.rule}`, level: 'error', message: f.message, file: f.file, ...(f.line !== undefined ? {line: f.line} : {}), ...(f.column !== undefined ? {column: f.column} : {})})
  return specs.length
}

/** Shell scripts under platform/ at the commit: `bash -n` each, and shellcheck when installed (`opts.shellcheck`: its command). */
export async function checkScripts(ctx: Pick<GateContext, 'repo' | 'commit' | 'signal'>, findings: Finding[], opts: {shellcheck?: string} = {}): Promise<{scripts: number; shellcheck: string}> {
  const shellcheckBin = opts.shellcheck ?? 'shellcheck'
  const scripts = []
  for (const f of await walk(ctx.repo, ctx.commit, 'platform')) {
    const text = f.path.endsWith('.sh') ? await ctx.repo.readBlob(f.oid) : null
    if (text !== null) scripts.push({path: f.path, text})
  }
  const {execa} = await import('execa')
  const version = await execa(shellcheckBin, ['--version'], {reject: false, stdin: 'ignore'})
  const shellcheck = version.exitCode === 0 ? (/version: (\S+)/.exec(String(version.stdout))?.[1] ?? 'installed') : null
  if (scripts.length === 0) return {scripts: 0, shellcheck: shellcheck ?? 'not installed'}
  const scratch = await mkdtemp(join(tmpdir(), 'airlock-scripts-'))
  try {
    for (const s of scripts) {
      await mkdir(dirname(join(scratch, s.path)), {recursive: true})
      await writeFile(join(scratch, s.path), s.text)
    }
    for (const s of scripts) {
      const r = await execa('bash', ['-n', s.path], {cwd: scratch, reject: false, stdin: 'ignore', cancelSignal: ctx.signal})
      if (r.exitCode !== 0) {
        const line = /line (\d+)/.exec(String(r.stderr))?.[1]
        findings.push({tool: TOOL, ruleId: 'static/bash-syntax', level: 'error', message: `bash -n: ${String(r.stderr).trim().split('\n')[0] ?? 'syntax error'}`, file: s.path, ...(line ? {line: Number(line)} : {})})
      }
    }
    if (shellcheck) {
      const r = await execa(shellcheckBin, ['--format=json1', '--external-sources', ...scripts.map((s) => s.path)], {cwd: scratch, reject: false, stdin: 'ignore', maxBuffer: 16 * 1024 * 1024, cancelSignal: ctx.signal})
      let comments: Array<{file: string; line: number; column: number; level: string; code: number; message: string}> = []
      try {
        comments = (JSON.parse(String(r.stdout)) as {comments: typeof comments}).comments
      } catch {
        if (r.exitCode !== 0) findings.push({tool: TOOL, ruleId: 'static/shellcheck', level: 'error', message: `shellcheck failed: ${String(r.stderr).trim().split('\n')[0]}`, file: scripts[0]!.path})
      }
      for (const c of comments.filter((x) => x.level === 'error' || x.level === 'warning')) {
        findings.push({tool: 'shellcheck', ruleId: `SC${c.code}`, level: c.level === 'error' ? 'error' : 'warning', message: c.message, file: c.file, line: c.line, column: c.column})
      }
    }
  } finally {
    await rm(scratch, {recursive: true, force: true})
  }
  return {scripts: scripts.length, shellcheck: shellcheck ?? 'not installed'}
}

export const staticValidate: BuiltinGate = {
  name: 'static-validate',
  description: 'every desired-state file by its kind, Cedar validation and policy tests, sandbox specs, shell scripts (bash -n, shellcheck)',
  checkWith: (value, where) => void readWith(value, where),
  async run(ctx) {
    const findings: Finding[] = []
    const files = await checkDesiredState(ctx, findings)
    const policyTests = await checkPolicyTests(ctx, findings)
    const sandboxes = await checkSandboxSpecs(ctx, findings)
    const scripts = await checkScripts(ctx, findings)
    const errors = findings.filter((f) => f.level === 'error')
    const evidence = {files, policyTests, sandboxes, scripts: scripts.scripts, shellcheck: scripts.shellcheck, findings: findings.length}
    const noShellcheck = scripts.shellcheck === 'not installed' ? `; shellcheck is not installed, so ${scripts.scripts} script(s) were checked with bash -n only` : ''
    const tests = policyTests === 'none' ? 'no policy tests' : `${policyTests.passed} policy test(s) passed`
    if (errors.length > 0) {
      const f = errors[0]!
      return {status: 'fail', reason: `${errors.length} problem(s), first ${f.file}${f.line ? `:${f.line}` : ''}: ${f.message}${noShellcheck}`, evidence, findings}
    }
    return {status: 'pass', reason: `${files} file(s), ${tests}, ${sandboxes} sandbox spec(s), ${scripts.scripts} script(s) clean${noShellcheck}`, evidence, findings}
  },
}
