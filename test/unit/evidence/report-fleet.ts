/**
 * The fleet the report tests share: `airlock init`, a signed digest promoted to canary and rolled
 * back (change receipts with Cedar decisions), a gates file and a preflight run on a lab host (a
 * gate receipt that makes history-evidence host-validated), and the evidence key given the audit
 * role too (so a checkpoint signed with it is one of the fleet's). All through the built CLI, or
 * signed by hand with the fleet's own key, so the history verifies.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {resolveAnchor} from '../../../control-plane/pipeline/base.js'
import {Repository} from '../../../control-plane/repo/repository.js'
import {airlock, commitChange, commitSignedByHand, GIT_IDENTITY, git, initFleet, type Fleet} from '../../helpers.js'

export const NEXT = `sha256:${'a1'.repeat(32)}`

const GATES = `apiVersion: airlock/v1
kind: GateSuite
suites:
  preflight:
    gates:
      - id: history
        uses: builtin/history
      - id: isolation
        run: test ! -e BROKEN
        requires: [host]
`

export interface ReportFleet extends Fleet {
  repo: Repository
  anchor: string
  head: string
}

async function cli(fleet: Fleet, args: string[]): Promise<void> {
  const r = await airlock([...args, '--apply', '--json'], {cwd: fleet.dir, env: fleet.env})
  if (r.exitCode !== 0) throw new Error(`airlock ${args.join(' ')}: ${r.stdout}\n${r.stderr}`)
}

export async function reportFleet(): Promise<ReportFleet> {
  Object.assign(process.env, GIT_IDENTITY)
  const fleet = await initFleet({sign: [NEXT]})
  await cli(fleet, ['promote', 'agent-runner', '--digest', NEXT, '--to', 'canary', '--reason', 'soaked'])
  await cli(fleet, ['rollback', 'agent-runner', '--channel', 'canary', '--reason', 'boot failures'])
  await writeFile(join(fleet.dir, 'manifests', 'gates.yaml'), GATES)
  await commitChange(fleet.dir, fleet.env, 'gates for the report')
  await cli(fleet, ['preflight', '--host'])
  const trust = join(fleet.dir, 'manifests', 'trust.yaml')
  const text = await readFile(trust, 'utf8')
  await writeFile(trust, text.replace('      roles:\n        - evidence\n', '      roles:\n        - evidence\n        - audit\n'))
  await commitSignedByHand(fleet.dir, fleet.key, 'the evidence key signs audit checkpoints too')
  const repo = await Repository.open(fleet.dir)
  const anchor = (await resolveAnchor(repo, {})).commit!
  return {...fleet, repo, anchor, head: await git(fleet.dir, 'rev-parse', 'HEAD')}
}
