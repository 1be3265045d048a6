/**
 * The built-in gates (`uses: builtin/<name>`), one row each. Each module imports what it checks
 * with only when it runs, so loading a gates file stays cheap.
 */
import type {BuiltinGate} from '../types.js'
import {auditIntegrity} from './audit-integrity.js'
import {digestAlign} from './digest-align.js'
import {history} from './history.js'
import {imageVerify} from './image-verify.js'
import {rollbackDrill} from './rollback-drill.js'
import {secretScan} from './secret-scan.js'
import {staticValidate} from './static-validate.js'
import {toolPolicyHash} from './tool-policy-hash.js'

export const BUILTINS: Readonly<Record<string, BuiltinGate>> = Object.freeze({
  'static-validate': staticValidate,
  history,
  'image-verify': imageVerify,
  'digest-align': digestAlign,
  'tool-policy-hash': toolPolicyHash,
  'secret-scan': secretScan,
  'audit-integrity': auditIntegrity,
  'rollback-drill': rollbackDrill,
})
