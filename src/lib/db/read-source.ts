import type { Queryable } from './index.js'

export type AttemptSource = 'attempt' | 'responses' | 'exam_results'

export interface ReadSource {
  source: AttemptSource | null
  /** Why the earlier sources were passed over. */
  skipped: string[]
}

/**
 * Where attempts can be read from, in SPEC's order: the `attempt` view, else the platform's
 * `responses` table, else the raw `exam_results.result_json`. A view that exists but fails to read
 * (the predecessor's bare casts on one malformed row) counts as absent.
 */
export async function attemptSource(q: Queryable): Promise<ReadSource> {
  const skipped: string[] = []
  const rel = async (name: string) => (await q.query<{ k: string | null }>(`SELECT (SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)) AS k`, [`public.${name}`])).rows[0]!.k
  if (await rel('attempt')) {
    try {
      // The whole view: one bad row anywhere fails a bare cast, LIMIT 1 would not reach it.
      await q.query(`SELECT count(*) FROM attempt`)
      // seedops' attempt view reads exam_results: with no rows there, stages read responses (chooseRunSource).
      const empty = !(await q.query<{ has: boolean }>(`SELECT EXISTS (SELECT 1 FROM public.exam_results) AS has`).then((r) => r.rows[0]?.has, () => true))
      if (!empty || !(await responsesUsable(q))) return { source: 'attempt', skipped }
      skipped.push('attempt reads exam_results, which holds no rows')
      return { source: 'responses', skipped }
    } catch (e) {
      skipped.push(`attempt fails to read: ${(e as Error).message}`)
    }
  } else skipped.push('attempt is absent')
  if (await rel('responses')) {
    const cols = (await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = to_regclass('public.responses') AND attname IN ('user_id', 'item_id', 'is_correct', 'responded_at') AND NOT attisdropped`,
    )).rows[0]!.n
    if (cols === 4) return { source: 'responses', skipped }
    skipped.push('responses lacks user_id, item_id, is_correct or responded_at')
  } else skipped.push('responses is absent')
  if (await rel('exam_results')) return { source: 'exam_results', skipped }
  skipped.push('exam_results is absent')
  return { source: null, skipped }
}

/**
 * The learner responses a stage run reads, per SPEC's order. After `db migrate` the `attempt`
 * view is seedops' own over `exam_results` (the read model `seedops_attempt_base`), so that is the
 * source whenever `exam_results` holds rows. A platform that records answers only in `responses`
 * (user_id, item_id, is_correct, responded_at) gets a session-local view of the same name and
 * columns over it, which the stage's SQL then resolves first (pg_temp precedes public): no stage
 * SQL changes. A response has no session, topic, time or hints: a learner's day is their session;
 * the topic comes from `question`; times and hints are missing (NULL), as the KPIs expect.
 */
export interface RunSource {
  source: 'exam_results' | 'responses'
  /** True when a session-local view was created (drop it when the run ends). */
  shadow: boolean
}

const RESPONSES_VIEW = `
CREATE TEMP VIEW seedops_attempt_base AS
SELECT md5(r.user_id::text || '|' || r.item_id::text || '|' || r.responded_at::text)::uuid AS exam_result_id,
       1 AS question_no,
       r.user_id::text AS user_id,
       seedops_question_id(jsonb_build_object('question_id', r.item_id)) AS item_id,
       NULL::text AS topic,
       COALESCE(seedops_json_bool(to_jsonb(r.is_correct)), false) AS correct,
       NULL::int AS response_time_ms,
       NULL::boolean AS hint_used,
       r.responded_at::timestamptz AS started_at,
       r.responded_at::timestamptz AS completed_at,
       r.user_id::text || ':' || (r.responded_at::timestamptz AT TIME ZONE 'UTC')::date::text AS session_id,
       NULL::int AS hints_used
FROM public.responses r
WHERE r.user_id IS NOT NULL AND r.responded_at IS NOT NULL
  AND seedops_question_id(jsonb_build_object('question_id', r.item_id)) IS NOT NULL`

/** `responses` has the four columns SPEC names and at least one row. */
async function responsesUsable(q: Queryable): Promise<boolean> {
  const cols = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = to_regclass('public.responses') AND attname IN ('user_id', 'item_id', 'is_correct', 'responded_at') AND NOT attisdropped`,
  )
  if (cols.rows[0]?.n !== 4) return false
  return Boolean((await q.query<{ has: boolean }>(`SELECT EXISTS (SELECT 1 FROM public.responses) AS has`)).rows[0]?.has)
}

export async function chooseRunSource(q: Queryable): Promise<RunSource> {
  const er = await q.query<{ has: boolean }>(`SELECT EXISTS (SELECT 1 FROM public.exam_results) AS has`)
  if (er.rows[0]?.has || !(await responsesUsable(q))) return { source: 'exam_results', shadow: false }
  await q.query(RESPONSES_VIEW)
  return { source: 'responses', shadow: true }
}

export const DROP_RUN_SOURCE = `DROP VIEW IF EXISTS pg_temp.seedops_attempt_base`
