import {resolve} from 'node:path'
import {Args, Flags} from '@oclif/core'
import type {TestCaseResult} from '../../control-plane/policy/tests.js'
import {AirlockCommand} from '../_base.js'
import {displayPath, policyTree} from '../_policy.js'
import {forTerminal as t} from '../../control-plane/terminal.js'

export default class PolicyTest extends AirlockCommand {
  static override summary = 'Run policy test cases (YAML: requests and the decision and reasons each must get).'
  static override args = {dir: Args.string({description: 'test folder (default: tests/ in the policy folder)'})}
  static override flags = {
    policies: Flags.string({description: 'policy folder (default: policies/ at the repository top)'}),
    schema: Flags.string({description: 'Cedar schema (default: schema.cedarschema in the policy folder)'}),
    junit: Flags.string({description: 'also write the results as JUnit XML to FILE'}),
  }

  async run(): Promise<{ok: boolean; passed: number; failed: number; results: TestCaseResult[]}> {
    const {args, flags} = await this.parse(PolicyTest)
    await this.oneShotWasm()
    const tree = await policyTree(flags)
    const [{PolicyEngine, validateTree, invalidPolicy}, {runPolicyTests, junitXml}] = await Promise.all([
      import('../../control-plane/policy/engine.js'),
      import('../../control-plane/policy/tests.js'),
    ])
    const problems = validateTree(tree)
    if (problems.length > 0) throw invalidPolicy(problems)
    const engine = PolicyEngine.create(tree)
    const results = await runPolicyTests(engine, resolve(args.dir ?? resolve(tree.root, 'tests')), {limits: this.limits, display: displayPath})
    if (flags.junit) await (await import('../../control-plane/repo/files.js')).writeFileAtomic(flags.junit, junitXml(results))
    const failed = results.filter((r) => !r.ok).length
    if (failed > 0) this.failCheck()
    if (!this.jsonEnabled()) {
      for (const r of results) this.log(`${r.ok ? 'PASS' : 'FAIL'}  ${t(r.actual).padEnd(5)} ${t(r.name)}${r.ok ? '' : `\n        ${t(String(r.message))}\n        ${t(r.file)}: ${t(r.request)}`}`)
      this.log(`\n${results.length - failed} passed, ${failed} failed`)
    }
    return {ok: failed === 0, passed: results.length - failed, failed, results}
  }
}
