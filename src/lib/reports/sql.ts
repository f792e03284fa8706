// Set-based reads for a batch of users ($1 = text[] of user ids). Windows are half-open UTC instants.

/** Users with KPIs for the week: the population of the weekly run. */
export const USERS_WITH_KPIS = `SELECT user_id FROM weekly_kpi WHERE week_start = $1::date ORDER BY user_id`

export const KPIS = `SELECT user_id, kpis FROM weekly_kpi WHERE week_start = $2::date AND user_id = ANY($1::text[])`

/** θ trend: the last estimate of each UTC day, $2 ≤ measured_at < $3. */
export const THETA = `
SELECT DISTINCT ON (user_id, (measured_at AT TIME ZONE 'UTC')::date)
       user_id, (measured_at AT TIME ZONE 'UTC')::date AS date, theta, se
FROM seedops_ability_history
WHERE user_id = ANY($1::text[]) AND measured_at >= $2::timestamptz AND measured_at < $3::timestamptz
ORDER BY user_id, (measured_at AT TIME ZONE 'UTC')::date, measured_at DESC, id DESC`

/**
 * One scan of the read model for both topic accuracy (28 days, and the report's week from $4)
 * and attempts per day: GROUPING SETS. Topic as the attempt view defines it (question, else JSON).
 */
export const ACTIVITY = `
WITH a AS (
  SELECT b.user_id, COALESCE(qu.topic_id::text, b.topic) AS topic_id, (b.completed_at AT TIME ZONE 'UTC')::date AS day,
         b.correct, b.completed_at >= $4::timestamptz AS in_week
  FROM seedops_attempt_base b LEFT JOIN question qu ON qu.id = b.item_id
  WHERE b.user_id = ANY($1::text[]) AND b.completed_at >= $2::timestamptz AND b.completed_at < $3::timestamptz
)
SELECT user_id, topic_id, day, GROUPING(topic_id)::int AS by_day,
       count(*)::int AS attempts, count(*) FILTER (WHERE correct)::int AS correct,
       count(*) FILTER (WHERE in_week)::int AS week_attempts, count(*) FILTER (WHERE in_week AND correct)::int AS week_correct
FROM a
GROUP BY GROUPING SETS ((user_id, topic_id), (user_id, day))`

/** Items whose latest answer in the window was wrong, most recent first, $4 per user. */
export const REVISIT = `
WITH a AS (
  SELECT b.user_id, b.item_id, COALESCE(qu.topic_id::text, b.topic) AS topic_id, b.correct, b.completed_at,
         row_number() OVER (PARTITION BY b.user_id, b.item_id ORDER BY b.completed_at DESC, b.question_no DESC) AS rn,
         count(*) FILTER (WHERE NOT b.correct) OVER (PARTITION BY b.user_id, b.item_id) AS wrong
  FROM seedops_attempt_base b LEFT JOIN question qu ON qu.id = b.item_id
  WHERE b.user_id = ANY($1::text[]) AND b.completed_at >= $2::timestamptz AND b.completed_at < $3::timestamptz
), r AS (
  SELECT user_id, item_id, topic_id, completed_at, wrong,
         row_number() OVER (PARTITION BY user_id ORDER BY completed_at DESC, item_id) AS k
  FROM a WHERE rn = 1 AND NOT correct
)
SELECT user_id, item_id::text AS item_id, topic_id, completed_at, wrong::int AS wrong FROM r WHERE k <= $4 ORDER BY user_id, k`

/** Goals, highest priority first (priority 1 is the highest; as compute-kpis reads them). */
export const GOALS = `
SELECT user_id, topic_id, target_level::float8 AS target_level, priority::int AS priority
FROM interest_goal WHERE user_id = ANY($1::text[])
ORDER BY user_id, priority ASC NULLS LAST, target_level DESC NULLS LAST, topic_id`

export const UPSERT_ARTIFACTS = `
INSERT INTO report_artifacts AS r (user_id, week_start, format, url, generated_at)
SELECT u, $1::date, f, url, now() FROM unnest($2::text[], $3::text[], $4::text[]) AS t(u, f, url)
ON CONFLICT (user_id, week_start, format) DO UPDATE SET url = EXCLUDED.url, generated_at = EXCLUDED.generated_at`
