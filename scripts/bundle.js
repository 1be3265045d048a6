// Bundles the CLI into dist/bundle/ (after tsc has written dist/): every `airlock` command is a
// fresh process, and loading ~1,000 small modules one by one (resolve, read, compile each) was
// most of a command's start. esbuild writes
//   dist/bundle/main.js      @oclif/core's run, what bin/run.js calls
//   dist/bundle/commands.js  oclif's explicit command table: one lazy loader per command
//   dist/bundle/errors.js    reportError, for errors raised outside a command
// and shared chunks beside them; a module reached only through `import()` (Sigstore, the
// registry client, yaml, listr2, secretlint, …) lands in a chunk loaded only by the commands that
// need it. cedar-wasm stays in node_modules (it reads its .wasm file beside itself).
//
// The tsc output in dist/ stays: benchmarks and scripts import it, and it holds the files a
// bundled module reaches by its own location (validators.cjs, the secret scan's worker). So that
// such a location means the same thing bundled, `import.meta.url` in airlock's own sources is
// rewritten to the URL of the module's tsc-built twin in dist/.
import {existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {dirname, join, relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'
import * as esbuild from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist', 'bundle')
const OWN = ['commands', 'control-plane', 'platform'].map((d) => join(root, d) + sep)

/** Command ids from commands/ (oclif's own rule: folders are topics, `_*` files are not commands). */
function commandFiles(dir = join(root, 'commands'), topics = []) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const file = join(dir, name)
      if (statSync(file).isDirectory()) return commandFiles(file, [...topics, name])
      if (!name.endsWith('.ts') || name.startsWith('_') || name.endsWith('.d.ts')) return []
      return [{id: [...topics, name.slice(0, -3)].join(':'), file}]
    })
}

const commands = commandFiles()
// oclif's explicit strategy wants an object of command classes (anything with a static `run`).
// Each entry is a stand-in whose `run` imports the real class only when that command runs;
// `--help` and command lookup read oclif.manifest.json and never load this table.
const commandTable = [
  'const lazy = (load) => ({',
  '  async run(argv, config) {',
  '    const Command = (await load()).default',
  '    Object.assign(Command, {id: this.id, plugin: this.plugin})',
  '    return Command.run(argv, config)',
  '  },',
  '})',
  'export const commands = {',
  ...commands.map(({id, file}) => `  ${JSON.stringify(id)}: lazy(() => import(${JSON.stringify(file)})),`),
  '}',
].join('\n')

// What the commands take from @oclif/core, from its own files: the package's index also loads
// semver (for a Node version check bin/run.js already made) and everything else it exports.
const OCLIF = "export {Command} from '@oclif/core/command'\nexport * as Flags from '@oclif/core/flags'\nexport * as Args from '@oclif/core/args'\n"
// What bin/run.js calls: oclif's run and flush, from the same bundled @oclif/core the commands use.
const MAIN = "export {run} from '@oclif/core/run'\nexport {flush} from '@oclif/core/flush'\n"

