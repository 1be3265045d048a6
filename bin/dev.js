#!/usr/bin/env node
// Like run.js, with stack traces on errors (AIRLOCK_DEBUG=1). Run `npm run build` after edits.
process.env.AIRLOCK_DEBUG = '1'
await import('./run.js')
