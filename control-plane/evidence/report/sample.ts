/**
 * Evidence sampling (`airlock evidence sample`): N distinct members of a control's population,
 * drawn by a procedure anyone recomputes from signed data alone, so the operator cannot choose
 * which entries an auditor looks at.
 *
 * Seed: the bounding checkpoint's root hash (32 bytes) for a log population; the head commit id
 * (20 bytes) for a commit population. Whoever appends shapes the next root (and whoever commits
 * the next commit id), so they could grind for a sample that avoids chosen entries: the auditor
 * adds a nonce of their own, chosen after the checkpoint or commit is fixed (`--nonce`), and the
 * seed is then SHA-256(root or commit id ‖ UTF-8(nonce)). Draw i (0 ≤ i < n) over a population of `count`:
 *   h_i = SHA-256(seed ‖ UTF-8(control id) ‖ i as 8-byte big-endian), read as a big-endian integer;
 *   j   = i + (h_i mod (count − i));
 *   swap positions i and j of the identity permutation 0…count−1 (Fisher–Yates); member i is
 *   what then stands at position i.
 * Only the swapped positions are kept (a map), so a log of billions of entries is never
 * materialized. Members are log indexes, or commit ids of anchor..HEAD sorted by id.
 */
import {createHash} from 'node:crypto'
import {AirlockError} from '../../errors.js'
import type {Limits} from '../../limits.js'
import {loadTrust} from '../../manifests/load.js'
import type {Repository} from '../../repo/repository.js'
import {parseCheckpoint, verifierKeyOf, verifyNote} from '../../audit/note.js'
import {verifyEvidence} from '../verify.js'
import {commitRange, newestPerOrigin} from './build.js'
import {controlById, type ControlDef} from './controls.js'
import type {Population, ReportCheckpoint} from './model.js'

/** The seed: the signed value itself, or SHA-256 of it and the auditor's nonce. */
export function seedOf(signed: Uint8Array, nonce: string | undefined): Uint8Array {
  return nonce === undefined ? signed : createHash('sha256').update(signed).update(nonce, 'utf8').digest()
}

export const SAMPLE_PROCEDURE = 'seed = the root or commit id, or SHA-256(it || UTF-8(nonce)) with --nonce; draw i = 0..n-1: j = i + (SHA-256(seed || UTF-8(control id) || uint64be(i)) mod (count - i)); swap positions i and j of 0..count-1 (sparse Fisher-Yates); member i = position i'

/** The members drawn, as population indexes (0 ≤ index < count), in draw order. Pure. */
export function drawIndexes(seed: Uint8Array, controlId: string, count: number, size: number): number[] {
  if (!Number.isSafeInteger(count) || count < 0) throw new AirlockError('INVALID_INPUT', `population size ${count} is not a non-negative safe integer`)
  if (!Number.isSafeInteger(size) || size < 1) throw new AirlockError('USAGE', `--size ${size}: give a whole number of at least 1`)
  const n = Math.min(size, count)
  const swapped = new Map<number, number>()
  const at = (k: number) => swapped.get(k) ?? k
  const id = Buffer.from(controlId, 'utf8')
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const counter = Buffer.alloc(8)
    counter.writeBigUInt64BE(BigInt(i))
    const h = BigInt(`0x${createHash('sha256').update(seed).update(id).update(counter).digest('hex')}`)
    const j = i + Number(h % BigInt(count - i))
    const vi = at(i)
    const vj = at(j)
    swapped.set(i, vj)
    swapped.set(j, vi)
    out.push(vj)
  }
  return out
}

export interface SampleResult {
  control: string
  population: Population
  /** Where the seed comes from, and the seed (base64 root hash, or the commit id). */
  seedFrom: 'checkpoint root' | 'head commit'
  /** The auditor's nonce mixed into the seed, when given. */
  nonce?: string
  seed: string
  procedure: string
  /** How many were asked for, and how many drawn (at most the population). */
  asked: number
  indexes: number[]
  /** Log indexes (decimal) or commit ids, in draw order. */
  members: string[]
}

export interface SampleOptions {
  control: string
  size: number
  /** The auditor's own value, chosen after the bound is fixed: mixed into the seed (seedOf). */
  nonce?: string
  limits: Limits
  now: Date
  anchor: string | null
  /** A signed checkpoint note an auditor holds (--checkpoint FILE): verified against the audit keys at HEAD. */
  checkpointText?: string
  /** The published checkpoints (audit/published.ts), when no --checkpoint is given. */
  checkpoints?: readonly ReportCheckpoint[]
}