/** `import.meta.url` of an own source file → the URL of its tsc-built twin in dist/. */
const ownSources = {
  name: 'own-sources',
  setup(build) {
    build.onLoad({filter: /\.ts$/}, (args) => {
      if (!OWN.some((d) => args.path.startsWith(d))) return undefined
      let text = readFileSync(args.path, 'utf8')
      const twin = relative(out, join(root, 'dist', relative(root, args.path))).split(sep).join('/').replace(/\.ts$/, '.js')
      if (args.path === join(root, 'control-plane', 'repo', 'repository.ts')) {
        // isomorphic-git through createRequire spares the unbundled CLI Node's export scan of its
        // CommonJS source. Bundled, it is esbuild's own lazy require (so pako's alias below applies
        // to it), run on the first use of a git function: a command that only finds the work
        // tree's top (authorize --policies, policy test) never evaluates isomorphic-git's ~400 kB.
        const call = "createRequire(import.meta.url)('isomorphic-git')"
        if (!text.includes(call)) throw new Error(`scripts/bundle.js: ${call} not found in repository.ts; update the bundle's rewrite`)
        text = text.replace(call, "new Proxy({}, {get: (_, name) => require('isomorphic-git')[name]})")
      }
      if (args.path === join(root, 'control-plane', 'policy', 'tools', 'tools.ts')) {
        // ajv for tool schemas through createRequire: Node loads its ~100 CommonJS files one by
        // one on every `tool check`. Bundled, the same require() calls are esbuild's (lazy, in a chunk).
        const local = "const require = createRequire(import.meta.url)\n    const {Ajv2020} = require('ajv/dist/2020.js')"
        if (text.split(local).length !== 2) throw new Error(`scripts/bundle.js: ajv's createRequire not found once in tools.ts; update the bundle's rewrite`)
        text = text.replace(local, "const {Ajv2020} = require('ajv/dist/2020.js')")
      }
      if (args.path === join(root, 'commands', 'evidence', 'report.ts') && existsSync(join(root, 'control-plane', 'evidence', 'report', 'html.ts'))) {
        // The HTML renderer is imported through a constant (so tsc does not require it); bundled,
        // a specifier esbuild cannot read would be looked up beside the chunk and never found.
        text = text.replace('import(HTML_MODULE)', "import('../../control-plane/evidence/report/html.js')")
      }
      // Any other import() esbuild cannot follow would be resolved against a chunk at run time.
      const opaque = /(?<!typeof )\bimport\((?!['"`])/.exec(text.replace(/^\s*(\/\/|\*).*$/gm, ''))
      if (opaque) throw new Error(`scripts/bundle.js: ${relative(root, args.path)} imports a module by a computed name; make it a string literal (or teach the bundle where it points)`)
      text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(twin)}, import.meta.url).href`)
      return {contents: text, loader: 'ts'}
    })
  },
}

/**
 * oclif sorts its command list with localeCompare when a plugin loads, which starts ICU's
 * collator (~10 ms, the largest single cost of `--help`). Help and lookups do not depend on that
 * order (help sorts again with < and >), so the bundle sorts by code unit.
 */
const oclifSort = {
  name: 'oclif-sort',
  setup(build) {
    build.onLoad({filter: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/}, (args) => {
      const text = readFileSync(args.path, 'utf8')
      const sort = '.sort((a, b) => a.id.localeCompare(b.id))'
      if (!text.includes(sort)) throw new Error(`scripts/bundle.js: ${sort} not found in ${args.path}; update the bundle's rewrite`)
      return {contents: text.replace(sort, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'), loader: 'js'}
    })
  },
}

/**
 * isomorphic-git's FileSystem.read copies every file it reads (`Buffer.from(buffer)`), though
 * the file system hands it a fresh Buffer each time (repo/git-fs.ts reads with fs.readFile): for a
 * packed fleet that is a second copy of the whole packfile (11 MB on the 2,000-image bench fleet).
 * The bundle copies only what is not a Buffer yet.
 */
const isomorphicGitRead = {
  name: 'isomorphic-git-read',
  setup(build) {
    build.onLoad({filter: /isomorphic-git[\\/]index\.cjs$/}, (args) => {
      const text = readFileSync(args.path, 'utf8')
      const copy = "if (typeof buffer !== 'string') {\n      buffer = Buffer.from(buffer);\n    }"
      if (text.split(copy).length !== 2) throw new Error(`scripts/bundle.js: FileSystem.read's copy not found once in ${args.path}; update the bundle's rewrite`)
      return {contents: text.replace(copy, "if (typeof buffer !== 'string' && !Buffer.isBuffer(buffer)) {\n      buffer = Buffer.from(buffer);\n    }"), loader: 'js'}
    })
  },
}

rmSync(out, {recursive: true, force: true})
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: {
    main: 'airlock:main',
    commands: 'airlock:commands',
    errors: join(root, 'commands', '_base.ts'),
  },
  plugins: [
    {
      name: 'command-table',
      setup(build) {
        build.onResolve({filter: /^airlock:(main|commands)$/}, (args) => ({path: args.path, namespace: 'airlock'}))
        build.onResolve({filter: /^@oclif\/core$/}, (args) => (args.importer.startsWith(join(root, 'commands') + sep) ? {path: 'airlock:oclif', namespace: 'airlock'} : undefined))
        const virtual = {'airlock:main': MAIN, 'airlock:commands': commandTable, 'airlock:oclif': OCLIF}
        build.onLoad({filter: /.*/, namespace: 'airlock'}, (args) => ({contents: virtual[args.path], loader: 'js', resolveDir: root}))
      },
    },
    ownSources,
    oclifSort,
    isomorphicGitRead,
  ],
  alias: {pako: join(root, 'control-plane', 'repo', 'pako-zlib.ts')},
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  outdir: out,
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  // CommonJS packages inside an ES module bundle still call require() for Node's built-ins.
  banner: {js: "import {createRequire as __airlockCreateRequire} from 'node:module';const require = __airlockCreateRequire(import.meta.url);"},
  // Left to Node: cedar-wasm reads its .wasm file beside itself.
  external: ['@cedar-policy/cedar-wasm', '@cedar-policy/cedar-wasm/*'],
  mainFields: ['module', 'main'],
  legalComments: 'none',
  // AIRLOCK_DEBUG=1 stack traces name the sources (bin/run.js turns Node's source maps on then).
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: true,
  logLevel: 'warning',
})

// The report page inlines the functions of page/rules.ts by their source text, calling one
// another by name: a function esbuild renamed (two modules of one chunk with the same name)
// would break the auditor's page. Refuse such a build.
const RULES = 'control-plane/evidence/report/page/rules.ts'
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (!output.inputs[RULES]) continue
  const bundled = readFileSync(join(root, file), 'utf8')
  for (const [, name] of readFileSync(join(root, RULES), 'utf8').matchAll(/^(?:export )?function (\w+)\(/gm)) {
    if (!bundled.includes(`function ${name}(`)) throw new Error(`scripts/bundle.js: ${RULES}'s ${name} was renamed in ${file}; the report page calls it by name`)
  }
}
writeFileSync(join(out, 'meta.json'), JSON.stringify(result.metafile))
const sizes = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js'))
console.log(`dist/bundle: ${commands.length} commands, ${sizes.length} files, ${(sizes.reduce((n, [, o]) => n + o.bytes, 0) / 1e6).toFixed(1)} MB`)
