-- Up Migration
-- seedops base schema. Platform source tables are created only where absent (an empty
-- database such as the embedded demo); nothing here drops or rewrites platform rows.


CREATE TABLE IF NOT EXISTS exam_results (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id text UNIQUE,
  user_id text NOT NULL,
  exam_id int,
  status text,
  result_json jsonb,
  score_raw numeric,
  standard_error numeric,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz
);
CREATE INDEX IF NOT EXISTS exam_results_result_json_gin ON exam_results USING gin (result_json);
CREATE INDEX IF NOT EXISTS exam_results_user_id_idx ON exam_results (user_id);
CREATE INDEX IF NOT EXISTS exam_results_completed_at_idx ON exam_results ((COALESCE(updated_at, created_at)));

CREATE TABLE IF NOT EXISTS question (
  id bigint PRIMARY KEY,
  topic_id text,
  difficulty numeric,
  meta jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE IF NOT EXISTS interest_goal (
  user_id text NOT NULL,
  topic_id text NOT NULL,
  target_level numeric(6,3),
  priority smallint,
  PRIMARY KEY (user_id, topic_id)
);

-- Tolerant casts: a malformed value yields NULL instead of failing the whole view
-- (the predecessor's bare casts made one bad row break every reader).
-- The question id of one result_json.questions[] element, or NULL when it is missing or not a
-- whole number. JSON numbers (the common case) avoid the regular expression, which costs more
-- than the unnesting itself on a million rows. Inlined by the planner (its argument is a column).
CREATE OR REPLACE FUNCTION seedops_question_id(e jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(e -> 'question_id')
    -- jsonb prints numbers in plain notation: digits, maybe '-' and '.'; text tests are cheap.
    WHEN 'number' THEN CASE WHEN strpos(e ->> 'question_id', '.') = 0 AND left(e ->> 'question_id', 1) <> '-'
                             AND length(e ->> 'question_id') <= 18
                            THEN (e ->> 'question_id')::bigint END
    WHEN 'string' THEN CASE WHEN (e ->> 'question_id') ~ '^\s*[0-9]{1,18}\s*$' THEN btrim(e ->> 'question_id')::bigint END
  END
$$;

-- A JSON flag as boolean: true/false, 1/0, or the strings true/t/1/false/f/0 (any case); else NULL.
-- Inlined by the planner, like seedops_question_id.
CREATE OR REPLACE FUNCTION seedops_json_bool(v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(v)
    WHEN 'boolean' THEN v::boolean
    WHEN 'number' THEN CASE v #>> '{}' WHEN '1' THEN true WHEN '0' THEN false END
    WHEN 'string' THEN CASE lower(v #>> '{}') WHEN 'true' THEN true WHEN 't' THEN true WHEN '1' THEN true
                                             WHEN 'false' THEN false WHEN 'f' THEN false WHEN '0' THEN false END
  END
$$;

-- attempt.student_id: the user id when it is a uuid, else a stable md5-derived one.
CREATE OR REPLACE FUNCTION seedops_student_uuid(user_id text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN user_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              THEN user_id::uuid ELSE md5(user_id)::uuid END
$$;

-- The hot-path read model: one row per answered question, no window function (PERF-NOTES:
-- a window in the read model makes every read sort the whole history). A time predicate on
-- completed_at is pushed down to exam_results and its expression index, before unnesting.
-- The tolerant casts branch on jsonb_typeof first, so regular expressions (which on a million
-- rows cost more than the unnesting itself) run only on string values. Out-of-range values
-- become NULL, never an error.
CREATE OR REPLACE VIEW seedops_attempt_base AS
SELECT
  er.id AS exam_result_id,
  q.ord::int AS question_no,
  er.user_id,
  seedops_question_id(q.elem) AS item_id,
  q.elem ->> 'topic' AS topic,
  -- is_correct wins over the legacy `correct`; neither means wrong
  COALESCE(seedops_json_bool(q.elem -> 'is_correct'), seedops_json_bool(q.elem -> 'correct'), false) AS correct,
  CASE jsonb_typeof(q.elem -> 'time_spent_sec')
    WHEN 'number' THEN CASE WHEN (q.elem -> 'time_spent_sec')::numeric BETWEEN 0 AND 2000000
                            THEN round((q.elem -> 'time_spent_sec')::numeric * 1000)::int END
    WHEN 'string' THEN CASE WHEN (q.elem ->> 'time_spent_sec') ~ '^\s*[0-9]{1,7}(\.[0-9]+)?\s*$'
                             AND (q.elem ->> 'time_spent_sec')::numeric <= 2000000
                            THEN round((q.elem ->> 'time_spent_sec')::numeric * 1000)::int END
  END AS response_time_ms,
  -- used_hints may be a boolean or a count
  CASE jsonb_typeof(q.elem -> 'used_hints')
    WHEN 'boolean' THEN (q.elem -> 'used_hints')::boolean
    WHEN 'number' THEN (q.elem -> 'used_hints')::numeric > 0
    WHEN 'string' THEN CASE WHEN (q.elem ->> 'used_hints') ~ '^\s*[0-9]{1,9}(\.[0-9]+)?\s*$' THEN (q.elem ->> 'used_hints')::numeric > 0
                            ELSE CASE lower(q.elem ->> 'used_hints') WHEN 'true' THEN true WHEN 'false' THEN false END END
  END AS hint_used,
  er.created_at AS started_at,
  COALESCE(er.updated_at, er.created_at) AS completed_at,
  er.session_id
FROM exam_results er
CROSS JOIN LATERAL jsonb_array_elements(
  CASE WHEN jsonb_typeof(er.result_json -> 'questions') = 'array' THEN er.result_json -> 'questions' ELSE '[]'::jsonb END
) WITH ORDINALITY AS q(elem, ord)
WHERE jsonb_typeof(q.elem) = 'object'
  AND seedops_question_id(q.elem) IS NOT NULL;

-- The standard read model of the contract (SPEC 1), with user_id text and attempt_no.
CREATE OR REPLACE VIEW attempt AS
SELECT
  md5(b.exam_result_id::text || ':' || b.question_no)::uuid AS id,
  seedops_student_uuid(b.user_id) AS student_id,
  b.user_id,
  b.item_id,
  COALESCE(qu.topic_id::text, b.topic) AS topic_id,
  b.correct,
  b.response_time_ms,
  b.hint_used,
  b.started_at,
  b.completed_at,
  row_number() OVER (PARTITION BY b.user_id, b.item_id ORDER BY b.completed_at, b.session_id, b.question_no)::int AS attempt_no,
  b.session_id
FROM seedops_attempt_base b
LEFT JOIN question qu ON qu.id = b.item_id;

-- Rows the read model leaves out, with the reason; verify counts and names them.
CREATE OR REPLACE VIEW seedops_malformed_exam_results AS
SELECT er.id, er.session_id, er.user_id, COALESCE(er.updated_at, er.created_at) AS completed_at,
  CASE
    WHEN er.result_json IS NULL THEN 'result_json is null'
    WHEN jsonb_typeof(er.result_json) <> 'object' THEN 'result_json is not an object'
    WHEN er.result_json -> 'questions' IS NULL THEN 'result_json.questions is missing'
    WHEN jsonb_typeof(er.result_json -> 'questions') <> 'array' THEN 'result_json.questions is not an array'
    ELSE 'questions with a missing or non-numeric question_id'
  END AS reason,
  CASE WHEN jsonb_typeof(er.result_json) = 'object' AND jsonb_typeof(er.result_json -> 'questions') = 'array'
       THEN (SELECT count(*) FROM jsonb_array_elements(er.result_json -> 'questions') e
             WHERE jsonb_typeof(e) <> 'object' OR seedops_question_id(e) IS NULL)::int
       ELSE NULL END AS bad_questions
FROM exam_results er
WHERE er.result_json IS NULL
   OR jsonb_typeof(er.result_json) <> 'object'
   OR jsonb_typeof(er.result_json -> 'questions') IS DISTINCT FROM 'array'
   OR EXISTS (SELECT 1 FROM jsonb_array_elements(er.result_json -> 'questions') e
              WHERE jsonb_typeof(e) <> 'object' OR seedops_question_id(e) IS NULL);

-- Derived tables (names and keys read by the platform API).
CREATE TABLE IF NOT EXISTS features_topic_daily (
  user_id text NOT NULL,
  topic_id text NOT NULL,
  date date NOT NULL,
  attempts int NOT NULL,
  correct int NOT NULL,
  avg_time_ms double precision,
  rt_median double precision,
  hints int,
  theta_estimate double precision,
  theta_sd double precision,
  improvement double precision,
  last_seen_at timestamptz,
  computed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, topic_id, date)
);
CREATE INDEX IF NOT EXISTS features_topic_daily_date_idx ON features_topic_daily (date);

CREATE TABLE IF NOT EXISTS weekly_kpi (
  user_id text NOT NULL,
  week_start date NOT NULL,
  kpis jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, week_start)
);

CREATE TABLE IF NOT EXISTS mirt_item_params (
  item_id bigint PRIMARY KEY,
  model text NOT NULL,
  params jsonb NOT NULL,
  version text,
  fitted_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE mirt_item_params ADD COLUMN IF NOT EXISTS se jsonb;
ALTER TABLE mirt_item_params ADD COLUMN IF NOT EXISTS fit jsonb;

CREATE TABLE IF NOT EXISTS mirt_ability (
  user_id text NOT NULL,
  version text NOT NULL,
  theta double precision NOT NULL,
  se double precision,
  model text,
  fitted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, version)
);

CREATE TABLE IF NOT EXISTS mirt_fit_meta (
  run_id text PRIMARY KEY,
  model_spec jsonb,
  metrics jsonb,
  fitted_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS report_artifacts (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL,
  week_start date NOT NULL,
  format text NOT NULL,
  url text NOT NULL,
  generated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, week_start, format)
);

-- seedops' own: append-only ability history (one row per estimate; `key` makes re-runs idempotent).
CREATE TABLE IF NOT EXISTS seedops_ability_history (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL,
  theta double precision NOT NULL,
  se double precision,
  model text,
  version text,
  source text NOT NULL,
  key text NOT NULL,
  measured_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, key)
);
CREATE INDEX IF NOT EXISTS seedops_ability_history_user_time_idx ON seedops_ability_history (user_id, measured_at);

-- seedops' own: the stage run log read by `status`, `verify` and `doctor`.
CREATE TABLE IF NOT EXISTS seedops_stage_runs (
  id bigserial PRIMARY KEY,
  stage text NOT NULL,
  params jsonb NOT NULL DEFAULT '{}'::jsonb,
  as_of date,
  dry_run boolean NOT NULL DEFAULT false,
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  rows jsonb,
  error text,
  host text,
  pid int,
  seedops_version text
);
CREATE INDEX IF NOT EXISTS seedops_stage_runs_stage_idx ON seedops_stage_runs (stage, started_at DESC);

-- Down Migration
-- Deliberately empty: seedops never drops tables that may hold platform or derived data.
