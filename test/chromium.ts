/**
 * Headless Chromium for the report page's tests: Debian's chromium through playwright-core. CI
 * sets AIRLOCK_REQUIRE_CHROMIUM=1, so a missing browser fails there; locally those tests skip and
 * say why.
 */
import {existsSync} from 'node:fs'
import {chromium, type Browser} from 'playwright-core'

export const CHROMIUM_PATH = process.env.AIRLOCK_CHROMIUM ?? '/usr/bin/chromium'
export const CHROMIUM_REQUIRED = process.env.AIRLOCK_REQUIRE_CHROMIUM === '1'
/** Whether the browser tests run: chromium is there, or CI requires it (and then they fail loudly). */
export const RUN_CHROMIUM = existsSync(CHROMIUM_PATH) || CHROMIUM_REQUIRED

if (!RUN_CHROMIUM) console.warn(`skipping the headless-Chromium tests: no browser at ${CHROMIUM_PATH} (set AIRLOCK_CHROMIUM, or AIRLOCK_REQUIRE_CHROMIUM=1 to make this a failure)`)

export function launchChromium(): Promise<Browser> {
  // We run as root in a container, where Chromium's own sandbox cannot start.
  return chromium.launch({executablePath: CHROMIUM_PATH, args: ['--no-sandbox']})
}
