import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags } from '../../cli/flags.js'
import { withDb } from '../../lib/db/index.js'
import { assertMigrated } from '../../lib/db/migrate.js'
import { itemHistory, listVersions, parseItemId, type ItemVersion, type VersionSummary } from '../../lib/irt-stage/history.js'
import { renderTable } from '../../lib/output/index.js'

export type HistoryResult = { versions: VersionSummary[] } | { item: string; versions: ItemVersion[] }

const f = (v: number | null, d = 3) => (v === null ? '—' : v.toFixed(d))

export default class IrtHistory extends BaseCommand {
  static override summary = 'List calibration versions newest first, or one item\'s parameters over time.'
  static override description =
    'Calibration versions kept in the item-parameter history, newest first, with their fit (logLik, converged, items, persons, fitted at); the current one (what mirt_item_params holds) is marked. With --item: that item\'s a, b, c and standard errors across versions.'
  static override examples = ['<%= config.bin %> irt history', '<%= config.bin %> irt history --item 1007', '<%= config.bin %> irt history --limit 5 --json']
  static override flags = {
    ...dbFlags,
    item: Flags.string({ description: 'An item id (question.id): its parameters in every version.' }),
    limit: Flags.integer({ description: 'At most this many versions.', default: 20, min: 1 }),
  }

  async run(): Promise<HistoryResult> {
    const { flags } = await this.parse(IrtHistory)
    const item = flags.item === undefined ? undefined : parseItemId(flags.item)
    return withDb({ databaseUrl: flags['database-url'] }, async (db) => {
      await assertMigrated(db)
      if (item === undefined) {
        const versions = await listVersions(db.pool, { limit: flags.limit })
        if (!versions.length) this.logger.warn('the item-parameter history is empty: no calibration since migration 0004 (run: seedops run calibrate-irt)')
        return { versions }
      }
      const versions = await itemHistory(db.pool, item, { limit: flags.limit })
      if (!versions.length) this.logger.warn(`item ${item} has no parameters in the history`)
      return { item, versions }
    })
  }

  protected override render(r: HistoryResult): void {
    if ('item' in r) {
      process.stdout.write(
        renderTable(
          ['', 'VERSION', 'FITTED AT', 'A', 'SE A', 'B', 'SE B', 'C', 'SE C', 'SOURCE'],
          r.versions.map((v) => [v.current ? '*' : '', v.version, v.fittedAt.slice(0, 19) + 'Z', f(v.a), f(v.seA), f(v.b), f(v.seB), f(v.c), f(v.seC), v.source]),
        ) + '\n',
      )
      return
    }
    process.stdout.write(
      renderTable(
        ['', 'VERSION', 'MODEL', 'FITTED AT', 'ITEMS', 'IN USE', 'PERSONS', 'LOGLIK', 'CONVERGED', 'SOURCE'],
        r.versions.map((v) => [
          v.current ? '*' : '',
          v.version,
          v.model ?? '—',
          v.fittedAt.slice(0, 19) + 'Z',
          v.nItems ?? v.items,
          v.inUse,
          v.nPersons ?? '—',
          f(v.logLik, 2),
          v.converged === null ? '—' : v.converged ? 'yes' : 'NO',
          v.source,
        ]),
      ) + '\n',
    )
    if (r.versions.length) process.stdout.write('* current: the version mirt_item_params was last written with (undo a calibration: seedops irt rollback --to VERSION)\n')
  }
}
