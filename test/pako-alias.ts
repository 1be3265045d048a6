/**
 * isomorphic-git's `pako` is the node:zlib shim in the tests as in the bundled CLI
 * (scripts/bundle.js). vitest.config.ts aliases `pako` for modules vite loads; the repository
 * layer loads isomorphic-git with Node's own require (control-plane/repo/repository.ts), which
 * vite does not see, so the same alias is a Node resolve hook for what isomorphic-git requires.
 */
import {registerHooks} from 'node:module'

const KEY = Symbol.for('airlock.test.pakoAlias')
const shared = globalThis as {[KEY]?: boolean}
if (!shared[KEY]) {
  shared[KEY] = true
  const url = new URL('../control-plane/repo/pako-zlib.ts', import.meta.url).href
  registerHooks({
    resolve(specifier, context, next) {
      if (specifier === 'pako' && context.parentURL?.includes('/node_modules/isomorphic-git/')) return {url, format: 'module-typescript', shortCircuit: true}
      return next(specifier, context)
    },
  })
}
