/**
 * Registry credentials as users already have them: AIRLOCK_REGISTRY_USER and
 * AIRLOCK_REGISTRY_PASSWORD, else `~/.docker/config.json` — its `credHelpers` / `credsStore`
 * helper (`docker-credential-<name> get`, when it is installed), else its `auths` entry, read by
 * @sigstore/oci. None: anonymous. They are handed to the registry client, which sends them only
 * to the token service the registry names over HTTPS.
 */
import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {getRegistryCredentials} from '@sigstore/oci'
import {execa} from 'execa'
import {AirlockError} from '../../control-plane/errors.js'
import type {RegistryCredentials} from './client.js'

const HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])

export async function registryCredentials(registry: string, env: NodeJS.ProcessEnv): Promise<RegistryCredentials | null> {
  if (env.AIRLOCK_REGISTRY_USER || env.AIRLOCK_REGISTRY_PASSWORD) {
    if (!env.AIRLOCK_REGISTRY_USER || !env.AIRLOCK_REGISTRY_PASSWORD) throw new AirlockError('USAGE', 'set both AIRLOCK_REGISTRY_USER and AIRLOCK_REGISTRY_PASSWORD', {field: 'AIRLOCK_REGISTRY_USER'})
    return {username: env.AIRLOCK_REGISTRY_USER, password: env.AIRLOCK_REGISTRY_PASSWORD, source: 'AIRLOCK_REGISTRY_USER'}
  }
  const file = join(homedir(), '.docker', 'config.json')
  const text = await readFile(file, 'utf8').catch(() => null)
  if (text === null) return null
  let config: {credHelpers?: Record<string, string>; credsStore?: string; auths?: Record<string, unknown>}
  try {
    config = JSON.parse(text)
  } catch {
    throw new AirlockError('INVALID_INPUT', `${file}: not JSON`, {file})
  }
  const key = HUB.has(registry) ? 'docker.io' : registry
  const helper = config.credHelpers?.[key] ?? config.credHelpers?.[registry] ?? config.credsStore
  if (helper) {
    const r = await execa(`docker-credential-${helper}`, ['get'], {input: HUB.has(registry) ? 'https://index.docker.io/v1/' : registry, reject: false, timeout: 10_000, env})
    if (r.exitCode === 0) {
      const answer = (() => {
        try {
          return JSON.parse(String(r.stdout)) as {Username?: string; Secret?: string}
        } catch {
          throw new AirlockError('INVALID_INPUT', `docker-credential-${helper} get printed something that is not JSON`, {helper})
        }
      })()
      if (answer.Username && answer.Secret) return {username: answer.Username, password: answer.Secret, source: `docker-credential-${helper}`}
    }
    // A helper that is not installed, or knows nothing of this registry: the auths entry, if any.
  }
  if (!config.auths) return null
  try {
    // @sigstore/oci reads the auths entry whose registry is exactly this one.
    const c = getRegistryCredentials(`${HUB.has(registry) ? 'docker.io' : registry}/x`)
    return {username: c.username, password: c.password, source: file}
  } catch {
    return null
  }
}
