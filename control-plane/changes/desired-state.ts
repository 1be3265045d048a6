/**
 * Hand edits through the pipeline (`airlock change`): the uncommitted edits under manifests/,
 * policies/ and bundles/, and of the signed root files (.airlock-secrets-baseline), as one change.
 */
import {lstat} from 'node:fs/promises'
import {join} from 'node:path'
import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {EVIDENCE_DOCUMENTATION, isKind, requireKind, SIGNED_FILES, SIGNED_FOLDERS} from '../manifests/kinds.js'
import {parseImage} from '../manifests/load.js'
import {SIGNATURES_DIR, signaturePayloadPath, signatureSlot} from '../manifests/models.js'
import type {ChangeRequest, PlannedChange} from '../plan/plan.js'
import type {Draft, Pin} from '../pipeline/draft.js'
import {checkInside, describeFile, readRegularFile} from '../repo/files.js'
import {repoPath} from '../repo/paths.js'
import type {Repository} from '../repo/repository.js'
import {blobId} from './store-signature.js'

/** The folders `airlock change` takes edits from: the signed folders of the kinds table. */
export const CHANGE_FOLDERS = SIGNED_FOLDERS
/** And the signed root files. */
const CHANGE_FILES: readonly string[] = SIGNED_FILES

/** Whether `airlock change` may carry `path`: a signed root file, under a signed folder, or the evidence folder's index (never a receipt). */
function changeable(path: string): boolean {
  return CHANGE_FILES.includes(path) || CHANGE_FOLDERS.some((d) => path.startsWith(`${d}/`)) || EVIDENCE_DOCUMENTATION.has(path)
}

/** The work tree's uncommitted edits under the desired-state folders: new content, or null for a deletion. */
export async function collectEdits(repo: Repository, limits: Limits): Promise<Array<{path: string; content: string | null}>> {
  const out: Array<{path: string; content: string | null}> = []
  for (const {path, deleted} of await repo.workTreeChanges([...CHANGE_FOLDERS, ...CHANGE_FILES, ...EVIDENCE_DOCUMENTATION])) {
    if (deleted) {
      out.push({path, content: null})
      continue
    }
    const abs = join(repo.dir, path)
    await checkInside(repo.dir, abs)
    const st = await lstat(abs)
    if (!st.isFile()) throw new AirlockError('INVALID_INPUT', `${path}: is ${describeFile(st)}; only regular files are desired state`, {file: path})
    out.push({path, content: await readRegularFile(abs, {maxBytes: limits.maxFileBytes, label: path})})
  }
  return out
}

/**
 * The edits as one change. What each file must be is the kinds table's (every kind's check runs
 * in the pipeline's validate step, for this and every other kind of change); this builder adds
 * the digests a channel would newly pin, for the pipeline to verify with the bundles the change
 * itself brings.
 */
export async function buildDesiredStateChange(repo: Repository, commit: string, req: Extract<ChangeRequest, {kind: 'change'}>, limits: Limits): Promise<Draft> {
  const files = new Map<string, string | null>()
  for (const f of req.files) {
    const path = repoPath(f.path)
    if (!changeable(path)) throw new AirlockError('USAGE', `${path}: airlock change takes edits under ${CHANGE_FOLDERS.join('/, ')}/ and of ${[...CHANGE_FILES, ...EVIDENCE_DOCUMENTATION].join(', ')} only`, {file: path})
    files.set(path, f.content)
  }
  const changes: PlannedChange[] = []
  const inputs: Draft['inputs'] = []
  const pins: Pin[] = []
  for (const [path, after] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const found = await repo.readFile(commit, path)
    inputs.push({path, oid: found?.oid ?? null})
    const before = found?.text ?? null
    // A file no kind describes is refused (a kind may be known from what the file declares).
    requireKind(path, after ?? before)
    if (before === after) continue
    changes.push({path, action: before === null ? 'create' : after === null ? 'delete' : 'modify', before, after})
    if (after === null || !isKind('GoldenImage', path)) continue
    const image = parseImage(after, path, blobId(after), limits)
    const old = before === null ? null : parseImage(before, path, found!.oid, limits)
    for (const [name, ch] of Object.entries(image.channels)) {
      if (old?.channels[name]?.digest === ch.digest) continue
      // The digest's bundles this change adds (any slot) count with those at the base.
      const bundles = []
      for (const [p, text] of files) {
        const slot = p.startsWith(`${SIGNATURES_DIR}/${image.name}/`) ? signatureSlot(p.slice(p.lastIndexOf('/') + 1), ch.digest) : null
        if (text === null || slot === null) continue
        const payload = files.get(signaturePayloadPath(image.name, ch.digest, slot))
        bundles.push({text, path: p, oid: blobId(text), ...(payload ? {payload} : {})})
      }
      pins.push({image, digest: ch.digest, bundles, channel: name})
    }
  }
  const kinds = [...new Set(changes.map((c) => requireKind(c.path, c.after ?? c.before).kind))].sort()
  return {
    operation: 'change',
    summary: changes.length ? `change ${changes.length} file(s) of desired state (${kinds.join(', ')})` : 'no uncommitted edits under manifests/, policies/ or bundles/',
    details: {files: changes.length, kinds: kinds.join(', ') || 'none', pins: pins.length},
    subjects: pins.map((p) => ({name: p.image.repository, digest: {sha256: p.digest.slice(7)}})),
    changes,
    inputs,
    slug: 'change',
    pins,
  }
}
