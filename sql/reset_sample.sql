-- reset_sample.sql -- removes everything the sample migration created:
-- the legacy data, both target schemas, the transform functions and
-- pgxform's progress records (state_schema in jobs.yaml: pgxform).
--
--   psql -X -v ON_ERROR_STOP=1 -f sql/reset_sample.sql
--
-- DESTRUCTIVE: meant for a scratch database only.  scripts/demo runs it
-- against an existing server only when PGXFORM_DEMO_RESET=1.

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS legacy, orders, logistics, xf, pgxform CASCADE;
