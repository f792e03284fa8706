import { SeedopsError } from '../errors/index.js'
import type { Queryable } from './index.js'
import { DERIVED_TABLES, OWNED_VIEWS, hasKey, kindName, liveRelation, viewDefinitions, type LiveRelation, type TableSpec } from './shape.js'

/**
 * Adoption of a database another system made (the predecessor's alembic schema): the planner reads
 * the catalog and returns the statements that bring seedops-owned objects to the expected shape,
 * each with the reason. `db migrate` runs them in the migration's transaction (before: views out
 * of the way and tables reshaped; after: views and their dependents recreated); `--dry-run` prints
 * them. Platform tables (exam_results, question, session, interest_goal, responses) are never
 * planned on. Rows of derived tables are never dropped: a table whose rows must change (duplicate
 * keys merged, NULL keys filled, non-numeric ids moved out) is first copied to seedops_archive.
 */
export interface PlanStep {
  /** before: ahead of the migrations; after: once they have run. */
  phase: 'before' | 'after'
  object: string
  statement: string
  why: string
  /** Recreating a view someone else defined: a failure names it. */
  recreates?: string
}

export interface RowChange {
  table: string
  archive: string
  duplicateGroups: number
  rowsMerged: number
  keyNullsFilled: number
  rowsMovedOut: number
  note: string
}

export interface AdoptionPlan {
  steps: PlanStep[]
  rowChanges: RowChange[]
  /** Differences the plan leaves (e.g. NULLs where NOT NULL is expected), for the operator. */
  notes: string[]
}

export const ARCHIVE_SCHEMA = 'seedops_archive'

export const ident = (s: string) => `"${s.replace(/"/g, '""')}"`

const INTEGER_TEXT = `'^\\s*-?[0-9]{1,18}\\s*$'`

interface Dependent {
  oid: number
  schema: string
  name: string
  kind: string
  depth: number
  def: string
}

/** Views (and materialised views) that read from the given relations, directly or through each other. */
async function dependentsOf(q: Queryable, oids: number[]): Promise<Dependent[]> {
  if (!oids.length) return []
  const r = await q.query<Dependent>(
    `WITH RECURSIVE dep(oid, depth) AS (
       SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
       WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
         AND d.refobjid = ANY($1::int[]::oid[]) AND r.ev_class <> d.refobjid
       UNION
       SELECT r.ev_class, dep.depth + 1 FROM dep
       JOIN pg_depend d ON d.refobjid = dep.oid AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
       JOIN pg_rewrite r ON r.oid = d.objid
       WHERE r.ev_class <> d.refobjid AND dep.depth < 64
     )
     SELECT c.oid::int AS oid, n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS kind,
            max(dep.depth)::int AS depth, pg_get_viewdef(c.oid) AS def
     FROM dep JOIN pg_class c ON c.oid = dep.oid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT (c.oid = ANY($1::int[]::oid[]))
     GROUP BY c.oid, n.nspname, c.relname, c.relkind
     ORDER BY 5, 3`,
    [oids],
  )
  return r.rows
}

async function count(q: Queryable, sql: string): Promise<number> {
  return (await q.query<{ n: number }>(sql)).rows[0]!.n
}

