/**
 * Reading the digest an image is running at, from the host's runtime. One adapter a source:
 * - `file:PATH`: the JSON state file the host's reconciler writes (RuntimeState, below);
 * - `command:CMD`: any command that prints the running digest (env AIRLOCK_IMAGE, AIRLOCK_REPOSITORY,
 *   AIRLOCK_CHANNEL tell it which);
 * - `podman`: `podman container inspect` of the container named after the image;
 * - `containerd`: `ctr containers info` of the container named after the image (namespace
 *   AIRLOCK_CONTAINERD_NAMESPACE, default `default`).
 * Commands run through execa with a deadline; what cannot be read is a RuntimeUnavailable with
 * the reason, never a guess.
 */
import {readRegularFile} from '../../control-plane/repo/files.js'
import {execa, parseCommandString} from 'execa'
import {AirlockError} from '../../control-plane/errors.js'

export interface RunningQuery {
  image: string
  repository: string
  channel: string
}

export interface RuntimeAdapter {
  name: string
  /** The digest `q.image` runs at (sha256:<64 hex>). */
  running(q: RunningQuery): Promise<string>
}

export class RuntimeUnavailable extends AirlockError {
  constructor(
    readonly runtime: string,
    readonly problem: string,
  ) {
    super('RUNTIME_UNAVAILABLE', `${runtime}: ${problem}`, {runtime})
  }
}

const DIGEST = /sha256:[0-9a-f]{64}/g
const MAX_OUTPUT = 1024 * 1024

/** The one digest in `text`; none, or two different ones, cannot be read as an answer. */
function oneDigest(text: string, runtime: string, what: string): string {
  const found = [...new Set(text.match(DIGEST) ?? [])]
  if (found.length === 0) throw new RuntimeUnavailable(runtime, `${what} printed no sha256 digest`)
  if (found.length > 1) throw new RuntimeUnavailable(runtime, `${what} printed ${found.length} different digests; expected one`)
  return found[0]!
}

/**
 * Runs a runtime command in its own process group, so that at the deadline the whole group is
 * killed: a shell script's children would otherwise hold its output open.
 */
