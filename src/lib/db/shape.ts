import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Queryable } from './index.js'
import { knownMigrations, migrationsDir } from './migrate-files.js'

/**
 * The shape seedops expects of the objects it owns (derived tables and read-model views), as the
 * migrations make them, and the live shape read from the catalog. `db status` lists differences;
 * the adoption planner (adopt.ts) turns them into statements. test/db/adopt.test.ts checks that a
 * freshly migrated database has no difference, so this list cannot drift from migrations/.
 */
export interface ColumnSpec {
  name: string
  /** format_type() spelling. */
  type: string
  notNull: boolean
  /** SQL default used when the column has to be added to a table with rows. */
  default?: string
}

export interface TableSpec {
  name: string
  columns: ColumnSpec[]
  /** The key readers and upserts rely on (ON CONFLICT). */
  key: { columns: string[]; primary: boolean }
  /** Older names of a column (the predecessor's), renamed when the current name is absent. */
  renames?: Record<string, string[]>
  /** Value for NULLs in a key column, so the key can be added (documented in the README). */
  fillKeyNulls?: Record<string, string>
  /** Newest row first when duplicates of the key are merged. */
  newestFirst?: string[]
}

const TZ = 'timestamp with time zone'
const F8 = 'double precision'
const col = (name: string, type: string, notNull = false, dflt?: string): ColumnSpec => ({ name, type, notNull, ...(dflt ? { default: dflt } : {}) })

export const DERIVED_TABLES: TableSpec[] = [
  {
    name: 'features_topic_daily',
    columns: [
      col('user_id', 'text', true), col('topic_id', 'text', true), col('date', 'date', true),
      col('attempts', 'integer', true, '0'), col('correct', 'integer', true),
      col('avg_time_ms', F8), col('rt_median', F8), col('hints', 'integer'),
      col('theta_estimate', F8), col('theta_sd', F8), col('improvement', F8),
      col('last_seen_at', TZ), col('computed_at', TZ, true, 'now()'),
    ],
    key: { columns: ['user_id', 'topic_id', 'date'], primary: true },
    renames: { theta_estimate: ['theta_mean'] },
    newestFirst: ['computed_at', 'last_seen_at'],
  },
  {
    name: 'weekly_kpi',
    columns: [
      col('user_id', 'text', true), col('week_start', 'date', true), col('kpis', 'jsonb', true, `'{}'::jsonb`),
      col('created_at', TZ, true, 'now()'), col('updated_at', TZ, true, 'now()'),
    ],
    key: { columns: ['user_id', 'week_start'], primary: true },
    newestFirst: ['updated_at', 'created_at'],
  },
  {
    name: 'mirt_item_params',
    columns: [
      col('item_id', 'bigint', true), col('model', 'text', true), col('params', 'jsonb', true), col('version', 'text'),
      col('fitted_at', TZ, true, 'now()'), col('se', 'jsonb'), col('fit', 'jsonb'),
    ],
    key: { columns: ['item_id'], primary: true },
    newestFirst: ['fitted_at'],
  },
  {
    name: 'mirt_ability',
    columns: [
      col('user_id', 'text', true), col('version', 'text', true), col('theta', F8, true), col('se', F8), col('model', 'text'),
      col('fitted_at', TZ, true, 'now()'),
    ],
    key: { columns: ['user_id', 'version'], primary: true },
    // The predecessor's job wrote its latest θ without a version.
    fillKeyNulls: { version: `'legacy'` },
    newestFirst: ['fitted_at'],
  },
  {
    name: 'mirt_fit_meta',
    columns: [col('run_id', 'text', true), col('model_spec', 'jsonb'), col('metrics', 'jsonb'), col('fitted_at', TZ, true, 'now()')],
    key: { columns: ['run_id'], primary: true },
    newestFirst: ['fitted_at'],
  },
  {
    name: 'report_artifacts',
    columns: [
      col('id', 'bigint', true), col('user_id', 'text', true), col('week_start', 'date', true), col('format', 'text', true, `'html'`),
      col('url', 'text', true), col('generated_at', TZ, true, 'now()'),
    ],
    key: { columns: ['user_id', 'week_start', 'format'], primary: false },
    newestFirst: ['generated_at'],
  },
  {
    name: 'seedops_ability_history',
    columns: [
      col('id', 'bigint', true), col('user_id', 'text', true), col('theta', F8, true), col('se', F8), col('model', 'text'),
      col('version', 'text'), col('source', 'text', true), col('key', 'text', true), col('measured_at', TZ, true), col('recorded_at', TZ, true, 'now()'),
    ],
    key: { columns: ['user_id', 'key'], primary: false },
  },
  {
    // 0004: every calibration's item parameters under its version (mirt_item_params is the current view).
    name: 'seedops_item_params_history',
    columns: [
      col('version', 'text', true), col('item_id', 'bigint', true), col('model', 'text'), col('params', 'jsonb', true), col('se', 'jsonb'),
      col('fit', 'jsonb'), col('fitted_at', TZ, true), col('run_id', 'text'), col('source', 'text', true), col('recorded_at', TZ, true, 'now()'),
    ],
    key: { columns: ['version', 'item_id'], primary: true },
  },
  {
    name: 'seedops_stage_runs',
    columns: [
      col('id', 'bigint', true), col('stage', 'text', true), col('params', 'jsonb', true, `'{}'::jsonb`), col('as_of', 'date'),
      col('dry_run', 'boolean', true, 'false'), col('status', 'text', true), col('started_at', TZ, true, 'now()'), col('finished_at', TZ),
      col('rows', 'jsonb'), col('error', 'text'), col('host', 'text'), col('pid', 'integer'), col('seedops_version', 'text'),
    ],
    key: { columns: ['id'], primary: true },
  },
]

