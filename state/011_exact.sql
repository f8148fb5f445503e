-- pgxform state schema, version 11: exactly once across run and catch-up (docs/catch-up.md).
--
-- change_log.via: what recorded a row. 0: a change of the job's leading table (key: the
-- changed row's key). N > 0: a change of the table of the job's N-th `changes.also:` entry
-- (key: the value of that entry's column in the changed row, old and new); catch-up maps such
-- rows to the job's keys and refreshes those at or below the cursor (change_log.h).
ALTER TABLE @schema@.change_log ADD COLUMN via smallint NOT NULL DEFAULT 0;
-- The drain walks a job's rows of one kind in arrival order; a main-pass batch and a refresh
-- probe them by key.
DROP INDEX @schema@.change_log_job_id;
CREATE INDEX change_log_job_via_id ON @schema@.change_log (job, via, id);

-- A key whose refresh failed in catch-up is set aside here like a failed range (first_key =
-- last_key = the key), with its error, until `retry-failed` or the next catch-up refreshes it.
ALTER TABLE @schema@.failed_batches ADD COLUMN catch_up boolean NOT NULL DEFAULT false;

-- Why the job's catch-up takes no batch now ("throttled: ...", "pause_ms 5000"), beside
-- `waiting`, which is the main pass's; NULL while it works.
ALTER TABLE @schema@.job_state ADD COLUMN catch_up_waiting text;
