-- Up Migration
-- A run stopped by SIGTERM/SIGINT is recorded as 'cancelled' (rolled back, nothing written),
-- apart from 'failed' (an error) and 'abandoned' (a killed process, found by the next run).
ALTER TABLE seedops_stage_runs DROP CONSTRAINT IF EXISTS seedops_stage_runs_status_check;
ALTER TABLE seedops_stage_runs ADD CONSTRAINT seedops_stage_runs_status_check
  CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned', 'cancelled'));

-- Down Migration