async function run(runtime: string, file: string, args: string[], opts: {timeoutMs: number; env?: Record<string, string>}): Promise<string> {
  const what = [file, ...args].join(' ')
  const subprocess = execa(file, args, {detached: true, maxBuffer: MAX_OUTPUT, reject: false, stdin: 'ignore', env: opts.env})
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    try {
      process.kill(-subprocess.pid!, 'SIGKILL')
    } catch {
      subprocess.kill('SIGKILL')
    }
  }, opts.timeoutMs)
  const result = await subprocess
  clearTimeout(timer)
  if (timedOut) throw new RuntimeUnavailable(runtime, `${what} did not finish within ${opts.timeoutMs} ms; stopped`)
  if (result.failed && (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new RuntimeUnavailable(runtime, `${file} is not installed (or not on PATH)`)
  if (result.isMaxBuffer) throw new RuntimeUnavailable(runtime, `${what} printed more than ${MAX_OUTPUT} bytes`)
  if (result.exitCode !== 0) throw new RuntimeUnavailable(runtime, `${what} exited with ${result.exitCode ?? result.signal}: ${String(result.stderr).trim().split('\n').slice(-1)[0] ?? ''}`)
  return String(result.stdout)
}

/**
 * The reconciler's state file: `{"apiVersion": "airlock/v1", "kind": "RuntimeState",
 * "images": {"<image>": {"digest": "sha256:…"}}}`.
 */
export function fileAdapter(path: string, limits: {maxFileBytes: number}): RuntimeAdapter {
  const name = `file:${path}`
  let state: Promise<Record<string, {digest?: unknown}>> | undefined
  const load = async () => {
    // The state file is input like any other: a FIFO, device or folder is exit 2, never a hang.
    // A missing or unreadable file is a runtime that cannot be read (exit 1), as before.
    const text = await readRegularFile(path, {maxBytes: limits.maxFileBytes, label: `--runtime ${name}`}).catch((error: AirlockError) => {
      if (error.details?.errno) throw new RuntimeUnavailable(name, `cannot read the state file (${String(error.details.errno)})`)
      throw error
    })
    let json: {kind?: unknown; images?: unknown}
    try {
      json = JSON.parse(text)
    } catch (error) {
      throw new RuntimeUnavailable(name, `not JSON (${(error as Error).message})`)
    }
    if (json?.kind !== 'RuntimeState' || typeof json.images !== 'object' || json.images === null) throw new RuntimeUnavailable(name, 'not a RuntimeState (kind: RuntimeState, images: {<image>: {digest}})')
    return json.images as Record<string, {digest?: unknown}>
  }
  return {
    name,
    async running(q) {
      state ??= load()
      const images = await state
      const entry = Object.hasOwn(images, q.image) ? images[q.image] : undefined
      if (!entry) throw new RuntimeUnavailable(name, `no entry for image ${q.image}`)
      const digest = entry.digest
      if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new RuntimeUnavailable(name, `images.${q.image}.digest is not a sha256 digest`)
      return digest
    },
  }
}

export function commandAdapter(command: string, timeoutMs: number): RuntimeAdapter {
  const name = `command:${command}`
  const [file, ...args] = parseCommandString(command)
  if (!file) throw new AirlockError('USAGE', '--runtime command: needs a command', {field: '--runtime'})
  return {
    name,
    async running(q) {
      const env = {AIRLOCK_IMAGE: q.image, AIRLOCK_REPOSITORY: q.repository, AIRLOCK_CHANNEL: q.channel}
      return oneDigest(await run(name, file, args, {timeoutMs, env}), name, command)
    },
  }
}

export function podmanAdapter(timeoutMs: number): RuntimeAdapter {
  return {
    name: 'podman',
    async running(q) {
      return oneDigest(await run('podman', 'podman', ['container', 'inspect', '--format', '{{.ImageDigest}}', q.image], {timeoutMs}), 'podman', `podman container inspect ${q.image}`)
    },
  }
}

export function containerdAdapter(timeoutMs: number): RuntimeAdapter {
  const ns = process.env.AIRLOCK_CONTAINERD_NAMESPACE || 'default'
  return {
    name: 'containerd',
    async running(q) {
      const info = await run('containerd', 'ctr', ['--namespace', ns, 'containers', 'info', q.image], {timeoutMs})
      let image: unknown
      try {
        image = (JSON.parse(info) as {Image?: unknown}).Image
      } catch {
        throw new RuntimeUnavailable('containerd', `ctr containers info ${q.image} did not print JSON`)
      }
      if (typeof image !== 'string') throw new RuntimeUnavailable('containerd', `container ${q.image} names no image`)
      const pinned = image.match(DIGEST)
      if (pinned) return pinned[0]
      // Started from a tag: the digest is what that tag resolves to in containerd's image store.
      const listed = await run('containerd', 'ctr', ['--namespace', ns, 'images', 'list', `name==${image}`], {timeoutMs})
      return oneDigest(listed.split('\n').slice(1).join('\n'), 'containerd', `ctr images list name==${image}`)
    },
  }
}

/** `podman`, `containerd`, `file:PATH` or `command:CMD`. */
export function runtimeAdapter(spec: string, opts: {timeoutMs: number; maxFileBytes: number}): RuntimeAdapter {
  if (spec === 'podman') return podmanAdapter(opts.timeoutMs)
  if (spec === 'containerd') return containerdAdapter(opts.timeoutMs)
  if (spec.startsWith('file:') && spec.length > 5) return fileAdapter(spec.slice(5), opts)
  if (spec.startsWith('command:') && spec.length > 8) return commandAdapter(spec.slice(8), opts.timeoutMs)
  throw new AirlockError('USAGE', `--runtime: "${spec}" is not podman, containerd, file:PATH or command:CMD`, {field: '--runtime'})
}
