-- pgxform state schema, version 3: the history of the SQL scripts of `scripts_dir:`
-- (see runner/script_migrator.h). @schema@ is replaced by the state schema's quoted name.

-- One row per script. A versioned (V) script's row is written once, in the transaction that
-- applied it (after it, for a no-transaction script); a repeatable (R) script's row is
-- replaced each time it is applied again. A script that failed has no row.
CREATE TABLE @schema@.script_history (
  script       text PRIMARY KEY,             -- the file name: V1.2__orders.sql, R__transforms.sql
  type         text NOT NULL CHECK (type IN ('V', 'R')),
  version      text UNIQUE,                  -- as in the file name; NULL for an R script
  description  text NOT NULL,                -- from the file name, '_' read as a space
  checksum     text NOT NULL,                -- FNV-1a 64 of the normalised text, 16 hex digits
  applied_at   timestamptz NOT NULL DEFAULT now(),
  applied_by   text NOT NULL DEFAULT current_user,
  runner       text,                         -- host:pid of the runner that applied it
  duration_ms  double precision NOT NULL,    -- the script's own statements, not the commit
  CHECK ((type = 'V') = (version IS NOT NULL))
);
