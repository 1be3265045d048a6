/**
 * What the audit commands share: the `--audit-dir` flag and its resolution, and the audit keys a
 * checkpoint is checked with (`--key` verifier keys, else the role-audit keys of trust.yaml at the
 * verified HEAD, named by the log's origin).
 */
import {Flags} from '@oclif/core'
import type {Limits} from '../control-plane/limits.js'
import type {VerifierKey} from '../control-plane/audit/note.js'
import type {TrustPolicy} from '../control-plane/manifests/models.js'
import {anchorFlag, auditDirFlag} from './_base.js'
import {readInput} from './_policy.js'

export {auditDirFlag}

/** Where the audit keys come from when --key is not given. */
export const auditTrustFlags = {
  ...anchorFlag,
  trust: Flags.string({description: "a trust.yaml of your own to take the role-audit keys from (default: trust.yaml at the repository's verified HEAD)"}),
}

export async function auditDir(flags: {'audit-dir'?: string}): Promise<string> {
  const {auditDirFrom} = await import('../control-plane/audit/log.js')
  return auditDirFrom(flags['audit-dir'], process.env)
}

type TrustFlags = {repo?: string; 'trust-anchor'?: string; trust?: string}

/** The trust policy: --trust FILE, else trust.yaml at the verified HEAD (the one resolver). */
export async function auditTrust(flags: TrustFlags, ctx: {limits: Limits; now: Date}): Promise<{trust: TrustPolicy; source: unknown}> {
  const {trustOf} = await import('./_policy.js')
  const {trust, source} = await trustOf(flags, ctx)
  return {trust, source}
}

/** The trust's role-audit Ed25519 keys valid now, as verifier keys named by the log's origin. */
export async function auditKeysOf(trust: TrustPolicy, origin: string, now: Date): Promise<VerifierKey[]> {
  const [{keysFor}, {verifierKeyOf}] = await Promise.all([import('../control-plane/manifests/load.js'), import('../control-plane/audit/note.js')])
  return keysFor(trust, 'audit', now)
    .filter((k) => k.algorithm === 'ed25519')
    .map((k) => verifierKeyOf(origin, k.publicKey))
}

/** --key values: a C2SP verifier key, or a file holding one. */
export async function verifierKeysFrom(values: readonly string[]): Promise<VerifierKey[]> {
  const {parseVerifierKey} = await import('../control-plane/audit/note.js')
  const out: VerifierKey[] = []
  for (const v of values) {
    // An origin holds slashes, so a key can look like a path: a key that parses is a key.
    let key: VerifierKey
    try {
      key = parseVerifierKey(v)
    } catch {
      key = parseVerifierKey((await readInput(v)).trim())
    }
    out.push(key)
  }
  return out
}

/** Whether --repo or the working directory is a git repository (then its trust decides). */
export async function inRepository(repo: string | undefined): Promise<boolean> {
  if (repo) return true
  const {findTopLevel} = await import('../control-plane/repo/repository.js')
  return findTopLevel(process.cwd()).then(
    () => true,
    () => false,
  )
}
