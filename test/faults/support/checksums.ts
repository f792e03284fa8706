import type pg from 'pg'

type Queryable = Pick<pg.Pool, 'query'>

/** Every table a pipeline stage writes (SPEC 3-4): a stage's run must change its own and leave the others as they were. */
export const STAGE_TABLES = [
  'features_topic_daily',
  'mirt_item_params',
  'mirt_ability',
  'mirt_fit_meta',
  'seedops_item_params_history',
  'seedops_ability_history',
  'weekly_kpi',
  'report_artifacts',
  'question',
] as const

/**
 * The run's own stamps, not data: when it ran (computed_at, fitted_at, generated_at, recorded_at,
 * created_at, updated_at) and which run it was (run_id). Serial ids (a default of nextval) are left
 * out too: a killed run's rolled-back inserts still use up sequence values, so the complete run
 * after it numbers the same rows differently.
 */
const RUN_STAMPS = new Set(['computed_at', 'fitted_at', 'generated_at', 'recorded_at', 'created_at', 'updated_at', 'run_id'])

/** Stamps inside JSON documents: mirt_fit_meta.metrics holds the fit's wall time and its run's id. */
const JSON_STAMPS = ['seconds', 'stage_run']

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`

/** "rows:md5" per table: md5 over the rows' text, in order, of every column but the run's stamps (JSON ones too); computed in SQL. */
export async function tableChecksums(q: Queryable, tables: readonly string[] = STAGE_TABLES): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const t of tables) {
    const cols = await q.query<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = $1
          AND coalesce(column_default, '') NOT LIKE 'nextval(%' AND is_identity = 'NO'
        ORDER BY ordinal_position`,
      [t],
    )
    const kept = cols.rows.filter((c) => !RUN_STAMPS.has(c.column_name)).map((c) => (c.data_type === 'jsonb' ? `(${ident(c.column_name)} - '{${JSON_STAMPS.join(',')}}'::text[])` : ident(c.column_name)))
    if (!kept.length) throw new Error(`checksums: no columns for table ${t}`)
    // Names come from the catalog, quoted: nothing here is input.
    const r = await q.query<{ n: number; h: string }>(
      `SELECT count(*)::int AS n, md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) AS h FROM (SELECT ROW(${kept.join(', ')})::text AS r FROM ${ident(t)}) s`,
    )
    out[t] = `${r.rows[0]!.n}:${r.rows[0]!.h}`
  }
  return out
}

/** The tables whose checksums differ, for a failure message. */
export function changedTables(a: Record<string, string>, b: Record<string, string>): string[] {
  return Object.keys({ ...a, ...b }).filter((k) => a[k] !== b[k])
}

const same = (a: Record<string, string>, b: Record<string, string>) => changedTables(a, b).length === 0

/** Which state a database is in: exactly before the run, exactly after a complete run, or neither (data lost or half-written). */
export function classify(now: Record<string, string>, before: Record<string, string>, after: Record<string, string>): 'before' | 'after' | 'neither' {
  if (same(now, before)) return 'before'
  if (same(now, after)) return 'after'
  return 'neither'
}

/** A run's status and error by id (the run log readers in src/lib/stages/run-log.ts go by stage, not by run). */
export async function runStatus(q: Queryable, id: string | number): Promise<{ status: string; error: string | null } | undefined> {
  return (await q.query<{ status: string; error: string | null }>(`SELECT status, error FROM seedops_stage_runs WHERE id = $1`, [id])).rows[0]
}
