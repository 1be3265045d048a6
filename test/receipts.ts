/**
 * Suite receipts for tests, made the way the gate runner makes them (a TestResultStatement in a
 * DSSE envelope signed by an evidence key, gates/types.ts) and committed under docs/evidence/ as
 * a signed commit by the fleet's evidence key, on the commit the receipt names as its base.
 */
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {signEnvelope} from '../control-plane/crypto/dsse.js'
import {loadSigner, type Signer} from '../control-plane/crypto/keys.js'
import {RECEIPT_PAYLOAD_TYPE, receiptText} from '../control-plane/evidence/receipt.js'
import {TEST_RESULT_PREDICATE_TYPE, type TestResultStatement} from '../control-plane/gates/types.js'
import {commitSignedByHand, git} from './helpers.js'

export interface SuiteReceiptSpec {
  suite: string
  result: 'PASSED' | 'WARNED' | 'FAILED'
  finishedAt: Date
  /** The pinned digests it ran on, with the channel each was on. */
  pins: Array<{image?: string; repository?: string; digest: string; channel: string}>
  /** Who signs the envelope (default: the fleet's evidence key, `commitKey`). */
  signer?: Signer
}

let count = 0

/** Commits a signed suite receipt in `dir` (signed commit by `commitKey`); returns its path and the commit. */
export async function commitSuiteReceipt(dir: string, commitKey: string, spec: SuiteReceiptSpec): Promise<{path: string; commit: string; text: string}> {
  const base = await git(dir, 'rev-parse', 'HEAD')
  const branch = await git(dir, 'symbolic-ref', 'HEAD')
  const statement: TestResultStatement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [
      {name: `git:${branch}`, digest: {gitCommit: base}},
      ...spec.pins.map((p) => ({name: p.repository ?? 'registry.example.com/golden/agent-runner', digest: {sha256: p.digest.slice('sha256:'.length)}, annotations: {image: p.image ?? 'agent-runner', channel: p.channel}})),
    ],
    predicateType: TEST_RESULT_PREDICATE_TYPE,
    predicate: {
      result: spec.result,
      configuration: [{name: 'manifests/gates.yaml', digest: {sha256: '0'.repeat(64)}}],
      passedTests: spec.result === 'FAILED' ? [] : [`${spec.suite}/smoke`],
      warnedTests: [],
      failedTests: spec.result === 'FAILED' ? [`${spec.suite}/smoke`] : [],
      suite: spec.suite,
      startedAt: new Date(spec.finishedAt.getTime() - 60_000).toISOString(),
      finishedAt: spec.finishedAt.toISOString(),
      branch,
      baseCommit: base,
      host: true,
      gates: [{id: 'smoke', status: spec.result === 'FAILED' ? 'fail' : 'pass', reason: 'test', mode: 'enforce', required: true, elapsedMs: 1}],
      tool: {name: 'airlock', version: 'test'},
    },
  }
  const signer = spec.signer ?? (await loadSigner({file: commitKey}))
  const text = receiptText(signEnvelope(RECEIPT_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), [signer]))
  const path = `docs/evidence/${spec.finishedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-gate-${spec.suite}-${++count}.json`
  await writeFile(join(dir, path), text)
  const commit = await commitSignedByHand(dir, commitKey, `gate ${spec.suite}: ${spec.result}`)
  return {path, commit, text}
}
