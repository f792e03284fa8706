import { writeFileSync } from 'node:fs'
import { SeedopsError, usageError } from '../errors/index.js'
import { expectedFor } from '../kube/expected.js'
import type { KubeClients } from '../kube/client.js'
import { lazyConnect, type KubeConnectOptions } from '../kube/connect.js'
import type { Logger } from '../output/index.js'
import { applyFix, describeFix, safeFixes } from './fix.js'
import { createContext, doctorJUnit, runChecks, selectChecks } from './run.js'
import type { DoctorReport } from './types.js'

export interface DoctorOptions {
  /** How to reach the cluster; a failure to connect is the cluster.reachable finding, not an abort. */
  kube: KubeConnectOptions
  /** Check ids or categories to run (default: all). */
  only?: string[]
  /** Apply the safe fixes (after confirming unless `yes`), then check again. */
  fix?: boolean
  yes?: boolean
  requireDb?: boolean
  requireCluster?: boolean
  databaseUrl?: string
  /** The images the CronJobs should run, as given to seedops deploy. */
  image?: string
  reportImage?: string
  /** Kustomization dir the cluster was deployed from. */
  manifests?: string
  /** Also write the (final) report as JUnit XML here. */
  junit?: string
}

export interface DoctorIo {
  logger: Logger
  interactive: boolean
  confirm: (message: string) => Promise<boolean>
}

/** The whole `seedops doctor` flow (see diagnose), and the JUnit file of the final report with --junit. */
export async function executeDoctor(opts: DoctorOptions, io: DoctorIo, env: NodeJS.ProcessEnv = process.env): Promise<DoctorReport> {
  const r = await diagnose(opts, io, env)
  if (opts.junit) writeFileSync(opts.junit, doctorJUnit(r))
  return r
}

/** The whole `seedops doctor` flow: run the checks; with --fix, confirm, apply the safe fixes and run again. */
async function diagnose(opts: DoctorOptions, io: DoctorIo, env: NodeJS.ProcessEnv = process.env): Promise<DoctorReport> {
  if (opts.fix && !opts.yes && !io.interactive) {
    throw usageError('--fix changes the cluster and asks first, but there is no terminal to ask on', ['Re-run with --fix --yes to apply the safe fixes without asking (CI)', 'Or run seedops doctor without --fix and apply the fixes it prints'])
  }
  const checks = selectChecks(opts.only)
  const conn = lazyConnect(opts.kube)
  const expected = expectedFor({ dir: opts.manifests, image: opts.image, reportImage: opts.reportImage, namespace: conn.namespace })
  const run = async () => {
    const session = createContext({ namespace: conn.namespace, expected, connect: conn.connect, databaseUrl: opts.databaseUrl, requireDb: opts.requireDb, requireCluster: opts.requireCluster, explicitImages: Boolean(opts.image || opts.reportImage), env, only: opts.only })
    try {
      return await runChecks(session.ctx, checks, (id) => io.logger.debug(`running ${id}`))
    } finally {
      await session.close()
    }
  }
  const first = await run()
  if (!opts.fix) return first
  const fixes = safeFixes(first)
  if (!fixes.length) {
    io.logger.info('--fix: nothing that doctor can fix safely; the remaining fixes are printed per check')
    return { ...first, fixes: [] }
  }
  io.logger.info(`--fix will apply in namespace ${conn.namespace}:\n${fixes.map((f) => `  - ${describeFix(f, conn.namespace)}`).join('\n')}`)
  if (!opts.yes && !(await io.confirm(`Apply ${fixes.length} fix${fixes.length === 1 ? '' : 'es'}?`))) {
    io.logger.info('nothing changed')
    return { ...first, fixes: [] }
  }
  let k: KubeClients
  try {
    k = conn.connect()
  } catch (e) {
    throw e instanceof SeedopsError ? e : new SeedopsError(String(e), { code: 'KUBE_ERROR' })
  }
  const outcomes = []
  for (const f of fixes) {
    const o = await applyFix(k, f, env)
    io.logger.info(`${o.ok ? 'fixed' : 'fix failed'}: ${o.message}`)
    outcomes.push(o)
  }
  io.logger.info('running the checks again')
  const after = await run()
  return { ...after, fixes: outcomes }
}
