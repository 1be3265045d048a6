/**
 * Builds histories the way an attacker with write access would: git plumbing only (hash-object,
 * update-index, write-tree), every date chosen, commits signed with airlock's own SSH signer or
 * not at all, receipts signed with real keys. Used by the history tests and the time tests.
 */
import {rm} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {sshSign} from '../../../control-plane/crypto/sshsig.js'
import type {Signer} from '../../../control-plane/crypto/keys.js'
import {RECEIPT_PREDICATE_TYPE, receiptText, signReceipt, STATEMENT_TYPE, type ReceiptStatement} from '../../../control-plane/evidence/receipt.js'

/** A file's content, or an entry written with its mode (a symbolic link: 120000). */
export type Entry = string | {mode: string; content: string}

export async function run(dir: string, args: string[], input?: string, env: Record<string, string> = {}): Promise<string> {
  const r = await execa('git', args, {cwd: dir, input, env: {GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', ...env}})
  return String(r.stdout).trim()
}

/** Seconds since the epoch of an RFC 3339 time. */
export const at = (iso: string): number => Math.floor(Date.parse(iso) / 1000)

export interface TrustKeySpec {
  signer: Signer
  roles?: string[]
  validFrom?: string
  validUntil?: string
}

/** A trust.yaml naming these keys (evidence by default) and thresholds. */
export function trustYaml(keys: TrustKeySpec[], thresholds: Record<string, number> = {evidence: 1}): string {
  const entries = keys.map((k) =>
    [
      `    - id: '${k.signer.keyid}'`,
      '      algorithm: ed25519',
      `      publicKey: ${Buffer.from(k.signer.publicKey).toString('base64')}`,
      `      roles: [${(k.roles ?? ['evidence']).join(', ')}]`,
      `      validFrom: ${k.validFrom ?? '2026-01-01T00:00:00Z'}`,
      ...(k.validUntil ? [`      validUntil: ${k.validUntil}`] : []),
    ].join('\n'),
  )
  return `apiVersion: airlock/v1\nkind: TrustPolicy\nspec:\n  keys:\n${entries.join('\n')}\n  thresholds:\n${Object.entries(thresholds).map(([r, n]) => `    ${r}: ${n}`).join('\n')}\n`
}

/** A change receipt added on `base` (null: the first commit), applied at `appliedAt`, signed by `signers`. */
export function receipt(base: string | null, appliedAt: string, signers: Signer[], summary = 'a change'): string {
  const statement: ReceiptStatement = {
    _type: STATEMENT_TYPE,
    subject: [],
    predicateType: RECEIPT_PREDICATE_TYPE,
    predicate: {
      operation: 'change',
      summary,
      reason: 'test',
      requestedBy: {actor: 'ci', via: 'ci'},
      planDigest: `sha256:${'0'.repeat(64)}`,
      plannedAt: appliedAt,
      appliedAt,
      branch: 'refs/heads/main',
      baseCommit: base,
      details: {},
      changes: [],
      tool: {name: 'airlock', version: '0.0.0'},
      result: 'applied',
    },
  }
  return receiptText(signReceipt(statement, signers))
}

export interface CommitSpec {
  parents?: string[]
  /** Changes to the first parent's tree (null deletes). */
  change?: Record<string, Entry | null>
  /** The tree as it is, instead (e.g. the clean merge of the parents). */
  tree?: string
  /** Committer (and author) time, seconds since the epoch. */
  time: number
  signer?: Signer
  /** What the signature covers instead of the commit (a signature that does not match it). */
  signOver?: (text: string) => string
  message?: string
}

/** A repository written object by object. */
export class Plumbing {
  private n = 0
  private constructor(readonly dir: string) {}

  static async init(dir: string): Promise<Plumbing> {
    await execa('git', ['init', '-q', '-b', 'main', dir])
    return new Plumbing(dir)
  }

  /** An existing repository (one made by `airlock init`). */
  static open(dir: string): Plumbing {
    return new Plumbing(dir)
  }

  /** The tree of `base`'s tree (or none) with `change` applied: blobs, symbolic links, any mode. */
  async writeTree(base: string | null, change: Record<string, Entry | null>): Promise<string> {
    const env = {GIT_INDEX_FILE: join(this.dir, '.git', `scratch-index-${++this.n}`)}
    if (base) await run(this.dir, ['read-tree', base], undefined, env)
    const lines: string[] = []
    for (const [path, entry] of Object.entries(change)) {
      if (entry === null) {
        lines.push(`0 ${'0'.repeat(40)}\t${path}`)
        continue
      }
      const {mode, content} = typeof entry === 'string' ? {mode: '100644', content: entry} : entry
      lines.push(`${mode} ${await run(this.dir, ['hash-object', '-w', '--stdin'], content)}\t${path}`)
    }
    if (lines.length > 0) await run(this.dir, ['update-index', '--add', '--index-info'], `${lines.join('\n')}\n`, env)
    const tree = await run(this.dir, ['write-tree'], undefined, env)
    await rm(env.GIT_INDEX_FILE, {force: true})
    return tree
  }

  /** The tree git's own clean three-way merge of two commits makes (what a forge's merge button commits). */
  async mergeTree(ours: string, theirs: string): Promise<string> {
    return (await run(this.dir, ['merge-tree', '--write-tree', ours, theirs])).split('\n')[0]!
  }

  /** A commit object exactly as asked: its parents, its dates, its SSH signature or none. */
  async commit(spec: CommitSpec): Promise<string> {
    const parents = spec.parents ?? []
    const tree = spec.tree ?? (await this.writeTree(parents[0] ?? null, spec.change ?? {}))
    const ident = `t <t@t> ${spec.time} +0000`
    let text = `tree ${tree}\n${parents.map((p) => `parent ${p}\n`).join('')}author ${ident}\ncommitter ${ident}\n\n${spec.message ?? 'change'}\n`
    if (spec.signer) {
      const split = text.indexOf('\n\n')
      const signed = spec.signOver ? spec.signOver(text) : text
      text = `${text.slice(0, split)}\ngpgsig ${sshSign(Buffer.from(signed), spec.signer).trimEnd().replaceAll('\n', '\n ')}${text.slice(split)}`
    }
    return run(this.dir, ['hash-object', '-t', 'commit', '-w', '--stdin'], text)
  }

  /** Points a branch at a commit (for the CLI, which verifies HEAD). */
  async setBranch(commit: string, branch = 'main'): Promise<void> {
    await run(this.dir, ['update-ref', `refs/heads/${branch}`, commit])
  }
}
