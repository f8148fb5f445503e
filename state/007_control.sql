-- pgxform state schema, version 7: live control of the jobs. `pgxform pause`, `resume` and
-- `set` write it, and so may any SQL session; runners read it between batches (at most once a
-- second per task) and apply it without restarting. A row sets what it names for one job
-- (scope 'job'), every job of one list ('list'), or every job ('all', name ''); for each
-- setting, a job's own row wins over its list's, which wins over 'all'. NULL: not set here.
CREATE TABLE @schema@.control (
  scope           text NOT NULL CHECK (scope IN ('job', 'list', 'all')),
  name            text NOT NULL,
  paused          boolean,
  batch_size      bigint CHECK (batch_size > 0),
  target_batch_ms integer CHECK (target_batch_ms >= 0),
  pause_ms        integer CHECK (pause_ms >= 0),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  updated_by      text NOT NULL DEFAULT current_user,
  PRIMARY KEY (scope, name)
);
-- Why a running job takes no batch now: "throttled: max_xact_age_s 12 > 10" while its runner
-- waits for the database's health (throttle:), NULL while it works. Set and cleared by the
-- runner; status shows it only while a runner holds the job.
ALTER TABLE @schema@.job_state ADD COLUMN waiting text;
