import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Queryable } from '../../src/lib/db/index.js'

const DIR = join(import.meta.dirname, '..', 'fixtures', 'predecessor', 'db')

/** Loads the predecessor's database (schema.sql + data.sql), optionally with the older features_topic_daily. */
export async function loadPredecessor(q: Queryable, opts: { legacyFeatures?: boolean } = {}): Promise<void> {
  const files = ['schema.sql', 'data.sql', ...(opts.legacyFeatures ? ['legacy-features.sql'] : [])]
  // One query per file: one session, so data.sql's pg_temp helpers are visible to its inserts.
  for (const f of files) await q.query(readFileSync(join(DIR, f), 'utf8'))
}

export const PLATFORM_TABLES = ['exam_results', 'question', 'session', 'interest_goal', 'classroom', 'student_topic_theta', 'alembic_version']
export const DERIVED_TABLES = ['features_topic_daily', 'weekly_kpi', 'mirt_item_params', 'mirt_ability', 'mirt_fit_meta', 'report_artifacts']

const NUMERIC = new Set(['smallint', 'integer', 'bigint', 'real', 'double precision'])

/** Columns of a table (schema-qualified name) in order, with their format_type. */
export async function columnsOf(q: Queryable, table: string): Promise<{ name: string; type: string }[]> {
  const r = await q.query<{ name: string; type: string }>(
    `SELECT attname::text AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
     WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  )
  return r.rows
}

/**
 * Each row of `table` in a canonical text form over the given columns (default: all of them):
 * numbers as float8 text (so numeric(6,3) 0.500 and double 0.5 agree, and text '1001' and bigint
 * 1001 agree), everything else as its text. `rename` maps an old column name to its new one.
 */
export async function canonicalRows(q: Queryable, table: string, cols?: { name: string; type: string }[], rename: Record<string, string> = {}): Promise<string[]> {
  const columns = cols ?? (await columnsOf(q, table))
  const live = new Map((await columnsOf(q, table)).map((c) => [c.name, c.type]))
  const exprs = columns.map((c) => {
    const name = rename[c.name] ?? c.name
    const type = live.get(name) ?? c.type
    const id = `"${name}"`
    const numeric = NUMERIC.has(type) || type.startsWith('numeric') || (NUMERIC.has(c.type) || c.type.startsWith('numeric'))
    return numeric ? `COALESCE((${id})::text::float8::text, '∅')` : `COALESCE((${id})::text, '∅')`
  })
  const r = await q.query<{ r: string }>(`SELECT concat_ws('|', ${exprs.join(', ')}) AS r FROM ${table} ORDER BY 1`)
  return r.rows.map((x) => x.r)
}

export interface TableSum {
  rows: number
  md5: string
}

export async function tableSum(q: Queryable, table: string, cols?: { name: string; type: string }[], rename: Record<string, string> = {}): Promise<TableSum> {
  const rows = await canonicalRows(q, table, cols, rename)
  const r = await q.query<{ m: string }>(`SELECT md5($1) AS m`, [rows.join('\n')])
  return { rows: rows.length, md5: r.rows[0]!.m }
}

/** Every relation, column, type, constraint and view definition outside the system schemas: equal means nothing changed. */
export async function catalogFingerprint(q: Queryable): Promise<string> {
  const r = await q.query<{ f: string }>(
    `SELECT md5(string_agg(x, E'\\n' ORDER BY x)) AS f FROM (
       SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' ||
              COALESCE((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN '!' ELSE '' END, ',' ORDER BY a.attnum)
                        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') || ':' ||
              COALESCE((SELECT string_agg(pg_get_constraintdef(k.oid), ',' ORDER BY k.conname) FROM pg_constraint k WHERE k.conrelid = c.oid), '') || ':' ||
              CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE '' END AS x
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
     ) s`,
  )
  return r.rows[0]!.f
}
