import { EXIT, redact, translateError, type SeedopsError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { runPrimary } from './cluster.js'
import { resolveServiceConfig, runService, type ServeOptions } from './run.js'

/**
 * bin/run.js's fast path for `seedops irt serve`: the service's cold start without oclif, whose
 * command discovery imports every command module (the Kubernetes client, the AWS SDK, pg, …)
 * before it runs one. It takes exactly the flags of src/commands/irt/serve.ts in their plain
 * forms and returns null for anything else (--help, a typo, a bad value), which oclif then
 * handles, so usage errors and help read as for every other command.
 */
export interface ServeArgv {
  flags: ServeOptions
  json: boolean
  quiet: boolean
  verbose: boolean
}

const INT = /^\d+$/
/** Flag name → how it is read; the test checks these against the oclif command's flags. */
export const FAST_FLAGS = {
  port: 'int',
  host: 'string',
  'metrics-port': 'int',
  workers: 'int',
  'no-auth': 'boolean',
  'with-db': 'boolean',
  'no-with-db': 'boolean',
  json: 'boolean',
  quiet: 'boolean',
  verbose: 'boolean',
} as const

export function parseServeArgv(argv: string[]): ServeArgv | null {
  const seen = new Map<string, string | true>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '-q') {
      if (seen.has('quiet')) return null
      seen.set('quiet', true)
      continue
    }
    if (!arg.startsWith('--')) return null
    const eq = arg.indexOf('=')
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
    const kind = (FAST_FLAGS as Record<string, string>)[name]
    if (!kind || seen.has(name)) return null
    if (kind === 'boolean') {
      if (eq >= 0) return null
      seen.set(name, true)
      continue
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i]
    if (value === undefined || (kind === 'int' && !INT.test(value))) return null
    seen.set(name, value)
  }
  const int = (k: string) => (seen.has(k) ? Number(seen.get(k)) : undefined)
  const port = int('port')
  const metricsPort = int('metrics-port')
  const workers = int('workers')
  if ((metricsPort !== undefined && metricsPort > 65535) || (workers !== undefined && (workers < 1 || workers > 256))) return null
  if (seen.has('with-db') && seen.has('no-with-db')) return null
  return {
    flags: {
      port,
      host: seen.get('host') as string | undefined,
      metricsPort,
      workers,
      noAuth: seen.has('no-auth'),
      withDb: seen.has('with-db') ? true : seen.has('no-with-db') ? false : undefined,
    },
    json: seen.has('json'),
    quiet: seen.has('quiet'),
    verbose: seen.has('verbose'),
  }
}

/** Serves until SIGTERM/SIGINT; failures print and set the exit code as the base command does. */
export async function serveFromArgv(a: ServeArgv): Promise<void> {
  const warnings: string[] = []
  let logger: Logger | undefined
  try {
    const notes: string[] = []
    const cfg = resolveServiceConfig(a.flags, process.env, { info: (m) => notes.push(m) })
    const loading = import('../output/index.js').then(({ createLogger }) => {
      logger = createLogger({ quiet: a.quiet, verbose: a.verbose, onWarn: (m) => warnings.push(redact(m)) })
      for (const m of notes) logger.info(m)
      return logger
    })
    // With workers, fork them before this process loads its logger: they boot meanwhile.
    const result = cfg.workers > 1 ? await runPrimary(cfg, loading) : await runService(cfg, await loading)
    if (a.json) process.stdout.write(JSON.stringify({ status: EXIT.OK, result, warnings }, null, 2) + '\n')
  } catch (e) {
    await report(translateError(e), a, logger, warnings)
  }
}

async function report(err: SeedopsError, a: ServeArgv, logger: Logger | undefined, warnings: string[]) {
  if (a.json) {
    process.stdout.write(JSON.stringify({ status: err.exitCode, name: err.code, message: err.message, code: err.code, exitCode: err.exitCode, suggestions: err.suggestions, data: err.data, warnings }, null, 2) + '\n')
  } else if (logger?.format === 'json' && logger.error) {
    logger.error(err.message, { code: err.code, exitCode: err.exitCode, suggestions: err.suggestions })
  } else {
    const { errColor } = await import('../output/index.js')
    process.stderr.write(errColor.red(`Error (${err.code}): ${err.message}`) + '\n')
    if (err.suggestions.length) process.stderr.write('\nTry this:\n' + err.suggestions.map((s) => `  ${s}`).join('\n') + '\n')
  }
  process.exitCode = err.exitCode
}
