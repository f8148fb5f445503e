-- pgxform state schema, version 9: catch-up (docs/catch-up.md). A job with `changes: trigger`
-- has triggers on its leading table (change_capture.h) that append the key of every inserted,
-- updated or deleted row here, one row per changed key per statement; `pgxform catch-up`
-- refreshes the keys at or below the job's cursor through the job's refresh_function and
-- deletes exactly the rows it consumed, in the same transaction (change_drain.h).
CREATE TABLE @schema@.change_log (
  id         bigserial PRIMARY KEY,           -- the order changes arrived in
  job        text NOT NULL,
  key        text NOT NULL,                   -- the key's text form (ISO for dates and times)
  changed_at timestamptz NOT NULL DEFAULT pg_catalog.now()  -- the writer's transaction start
);
CREATE INDEX change_log_job_id ON @schema@.change_log (job, id);
CREATE INDEX change_log_job_key ON @schema@.change_log (job, key);

-- The batches of catch-up are logged beside the main pass's, numbered 1, 2, ... of their own;
-- profile, status and the trend read the main pass's only (catch_up false).
ALTER TABLE @schema@.batch_log ADD COLUMN catch_up boolean NOT NULL DEFAULT false;
ALTER TABLE @schema@.batch_log DROP CONSTRAINT batch_log_pkey,
  ADD PRIMARY KEY (job, catch_up, batch_no);

-- The capture triggers' functions are made per job by `pgxform capture` and `run`
-- (change_capture.h): <schema>.capture_<h>() and capture_<h>_row(), static SQL naming the job's
-- key column, so that their plans are cached for the writers' sessions.
