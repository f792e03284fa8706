-- Up Migration
-- used_hints is a count (0, 1, 2, 3 …); A_t's h needs the average count per attempt, which the
-- boolean hint_used cannot give. hints_used keeps it as an integer: a JSON boolean is 1/0, a
-- whole number (or a numeric string of one, "2", "2.0") is itself, the strings true/false are
-- 1/0 like hint_used; anything else (fractional, negative, too large, other text) is NULL, i.e.
-- no hint data, never a guess and never an error. hint_used is unchanged (features' "attempts
-- with a hint"). Inlined by the planner, like seedops_json_bool.
CREATE OR REPLACE FUNCTION seedops_json_count(v jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(v)
    WHEN 'boolean' THEN CASE WHEN v::boolean THEN 1 ELSE 0 END
    -- numeric comparisons, no regular expression: numbers are the common case
    WHEN 'number' THEN CASE WHEN v::numeric BETWEEN 0 AND 2147483647 AND v::numeric % 1 = 0 THEN v::numeric::integer END
    WHEN 'string' THEN CASE WHEN (v #>> '{}') ~ '^\s*[0-9]{1,9}(\.[0-9]+)?\s*$'
                            THEN CASE WHEN (v #>> '{}')::numeric % 1 = 0 THEN (v #>> '{}')::numeric::integer END
                            ELSE CASE lower(v #>> '{}') WHEN 'true' THEN 1 WHEN 'false' THEN 0 END END
  END
$$;

-- 0001's read model with hints_used appended (CREATE OR REPLACE VIEW may only add columns at the end).
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
  er.session_id,
  seedops_json_count(q.elem -> 'used_hints') AS hints_used
FROM exam_results er
CROSS JOIN LATERAL jsonb_array_elements(
  CASE WHEN jsonb_typeof(er.result_json -> 'questions') = 'array' THEN er.result_json -> 'questions' ELSE '[]'::jsonb END
) WITH ORDINALITY AS q(elem, ord)
WHERE jsonb_typeof(q.elem) = 'object'
  AND seedops_question_id(q.elem) IS NOT NULL;

-- The contract's read model (SPEC 1) keeps its columns and order; the count is appended.
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
  b.session_id,
  b.hints_used
FROM seedops_attempt_base b
LEFT JOIN question qu ON qu.id = b.item_id;

-- Down Migration
-- Deliberately empty, like 0001: a view loses no data, and hints_used is only ever added.
