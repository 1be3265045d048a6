/**
 * Every test file gets its own audit folder: commands the tests run record into it, never into
 * the machine's ~/.local/state (a test that checks the log passes its own AIRLOCK_AUDIT_DIR).
 */
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

process.env.AIRLOCK_AUDIT_DIR = mkdtempSync(join(tmpdir(), 'airlock-test-audit-'))
