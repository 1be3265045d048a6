/**
 * Hand edits through the pipeline (`airlock change`): the uncommitted edits under manifests/,
 * policies/ and bundles/, validated as their loaders do, as one change.
 */
import {lstat} from 'node:fs/promises'
import {checkInside, describeFile, readRegularFile} from '../repo/files.js'
import {join} from 'node:path'
import {parseEgress} from '../policy/egress/egress.js'
import {AirlockError} from '../errors.js'
import type {Limits} from '../limits.js'
import {loadTrust, parseImage, parseTrust} from '../manifests/load.js'
import {EGRESS_FILE, IMAGES_DIR, SANDBOXES_DIR, SIGNATURES_DIR, signaturePayloadPath, signatureSlot, TOOL_POLICY_FILE, TRUST_FILE} from '../manifests/models.js'
import {parseToolPolicy, requireClean} from '../policy/tools/tools.js'
import {parseSandboxSpec} from '../manifests/sandbox.js'
import {blobId} from './store-signature.js'
import type {ChangeRequest, PlannedChange} from '../plan/plan.js'
import {parseBundle, verifyBundle} from '../policy/bundle.js'
import {invalidPolicy, validateTree} from '../policy/engine.js'
import {loadPolicyTreeAt} from '../policy/repo-tree.js'
import {repoPath} from '../repo/paths.js'
import type {Repository} from '../repo/repository.js'
import {kindOfPath} from '../pipeline/authorize.js'
import type {Draft, Pin} from '../pipeline/draft.js'

export const CHANGE_FOLDERS = ['manifests', 'policies', 'bundles'] as const

/** The work tree's uncommitted edits under the desired-state folders: new content, or null for a deletion. */
export async function collectEdits(repo: Repository, limits: Limits): Promise<Array<{path: string; content: string | null}>> {
  const out: Array<{path: string; content: string | null}> = []
  for (const {path, deleted} of await repo.workTreeChanges([...CHANGE_FOLDERS])) {
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
 * Validates the edits as their loaders do — image manifests and trust.yaml against their schemas,
 * Cedar policies against the schema, bundles against the base's policy keys — and names every
 * digest a channel would newly pin, for the pipeline to verify.
 */
export async function buildDesiredStateChange(repo: Repository, commit: string, req: Extract<ChangeRequest, {kind: 'change'}>, now: Date, limits: Limits): Promise<Draft> {
  const files = new Map<string, string | null>()
  for (const f of req.files) {
    const path = repoPath(f.path)
    if (!CHANGE_FOLDERS.some((d) => path.startsWith(`${d}/`))) throw new AirlockError('USAGE', `${path}: airlock change takes edits under ${CHANGE_FOLDERS.join('/, ')}/ only`, {file: path})
    files.set(path, f.content)
  }
  const changes: PlannedChange[] = []
  const inputs: Draft['inputs'] = []
  const pins: Pin[] = []
  const trust = await loadTrust(repo, commit, limits)
  for (const [path, after] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const found = await repo.readFile(commit, path)
    inputs.push({path, oid: found?.oid ?? null})
    const before = found?.text ?? null
    if (before === after) continue
    changes.push({path, action: before === null ? 'create' : after === null ? 'delete' : 'modify', before, after})
    if (after === null) continue
    if (path === TRUST_FILE) parseTrust(after, path, null, limits)
    else if (path === EGRESS_FILE) parseEgress(after, path, limits)
    // A tool policy is committed only when it denies nothing by accident (drifted hashes, broken schemas, conflicts).
    else if (path === TOOL_POLICY_FILE) requireClean(parseToolPolicy(after, path, limits))
    // The shape here; the hardening baseline is `airlock sandbox check` (it needs the principal and the images).
    else if (path.startsWith(`${SANDBOXES_DIR}/`)) {
      if (!path.endsWith('.yaml')) throw new AirlockError('INVALID_INPUT', `${path}: sandbox specs are ${SANDBOXES_DIR}/NAME.yaml files`, {file: path})
      parseSandboxSpec(after, path, limits)
    }
    else if (path.startsWith(`${IMAGES_DIR}/`) && /\.ya?ml$/.test(path)) {
      // NAME.yaml and NAME.yml both, after the change: one file per image.
      const twin = path.endsWith('.yml') ? path.replace(/\.yml$/, '.yaml') : path.replace(/\.yaml$/, '.yml')
      if ((files.has(twin) ? files.get(twin) !== null : (await repo.readFile(commit, twin)) !== undefined)) {
        throw new AirlockError('SCHEMA_VIOLATION', `${path}: this image is also defined by ${twin}; one file per image (remove one of them)`, {file: path, other: twin})
      }
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
        pins.push({image, digest: ch.digest, bundles})
      }
    } else if (path.startsWith('bundles/')) {
      const {envelope, payload} = parseBundle(after, path)
      verifyBundle(envelope, payload, {trust, now, source: path})
    } else if (path.endsWith('.json')) {
      try {
        JSON.parse(after)
      } catch (error) {
        throw new AirlockError('INVALID_INPUT', `${path}: not JSON (${(error as Error).message})`, {file: path})
      }
    }
  }
  if (changes.some((c) => c.path.startsWith('policies/'))) {
    const tree = await loadPolicyTreeAt(repo, commit, files)
    const problems = tree ? validateTree(tree) : []
    if (problems.length > 0) throw invalidPolicy(problems)
  }
  const kinds = [...new Set(changes.map((c) => kindOfPath(c.path)))].sort()
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
