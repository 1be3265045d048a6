// Writes oclif.manifest.json so that `airlock --help` and command lookup do not load every
// command module. Uses @oclif/core's own Plugin loader (what `oclif manifest` does), pointed at
// the command classes tsc wrote to dist/commands: the CLI's own table (package.json
// oclif.commands, explicit, scripts/bundle.js) holds lazy stand-ins that carry no flags.
import {readFile, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Plugin} from '@oclif/core'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const pjson = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))
pjson.oclif.commands = {strategy: 'pattern', target: './dist/commands', globPatterns: ['**/*.js', '!**/_*.js']}
const plugin = new Plugin({root, pjson, type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true})
await plugin.load()
const {manifest} = plugin
await writeFile(join(root, 'oclif.manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
console.log(`oclif.manifest.json: ${Object.keys(manifest.commands).length} commands`)
