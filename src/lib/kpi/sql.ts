/**
 * compute-kpis inputs for the whole population in ONE statement (no per-user queries).
 *
 * Every window of the KPIs lies inside the 56 days ending at as_of, so the answers are read once
 * into `a`: each read-model column evaluated once per answer (they are expressions over
 * result_json, and that evaluation, not the unnest, is most of the statement's time), held in
 * memory (the transaction's work_mem, BIG_READ_SETTINGS) for the three reductions that need
 * single answers. hints_used only where a KPI reads it (the last 28 days): a CASE on the plain
 * completed_at column skips its numeric checks for the other half. `ago` = as_of − the attempt's
 * UTC day, so a window "of n days ending at as_of − k" is `ago BETWEEN k AND k + n − 1`.
 *
 * - Per session first (`s`, hashed, ~10× fewer rows), then per user (`per_user`, hashed): a
 *   session is one exam_results row (session_id is unique there; rows without one count one
 *   each), identified by its fixed-width row id; every answer of it carries that row's
 *   completed_at, so a session has one time and one `ago`, the window counts are sums of
 *   per-session counts, sessions are session rows (no count(DISTINCT …), which sorts), and the
 *   mean gap between consecutive sessions telescopes to (t_last − t_first)/(n − 1). Mean dwell =
 *   Σ response times / sessions that carry any. Hints: the read model's integer hints_used (NULL
 *   = no hint data), counted and summed; float8 since a bigint would arrive as a string.
 * - `med`: E_t's two medians over the correct answers, grouped on user_id COLLATE "C" (byte
 *   order: the same groups, a cheaper sort than the database's collation).
 * - R_t: the keys K (user, item, topic) answered wrong in the 28 days ending at as_of − 28 (a
 *   small set, hashed) joined back to the last 28 days' answers. A key's topic is the read
 *   model's (question.topic_id, else result_json's topic), looked up only for those answers;
 *   a missing topic is '' so keys stay hashable.
 *
 * $1 as_of (date), $2 first UTC instant read, $3 end instant (as_of + 1 day 00:00 UTC),
 * $4 KPI_LOOKBACK_DAYS (active = an attempt with ago < $4), $5 user filter (text[] or null),
 * $6 mode: true = the active users (restricted to $5 when given); false = exactly the users in $5.
 * $7/$8 split: only users whose hashtext falls in part $8 of $7 (1/0: everyone). The predicate is on
 * exam_results.user_id, so each part unnests only its own users' result_json.
 * $9 (as_of − 27) 00:00 UTC: ago < 28 ⇔ completed_at ≥ $9.
 */
