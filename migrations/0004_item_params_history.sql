-- Up Migration
-- Every calibration's item parameters under its version. mirt_item_params stays the platform's
-- current view (one row per item); this table keeps each version's rows so a calibration can be
-- compared with the one before it (verify irt's drift check) and undone (irt rollback).
-- run_id is the calibration's mirt_fit_meta row (NULL when unknown, e.g. another writer's rows);
-- source says who wrote the row: calibrate-irt, backfill (this migration), rollback (a current row
-- found missing from the history when a rollback replaced it).
-- model is nullable like an adopted mirt_item_params.model, whose rows the backfill copies as they are.
CREATE TABLE IF NOT EXISTS seedops_item_params_history (
  version text NOT NULL,
  item_id bigint NOT NULL,
  model text,
  params jsonb NOT NULL,
  se jsonb,
  fit jsonb,
  fitted_at timestamptz NOT NULL,
  run_id text,
  source text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (version, item_id)
);
-- One item across versions (irt history --item, the drift check's previous value).
CREATE INDEX IF NOT EXISTS seedops_item_params_history_item ON seedops_item_params_history (item_id, fitted_at);

-- Backfill: the parameters in use become a history entry of their own version (NULL: 'legacy', as
-- mirt_ability's adoption names it), so the first calibration after this has a previous version to
-- be compared with. A seedops version (<date>.<model>) is linked to its mirt_fit_meta run id.
INSERT INTO seedops_item_params_history (version, item_id, model, params, se, fit, fitted_at, run_id, source)
SELECT COALESCE(m.version, 'legacy'), m.item_id, m.model, m.params, m.se, m.fit, COALESCE(m.fitted_at, now()),
       CASE WHEN m.version ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[.](1PL|Rasch|2PL|3PL)$'
            THEN 'calibrate-irt:' || split_part(m.version, '.', 1) || ':' || split_part(m.version, '.', 2) END,
       'backfill'
FROM mirt_item_params m
WHERE m.item_id IS NOT NULL AND m.params IS NOT NULL
ON CONFLICT (version, item_id) DO NOTHING;

-- Down Migration
DROP TABLE IF EXISTS seedops_item_params_history;