/** The read-model views seedops owns: `attempt` and what it (and its fallbacks) are built from. */
export const OWNED_VIEWS: { name: string; columns: { name: string; type: string }[] }[] = [
  {
    name: 'seedops_attempt_base',
    columns: [
      { name: 'exam_result_id', type: 'uuid' }, { name: 'question_no', type: 'integer' }, { name: 'user_id', type: 'text' },
      { name: 'item_id', type: 'bigint' }, { name: 'topic', type: 'text' }, { name: 'correct', type: 'boolean' },
      { name: 'response_time_ms', type: 'integer' }, { name: 'hint_used', type: 'boolean' }, { name: 'started_at', type: TZ },
      { name: 'completed_at', type: TZ }, { name: 'session_id', type: 'text' },
      // 0003: appended (CREATE OR REPLACE VIEW can only add columns at the end)
      { name: 'hints_used', type: 'integer' },
    ],
  },
  {
    name: 'attempt',
    columns: [
      { name: 'id', type: 'uuid' }, { name: 'student_id', type: 'uuid' }, { name: 'user_id', type: 'text' }, { name: 'item_id', type: 'bigint' },
      { name: 'topic_id', type: 'text' }, { name: 'correct', type: 'boolean' }, { name: 'response_time_ms', type: 'integer' },
      { name: 'hint_used', type: 'boolean' }, { name: 'started_at', type: TZ }, { name: 'completed_at', type: TZ },
      { name: 'attempt_no', type: 'integer' }, { name: 'session_id', type: 'text' }, { name: 'hints_used', type: 'integer' },
    ],
  },
  {
    name: 'seedops_malformed_exam_results',
    columns: [
      { name: 'id', type: 'uuid' }, { name: 'session_id', type: 'text' }, { name: 'user_id', type: 'text' }, { name: 'completed_at', type: TZ },
      { name: 'reason', type: 'text' }, { name: 'bad_questions', type: 'integer' },
    ],
  },
]

/** The newest `CREATE OR REPLACE VIEW <name> AS …;` of each view in migrations/ (or only in `among`), in file order. */
export function viewDefinitions(among?: string[]): Map<string, string> {
  const defs = new Map<string, string>()
  for (const m of knownMigrations().filter((x) => !among || among.includes(x))) {
    const text = readFileSync(join(migrationsDir(), `${m}.sql`), 'utf8').split('-- Down Migration')[0]!
    // A view statement ends at the first line that ends with ';' (comments inside never do).
    for (const match of text.matchAll(/^CREATE OR REPLACE VIEW (\w+) AS\n[\s\S]*?;[ \t]*$/gm)) {
      defs.delete(match[1]!)
      defs.set(match[1]!, match[0])
    }
  }
  return defs
}

export interface LiveColumn {
  name: string
  type: string
  notNull: boolean
}

