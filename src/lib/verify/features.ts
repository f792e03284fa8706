import { addDays, utcDayStart } from '../config/index.js'
import { stageFreshness } from './freshness.js'
import type { Check, CheckGroup } from './types.js'


/** Checks on features_topic_daily (SPEC 5 verify): freshness, coverage vs attempts, ranges. */
export const featureChecks: Check[] = [
  {
    id: 'freshness',
    description: 'aggregate-features succeeded recently and the table reaches the as-of date',
    async run(ctx) {
      const { q, asOf } = ctx
      const f = await stageFreshness(ctx, 'aggregate-features', 26)
      const r = await q.query<{ max_date: string | null }>(`SELECT max(date)::text AS max_date FROM features_topic_daily`)
      const maxDate = r.rows[0]?.max_date ?? null
      const numbers = { ...f.numbers, max_date: maxDate }
      const lastAsOf = f.run?.asOf ?? null
      if (f.verdict === 'never') return { status: 'fail', message: 'aggregate-features has never succeeded (run: seedops run aggregate-features)', numbers }
      if (f.verdict === 'stale') return { status: 'fail', message: `last successful run ${f.ageH} h ago (> ${f.maxAgeH} h)`, numbers }
      if (!lastAsOf || lastAsOf < addDays(asOf, -1)) return { status: 'warn', message: `last run was as of ${lastAsOf}, before ${addDays(asOf, -1)}`, numbers }
      return { status: 'ok', message: `last success ${f.ageH} h ago, as of ${lastAsOf}; data up to ${maxDate ?? '—'}`, numbers }
    },
  },
  {
    id: 'coverage',
    description: 'every user × topic × day with attempts in the window has a features row with the same attempt count',
    async run({ q, asOf, options }) {
      const days = options.days ?? 7
      const from = addDays(asOf, -(days - 1))
      const r = await q.query<{ expected: number; present: number; missing: number; count_mismatch: number; attempts_src: number; attempts_feat: number }>(
        `WITH src AS (
           SELECT b.user_id, COALESCE(qu.topic_id::text, b.topic) AS topic_id, (b.completed_at AT TIME ZONE 'UTC')::date AS date, count(*)::int AS n
           FROM seedops_attempt_base b LEFT JOIN question qu ON qu.id = b.item_id
           WHERE b.completed_at >= $1::timestamptz AND b.completed_at < $2::timestamptz
           GROUP BY 1, 2, 3 HAVING COALESCE(qu.topic_id::text, b.topic) IS NOT NULL
         ), j AS (
           SELECT s.*, f.attempts FROM src s LEFT JOIN features_topic_daily f USING (user_id, topic_id, date)
         )
         SELECT count(*)::int AS expected, count(attempts)::int AS present, (count(*) - count(attempts))::int AS missing,
                count(*) FILTER (WHERE attempts IS NOT NULL AND attempts <> n)::int AS count_mismatch,
                COALESCE(sum(n), 0)::int AS attempts_src, COALESCE(sum(attempts), 0)::int AS attempts_feat
         FROM j`,
        [utcDayStart(from), utcDayStart(addDays(asOf, 1))],
      )
      const n = r.rows[0]!
      const numbers = { window_from: from, window_to: asOf, ...n, coverage_pct: n.expected ? Math.round((n.present / n.expected) * 10000) / 100 : 100 }
      let rows: Record<string, unknown>[] | undefined
      if (n.missing > 0 || n.count_mismatch > 0) {
        rows = (
          await q.query(
            `SELECT b.user_id, COALESCE(qu.topic_id::text, b.topic) AS topic_id, (b.completed_at AT TIME ZONE 'UTC')::date AS date, count(*)::int AS attempts_in_source, max(f.attempts) AS attempts_in_features
             FROM seedops_attempt_base b LEFT JOIN question qu ON qu.id = b.item_id
             LEFT JOIN features_topic_daily f ON f.user_id = b.user_id AND f.topic_id = COALESCE(qu.topic_id::text, b.topic) AND f.date = (b.completed_at AT TIME ZONE 'UTC')::date
             WHERE b.completed_at >= $1::timestamptz AND b.completed_at < $2::timestamptz AND COALESCE(qu.topic_id::text, b.topic) IS NOT NULL
             GROUP BY 1, 2, 3 HAVING max(f.attempts) IS DISTINCT FROM count(*)::int ORDER BY 3 DESC, 1 LIMIT 5`,
            [utcDayStart(from), utcDayStart(addDays(asOf, 1))],
          )
        ).rows
      }
      if (n.expected === 0) return { status: 'warn', message: `no attempts in ${from}..${asOf}: nothing to cover`, numbers }
      if (n.missing > 0 || n.count_mismatch > 0)
        return { status: 'fail', message: `${n.missing} of ${n.expected} user×topic×day keys missing, ${n.count_mismatch} with a different attempt count (run: seedops run aggregate-features --date ${asOf})`, numbers, rows }
      return { status: 'ok', message: `${n.present}/${n.expected} keys present, ${n.attempts_feat} attempts match the source`, numbers }
    },
  },
  {
    id: 'ranges',
    description: 'values within their ranges (counts, times, improvement in [-1,1], θ SD > 0)',
    async run({ q, asOf, options }) {
      const days = options.days ?? 7
      const r = await q.query(
        `SELECT user_id, topic_id, date, attempts, correct, hints, avg_time_ms, rt_median, improvement, theta_estimate, theta_sd, count(*) OVER ()::int AS total
         FROM features_topic_daily
         WHERE date BETWEEN $1::date AND $2::date AND NOT (
           attempts > 0 AND correct BETWEEN 0 AND attempts
           AND (hints IS NULL OR hints BETWEEN 0 AND attempts)
           AND (avg_time_ms IS NULL OR avg_time_ms >= 0) AND (rt_median IS NULL OR rt_median >= 0)
           AND (improvement IS NULL OR improvement BETWEEN -1 AND 1)
           AND (theta_estimate IS NULL OR theta_estimate BETWEEN -6 AND 6)
           AND (theta_sd IS NULL OR theta_sd > 0) AND last_seen_at IS NOT NULL)
         ORDER BY date DESC LIMIT 5`,
        [addDays(asOf, -(days - 1)), asOf],
      )
      const bad = (r.rows[0] as { total?: number } | undefined)?.total ?? 0
      const total = (await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM features_topic_daily WHERE date BETWEEN $1::date AND $2::date`, [addDays(asOf, -(days - 1)), asOf])).rows[0]!.n
      const numbers = { rows_checked: total, out_of_range: bad }
      if (bad > 0) return { status: 'fail', message: `${bad} of ${total} rows out of range`, numbers, rows: r.rows.map(({ total: _t, ...x }) => x) }
      return { status: 'ok', message: `${total} rows in range`, numbers }
    },
  },
  {
    id: 'malformed-source',
    description: 'exam_results rows the read model had to leave out (malformed result_json)',
    async run({ q, asOf, options }) {
      const days = options.days ?? 7
      const r = await q.query<{ session_id: string | null; id: string; reason: string; total: number }>(
        `SELECT session_id, id::text, reason, count(*) OVER ()::int AS total FROM seedops_malformed_exam_results
         WHERE completed_at >= $1::timestamptz AND completed_at < $2::timestamptz ORDER BY completed_at LIMIT 5`,
        [utcDayStart(addDays(asOf, -(days - 1))), utcDayStart(addDays(asOf, 1))],
      )
      const n = r.rows[0]?.total ?? 0
      const numbers = { malformed_rows: n, threshold: options.maxMalformed ?? 0 }
      if (n > (options.maxMalformed ?? 0))
        return { status: 'warn', message: `${n} malformed exam_results rows left out: ${r.rows.map((x) => `${x.session_id ?? x.id} (${x.reason})`).join(', ')}`, numbers, rows: r.rows.map(({ total: _t, ...x }) => x) }
      return { status: 'ok', message: 'no malformed rows in the window', numbers }
    },
  },
]

export const featuresGroup: CheckGroup = { id: 'features', description: 'features_topic_daily', checks: featureChecks }