export const KPI_INPUTS = `
WITH a AS MATERIALIZED (
  SELECT b.exam_result_id AS sid, b.user_id, b.completed_at AS t, $1::date - (b.completed_at AT TIME ZONE 'UTC')::date AS ago,
         b.item_id, b.topic, b.correct, b.response_time_ms AS rt,
         CASE WHEN b.completed_at >= $9::timestamptz THEN b.hints_used END AS hints_used
  FROM seedops_attempt_base b
  WHERE b.completed_at >= $2::timestamptz AND b.completed_at < $3::timestamptz
    AND ($5::text[] IS NULL OR b.user_id = ANY ($5::text[]))
    AND ($7::int = 1 OR (hashtext(b.user_id) & 2147483647) % $7::int = $8::int)
),
s AS (
  SELECT user_id, t, ago, count(*) AS n, count(*) FILTER (WHERE correct) AS c, count(*) FILTER (WHERE NOT correct) AS w,
         count(rt) AS rt_n, sum(rt) AS rt_sum, count(hints_used) AS hint_n, sum(hints_used) AS hints
  FROM a GROUP BY sid, user_id, t, ago
),
wrong_keys AS (
  SELECT DISTINCT a.user_id, a.item_id, COALESCE(qu.topic_id::text, a.topic, '') AS topic_id
  FROM a LEFT JOIN question qu ON qu.id = a.item_id
  WHERE a.ago BETWEEN 28 AND 55 AND NOT a.correct
),
recovered AS (
  SELECT a.user_id, a.correct
  FROM a JOIN wrong_keys k ON k.user_id = a.user_id AND k.item_id = a.item_id
  LEFT JOIN question qu ON qu.id = a.item_id
  WHERE a.ago < 28 AND k.topic_id = COALESCE(qu.topic_id::text, a.topic, '')
),
-- One aggregation per user over three kinds of rows (1 = session, 2 = a correct answer's time for
-- the medians, 3 = an R_t answer): no join between derived sets, whose sizes the planner cannot
-- estimate (it guesses 200 groups and may pick a nested loop over tens of thousands of rows).
per_user AS (
  SELECT (user_id COLLATE "C") COLLATE "default" AS user_id,
         sum(n) FILTER (WHERE kind = 1 AND ago < $4) AS n_active,
         sum(n) FILTER (WHERE kind = 1 AND ago < 14) AS n_recent,
         sum(c) FILTER (WHERE kind = 1 AND ago < 14) AS c_recent,
         sum(n) FILTER (WHERE kind = 1 AND ago BETWEEN 14 AND 27) AS n_prev,
         sum(c) FILTER (WHERE kind = 1 AND ago BETWEEN 14 AND 27) AS c_prev,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY rt) FILTER (WHERE kind = 2 AND ago < 28) AS med_recent,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY rt) FILTER (WHERE kind = 2 AND ago BETWEEN 28 AND 55) AS med_prev,
         sum(w) FILTER (WHERE kind = 1 AND ago BETWEEN 28 AND 55) AS r_wrong,
         count(*) FILTER (WHERE kind = 3) AS r_n,
         count(*) FILTER (WHERE kind = 3 AND c = 1) AS r_c,
         sum(n) FILTER (WHERE kind = 1 AND ago < 28) AS a_attempts,
         sum(hint_n) FILTER (WHERE kind = 1 AND ago < 28) AS a_hint_n,
         sum(hints) FILTER (WHERE kind = 1 AND ago < 28) AS a_hints,
         count(*) FILTER (WHERE kind = 1 AND ago < 28) AS a_sessions,
         extract(epoch FROM max(t) FILTER (WHERE kind = 1 AND ago < 28) - min(t) FILTER (WHERE kind = 1 AND ago < 28)) / 86400.0 AS a_span_days,
         sum(rt_sum) FILTER (WHERE kind = 1 AND ago < 28) / 1000.0 AS a_dwell_s,
         count(*) FILTER (WHERE kind = 1 AND ago < 28 AND rt_n > 0) AS a_dwell_sessions,
         count(*) FILTER (WHERE kind = 1 AND ago < 56) AS s_sessions,
         extract(epoch FROM max(t) FILTER (WHERE kind = 1 AND ago < 56) - min(t) FILTER (WHERE kind = 1 AND ago < 56)) / 86400.0 AS s_span_days,
         $1::date - (max(t) FILTER (WHERE kind = 1 AND ago < 56) AT TIME ZONE 'UTC')::date AS s_days_since_last
  FROM (
    SELECT 1 AS kind, user_id, ago, t, n, c, w, rt_n, rt_sum, hint_n, hints, NULL::int AS rt FROM s
    UNION ALL
    SELECT 2, user_id, ago, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, rt FROM a WHERE correct AND rt IS NOT NULL AND ago < 56
    UNION ALL
    SELECT 3, user_id, NULL, NULL, NULL, CASE WHEN correct THEN 1 ELSE 0 END, NULL, NULL, NULL, NULL, NULL, NULL FROM recovered
  ) x
  GROUP BY user_id COLLATE "C"
),
-- The active users straight from per_user (no join); an explicit list (detect-inactivity) joins it.
users AS (
  SELECT p.user_id AS key, p.* FROM per_user p WHERE $6::boolean AND p.n_active > 0
  UNION ALL
  SELECT l.u, p.* FROM (SELECT DISTINCT u FROM unnest($5::text[]) u WHERE NOT $6::boolean AND ($7::int = 1 OR (hashtext(u) & 2147483647) % $7::int = $8::int)) l
  LEFT JOIN per_user p ON p.user_id = l.u
)
SELECT u.key AS user_id,
       COALESCE(u.n_recent, 0)::int AS n_recent, COALESCE(u.c_recent, 0)::int AS c_recent,
       COALESCE(u.n_prev, 0)::int AS n_prev, COALESCE(u.c_prev, 0)::int AS c_prev,
       hr.theta AS theta_recent, hr.se AS se_recent, hp.theta AS theta_prev,
       u.med_recent::float8 AS med_recent, u.med_prev::float8 AS med_prev,
       COALESCE(u.r_wrong, 0)::int AS r_wrong, COALESCE(u.r_n, 0)::int AS r_n, COALESCE(u.r_c, 0)::int AS r_c,
       COALESCE(u.a_attempts, 0)::int AS a_attempts, COALESCE(u.a_sessions, 0)::int AS a_sessions,
       CASE WHEN u.a_sessions >= 2 THEN (u.a_span_days / (u.a_sessions - 1))::float8 END AS a_mean_gap_days,
       COALESCE(u.a_hint_n, 0)::int AS a_hint_n, COALESCE(u.a_hints, 0)::float8 AS a_hints,
       CASE WHEN u.a_dwell_sessions > 0 THEN (u.a_dwell_s / u.a_dwell_sessions)::float8 END AS a_mean_dwell_s,
       COALESCE(u.s_sessions, 0)::int AS s_sessions,
       CASE WHEN u.s_sessions >= 2 THEN (u.s_span_days / (u.s_sessions - 1))::float8 END AS s_mean_gap_days,
       u.s_days_since_last::int AS s_days_since_last,
       COALESCE(l.theta, lm.theta) AS theta_latest,
       CASE WHEN l.user_id IS NOT NULL THEN l.se ELSE lm.se END AS se_latest,
       COALESCE(l.src, lm.src) AS theta_source,
       gl.target AS goal_target
FROM users u
-- One index probe per user for each "latest" (LATERAL … LIMIT 1 on (user_id, measured_at)), not a
-- DISTINCT ON sort of every history row: 5 s of a 52 s run at 100k learners.
LEFT JOIN LATERAL (
  SELECT h.theta, h.se FROM seedops_ability_history h
  WHERE h.user_id = u.key AND h.measured_at >= $3::timestamptz - interval '14 days' AND h.measured_at < $3::timestamptz
  ORDER BY h.measured_at DESC, h.id DESC LIMIT 1
) hr ON true
LEFT JOIN LATERAL (
  SELECT h.theta FROM seedops_ability_history h
  WHERE h.user_id = u.key AND h.measured_at >= $3::timestamptz - interval '28 days' AND h.measured_at < $3::timestamptz - interval '14 days'
  ORDER BY h.measured_at DESC, h.id DESC LIMIT 1
) hp ON true
LEFT JOIN LATERAL (
  SELECT h.user_id, h.theta, h.se, 'history'::text AS src FROM seedops_ability_history h
  WHERE h.user_id = u.key AND h.measured_at < $3::timestamptz
  ORDER BY h.measured_at DESC, h.id DESC LIMIT 1
) l ON true
LEFT JOIN LATERAL (
  SELECT m.theta, m.se, 'mirt_ability'::text AS src FROM mirt_ability m
  WHERE m.user_id = u.key AND m.fitted_at < $3::timestamptz
  ORDER BY m.fitted_at DESC, m.version DESC LIMIT 1
) lm ON true
LEFT JOIN LATERAL (
  SELECT g.target_level::float8 AS target FROM interest_goal g
  WHERE g.user_id = u.key AND g.target_level IS NOT NULL
  ORDER BY g.priority ASC NULLS LAST, g.target_level DESC, g.topic_id LIMIT 1
) gl ON true
ORDER BY u.key`

