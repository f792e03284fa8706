/** Item parameters: the calibrated ones (mirt_item_params), else those published in question.meta.irt. */
export const ITEM_PARAMS_SQL = `
SELECT item_id, (p ->> 'a')::float8 AS a, (p ->> 'b')::float8 AS b, COALESCE((p ->> 'c')::float8, 0) AS c, model, version
FROM (
  SELECT m.item_id, m.params AS p, m.model, m.version FROM mirt_item_params m
  UNION ALL
  SELECT q.id, q.meta -> 'irt', q.meta #>> '{irt,model}', q.meta #>> '{irt,version}' FROM question q
  WHERE jsonb_typeof(q.meta -> 'irt') = 'object' AND NOT EXISTS (SELECT 1 FROM mirt_item_params m WHERE m.item_id = q.id)
) s
WHERE jsonb_typeof(p -> 'a') = 'number' AND jsonb_typeof(p -> 'b') = 'number'
  AND (p ->> 'a')::float8 > 0 AND COALESCE((p ->> 'c')::float8, 0) >= 0 AND COALESCE((p ->> 'c')::float8, 0) < 1`

/**
 * The lookback's bounds for OBSERVATIONS_COPY (COPY takes no bind parameters, so they travel as
 * transaction-local settings), the stream's hash share of learners ($4 of $3; 1/0: everyone), and
 * jit off for the rest of the transaction: the planner cannot see how many answers a result_json
 * unnests to (it guesses 1 a row), the cost crosses the JIT threshold, and compiling the view's
 * expressions took 1.4 s per process on 3 M observations while saving nothing. A split read ($3 > 1)
 * is its own parallelism: no parallel workers on top (2 cores: they only competed with the streams).
 */
export const OBSERVATION_WINDOW = `
SELECT set_config('seedops.calibrate_from', $1::timestamptz::text, true), set_config('seedops.calibrate_to', $2::timestamptz::text, true),
       set_config('seedops.calibrate_parts', $3::int::text, true), set_config('seedops.calibrate_part', $4::int::text, true),
       set_config('jit', 'off', true),
       set_config('max_parallel_workers_per_gather', CASE WHEN $3::int > 1 THEN '0' ELSE current_setting('max_parallel_workers_per_gather') END, true)`

/**
 * Observations in the lookback, oldest first (so the engine's "first" duplicate rule keeps a
 * learner's first attempt), streamed as COPY text: user_id, item_id (bigint), correct (t/f).
 * A split read takes the learners whose hashtext falls in its part: a learner's rows all come
 * through one stream, in this order, which is all the duplicate rule needs. The predicate is on
 * exam_results' own column, so it is applied before the answers are unnested.
 */
export const OBSERVATIONS_COPY = `
COPY (
  SELECT b.user_id, b.item_id, b.correct
  FROM seedops_attempt_base b
  WHERE b.completed_at >= current_setting('seedops.calibrate_from')::timestamptz
    AND b.completed_at < current_setting('seedops.calibrate_to')::timestamptz
    AND (current_setting('seedops.calibrate_parts')::int = 1
         OR (hashtext(b.user_id) & 2147483647) % current_setting('seedops.calibrate_parts')::int = current_setting('seedops.calibrate_part')::int)
  ORDER BY b.completed_at, b.session_id, b.question_no
) TO STDOUT`

/**
 * Whether question q is an anchor (the mark): tagged "anchor" in meta.tags, or meta.irt.anchor = true.
 * An irt block without an `anchor` key counts as an anchor (parameters published by hand were how
 * the platform declared anchors) unless seedops wrote it: `written_by: "seedops"`, or, from before
 * that mark, a version of seedops' `<YYYY-MM-DD>.<model>` form. `anchor: false` is never an anchor
 * unless the item is also tagged.
 */
export const IS_ANCHOR = `COALESCE(
  COALESCE(q.meta -> 'tags' ? 'anchor', false)
  OR CASE WHEN jsonb_typeof(q.meta #> '{irt,anchor}') = 'boolean' THEN (q.meta #>> '{irt,anchor}')::boolean
          ELSE jsonb_typeof(q.meta -> 'irt') = 'object' AND COALESCE(q.meta #>> '{irt,written_by}', '') <> 'seedops'
               AND COALESCE(q.meta #>> '{irt,version}', '') !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[.](1PL|Rasch|2PL|3PL)$' END, false)`

/** Anchors (IS_ANCHOR) with usable published parameters: numeric a > 0 and b in meta.irt. */
export const ANCHORS = `
SELECT q.id::text AS item_id, (q.meta #>> '{irt,a}')::float8 AS a, (q.meta #>> '{irt,b}')::float8 AS b,
       COALESCE((q.meta #>> '{irt,c}')::float8, 0) AS c,
       COALESCE(q.meta -> 'tags' ? 'anchor', false) AS tagged
FROM question q
WHERE jsonb_typeof(q.meta -> 'irt') = 'object'
  AND jsonb_typeof(q.meta #> '{irt,a}') = 'number' AND jsonb_typeof(q.meta #> '{irt,b}') = 'number'
  AND (q.meta #>> '{irt,a}')::float8 > 0
  AND ${IS_ANCHOR}`

