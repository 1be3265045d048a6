// Shared by the benchmarks: the machine line, and rewriting one named section of
// docs/benchmarks.md (between its markers) while keeping the rest of the file.
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

export function machine() {
  const git = spawnSync('git', ['--version']).stdout.toString().trim()
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${git}`
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

export function writeSection(name, section) {
  const doc = join(ROOT, 'docs', 'benchmarks.md')
  const [start, end] = [`<!-- bench:${name}:start -->`, `<!-- bench:${name}:end -->`]
  const old = existsSync(doc) ? readFileSync(doc, 'utf8') : '# Benchmarks\n'
  const at = old.indexOf(start)
  const to = old.indexOf(end)
  const body = at >= 0 && to > at ? `${old.slice(0, at + start.length)}\n${section}${old.slice(to)}` : `${old.trimEnd()}\n\n${start}\n${section}${end}\n`
  writeFileSync(doc, body)
  console.error(`updated ${doc} (${name})`)
}

/** Calls per second of `fn(i)` over `n` calls, after a warm-up of 5,000. */
export function rate(fn, n) {
  for (let i = 0; i < 5000; i++) fn(i)
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) fn(i)
  return n / (Number(process.hrtime.bigint() - start) / 1e9)
}

/** Wall time of one `node ARGS` process in `cwd`, in ms. */
export function processMs(args, cwd) {
  const start = process.hrtime.bigint()
  spawnSync(process.execPath, args, {cwd, stdio: 'ignore'})
  return Number(process.hrtime.bigint() - start) / 1e6
}
