-- pgxform state schema, version 2: ranges set aside by `on_error: skip`.
-- A row is written in the same transaction that moves the job's cursor past the range, so a
-- skipped range is never lost: it is either still ahead of the cursor or recorded here.

CREATE TABLE @schema@.failed_batches (
  id           bigserial PRIMARY KEY,
  job          text NOT NULL,
  slice        integer NOT NULL DEFAULT 0,
  first_key    text NOT NULL,
  last_key     text NOT NULL,
  sqlstate     text,
  error        text NOT NULL,
  attempts     integer NOT NULL DEFAULT 1,
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  resolved_at  timestamptz            -- set by retry-failed once the range went through
);
CREATE INDEX ON @schema@.failed_batches (job) WHERE resolved_at IS NULL;
