/**
 * A report model with real signatures: receipts signed as airlock signs them (signReceipt), C2SP
 * checkpoints signed with signNote, and the keys as trust.yaml would list them. Text fields carry
 * markup, as a repository writer could put there, to show the page renders it as text.
 */
import {createHash} from 'node:crypto'
import {formatCheckpoint, signNote} from '../../../control-plane/audit/note.js'
import {generateSigner, type Signer} from '../../../control-plane/crypto/keys.js'
import type {ReportCheckpoint, ReportKey, ReportModel, ReportReceipt} from '../../../control-plane/evidence/report/model.js'
import {signReceipt, type ReceiptStatement} from '../../../control-plane/evidence/receipt.js'

export const INJECTION = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
export const ORIGIN = 'airlock.audit/host-1/0123456789abcdef'

export interface Fixture {
  model: ReportModel
  evidence: Signer
  audit: Signer
  stranger: Signer
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')

export function keyOf(signer: Signer, roles: string[], validFrom: string | null = '2026-01-01T00:00:00.000Z', validUntil: string | null = null): ReportKey {
  return {keyid: signer.keyid, publicKey: b64(signer.publicKey), roles, validFrom, validUntil}
}

export function receiptOf(path: string, time: string, reason: string, signers: Signer[]): ReportReceipt {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{name: 'registry.example.com/golden/agent-runner', digest: {sha256: 'ab'.repeat(32)}}],
    predicateType: 'https://airlock.dev/attestations/change/v1',
    predicate: {operation: 'promote', summary: 'promote agent-runner to canary', reason, appliedAt: time, baseCommit: null, changes: []},
  } as unknown as ReceiptStatement
  return {path, envelope: signReceipt(statement, signers), kind: 'change', time}
}

export function checkpointOf(path: string, size: number, signer: Signer, origin = ORIGIN, publishedAt = '2026-03-01T00:00:00.000Z'): ReportCheckpoint {
  const rootHash = createHash('sha256').update(`root ${size}`).digest()
  const text = signNote(formatCheckpoint({origin, size, rootHash, extensions: []}), [{name: origin, signer}])
  return {path, origin, size, root: b64(rootHash), text, publishedAt}
}

/** A payload with one bit flipped: the envelope no longer matches its signature. */
export function flipPayloadBit(receipt: ReportReceipt): ReportReceipt {
  const payload = Buffer.from(receipt.envelope.payload, 'base64')
  payload[payload.length - 3]! ^= 0x01
  return {...receipt, envelope: {...receipt.envelope, payload: payload.toString('base64')}}
}

/** A checkpoint whose root was changed after signing (the signature line kept). */
export function forgeRoot(checkpoint: ReportCheckpoint): ReportCheckpoint {
  const forged = createHash('sha256').update('forged').digest().toString('base64')
  return {...checkpoint, root: forged, text: checkpoint.text.replace(checkpoint.root, forged)}
}

export function makeFixture(): Fixture {
  const evidence = generateSigner().signer
  const audit = generateSigner().signer
  const stranger = generateSigner().signer
  const receipts = [
    receiptOf('docs/evidence/20260201T000000Z-promote-a.json', '2026-02-01T00:00:00.000Z', `canary soak ok ${INJECTION}`, [evidence]),
    receiptOf('docs/evidence/20260202T000000Z-rollback-a.json', '2026-02-02T00:00:00.000Z', 'bad canary', [evidence]),
    receiptOf('docs/evidence/20260203T000000Z-gate-a.json', '2026-02-03T00:00:00.000Z', 'gates', [evidence]),
  ]
  const checkpoints = [checkpointOf('docs/evidence/audit/checkpoint-00000010', 10, audit), checkpointOf('docs/evidence/audit/checkpoint-00000025', 25, audit)]
  const model: ReportModel = {
    generatedAt: '2026-03-02T00:00:00.000Z',
    repository: {head: 'c'.repeat(40), anchor: 'a'.repeat(40)},
    frameworks: ['soc2', 'hipaa', 'fedramp'],
    controls: [
      {
        framework: 'soc2',
        id: 'CC8.1',
        title: 'Change management',
        feature: 'Every change is a signed plan applied through one pipeline, with a receipt.',
        claimLevel: 'host-validated',
        status: 'evidenced',
        gap: null,
        evidence: [{kind: 'receipt', ref: receipts[0]!.path, summary: `promote: ${INJECTION}`, time: receipts[0]!.time}],
        populations: [{kind: 'commits', from: '1'.repeat(40), to: 'c'.repeat(40), count: 42, checkpoint: null}],
      },
      {
        framework: 'hipaa',
        id: '164.312(b)',
        title: `Audit controls ${INJECTION}`,
        feature: 'A tamper-evident OCSF audit log with signed checkpoints witnessed by git.',
        claimLevel: 'static-validated',
        status: 'partial',
        gap: 'The log is checkpointed on one host only; no external witness cosigns.',
        evidence: [{kind: 'checkpoint', ref: checkpoints[1]!.path, summary: 'checkpoint of 25 entries', time: checkpoints[1]!.publishedAt}],
        populations: [{kind: 'log', from: '0', to: '24', count: 25, checkpoint: {path: checkpoints[1]!.path, origin: ORIGIN, size: 25, root: checkpoints[1]!.root}}],
      },
      {
        framework: 'fedramp',
        id: 'SC-7',
        title: 'Boundary protection',
        feature: 'Egress policy renders default-deny network rules for each sandbox.',
        claimLevel: null,
        status: 'gap',
        gap: `No gate checks egress on a live host. </script><script>window.__pwned = 3</script>`,
        evidence: [],
        populations: [],
      },
    ],
    receipts,
    checkpoints,
    keys: [keyOf(evidence, ['evidence']), keyOf(audit, ['audit'])],
    thresholds: {evidence: 1, audit: 1},
    timeline: [
      {time: '2026-02-02T00:00:00.000Z', operation: 'rollback', image: 'agent-runner', channel: 'canary', digest: `sha256:${'12'.repeat(32)}`, receipt: receipts[1]!.path},
      {time: '2026-02-01T00:00:00.000Z', operation: 'promote', image: `agent-runner${INJECTION}`, channel: 'canary', digest: `sha256:${'34'.repeat(32)}`, receipt: receipts[0]!.path},
    ],
    gateRuns: [
      {time: '2026-02-01T00:00:00.000Z', suite: 'preflight', passed: 8, failed: 0, notRun: 0, result: 'PASSED', receipt: receipts[2]!.path},
      {time: '2026-02-02T00:00:00.000Z', suite: 'preflight', passed: 6, failed: 1, notRun: 1, result: 'FAILED', receipt: receipts[2]!.path},
      {time: '2026-02-03T00:00:00.000Z', suite: `postsession${INJECTION}`, passed: 3, failed: 0, notRun: 1, result: 'WARNED', receipt: receipts[2]!.path},
    ],
  }
  return {model, evidence, audit, stranger}
}
