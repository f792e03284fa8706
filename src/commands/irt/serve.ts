import { once } from 'node:events'
import { Flags } from '@oclif/core'
import { BaseCommand } from '../../lib/base-command.js'
import { envFirst } from '../../lib/config/index.js'
import { openDb, type Db } from '../../lib/db/index.js'
import { registerSecret, usageError } from '../../lib/errors/index.js'
import { createIrtServer } from '../../lib/irt-service/server.js'

export default class IrtServe extends BaseCommand<typeof IrtServe> {
  static override description =
    "Serve the R Plumber IRT contract with the native engine (GET /healthz, POST /irt/calibrate, /irt/score, /analysis/irt/update-theta), so R_IRT_BASE_URL can point here unchanged. Callers must send the bearer token from R_IRT_INTERNAL_TOKEN."
  static override examples = [
    'R_IRT_INTERNAL_TOKEN=… DATABASE_URL=postgres://… <%= config.bin %> irt serve --port 8000',
    '<%= config.bin %> irt serve --no-auth --port 8000   # local experiments only',
  ]
  static override flags = {
    port: Flags.integer({ description: 'Port [env PORT, default 8000].' }),
    host: Flags.string({ description: 'Address to bind.', default: '0.0.0.0' }),
    'no-auth': Flags.boolean({ description: 'Accept requests without a token (refused unless given explicitly).' }),
    'with-db': Flags.boolean({ description: 'Connect to DATABASE_URL for /analysis/irt/update-theta (default: when DATABASE_URL is set).', allowNo: true }),
  }

  async run(): Promise<{ url: string }> {
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
    const server = createIrtServer({ token: flags['no-auth'] ? null : token, db, logger: this.logger })
    server.listen(port, flags.host)
    await once(server, 'listening')
    const addr = server.address()
    const url = `http://${flags.host}:${typeof addr === 'object' && addr ? addr.port : port}`
    this.logger.info(`seedops irt serve listening on ${url}${db ? ` (database ${db.target})` : ''}${flags['no-auth'] ? ' WITHOUT authentication' : ''}`)
    const stop = async () => {
      server.close()
      await db?.close()
    }
    process.once('SIGTERM', () => void stop())
    process.once('SIGINT', () => void stop())
    await once(server, 'close')
    return { url }
  }
}
