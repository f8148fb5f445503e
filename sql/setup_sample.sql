-- setup_sample.sql -- everything the sample migration needs before
-- `pgxform run -f jobs.yaml`, in the order it must be applied:
--
--   1. legacy_schema.sql     the source tables (schema legacy), empty
--   2. legacy_data.sql       ~1.05 million deterministic rows, keys, ANALYZE
--   3. V1__target_schemas.sql the target schemas orders and logistics, empty
--   4. R__transforms.sql     the transform functions xf.* called by the jobs
--
--   psql -X -v ON_ERROR_STOP=1 -f sql/setup_sample.sql
--
-- The database must not hold the sample yet; reset_sample.sql removes it.
-- scripts/demo runs the same four files one by one.

\set ON_ERROR_STOP 1
\ir legacy_schema.sql
\ir legacy_data.sql
\ir V1__target_schemas.sql
\ir R__transforms.sql
