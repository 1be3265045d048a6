import {Flags} from '@oclif/core'
import {parseDuration} from '../control-plane/duration.js'
import {DEFAULT_LIMITS, REGISTRY_LIMIT_FLAGS, type Limits, type RegistryLimit, type RegistryLimits} from '../control-plane/limits.js'

type FlagName<K extends RegistryLimit> = (typeof REGISTRY_LIMIT_FLAGS)[K] extends `--${infer N}` ? N : never

const group = 'REGISTRY LIMITS'
const count = (description: string, fallback: number) => Flags.integer({description: `${description} (default ${fallback})`, min: 1, helpGroup: group})
const seconds = (ms: number) => `${ms / 1000}s`
const d = DEFAULT_LIMITS

/**
 * The registry limits (control-plane/limits.ts) as flags, for every command that reads a
 * registry; a flag not given keeps the command's limit. Each is the flag REGISTRY_TOO_LARGE and
 * REGISTRY_TIMEOUT name (REGISTRY_LIMIT_FLAGS: the type below refuses a missing one).
 */
export const registryFlags = {
  'max-referrers': count('signature referrers of the image considered', d.maxRegistryReferrers),
  'max-descriptors': count('descriptors one manifest or index may list', d.maxRegistryDescriptors),
  'max-layers': count('signature layers of one referrer (or of the .sig manifest) tried', d.maxRegistryLayers),
  'max-manifest-bytes': count('largest manifest or index read, in bytes', d.maxRegistryManifestBytes),
  'max-blob-bytes': Flags.integer({description: `largest blob read (a signature bundle or payload), in bytes (default ${d.maxRegistryBlobBytes})`, min: 1, aliases: ['max-bytes'], helpGroup: group}),
  'max-total-bytes': count('bytes read from the registry by the whole command', d.maxRegistryBytes),
  timeout: Flags.string({description: `deadline for each registry request, e.g. 30s (default ${seconds(d.registryRequestMs)})`, helpGroup: group}),
  deadline: Flags.string({description: `deadline for all the command's registry requests together, counted from its start, e.g. 5m (default ${seconds(d.registryDeadlineMs)})`, helpGroup: group}),
} satisfies {[K in RegistryLimit as FlagName<K>]: unknown}

type Given = {[K in keyof typeof registryFlags]?: number | string | undefined}

/** The command's registry limits, with the flags given applied. */
export function registryLimits(flags: Given, limits: Limits): RegistryLimits {
  const n = (given: number | string | undefined, fallback: number) => (given === undefined ? fallback : Number(given))
  const ms = (given: number | string | undefined, name: string, fallback: number) => (given === undefined ? fallback : parseDuration(String(given), name))
  return {
    maxRegistryReferrers: n(flags['max-referrers'], limits.maxRegistryReferrers),
    maxRegistryDescriptors: n(flags['max-descriptors'], limits.maxRegistryDescriptors),
    maxRegistryLayers: n(flags['max-layers'], limits.maxRegistryLayers),
    maxRegistryManifestBytes: n(flags['max-manifest-bytes'], limits.maxRegistryManifestBytes),
    maxRegistryBlobBytes: n(flags['max-blob-bytes'], limits.maxRegistryBlobBytes),
    maxRegistryBytes: n(flags['max-total-bytes'], limits.maxRegistryBytes),
    registryRequestMs: ms(flags.timeout, REGISTRY_LIMIT_FLAGS.registryRequestMs, limits.registryRequestMs),
    registryDeadlineMs: ms(flags.deadline, REGISTRY_LIMIT_FLAGS.registryDeadlineMs, limits.registryDeadlineMs),
  }
}

/** How a registry is reached: its CA and, on loopback only, plain HTTP (as image fetch-signature has them). */
export const registryAccessFlags = {
  ca: Flags.string({description: 'PEM CA bundle the registry (or server) certificate must chain to'}),
  'plain-http': Flags.boolean({description: 'plain HTTP, only for a registry on 127.0.0.1 / localhost', default: false}),
}

/**
 * A registry client as every command makes one: AIRLOCK_REGISTRY_TOKEN, else the token flow with
 * AIRLOCK_REGISTRY_USER/PASSWORD or what docker login left (asked for only if the registry
 * challenges, sent only to the token service it names), the CA, plain HTTP on loopback only.
 * Returns a maker of clients: each client has its own byte budget and deadline (a watching pull
 * makes one per pull).
 */
export async function registryClients(registry: string, access: {ca?: string; plainHttp: boolean}, limits: RegistryLimits) {
  const {RegistryClient} = await import('../platform/registry/client.js')
  return () => new RegistryClient(registry, {
    token: process.env.AIRLOCK_REGISTRY_TOKEN || undefined,
    credentials: async () => (await import('../platform/registry/credentials.js')).registryCredentials(registry, process.env),
    ca: access.ca,
    plainHttp: access.plainHttp,
    limits,
  })
}
