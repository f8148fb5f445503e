-- setup_sample.sql -- the legacy side of the sample migration, as a replication
-- service or pg_dump would have left it, before `pgxform run -f jobs.yaml`:
--
--   1. legacy_schema.sql     the source tables (schema legacy), empty
--   2. legacy_data.sql       ~1.05 million deterministic rows, keys, ANALYZE
--
-- The target side is the DBAs' versioned scripts, which `pgxform run` (or
-- `pgxform migrate`) applies itself: V1__target_schemas.sql (the target
-- schemas orders and logistics) and R__transforms.sql (the functions xf.*).
--
--   psql -X -v ON_ERROR_STOP=1 -f sql/setup_sample.sql
--
-- The database must not hold the sample yet; reset_sample.sql removes it.
-- scripts/demo runs the same two files one by one.

\set ON_ERROR_STOP 1
\ir legacy_schema.sql
\ir legacy_data.sql
