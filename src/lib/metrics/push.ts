import { readFileSync } from 'node:fs'
import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { Gauge, Pushgateway, Registry } from 'prom-client'
import { envFirst } from '../config/index.js'
import { redact, registerSecret } from '../errors/index.js'
import type { Logger } from '../output/index.js'

/**
 * A stage run's metrics, pushed to a Pushgateway (batch jobs cannot be scraped: the pod is gone
 * before Prometheus comes by). Job = stage id; grouping: namespace (and shard for report shards).
 *
 * Pushes are POSTs: the Pushgateway then replaces only the metric names in the push and keeps the
 * others of the group, so seedops_stage_last_success_timestamp_seconds, pushed only by a
 * successful run, survives a failed one (a PUT would erase it), and seedops_stage_rows_written,
 * pushed only by a run that committed, keeps the counts of the last such run.
 */

export type RunOutcome = 'succeeded' | 'failed' | 'cancelled'

export interface StageRunMetrics {
  stage: string
  outcome: RunOutcome
  startedAt: Date
  finishedAt: Date
  /** Rows written per table; only for runs that committed (omit for a rolled-back run). */
  rows?: Record<string, number>
  /** The runner's lock scope; `shard:i/n` becomes the grouping label shard="i-of-n". */
  lockScope?: string
}

export const PUSH_TIMEOUT_MS = 5000
const OUTCOMES: RunOutcome[] = ['succeeded', 'failed', 'cancelled']
const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace'

export function pushgatewayUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return envFirst(['PUSHGATEWAY_URL'], env)?.value.trim() || undefined
}

/** SEEDOPS_NAMESPACE, else the pod's namespace (service account mount), else "default". */
export function runNamespace(env: NodeJS.ProcessEnv = process.env, saFile = SA_NAMESPACE_FILE): string {
  const e = envFirst(['SEEDOPS_NAMESPACE'], env)
  if (e) return e.value.trim()
  try {
    const ns = readFileSync(saFile, 'utf8').trim()
    if (ns) return ns
  } catch {
    // not in a pod
  }
  return 'default'
}

/** The grouping key: namespace, plus shard for a sharded run (a slash cannot go in a Pushgateway path segment). */
export function groupingFor(run: Pick<StageRunMetrics, 'lockScope'>, namespace: string): Record<string, string> {
  const g: Record<string, string> = { namespace }
  const m = /^shard:(\d+)\/(\d+)$/.exec(run.lockScope ?? '')
  if (m) g.shard = `${m[1]}-of-${m[2]}`
  return g
}

/** The URL as it may be shown: a password in it is masked (and registered, so an error message quoting it is masked too). */
export function displayUrl(url: string): string {
  try {
    const pw = new URL(url).password
    if (pw) registerSecret(decodeURIComponent(pw))
  } catch {
    // not a URL: the push fails and says so
  }
  return redact(url)
}

/** The registry of one run's metrics (its own, never the process's default registry). */
export function runRegistry(run: StageRunMetrics): Registry {
  const registry = new Registry()
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] })
  const secs = (d: Date) => d.getTime() / 1000
  gauge('seedops_stage_last_run_start_timestamp_seconds', 'When the last run of the stage started (Unix seconds).').set(secs(run.startedAt))
  gauge('seedops_stage_last_run_end_timestamp_seconds', 'When the last run of the stage ended (Unix seconds).').set(secs(run.finishedAt))
  gauge('seedops_stage_duration_seconds', 'Duration of the last run of the stage.').set((run.finishedAt.getTime() - run.startedAt.getTime()) / 1000)
  const outcome = gauge('seedops_stage_last_run_outcome', 'Outcome of the last run: 1 for its outcome, 0 for the others.', ['outcome'])
  for (const o of OUTCOMES) outcome.set({ outcome: o }, o === run.outcome ? 1 : 0)
  if (run.rows && Object.keys(run.rows).length) {
    const rows = gauge('seedops_stage_rows_written', 'Rows written by the last run that committed, per table (or kind).', ['table'])
    for (const [table, n] of Object.entries(run.rows)) rows.set({ table }, n)
  }
  if (run.outcome === 'succeeded') {
    gauge('seedops_stage_last_success_timestamp_seconds', 'When the last successful run of the stage ended (Unix seconds).').set(secs(run.finishedAt))
  }
  return registry
}

/**
 * Pushes one run's metrics. Never throws and never takes longer than timeoutMs: a Pushgateway that
 * is down, slow or refusing is a warning (naming the URL, without its password), not a stage failure.
 * Returns whether the push was accepted.
 */
export async function pushStageRun(
  run: StageRunMetrics,
  opts: { url: string; logger: Logger; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<boolean> {
  const timeoutMs = opts.timeoutMs ?? PUSH_TIMEOUT_MS
  const shown = displayUrl(opts.url)
  // Its own agent, so a timed-out request's socket can be destroyed and never keeps the process alive.
  const agent = /^https:/i.test(opts.url) ? new HttpsAgent() : new HttpAgent()
  let timer: NodeJS.Timeout | undefined
  try {
    const gateway = new Pushgateway(opts.url, { timeout: timeoutMs, agent }, runRegistry(run))
    const push = gateway.pushAdd({ jobName: run.stage, groupings: groupingFor(run, runNamespace(opts.env)) })
    push.catch(() => {}) // a rejection after the deadline won (the agent destroyed below) is not unhandled
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs)
    })
    await Promise.race([push, deadline])
    return true
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e)
    opts.logger.warn(`${run.stage}: could not push metrics to the Pushgateway ${shown}: ${redact(why)} (the run itself is unaffected)`)
    return false
  } finally {
    if (timer) clearTimeout(timer)
    agent.destroy()
  }
}

/** The runner's hook: push when PUSHGATEWAY_URL is set (never for dry runs: they change nothing). */
export async function pushIfConfigured(run: StageRunMetrics, opts: { logger: Logger; env?: NodeJS.ProcessEnv; dryRun: boolean }): Promise<void> {
  const url = pushgatewayUrl(opts.env)
  if (!url || opts.dryRun) return
  await pushStageRun(run, { url, logger: opts.logger, env: opts.env })
}
