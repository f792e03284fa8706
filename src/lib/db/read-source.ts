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
      return { source: 'attempt', skipped }
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
