import { describe, expect, it } from 'vitest'
import type { Queryable } from '../../src/lib/db/index.js'
import { knownMigrations } from '../../src/lib/db/migrate-files.js'
import { migrate } from '../../src/lib/db/migrate.js'
import { shapeDifferences, viewDefinitions } from '../../src/lib/db/shape.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { insertExams } from '../support/fixtures.js'

const oid = async (q: Queryable, name: string): Promise<number | undefined> =>
  (await q.query<{ oid: number }>(`SELECT oid::int AS oid FROM pg_class WHERE relname = $1`, [name])).rows[0]?.oid

/**
 * A database migrated before 0003 (the read model without hints_used) upgrades in place: 0003's
 * CREATE OR REPLACE appends the column, so the planner drops nothing — the views keep their
 * identity (grants) and a platform view reading `attempt` is neither dropped nor recreated.
 */
describe.each(DB_KINDS)('upgrading to 0003_hint_counts on %s', (kind) => {
  it('appends hints_used without dropping attempt or its dependents; then no drift and an empty plan', async () => {
    const db = await (await freshDatabase(kind)).open()
    try {
      // Back to the state before 0003: 0001's views, no seedops_json_count, 0003 (and 0004's history table) not recorded.
      const old = viewDefinitions(knownMigrations().filter((m) => m < '0003_hint_counts'))
      await db.pool.query('DROP VIEW attempt')
      await db.pool.query('DROP VIEW seedops_attempt_base')
      await db.pool.query(old.get('seedops_attempt_base')!)
      await db.pool.query(old.get('attempt')!)
      await db.pool.query('DROP FUNCTION seedops_json_count(jsonb)')
      await db.pool.query(`DELETE FROM seedops_migrations WHERE name >= '0003_hint_counts'`)
      await db.pool.query('DROP TABLE seedops_item_params_history')
      await db.pool.query(`CREATE VIEW platform_hint_share AS SELECT user_id, count(*) FILTER (WHERE hint_used) AS with_hint FROM attempt GROUP BY user_id`)
      await insertExams(db.pool, [{ session_id: 's', user_id: 'u', at: '2026-05-01T10:00:00Z', questions: [{ question_id: 1, is_correct: true, used_hints: 2 }] }])
      expect(await shapeDifferences(db.pool)).toEqual([
        { object: 'seedops_item_params_history', kind: 'table', problem: 'missing' },
        expect.objectContaining({ object: 'seedops_attempt_base', problem: expect.stringContaining('differ') }),
        expect.objectContaining({ object: 'attempt', problem: expect.stringContaining('differ') }),
      ])
      const before = { attempt: await oid(db.pool, 'attempt'), dependent: await oid(db.pool, 'platform_hint_share') }

      const dry = await migrate(db, undefined, { dryRun: true })
      const later = knownMigrations().filter((m) => m >= '0003_hint_counts')
      expect(dry.plan.map((s) => s.statement)).toEqual(later.map((m) => `-- migration ${m} (migrations/${m}.sql)`))
      const res = await migrate(db)
      expect(res.ran).toEqual(later)
      expect({ attempt: await oid(db.pool, 'attempt'), dependent: await oid(db.pool, 'platform_hint_share') }).toEqual(before)
      expect((await db.pool.query(`SELECT hint_used, hints_used FROM attempt`)).rows).toEqual([{ hint_used: true, hints_used: 2 }])
      expect((await db.pool.query(`SELECT user_id, with_hint::int AS n FROM platform_hint_share`)).rows).toEqual([{ user_id: 'u', n: 1 }])
      expect(await shapeDifferences(db.pool)).toEqual([])
      expect((await migrate(db)).plan).toEqual([])
    } finally {
      await db.close()
    }
  })
})
