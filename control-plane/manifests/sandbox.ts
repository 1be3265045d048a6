/** A Tier-2 sandbox job as `manifests/sandboxes/NAME.yaml` describes it (kind SandboxSpec). */
import type {Limits} from '../limits.js'
import type {Profile} from '../policy/egress/egress.js'
import {validateKind} from './validate.js'
import {loadYaml, type LoadedYaml} from './yaml.js'

export interface SandboxDoc {
  metadata: {name: string}
  spec: {
    agentType?: string
    runtime?: string
    image: {name?: string; channel?: string; ref?: string}
    resources?: {vcpus?: number; memoryMb?: number}
    timeoutSeconds?: number
    reapAfterSeconds?: number
    egress?: {network?: boolean; profile?: Profile; policy?: string}
    toolPolicy?: string
    security?: {
      /** `profile`: absent (the profile `defaultAction` describes), `runtime/default`, or `unconfined` (a violation). */
      seccomp?: {defaultAction?: string; profile?: string}
      /** An AppArmor profile: `runtime/default`, `localhost/NAME` or NAME; `unconfined` is a violation. */
      apparmor?: {profile?: string}
      /** SELinux labels for the process; an unconfined type or `disabled: true` is a violation. */
      selinux?: {user?: string; role?: string; type?: string; level?: string; disabled?: boolean}
      capabilities?: {drop?: string[]; add?: string[]}
      readOnlyRoot?: boolean
      userNamespace?: boolean
      privileged?: boolean
    }
    mounts?: Array<{type: 'tmpfs' | 'volume' | 'bind'; source?: string; target: string; readOnly?: boolean; sizeMb?: number}>
  }
}

export interface SandboxSpec {
  file: string
  name: string
  doc: SandboxDoc
  loaded: LoadedYaml
}

export function parseSandboxSpec(text: string, file: string, limits: Limits): SandboxSpec {
  const loaded = loadYaml(text, file, limits)
  validateKind('SandboxSpec', loaded)
  const doc = loaded.value as SandboxDoc
  return {file, name: doc.metadata.name, doc, loaded}
}
