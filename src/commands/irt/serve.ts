import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { resolveServiceConfig, runService, WORKERS_ENV } from '../../lib/irt-service/run.js'

export default class IrtServe extends BaseCommand {
  static override summary = 'Serve the R Plumber IRT API on the native engine.'
  static override description =
    `Serve the R Plumber IRT contract with the native engine (GET /healthz, POST /irt/calibrate, /irt/score, /analysis/irt/update-theta), so R_IRT_BASE_URL can point here unchanged. Callers must send the bearer token from R_IRT_INTERNAL_TOKEN.

One worker process per core by default (node:cluster; they share the port): --workers 1 serves from this process alone. A worker that dies is replaced; SIGTERM lets every worker finish its in-flight requests, then exits 0. With the embedded database (no DATABASE_URL) there is one worker.

Prometheus metrics (GET /metrics, no token) are served on a port of their own, --metrics-port (default 9464), not on the API port: the API port stays token-only with no exception, the metrics port can be opened to the monitoring namespace alone (the Service names it "metrics"), and scrapes never count as API requests. With several workers they are the sum over the workers.`
  static override examples = [
    'R_IRT_INTERNAL_TOKEN=… DATABASE_URL=postgres://… <%= config.bin %> irt serve --port 8000',
    '<%= config.bin %> irt serve --no-auth --port 8000   # local experiments only',
    '<%= config.bin %> irt serve --port 8000 --metrics-port 9464   # curl http://localhost:9464/metrics',
    '<%= config.bin %> irt serve --workers 1   # one process, no cluster',
  ]
  // bin/run.js parses these itself for a fast start (src/lib/irt-service/cli.ts): keep the two in step.
  static override flags = {
    port: Flags.integer({ description: 'Port [env PORT, default 8000].' }),
    host: Flags.string({ description: 'Address to bind.', default: '0.0.0.0' }),
    'metrics-port': Flags.integer({ description: 'Port of GET /metrics (Prometheus, no token) [env METRICS_PORT, default 9464; 0 picks a free port].', min: 0, max: 65535 }),
    workers: Flags.integer({ description: `Worker processes sharing the port [env ${WORKERS_ENV}, default: the available parallelism (cores)]; 1 serves from this process.`, min: 1, max: 256 }),
    'no-auth': Flags.boolean({ description: 'Accept requests without a token (refused unless given explicitly).' }),
    'with-db': Flags.boolean({ description: 'Connect to DATABASE_URL for /analysis/irt/update-theta (default: when DATABASE_URL is set).', allowNo: true }),
  }

  async run(): Promise<{ url: string; metricsUrl: string }> {
    const { flags } = await this.parse(IrtServe)
    const cfg = resolveServiceConfig({ port: flags.port, host: flags.host, metricsPort: flags['metrics-port'], workers: flags.workers, noAuth: flags['no-auth'], withDb: flags['with-db'] }, process.env, this.logger)
    return runService(cfg, this.logger)
  }
}