/**
 * τ² for the Bayesian P: the population variance of weekly θ change, from the ability history up
 * to as_of (the last 52 weeks): each user's last estimate per ISO week, differences between
 * consecutive calendar weeks only. $1 = end instant (as_of + 1 day 00:00 UTC).
 */
export const WEEKLY_THETA_CHANGE = `
WITH wk AS (
  SELECT DISTINCT ON (user_id, date_trunc('week', measured_at AT TIME ZONE 'UTC'))
         user_id, date_trunc('week', measured_at AT TIME ZONE 'UTC') AS week, theta
  FROM seedops_ability_history
  WHERE measured_at < $1::timestamptz AND measured_at >= $1::timestamptz - interval '364 days'
  ORDER BY user_id, date_trunc('week', measured_at AT TIME ZONE 'UTC'), measured_at DESC, id DESC
), d AS (
  SELECT theta - lag(theta) OVER w AS delta, week - lag(week) OVER w AS step
  FROM wk WINDOW w AS (PARTITION BY user_id ORDER BY week)
)
SELECT count(*)::int AS n, var_pop(delta)::float8 AS var FROM d WHERE step = interval '7 days'`

/** One bulk upsert: the KPI keys merge into kpis (`||`), so keys owned by others survive. */
export const UPSERT_KPIS = `
INSERT INTO weekly_kpi AS w (user_id, week_start, kpis, created_at, updated_at)
SELECT u, $1::date, k::jsonb, now(), now() FROM unnest($2::text[], $3::text[]) AS t(u, k)
ON CONFLICT (user_id, week_start) DO UPDATE
  SET kpis = w.kpis || EXCLUDED.kpis, updated_at = now()`
