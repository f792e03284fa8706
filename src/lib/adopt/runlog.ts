import { databaseStatus } from '../status/index.js'

/**
 * The stage run log as prune evidence, when the cluster's database is given (DATABASE_URL or
 * --database-url): the last successful, non-dry run of each stage, as `seedops status` reads it.
 * The embedded database is never evidence: it is this machine's, not the cluster's.
 */
export function runLogReader(flagUrl: string | undefined, env: NodeJS.ProcessEnv) {
  const url = flagUrl ?? (env.DATABASE_URL || undefined)
  return async (stages: string[]): Promise<Record<string, string | undefined>> => {
    if (!url) return {}
    const part = await databaseStatus(url, env, stages)
    return Object.fromEntries(part.rows.filter((r) => r.lastSuccess).map((r) => [r.stage, r.lastSuccess!.finishedAt]))
  }
}
