#!/usr/bin/env node
// airlock entry point. Runs on Node >= 22; on an older Node it re-runs itself with the
// project-local Node (the `node` package in node_modules) or stops with a clear message.
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const MIN_MAJOR = 22
const major = Number(process.versions.node.split('.')[0])

if (major < MIN_MAJOR) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..')
  const local = join(root, 'node_modules', 'node', 'bin', 'node')
  if (!existsSync(local) || process.env.AIRLOCK_REEXEC === '1') {
    process.stderr.write(`airlock: needs Node ${MIN_MAJOR} or newer, this is ${process.version}; run \`npm ci\` in ${root} to get the project's own Node, or install Node ${MIN_MAJOR}+\n`)
    process.exit(2)
  }
  const child = spawnSync(local, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: {...process.env, AIRLOCK_REEXEC: '1'},
  })
  if (child.error) {
    process.stderr.write(`airlock: could not start ${local}: ${child.error.message}\n`)
    process.exit(2)
  }
  if (child.signal) process.kill(process.pid, child.signal)
  process.exit(child.status ?? 1)
}

// V8's code cache for the bundle's files (os.tmpdir()/node-compile-cache, or NODE_COMPILE_CACHE).
const {enableCompileCache} = await import('node:module')
enableCompileCache?.()

// A reader that stops early (`airlock status | head -1`) closes the pipe: the rest of the output
// has nowhere to go, and that is no error. The command ends with its own exit code, quietly;
// waiting for stdout to drain (it never will) must not leave the process hanging on nothing.
const closed = new Promise((resolve) => {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error) => {
      if (error?.code !== 'EPIPE') throw error
      if (stream === process.stdout) resolve()
    })
  }
})

const argv = process.argv.slice(2)
// With AIRLOCK_DEBUG=1 a stack trace names airlock's sources, not the bundle's chunks.
if (process.env.AIRLOCK_DEBUG === '1') process.setSourceMapsEnabled(true)
// The bundled CLI (scripts/bundle.js): oclif, the commands and the core, in chunks each command
// loads as it needs them.
const oclif = await import('../dist/bundle/main.js').catch((error) => {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/bundle/main.js')) throw error
  process.stderr.write(`airlock: not built (no dist/bundle/main.js); run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))}\n`)
  process.exit(2)
})
try {
  await oclif.run(argv, import.meta.url)
  if (!process.stdout.destroyed) await Promise.race([oclif.flush(), closed])
} catch (error) {
  // Errors outside a command (unknown command or topic): same JSON shape and exit table.
  if (error?.oclif?.exit === 0) process.exit(0)
  const {reportError} = await import('../dist/bundle/errors.js')
  process.exitCode = reportError(error?.oclif ? Object.assign(error, {parse: true}) : error, argv.includes('--json'))
}
