import {AirlockError} from '../errors.js'
import {keysFor} from './load.js'
import {ROLES, TRUST_FILE, type TrustPolicy} from './models.js'

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
