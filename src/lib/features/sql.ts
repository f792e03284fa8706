/**
 * aggregate-features, one set-based statement over the whole population (no per-user queries).
 * $1 = first target day, $2 = last target day (dates), $3/$4 = the UTC instants bounding the
 * rows read: 13 days before the first target day (for the improvement's previous window) up to
 * the end of the last target day. The time predicate reaches exam_results (and its expression
 * index) before result_json is unnested.
 */
export const DAILY_FEATURES_CTE = `
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
  WHERE topic_id IS NOT NULL
  GROUP BY user_id, topic_id, day
),
win AS (
  SELECT d.*,
         sum(attempts) OVER w_recent AS n_recent, sum(correct) OVER w_recent AS c_recent,
         sum(attempts) OVER w_prev AS n_prev, sum(correct) OVER w_prev AS c_prev
  FROM daily d
  WINDOW w_recent AS (PARTITION BY user_id, topic_id ORDER BY day RANGE BETWEEN '6 days' PRECEDING AND CURRENT ROW),
         w_prev AS (PARTITION BY user_id, topic_id ORDER BY day RANGE BETWEEN '13 days' PRECEDING AND '7 days' PRECEDING)
),
result AS (
  SELECT user_id, topic_id, day AS date, attempts, correct, avg_time_ms, rt_median, hints,
         CASE WHEN n_recent > 0 AND n_prev > 0
              THEN c_recent::float8 / n_recent - c_prev::float8 / n_prev END AS improvement,
         last_seen_at
  FROM win
  WHERE day BETWEEN $1::date AND $2::date
)`

export const DELETE_RANGE = `DELETE FROM features_topic_daily WHERE date BETWEEN $1::date AND $2::date`

/** Inserts the target days and, from the same scan (`a` is materialised once), counts the attempts without a topic. */
export const INSERT_FEATURES = `${DAILY_FEATURES_CTE},
ins AS (
  INSERT INTO features_topic_daily
    (user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, theta_estimate, theta_sd, improvement, last_seen_at, computed_at)
  SELECT user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, NULL, NULL, improvement, last_seen_at, now()
  FROM result
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::int AS inserted,
       (SELECT count(*) FROM a WHERE topic_id IS NULL AND day BETWEEN $1::date AND $2::date)::int AS no_topic`

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
