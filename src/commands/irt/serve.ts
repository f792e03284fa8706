import { once } from 'node:events'
import { Flags } from '@oclif/core'
import { BaseCommand } from '../../lib/base-command.js'
import { envFirst } from '../../lib/config/index.js'
import { openDb, type Db } from '../../lib/db/index.js'
import { registerSecret, usageError } from '../../lib/errors/index.js'
import { createIrtServer } from '../../lib/irt-service/server.js'
import { createMetricsServer, createServiceMetrics } from '../../lib/metrics/service.js'

export default class IrtServe extends BaseCommand<typeof IrtServe> {
  static override description =
    `Serve the R Plumber IRT contract with the native engine (GET /healthz, POST /irt/calibrate, /irt/score, /analysis/irt/update-theta), so R_IRT_BASE_URL can point here unchanged. Callers must send the bearer token from R_IRT_INTERNAL_TOKEN.

Prometheus metrics (GET /metrics, no token) are served on a port of their own, --metrics-port (default 9464), not on the API port: the API port stays token-only with no exception, the metrics port can be opened to the monitoring namespace alone (the Service names it "metrics"), and scrapes never count as API requests.`
  static override examples = [
    'R_IRT_INTERNAL_TOKEN=… DATABASE_URL=postgres://… <%= config.bin %> irt serve --port 8000',
    '<%= config.bin %> irt serve --no-auth --port 8000   # local experiments only',
    '<%= config.bin %> irt serve --port 8000 --metrics-port 9464   # curl http://localhost:9464/metrics',
  ]
  static override flags = {
    port: Flags.integer({ description: 'Port [env PORT, default 8000].' }),
    host: Flags.string({ description: 'Address to bind.', default: '0.0.0.0' }),
    'metrics-port': Flags.integer({ description: 'Port of GET /metrics (Prometheus, no token) [env METRICS_PORT, default 9464; 0 picks a free port].', min: 0, max: 65535 }),
    'no-auth': Flags.boolean({ description: 'Accept requests without a token (refused unless given explicitly).' }),
    'with-db': Flags.boolean({ description: 'Connect to DATABASE_URL for /analysis/irt/update-theta (default: when DATABASE_URL is set).', allowNo: true }),
  }

  async run(): Promise<{ url: string; metricsUrl: string }> {
    const { flags } = await this.parse(IrtServe)
    const token = envFirst(['R_IRT_INTERNAL_TOKEN', 'IRT_SERVICE_TOKEN'])?.value ?? null
    if (!token && !flags['no-auth']) {
      throw usageError('no token: set R_IRT_INTERNAL_TOKEN (secret r-irt-credentials, key token), or pass --no-auth for local use', [
        'In the cluster: seedops secrets ensure --only irt',
      ])
    }
    registerSecret(token)
    const port = flags.port ?? Number(process.env.PORT ?? 8000)
    let db: Db | undefined
    if (flags['with-db'] ?? Boolean(process.env.DATABASE_URL)) db = await openDb()
    const metricsPort = flags['metrics-port'] ?? Number(process.env.METRICS_PORT ?? 9464)
    const metrics = createServiceMetrics({ processMetrics: true })
    const server = createIrtServer({ token: flags['no-auth'] ? null : token, db, logger: this.logger, metrics })
    const metricsServer = createMetricsServer(metrics.registry)
    const listen = async (s: typeof server, p: number) => {
      s.listen(p, flags.host)
      await once(s, 'listening')
      const addr = s.address()
      return `http://${flags.host}:${typeof addr === 'object' && addr ? addr.port : p}`
    }
    const url = await listen(server, port)
    const metricsUrl = `${await listen(metricsServer, metricsPort)}/metrics`
    this.logger.info(`seedops irt serve listening on ${url}${db ? ` (database ${db.target})` : ''}${flags['no-auth'] ? ' WITHOUT authentication' : ''}; metrics on ${metricsUrl}`)
    const stop = async () => {
      metricsServer.close()
      server.close()
      await db?.close()
    }
    process.once('SIGTERM', () => void stop())
    process.once('SIGINT', () => void stop())
    await once(server, 'close')
    return { url, metricsUrl }
  }
}
