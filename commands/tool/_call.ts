import {stat} from 'node:fs/promises'
import {Flags} from '@oclif/core'
import type {EgressPolicy} from '../../control-plane/policy/egress/egress.js'
import type {ToolPolicy} from '../../control-plane/policy/tools/tools.js'
import {anchorFlag} from '../_base.js'
import {readInput, type ReadContext} from '../_policy.js'
import {forTerminal} from '../../control-plane/terminal.js'

export const toolPolicyFlags = {
  policy: Flags.string({description: 'a ToolPolicy file (default: manifests/tool-policy.yaml at HEAD, whose history must verify)'}),
  ...anchorFlag,
}

export const egressFlag = {
  'egress-policy': Flags.string({description: 'the EgressPolicy file that judges parameters marked x-airlock-egress (default: manifests/egress.yaml at HEAD, whose history must verify)'}),
}

/**
 * The egress policy for a call whose tool binds parameters to it (`x-airlock-egress`), else
 * undefined (not read at all): --egress-policy FILE, else manifests/egress.yaml at the verified HEAD.
 */
export async function egressFor(policy: ToolPolicy, tool: string, flags: {repo?: string; 'trust-anchor'?: string; 'egress-policy'?: string}, ctx: ReadContext): Promise<EgressPolicy | undefined> {
  if (!policy.allowed.get(tool)?.egress.length) return undefined
  const {egressPolicy} = await import('../_policy.js')
  return (await egressPolicy({...flags, policy: flags['egress-policy']}, ctx)).policy
}

export const paramsFlag = {
  params: Flags.string({description: 'the call\'s parameters: a JSON object, or @FILE', required: true}),
}

/**
 * The parameters of a call as received: their size in bytes, and the value when it is within
 * the policy's limit (larger ones are not parsed; the check denies them by size). Duplicate keys
 * and integers beyond ±2^53 are refused: the tool would not see what was checked.
 */
export async function readParams(arg: string, policy: ToolPolicy): Promise<{params: unknown; bytes: number}> {
  const file = arg.startsWith('@') ? arg.slice(1) : null
  const text = file ? await readInput(file, policy.maxParamsBytes).catch((error: {code?: string}) => (error.code === 'TOO_LARGE' ? null : Promise.reject(error))) : arg
  if (text === null) return {params: undefined, bytes: (await stat(file!)).size}
  const bytes = Buffer.byteLength(text)
  if (bytes > policy.maxParamsBytes) return {params: undefined, bytes}
  const {parseExactJson} = await import('../../control-plane/policy/json.js')
  return {params: parseExactJson(text, file ?? '--params', 'checked'), bytes}
}

/** The policy's findings as warnings on stderr (they deny the tools they name). */
export async function warnFindings(policy: ToolPolicy, json: boolean): Promise<void> {
  if (json) return
  const {findingText} = await import('../../control-plane/policy/tools/tools.js')
  for (const f of policy.findings) process.stderr.write(`airlock: warning: ${forTerminal(findingText(f))} (${forTerminal(f.tool)} is denied)\n`)
}