/** Draws the sample of one control's population at the verified HEAD. */
export async function sampleControl(repo: Repository, opts: SampleOptions): Promise<SampleResult> {
  const def = controlById(opts.control)
  if (!def) throw new AirlockError('USAGE', `--control ${opts.control}: not a control of the report (airlock evidence report lists them)`)
  if (def.population === null) throw new AirlockError('USAGE', `--control ${def.id}: ${def.title} has no population to sample; it rests on ${def.counts.join(', ')} evidence (airlock evidence report)`)
  const verified = await verifyEvidence(repo, {limits: opts.limits, anchor: opts.anchor, now: opts.now})
  if (!verified.ok) {
    throw new AirlockError('VERIFICATION_FAILED', `the history does not verify, so it gives no population to sample (airlock evidence verify names the ${verified.problems.length} problem(s))`, {problems: verified.problems.slice(0, 20)})
  }
  if (def.population === 'commits') return sampleCommits(repo, def, verified.head, verified.anchor.commit, opts.size, opts.nonce)
  const bound = opts.checkpointText !== undefined ? await checkedCheckpoint(repo, verified.head, opts.checkpointText, opts.limits) : pickPublished(def, opts.checkpoints ?? [])
  const population: Population = {kind: 'log', from: '0', to: String(bound.size - 1), count: bound.size, checkpoint: bound}
  const indexes = drawIndexes(seedOf(Buffer.from(bound.root, 'base64'), opts.nonce), def.id, bound.size, opts.size)
  return {control: def.id, population, seedFrom: 'checkpoint root', seed: bound.root, procedure: SAMPLE_PROCEDURE, ...(opts.nonce !== undefined ? {nonce: opts.nonce} : {}), asked: opts.size, indexes, members: indexes.map(String)}
}

async function sampleCommits(repo: Repository, def: ControlDef, head: string, anchor: string | null, size: number, nonce?: string): Promise<SampleResult> {
  const commits = await commitRange(repo, head, anchor)
  if (commits.length === 0) throw new AirlockError('INVALID_INPUT', `--control ${def.id}: no commit after the trust anchor: the population is empty`)
  const oldest = commits.reduce((a, b) => (b.time < a.time || (b.time === a.time && b.oid < a.oid) ? b : a))
  const population: Population = {kind: 'commits', from: oldest.oid, to: head, count: commits.length, checkpoint: null}
  const indexes = drawIndexes(seedOf(Buffer.from(head, 'hex'), nonce), def.id, commits.length, size)
  return {control: def.id, population, seedFrom: 'head commit', seed: head, procedure: SAMPLE_PROCEDURE, ...(nonce !== undefined ? {nonce} : {}), asked: size, indexes, members: indexes.map((i) => commits[i]!.oid)}
}

/** The newest published checkpoint, when there is exactly one log (origin) to sample. */
function pickPublished(def: ControlDef, checkpoints: readonly ReportCheckpoint[]): {path: string; origin: string; size: number; root: string} {
  const newest = newestPerOrigin(checkpoints).filter((c) => c.size > 0)
  if (newest.length === 0) throw new AirlockError('INVALID_INPUT', `--control ${def.id}: no audit checkpoint has been published, so the log has no signed bound to sample within; give one with --checkpoint FILE`)
  if (newest.length > 1) throw new AirlockError('USAGE', `--control ${def.id}: ${newest.length} audit logs have published checkpoints (${newest.map((c) => c.origin).join(', ')}); say which with --checkpoint FILE`, {origins: newest.map((c) => c.origin)})
  const c = newest[0]!
  return {path: c.path, origin: c.origin, size: c.size, root: c.root}
}

/**
 * A checkpoint note given by file: it must be signed by an audit key of trust.yaml at HEAD (the key
 * named by the log's origin, as docs/audit.md says), else the seed is anyone's choice.
 */
async function checkedCheckpoint(repo: Repository, head: string, text: string, limits: Limits): Promise<{path: string; origin: string; size: number; root: string}> {
  const trust = await loadTrust(repo, head, limits)
  try {
    const origin = text.slice(0, text.indexOf('\n'))
    const keys = trust.keys.filter((k) => k.algorithm === 'ed25519' && k.roles.includes('audit')).map((k) => verifierKeyOf(origin, k.publicKey))
    const checkpoint = parseCheckpoint(verifyNote(text, keys).text)
    if (checkpoint.size === 0) throw new AirlockError('INVALID_INPUT', 'the checkpoint is of an empty log: nothing to sample')
    return {path: '(--checkpoint)', origin: checkpoint.origin, size: checkpoint.size, root: Buffer.from(checkpoint.rootHash).toString('base64')}
  } catch (error) {
    if (error instanceof AirlockError && error.code === 'INVALID_INPUT') throw error
    throw new AirlockError('AUDIT_CHECKPOINT_INVALID', `--checkpoint: not a checkpoint signed by an audit key of manifests/trust.yaml at HEAD: ${(error as Error).message}`)
  }
}
