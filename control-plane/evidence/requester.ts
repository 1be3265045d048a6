import {identityText} from '../identity/text.js'
import type {Requester} from '../plan/plan.js'

/** Who asked: `--actor`, else AIRLOCK_ACTOR, else the CI system's actor, else the local user. */
export function requesterFrom(env: NodeJS.ProcessEnv, actorFlag: string | undefined, localUser: string): Requester {
  const r = requester(env, actorFlag, localUser)
  const source = actorFlag !== undefined ? '--actor' : env.AIRLOCK_ACTOR !== undefined ? 'AIRLOCK_ACTOR' : r.via === 'ci' ? `the ${r.ci?.system ?? 'CI'} actor` : 'the local user name'
  return {...r, actor: identityText(r.actor, source)}
}

function requester(env: NodeJS.ProcessEnv, actorFlag: string | undefined, localUser: string): Requester {
  if (env.GITHUB_ACTIONS === 'true') {
    return {
      actor: actorFlag ?? env.AIRLOCK_ACTOR ?? env.GITHUB_ACTOR ?? 'github-actions',
      via: 'ci',
      ci: {system: 'github-actions', ...(env.GITHUB_RUN_ID ? {run: `${env.GITHUB_REPOSITORY ?? ''}/actions/runs/${env.GITHUB_RUN_ID}`} : {}), ...(env.GITHUB_REF ? {ref: env.GITHUB_REF} : {})},
    }
  }
  if (env.GITLAB_CI === 'true') {
    return {
      actor: actorFlag ?? env.AIRLOCK_ACTOR ?? env.GITLAB_USER_LOGIN ?? 'gitlab-ci',
      via: 'ci',
      ci: {system: 'gitlab-ci', ...(env.CI_PIPELINE_URL ? {run: env.CI_PIPELINE_URL} : {}), ...(env.CI_COMMIT_REF_NAME ? {ref: env.CI_COMMIT_REF_NAME} : {})},
    }
  }
  if (env.CI === 'true' || env.CI === '1') return {actor: actorFlag ?? env.AIRLOCK_ACTOR ?? 'ci', via: 'ci', ci: {system: 'ci'}}
  return {actor: actorFlag ?? env.AIRLOCK_ACTOR ?? localUser, via: 'cli'}
}
