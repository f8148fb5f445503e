-- pgxform state schema, version 10: jobs pinned to what they transform, and the runners'
-- worker pools.
--
-- What a job reads and with what, as the catalog resolved it when a run (or catch-up, capture)
-- first worked on the job: its leading table, key column and key type, and its function
-- (job_identity.h). A later command whose job of the same name names another table, key or
-- function is refused before it writes anything: the job's cursor, counters, batches and
-- change log are another table's. NULL: not recorded yet (a row of an older version, or after
-- `pgxform reset`): the next run records it.
ALTER TABLE @schema@.job_state
  ADD COLUMN table_schema    text,
  ADD COLUMN table_name      text,
  ADD COLUMN key_column      text,
  ADD COLUMN key_type        text,
  ADD COLUMN function_schema text,
  ADD COLUMN function_name   text;

-- One row per runner working now (run, catch-up, verify): how many workers its pool has and
-- why not more (pool_monitor.h), for status. Written by the runner when its figures change,
-- deleted when it ends; status shows only the rows of runners whose sessions are still there.
CREATE TABLE @schema@.runner_pool (
  runner           text PRIMARY KEY,             -- host:pid, as status's RUNNER column
  command          text NOT NULL,                -- run, catch-up, verify
  workers          integer NOT NULL,             -- the pool's workers now
  threads          integer NOT NULL,             -- asked: --threads, defaults.threads, set --threads
  tasks            integer NOT NULL,             -- tasks that can run now
  connections_free integer,                      -- free on the server for the runner; NULL: unknown
  reserve          integer NOT NULL,             -- --reserve-connections
  updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