export interface LiveRelation {
  oid: number
  /** r table, v view, m materialised view, … */
  kind: string
  columns: LiveColumn[]
  /** Column sets of the primary key and of every non-partial unique index on plain columns. */
  uniqueKeys: string[][]
  hasPrimaryKey: boolean
}

export async function liveRelation(q: Queryable, name: string, schema = 'public'): Promise<LiveRelation | null> {
  const rel = await q.query<{ oid: number; relkind: string }>(
    `SELECT c.oid::int AS oid, c.relkind::text AS relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, name],
  )
  const r = rel.rows[0]
  if (!r) return null
  const cols = await q.query<LiveColumn>(
    `SELECT attname::text AS name, format_type(atttypid, atttypmod) AS type, attnotnull AS "notNull"
     FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [r.oid],
  )
  const keys = await q.query<{ cols: string[]; primary: boolean }>(
    `SELECT array_agg(a.attname::text ORDER BY a.attname) AS cols, i.indisprimary AS primary
     FROM pg_index i JOIN LATERAL unnest(i.indkey::int2[]) k(attnum) ON true
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
     GROUP BY i.indexrelid, i.indisprimary`,
    [r.oid],
  )
  return {
    oid: r.oid,
    kind: r.relkind,
    columns: cols.rows,
    uniqueKeys: keys.rows.map((k) => k.cols),
    hasPrimaryKey: keys.rows.some((k) => k.primary),
  }
}

export function hasKey(live: LiveRelation, key: string[]): boolean {
  const want = [...key].sort().join(',')
  return live.uniqueKeys.some((k) => [...k].sort().join(',') === want)
}

export interface ShapeDifference {
  object: string
  kind: 'table' | 'view'
  problem: string
}

/** Every difference between the live seedops-owned objects and the expected shape (absent objects included). */
export async function shapeDifferences(q: Queryable): Promise<ShapeDifference[]> {
  const out: ShapeDifference[] = []
  for (const t of DERIVED_TABLES) {
    const live = await liveRelation(q, t.name)
    if (!live) {
      out.push({ object: t.name, kind: 'table', problem: 'missing' })
      continue
    }
    if (live.kind !== 'r' && live.kind !== 'p') {
      out.push({ object: t.name, kind: 'table', problem: `is a ${kindName(live.kind)}, not a table` })
      continue
    }
    for (const c of t.columns) {
      const l = live.columns.find((x) => x.name === c.name)
      if (!l) {
        const old = (t.renames?.[c.name] ?? []).find((o) => live.columns.some((x) => x.name === o))
        out.push({ object: t.name, kind: 'table', problem: old ? `column ${c.name} is named ${old}` : `column ${c.name} missing` })
        continue
      }
      if (l.type !== c.type) out.push({ object: t.name, kind: 'table', problem: `column ${c.name} is ${l.type}, expected ${c.type}` })
      if (l.notNull !== c.notNull) out.push({ object: t.name, kind: 'table', problem: `column ${c.name} is ${l.notNull ? 'NOT NULL' : 'nullable'}, expected ${c.notNull ? 'NOT NULL' : 'nullable'}` })
    }
    if (!hasKey(live, t.key.columns)) out.push({ object: t.name, kind: 'table', problem: `no ${t.key.primary ? 'primary' : 'unique'} key on (${t.key.columns.join(', ')})` })
  }
  for (const v of OWNED_VIEWS) {
    const live = await liveRelation(q, v.name)
    if (!live) {
      out.push({ object: v.name, kind: 'view', problem: 'missing' })
      continue
    }
    if (live.kind !== 'v') {
      out.push({ object: v.name, kind: 'view', problem: `is a ${kindName(live.kind)}, not a view` })
      continue
    }
    const got = live.columns.map((c) => `${c.name} ${c.type}`).join(', ')
    const want = v.columns.map((c) => `${c.name} ${c.type}`).join(', ')
    if (got !== want) out.push({ object: v.name, kind: 'view', problem: `columns (${got}) differ from (${want})` })
  }
  return out
}

export function kindName(k: string): string {
  return ({ r: 'table', p: 'partitioned table', v: 'view', m: 'materialized view', f: 'foreign table', S: 'sequence', i: 'index' } as Record<string, string>)[k] ?? `relation of kind ${k}`
}
