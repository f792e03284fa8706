/**
 * aggregate-features, one set-based statement over the whole population (no per-user queries).
 * $1 = first target day, $2 = last target day (dates), $3/$4 = the UTC instants bounding the
 * rows read: 13 days before the first target day (for the improvement's previous window) up to
 * the end of the last target day. The time predicate reaches exam_results (and its expression
 * index) before result_json is unnested. Attempts without a topic form groups of their own
 * (topic_id NULL, their own window partitions): never inserted, only counted.
 */
const DAILY_FEATURES = `
WITH a AS (
  SELECT b.user_id,
         COALESCE(qu.topic_id::text, b.topic) AS topic_id,
         (b.completed_at AT TIME ZONE 'UTC')::date AS day,
         b.correct, b.response_time_ms, b.hint_used, b.completed_at
  FROM seedops_attempt_base b
  LEFT JOIN question qu ON qu.id = b.item_id
  WHERE b.completed_at >= $3::timestamptz AND b.completed_at < $4::timestamptz
),
daily AS (
  SELECT user_id, topic_id, day,
         count(*)::int AS attempts,
         (count(*) FILTER (WHERE correct))::int AS correct,
         avg(response_time_ms)::float8 AS avg_time_ms,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms)::float8 AS rt_median,
         -- attempts with a hint; NULL when no attempt of the day carries hint data (missing is not 0)
         CASE WHEN count(hint_used) > 0 THEN (count(*) FILTER (WHERE hint_used))::int END AS hints,
         max(completed_at) AS last_seen_at
  FROM a
  GROUP BY user_id, topic_id, day
),
win AS (
  SELECT d.*,
         sum(attempts) OVER w_recent AS n_recent, sum(correct) OVER w_recent AS c_recent,
         sum(attempts) OVER w_prev AS n_prev, sum(correct) OVER w_prev AS c_prev
  FROM daily d
  WINDOW w_recent AS (PARTITION BY user_id, topic_id ORDER BY day RANGE BETWEEN '6 days' PRECEDING AND CURRENT ROW),
         w_prev AS (PARTITION BY user_id, topic_id ORDER BY day RANGE BETWEEN '13 days' PRECEDING AND '7 days' PRECEDING)
)
SELECT user_id, topic_id, day AS date, attempts, correct, avg_time_ms, rt_median, hints,
       CASE WHEN n_recent > 0 AND n_prev > 0
            THEN c_recent::float8 / n_recent - c_prev::float8 / n_prev END AS improvement,
       last_seen_at
FROM win
WHERE day BETWEEN $1::date AND $2::date`

const DAY = /^\d{4}-\d{2}-\d{2}$/
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/

/**
 * The day rows into a session-local staging table. CREATE TABLE AS may run its SELECT with
 * parallel workers, which INSERT … SELECT may not (PostgreSQL 15); it takes no bind parameters,
 * so the four bounds are inlined as literals, each checked against its strict format first.
 */
export function stageFeaturesSql(p: { from: string; to: string; readFrom: string; readTo: string }): string {
  for (const [v, re] of [[p.from, DAY], [p.to, DAY], [p.readFrom, INSTANT], [p.readTo, INSTANT]] as const) {
    if (!re.test(v)) throw new Error(`aggregate-features: bad bound ${JSON.stringify(v)}`)
  }
  const lit = DAILY_FEATURES.replace(/\$1::date/g, `'${p.from}'::date`).replace(/\$2::date/g, `'${p.to}'::date`)
    .replace(/\$3::timestamptz/g, `'${p.readFrom}'::timestamptz`).replace(/\$4::timestamptz/g, `'${p.readTo}'::timestamptz`)
  return `CREATE TEMP TABLE seedops_features_stage AS ${lit}`
}

export const DROP_STAGE = `DROP TABLE IF EXISTS pg_temp.seedops_features_stage`

/** The staged rows with a topic into the table; the attempts without one, counted. */
export const INSERT_FEATURES = `
INSERT INTO features_topic_daily
  (user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, theta_estimate, theta_sd, improvement, last_seen_at, computed_at)
SELECT user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, NULL, NULL, improvement, last_seen_at, now()
FROM pg_temp.seedops_features_stage WHERE topic_id IS NOT NULL`

export const NO_TOPIC = `SELECT COALESCE(sum(attempts), 0)::int AS n FROM pg_temp.seedops_features_stage WHERE topic_id IS NULL`

export const DELETE_RANGE = `DELETE FROM features_topic_daily WHERE date BETWEEN $1::date AND $2::date`

export const SUMMARY = `
SELECT count(*)::int AS rows, count(DISTINCT user_id)::int AS users, count(DISTINCT topic_id)::int AS topics,
       COALESCE(sum(attempts), 0)::int AS attempts
FROM features_topic_daily WHERE date BETWEEN $1::date AND $2::date`

export const SAMPLE = `
SELECT user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, improvement, theta_estimate
FROM features_topic_daily WHERE date BETWEEN $1::date AND $2::date
ORDER BY date DESC, user_id, topic_id LIMIT $3`

/** Malformed exam_results rows in the window, named (first few) and counted. */
export const MALFORMED = `
SELECT id::text, session_id, user_id, reason, bad_questions, count(*) OVER ()::int AS total
FROM seedops_malformed_exam_results
WHERE completed_at >= $1::timestamptz AND completed_at < $2::timestamptz
ORDER BY completed_at, id LIMIT $3`