export const UPSERT_ITEMS = `
INSERT INTO mirt_item_params (item_id, model, params, version, fitted_at, se, fit)
SELECT u.item_id, $1, u.params::jsonb, $2, now(), u.se::jsonb, u.fit::jsonb
FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[]) AS u(item_id, params, se, fit)
ON CONFLICT (item_id) DO UPDATE SET model = EXCLUDED.model, params = EXCLUDED.params, version = EXCLUDED.version,
  fitted_at = EXCLUDED.fitted_at, se = EXCLUDED.se, fit = EXCLUDED.fit`

/**
 * The abilities go in by COPY into a staging table (ABILITY_COPY), then into mirt_ability and the
 * history by one statement each. Measured on 100k learners (bench data, a busy 2-core machine, best
 * of 4) against both upserts fed by unnest($text[], $float8[], …) arrays: 1.8 s vs 2.4 s when every
 * value changed (a daily run), 0.8 s vs 2.7 s for a re-run with the same values. Half of it was the
 * arrays' text form built, sent and parsed twice; the rest rows rewritten with their own values.
 */
export const ABILITY_STAGING = `CREATE TEMP TABLE seedops_calibrate_ability (user_id text NOT NULL, theta float8 NOT NULL, se float8 NOT NULL) ON COMMIT DROP`

export const ABILITY_COPY = `COPY seedops_calibrate_ability (user_id, theta, se) FROM STDIN`

export const ABILITY_STAGE_ROWS = `INSERT INTO seedops_calibrate_ability (user_id, theta, se) SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[])`

/**
 * The latest estimate per learner and model. A row whose values did not change is left as it is
 * (fitted_at: when this estimate was first fitted), so a re-run writes only what changed.
 */
export const UPSERT_ABILITY = `
INSERT INTO mirt_ability (user_id, version, theta, se, model, fitted_at)
SELECT u.user_id, $1, u.theta, u.se, $2, now()
FROM seedops_calibrate_ability u
ON CONFLICT (user_id, version) DO UPDATE SET theta = EXCLUDED.theta, se = EXCLUDED.se, model = EXCLUDED.model, fitted_at = EXCLUDED.fitted_at
WHERE (mirt_ability.theta, mirt_ability.se, mirt_ability.model) IS DISTINCT FROM (EXCLUDED.theta, EXCLUDED.se, EXCLUDED.model)`

/** The run's row per learner in the ability history (key = the run id); a re-run rewrites only what changed. */
export const UPSERT_HISTORY = `
INSERT INTO seedops_ability_history AS h (user_id, theta, se, model, version, source, key, measured_at)
SELECT u.user_id, u.theta, u.se, $1, $2, $3, $4, $5::timestamptz
FROM seedops_calibrate_ability u
ON CONFLICT (user_id, key) DO UPDATE SET theta = EXCLUDED.theta, se = EXCLUDED.se, model = EXCLUDED.model,
  version = EXCLUDED.version, measured_at = EXCLUDED.measured_at, recorded_at = now()
WHERE (h.theta, h.se, h.model, h.version, h.measured_at) IS DISTINCT FROM (EXCLUDED.theta, EXCLUDED.se, EXCLUDED.model, EXCLUDED.version, EXCLUDED.measured_at)`

/** model_spec.writer marks seedops' rows: the predecessor's R service wrote into the same table. */
export const UPSERT_FIT_META = `
INSERT INTO mirt_fit_meta (run_id, model_spec, metrics, fitted_at) VALUES ($1, $2::jsonb || '{"writer":"seedops"}'::jsonb, $3::jsonb, now())
ON CONFLICT (run_id) DO UPDATE SET model_spec = EXCLUDED.model_spec, metrics = EXCLUDED.metrics, fitted_at = EXCLUDED.fitted_at`

/**
 * Optional write-back of calibrated parameters into question.meta.irt, marked not an anchor
 * (`anchor: false, written_by: "seedops"`), so the next fixed-anchor run keeps these items free.
 * Anchors (IS_ANCHOR) are never written over, whatever the anchor mode.
 */
export const WRITE_BACK = `
UPDATE question q SET meta = jsonb_set(COALESCE(q.meta, '{}'::jsonb), '{irt}', u.irt::jsonb || '{"anchor":false,"written_by":"seedops"}'::jsonb, true)
FROM unnest($1::bigint[], $2::text[]) AS u(item_id, irt)
WHERE q.id = u.item_id AND NOT ${IS_ANCHOR}`

/**
 * The calibration's rows in the item-parameter history (0004), under its version: a re-run of the
 * same version replaces them (DELETE_VERSION_HISTORY first), so the history holds what the last run
 * for that version wrote. Same values as UPSERT_ITEMS, same fitted_at (the transaction's now()).
 */
export const DELETE_VERSION_HISTORY = `DELETE FROM seedops_item_params_history WHERE version = $1`

export const INSERT_VERSION_HISTORY = `
INSERT INTO seedops_item_params_history (version, item_id, model, params, se, fit, fitted_at, run_id, source)
SELECT $2, u.item_id, $1, u.params::jsonb, u.se::jsonb, u.fit::jsonb, now(), $7, 'calibrate-irt'
FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[]) AS u(item_id, params, se, fit)`
