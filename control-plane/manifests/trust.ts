import {AirlockError} from '../errors.js'
import {keysFor} from './load.js'
import {allowedSignersLine, sshFingerprint} from '../crypto/sshsig.js'
import {ROLES, TRUST_FILE, type Role, type TrustKey, type TrustPolicy} from './models.js'

/**
 * A trust policy every later change can still be checked against: parsable, and for each role
 * in use a threshold that the keys valid now can meet (evidence always: without it nothing can
 * be signed again).
 */
export function checkTrustSatisfiable(trust: TrustPolicy, now: Date): void {
  for (const role of ROLES) {
    const valid = keysFor(trust, role, now).length
    const listed = trust.keys.some((k) => k.roles.includes(role))
    if ((role === 'evidence' || listed) && trust.thresholds[role] > valid) {
      throw new AirlockError('INVALID_INPUT', `${TRUST_FILE}: spec.thresholds.${role}: ${trust.thresholds[role]} signatures needed but only ${valid} ${role} key(s) are valid now; no set of keys could meet it`, {
        file: TRUST_FILE,
        field: `spec.thresholds.${role}`,
      })
    }
  }
}

/** A trusted key as an operator compares it with what they were given out of band. */
export interface KeyFingerprint {
  id: string
  name: string | null
  algorithm: TrustKey['algorithm']
  roles: Role[]
  /** `ssh-keygen -l` form for Ed25519 keys (they sign git commits as SSH keys); null for ECDSA image keys. */
  ssh: string | null
  validFrom: string
  validUntil: string | null
}

export function fingerprints(trust: TrustPolicy): KeyFingerprint[] {
  return trust.keys.map((k) => ({
    id: k.id,
    name: k.name ?? null,
    algorithm: k.algorithm,
    roles: k.roles,
    ssh: k.algorithm === 'ed25519' ? sshFingerprint(k.publicKey) : null,
    validFrom: k.validFrom.toISOString(),
    validUntil: k.validUntil?.toISOString() ?? null,
  }))
}

/**
 * The key's principal in the allowed-signers file: its name when it is a plain word (a name is
 * text in trust.yaml; a line break or a comma there would add lines or principals), else its id.
 */
function principalOf(k: TrustKey): string {
  return k.name && /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/.test(k.name) ? k.name : `airlock-${k.id.slice(0, 16)}`
}

/**
 * git's allowed-signers file for the evidence keys (the keys that sign airlock's commits), each
 * with its validity window, so `git verify-commit` checks airlock's commits without hand-made
 * key files: `git -c gpg.ssh.allowedSignersFile=FILE verify-commit HEAD`.
 */
export function allowedSigners(trust: TrustPolicy): string {
  const lines = trust.keys
    .filter((k) => k.roles.includes('evidence') && k.algorithm === 'ed25519')
    .map((k) => allowedSignersLine(principalOf(k), k.publicKey, {from: k.validFrom, ...(k.validUntil ? {until: k.validUntil} : {})}))
  return `# evidence keys of ${trust.file}${trust.oid ? ` (blob ${trust.oid})` : ''}; git -c gpg.ssh.allowedSignersFile=THIS verify-commit COMMIT\n${lines.join('\n')}${lines.length ? '\n' : ''}`
}