/** Steps for one derived table that exists in another shape. */
async function planTable(q: Queryable, t: TableSpec, live: LiveRelation, stamp: string) {
  const T = `public.${ident(t.name)}`
  const steps: PlanStep[] = []
  const notes: string[] = []
  const step = (statement: string, why: string) => steps.push({ phase: 'before', object: t.name, statement, why })
  const liveCol = (n: string) => live.columns.find((c) => c.name === n)
  // Expected name → the name it has now (before the plan runs); absent when it must be added.
  const nowName = new Map<string, string>()
  for (const c of t.columns) {
    if (liveCol(c.name)) nowName.set(c.name, c.name)
    else {
      const old = (t.renames?.[c.name] ?? []).find((o) => liveCol(o) && !t.columns.some((x) => x.name === o))
      if (old) nowName.set(c.name, old)
    }
  }
  const total = await count(q, `SELECT count(*)::int AS n FROM ${T}`)
  const change: RowChange = { table: t.name, archive: `${ARCHIVE_SCHEMA}.${t.name}_${stamp}`, duplicateGroups: 0, rowsMerged: 0, keyNullsFilled: 0, rowsMovedOut: 0, note: '' }
  let typeChanged = false

  for (const c of t.columns) {
    const n = nowName.get(c.name)
    if (n && n !== c.name) step(`ALTER TABLE ${T} RENAME COLUMN ${ident(n)} TO ${ident(c.name)}`, `the predecessor's name ${n} for ${c.name}`)
  }
  // Nulls each expected column will hold once added (plan-time counts on the live names).
  const nullsAfter = new Map<string, number>()
  for (const c of t.columns) {
    if (nowName.has(c.name)) continue
    if (c.name === 'correct' && liveCol('acc') && nowName.has('attempts')) {
      const att = ident(nowName.get('attempts')!)
      step(`ALTER TABLE ${T} ADD COLUMN ${ident(c.name)} ${c.type}`, 'the correct count is missing; acc (accuracy) is kept as it is')
      step(
        `UPDATE ${T} SET ${ident(c.name)} = round(CASE WHEN acc > 1 THEN acc / 100.0 ELSE acc END * ${att})::int WHERE acc IS NOT NULL AND ${att} IS NOT NULL`,
        'correct = accuracy × attempts (acc > 1 read as a percentage)',
      )
      nullsAfter.set(c.name, await count(q, `SELECT count(*)::int AS n FROM ${T} WHERE acc IS NULL OR ${att} IS NULL`))
    } else if (c.name === 'id' && c.type === 'bigint') {
      step(`ALTER TABLE ${T} ADD COLUMN id bigserial`, 'surrogate id, numbered for the existing rows')
      nullsAfter.set(c.name, 0)
    } else if (c.default !== undefined) {
      step(`ALTER TABLE ${T} ADD COLUMN ${ident(c.name)} ${c.type}${c.notNull ? ' NOT NULL' : ''} DEFAULT ${c.default}`, `column ${c.name} is missing`)
      nullsAfter.set(c.name, 0)
    } else {
      step(`ALTER TABLE ${T} ADD COLUMN ${ident(c.name)} ${c.type}`, `column ${c.name} is missing`)
      nullsAfter.set(c.name, total)
    }
  }
  // NULL keys the predecessor wrote get a documented value, so the key can exist.
  for (const [k, fill] of Object.entries(t.fillKeyNulls ?? {})) {
    const n = nowName.get(k)
    if (!n) continue
    const nulls = await count(q, `SELECT count(*)::int AS n FROM ${T} WHERE ${ident(n)} IS NULL`)
    if (nulls) {
      step(`UPDATE ${T} SET ${ident(k)} = ${fill} WHERE ${ident(k)} IS NULL`, `${nulls} row(s) with no ${k}: key value ${fill}`)
      change.keyNullsFilled = nulls
    }
  }
  for (const c of t.columns) {
    const n = nowName.get(c.name)
    const l = n ? liveCol(n) : undefined
    if (!l || l.type === c.type) continue
    let using = `${ident(c.name)}::${c.type}`
    if ((c.type === 'bigint' || c.type === 'integer') && (l.type === 'text' || l.type.startsWith('character'))) {
      const bad = await count(q, `SELECT count(*)::int AS n FROM ${T} WHERE ${ident(n!)} IS NOT NULL AND ${ident(n!)} !~ ${INTEGER_TEXT}`)
      if (bad) {
        // Kept in the archive, where nothing is lost; seedops' item ids are question.id (bigint).
        step(`DELETE FROM ${T} WHERE ${ident(c.name)} IS NOT NULL AND ${ident(c.name)} !~ ${INTEGER_TEXT}`, `${bad} row(s) whose ${c.name} is not a whole number are moved out (kept in the archive)`)
        change.rowsMovedOut = bad
      }
      using = `btrim(${ident(c.name)})::${c.type}`
    }
    step(`ALTER TABLE ${T} ALTER COLUMN ${ident(c.name)} TYPE ${c.type} USING ${using}`, `${c.name} is ${l.type}, seedops writes ${c.type}`)
    typeChanged = true
  }
  for (const c of t.columns) {
    const n = nowName.get(c.name)
    const l = n ? liveCol(n) : undefined
    if (l && l.notNull && !c.notNull) step(`ALTER TABLE ${T} ALTER COLUMN ${ident(c.name)} DROP NOT NULL`, `seedops writes NULL into ${c.name} where a value is unknown (missing is not 0)`)
    const added = !l && nullsAfter.has(c.name)
    const addedNotNull = added && c.default !== undefined && c.notNull
    if (c.notNull && ((l && !l.notNull) || (added && !addedNotNull))) {
      const nulls = l ? (c.name in (t.fillKeyNulls ?? {}) ? 0 : await count(q, `SELECT count(*)::int AS n FROM ${T} WHERE ${ident(n!)} IS NULL`)) : nullsAfter.get(c.name)!
      if (nulls === 0) step(`ALTER TABLE ${T} ALTER COLUMN ${ident(c.name)} SET NOT NULL`, `${c.name} holds no NULL`)
      else notes.push(`${t.name}.${c.name} stays nullable: ${nulls} row(s) have no value (seedops reads them as unknown)`)
    }
  }
  if (!hasKey(live, t.key.columns)) {
    const exprs = t.key.columns.map((k) => {
      const n = nowName.get(k)
      if (!n) return 'NULL'
      const fill = t.fillKeyNulls?.[k]
      return fill ? `COALESCE(${ident(n)}, ${fill})` : ident(n)
    })
    const nullKeys = t.key.columns.some((k) => !nowName.has(k))
      ? total
      : await count(q, `SELECT count(*)::int AS n FROM ${T} WHERE ${exprs.map((e) => `${e} IS NULL`).join(' OR ')}`)
    if (nullKeys) {
      notes.push(`${t.name}: ${nullKeys} row(s) have a NULL in (${t.key.columns.join(', ')}); the key is not added — fix or remove them, then run db migrate again`)
    } else {
      const d = (await q.query<{ groups: number; extra: number }>(
        `SELECT count(*)::int AS groups, COALESCE(sum(n - 1), 0)::int AS extra FROM (SELECT count(*) AS n FROM ${T} GROUP BY ${exprs.join(', ')} HAVING count(*) > 1) g`,
      )).rows[0]!
      if (d.extra) {
        const order = [...(t.newestFirst ?? []).filter((c) => nowName.has(c) || liveCol(c)).map((c) => `${ident(c)} DESC NULLS LAST`), 'ctid DESC'].join(', ')
        step(
          `DELETE FROM ${T} a USING (SELECT ctid AS row_ctid, row_number() OVER (PARTITION BY ${t.key.columns.map(ident).join(', ')} ORDER BY ${order}) AS rn FROM ${T}) d WHERE a.ctid = d.row_ctid AND d.rn > 1`,
          `${d.groups} key(s) of (${t.key.columns.join(', ')}) hold ${d.groups + d.extra} rows: the newest of each is kept, ${d.extra} merged away (all kept in the archive)`,
        )
        change.duplicateGroups = d.groups
        change.rowsMerged = d.extra
      }
      const name = t.key.primary && !live.hasPrimaryKey ? `${t.name}_pkey` : `${t.name}_${t.key.columns.join('_')}_key`
      const taken = (await q.query(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = $1`, [name])).rowCount
      const cname = taken ? `${name}_seedops` : name
      step(
        `ALTER TABLE ${T} ADD CONSTRAINT ${ident(cname)} ${t.key.primary && !live.hasPrimaryKey ? 'PRIMARY KEY' : 'UNIQUE'} (${t.key.columns.map(ident).join(', ')})`,
        `seedops upserts on (${t.key.columns.join(', ')})`,
      )
    }
  }
  const rowsChange = change.duplicateGroups || change.keyNullsFilled || change.rowsMovedOut
  if (rowsChange) {
    change.note = [
      change.rowsMerged ? `${change.rowsMerged} duplicate row(s) merged into ${change.duplicateGroups} key(s), newest kept` : '',
      change.keyNullsFilled ? `${change.keyNullsFilled} NULL key value(s) filled` : '',
      change.rowsMovedOut ? `${change.rowsMovedOut} row(s) with a non-numeric id moved out` : '',
    ].filter(Boolean).join('; ')
    steps.unshift(
      { phase: 'before', object: t.name, statement: `CREATE SCHEMA IF NOT EXISTS ${ident(ARCHIVE_SCHEMA)}`, why: 'archive for rows that must change' },
      { phase: 'before', object: t.name, statement: `CREATE TABLE ${ident(ARCHIVE_SCHEMA)}.${ident(`${t.name}_${stamp}`)} AS TABLE ${T}`, why: `copy of ${t.name} as it was, before its rows change` },
    )
  }
  return { steps, notes, typeChanged, change: rowsChange ? change : null }
}

export interface PlanOptions {
  /** Migrations that will run between the before and after steps. */
  pending: string[]
  /** Suffix of archive tables (UTC yyyymmddhhmmss). */
  stamp?: string
}

export function archiveStamp(d = new Date()): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14)
}

/** Reads the catalog and returns what `db migrate` must do besides its migrations. Changes nothing. */
export async function planAdoption(q: Queryable, opts: PlanOptions): Promise<AdoptionPlan> {
  const stamp = opts.stamp ?? archiveStamp()
  const steps: PlanStep[] = []
  const notes: string[] = []
  const rowChanges: RowChange[] = []

  // Views: any owned view whose columns differ is dropped and recreated (CREATE OR REPLACE cannot
  // change a column list); the owned views read each other, so all of them are, together.
  const liveViews = new Map<string, LiveRelation>()
  let replace = false
  // A view a pending migration redefines with columns appended (the upgrade path, e.g. 0003's
  // hints_used) is left to that migration's CREATE OR REPLACE: dropping it would drop grants and
  // dependent views for nothing.
  const redefined = opts.pending.length ? viewDefinitions(opts.pending) : new Map<string, string>()
  for (const v of OWNED_VIEWS) {
    const live = await liveRelation(q, v.name)
    if (!live) {
      if (opts.pending.length === 0) replace = true
      continue
    }
    if (live.kind !== 'v') {
      throw new SeedopsError(`public.${v.name} is a ${kindName(live.kind)}; seedops owns a view of that name and never drops a ${kindName(live.kind)}`, {
        code: 'ADOPT_CONFLICT',
        suggestions: [`Rename it (ALTER ${live.kind === 'm' ? 'MATERIALIZED VIEW' : 'TABLE'} public.${v.name} RENAME TO ${v.name}_legacy), then run: seedops db migrate`],
      })
    }
    liveViews.set(v.name, live)
    const got = live.columns.map((c) => `${c.name} ${c.type}`)
    const want = v.columns.map((c) => `${c.name} ${c.type}`)
    if (got.join(',') === want.join(',')) continue
    const appended = got.length < want.length && got.every((c, i) => c === want[i])
    if (!(appended && redefined.has(v.name))) replace = true
  }

  const tablePlans: Awaited<ReturnType<typeof planTable>>[] = []
  const typeChangedOids: number[] = []
  for (const t of DERIVED_TABLES) {
    const live = await liveRelation(q, t.name)
    if (!live) continue
    if (live.kind !== 'r' && live.kind !== 'p') {
      throw new SeedopsError(`public.${t.name} is a ${kindName(live.kind)}, not a table; seedops writes rows into it`, {
        code: 'ADOPT_CONFLICT',
        suggestions: [`Rename it out of the way, then run: seedops db migrate`],
      })
    }
    const p = await planTable(q, t, live, stamp)
    tablePlans.push(p)
    if (p.typeChanged) typeChangedOids.push(live.oid)
  }

  const roots = [...(replace ? [...liveViews.values()].map((v) => v.oid) : []), ...typeChangedOids]
  const owned = new Set(OWNED_VIEWS.map((v) => v.name))
  const dependents = (await dependentsOf(q, roots)).filter((d) => !(d.schema === 'public' && owned.has(d.name)))
  const qualified = (d: Dependent) => `${ident(d.schema)}.${ident(d.name)}`
  for (const d of [...dependents].reverse()) {
    steps.push({ phase: 'before', object: `${d.schema}.${d.name}`, statement: `DROP ${d.kind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW'} ${qualified(d)}`, why: 'reads a relation whose columns change; recreated afterwards from its saved definition' })
  }
  if (replace) {
    for (const v of [...OWNED_VIEWS].reverse()) {
      if (liveViews.has(v.name)) steps.push({ phase: 'before', object: v.name, statement: `DROP VIEW public.${ident(v.name)}`, why: `its columns differ from seedops' ${v.name} (CREATE OR REPLACE cannot change them)` })
    }
  }
  for (const p of tablePlans) {
    steps.push(...p.steps)
    notes.push(...p.notes)
    if (p.change) rowChanges.push(p.change)
  }
  if (replace) {
    const defs = viewDefinitions()
    for (const v of OWNED_VIEWS) {
      const def = defs.get(v.name)
      if (def) steps.push({ phase: 'after', object: v.name, statement: def.trim(), why: `seedops' ${v.name}` })
    }
  }
  for (const d of dependents) {
    const body = d.def.trim().replace(/;$/, '')
    steps.push({
      phase: 'after',
      object: `${d.schema}.${d.name}`,
      statement: `CREATE ${d.kind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW'} ${qualified(d)} AS\n${body}`,
      why: 'recreated from its saved definition (pg_get_viewdef)',
      recreates: `${d.schema}.${d.name}`,
    })
  }
  return { steps, rowChanges, notes }
}

/** Runs the steps of one phase on a client inside the caller's transaction. */
export async function runSteps(q: Queryable, steps: PlanStep[], phase: PlanStep['phase']): Promise<void> {
  for (const s of steps.filter((x) => x.phase === phase)) {
    try {
      await q.query(s.statement)
    } catch (e) {
      const msg = (e as Error).message
      if (s.recreates) {
        throw new SeedopsError(`the view ${s.recreates}, which reads seedops' read model or a reshaped table, cannot be recreated on the new columns: ${msg}. Nothing was applied.`, {
          code: 'ADOPT_DEPENDENT_VIEW',
          cause: e,
          data: { view: s.recreates },
          suggestions: [
            `Change ${s.recreates} to read the new columns (see: seedops db migrate --dry-run), or drop it yourself`,
            'Then run: seedops db migrate',
          ],
        })
      }
      throw new SeedopsError(`adopting ${s.object} failed at: ${s.statement.split('\n')[0]} — ${msg}. Nothing was applied.`, {
        code: 'ADOPT_FAILED',
        cause: e,
        suggestions: ['See the whole plan: seedops db migrate --dry-run'],
      })
    }
  }
}
