-- pgxform state schema, version 1.
-- @schema@ is replaced by the state schema's quoted name (default "pgxform").
-- Applied by the runner under an advisory lock, in one transaction, on first use.

CREATE TABLE @schema@.job_state (
  job            text PRIMARY KEY,
  list           text NOT NULL,
  status         text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'done', 'failed')),
  last_key       text,             -- the key column's text form; NULL before the first batch
  rows_done      bigint NOT NULL DEFAULT 0,
  batches_done   bigint NOT NULL DEFAULT 0,
  slices         integer NOT NULL DEFAULT 1,
  started_at     timestamptz,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz,
  error          text,             -- the last permanent error, with its batch below
  sqlstate       text,
  error_first_key text,
  error_last_key  text,
  runner         text              -- host:pid of the runner that last claimed the job
);

-- One cursor per slice of a job run with `parallel: K` (K > 1). Slice i covers the keys
-- k with lo_key < k <= hi_key (NULL bounds are open); last_key starts at lo_key.
CREATE TABLE @schema@.job_slice (
  job          text NOT NULL REFERENCES @schema@.job_state (job) ON DELETE CASCADE,
  slice        integer NOT NULL,
  lo_key       text,
  hi_key       text,
  status       text NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'running', 'done', 'failed')),
  last_key     text,
  rows_done    bigint NOT NULL DEFAULT 0,
  batches_done bigint NOT NULL DEFAULT 0,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  runner       text,
  PRIMARY KEY (job, slice)
);

CREATE TABLE @schema@.batch_log (
  job          text NOT NULL,
  batch_no     bigint NOT NULL,     -- 1, 2, ... per job, in commit order
  slice        integer NOT NULL DEFAULT 0,
  first_key    text NOT NULL,
  last_key     text NOT NULL,
  rows         bigint NOT NULL,     -- leading-table rows in [first_key, last_key]
  rows_written bigint,              -- what the function returned; NULL for a void function
  started_at   timestamptz NOT NULL,
  duration_ms  double precision NOT NULL,
  PRIMARY KEY (job, batch_no)
);
