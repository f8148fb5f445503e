-- check_counts.sql -- source vs target row counts of the sample migration.
--
--   psql -X -v ON_ERROR_STOP=1 -f sql/check_counts.sql
--
-- Prints one row per job: source table, its row count, target table, its
-- row count, and status 'ok' or 'MISMATCH'.  Every legacy row maps to
-- exactly one target row, so after a complete `pgxform run` all four must be
-- 'ok'.  If any is not, the script ends with an error (psql exits with
-- status 3 under ON_ERROR_STOP), so scripts and tests can rely on the exit
-- status alone.
--
-- For machine reading use unaligned tuples-only output:
--   psql -X -At -F '|' -v ON_ERROR_STOP=1 -f sql/check_counts.sql
-- prints, in this order,
--   legacy.customers|50000|orders.customers|50000|ok
--   legacy.shop_orders|...|orders.orders|...|ok
--   legacy.order_lines|...|orders.order_lines|...|ok
--   legacy.logistic_events|...|logistics.events|...|ok
--   check_counts: all 4 target tables match their source
-- (the last line has no '|').

\set QUIET on
SET client_min_messages = warning;

CREATE TEMP TABLE pg_temp.check_counts ON COMMIT PRESERVE ROWS AS
              SELECT 1 AS ord, 'legacy.customers' AS source_table, (SELECT count(*) FROM legacy.customers) AS source_rows,
                     'orders.customers' AS target_table, (SELECT count(*) FROM orders.customers) AS target_rows
    UNION ALL SELECT 2, 'legacy.shop_orders', (SELECT count(*) FROM legacy.shop_orders),
                     'orders.orders', (SELECT count(*) FROM orders.orders)
    UNION ALL SELECT 3, 'legacy.order_lines', (SELECT count(*) FROM legacy.order_lines),
                     'orders.order_lines', (SELECT count(*) FROM orders.order_lines)
    UNION ALL SELECT 4, 'legacy.logistic_events', (SELECT count(*) FROM legacy.logistic_events),
                     'logistics.events', (SELECT count(*) FROM logistics.events);

SELECT source_table, source_rows, target_table, target_rows,
       CASE WHEN source_rows = target_rows THEN 'ok' ELSE 'MISMATCH' END AS status
FROM pg_temp.check_counts
ORDER BY ord;

SELECT count(*) FILTER (WHERE source_rows <> target_rows) AS check_mismatches,
       count(*) FILTER (WHERE source_rows <> target_rows) = 0 AS check_all_ok
FROM pg_temp.check_counts \gset

DROP TABLE pg_temp.check_counts;

\if :check_all_ok
\echo 'check_counts: all 4 target tables match their source'
\else
\echo 'check_counts:' :check_mismatches 'of 4 target tables do not match their source'
DO $$ BEGIN RAISE EXCEPTION 'check_counts: target row counts differ from source'; END $$;
\endif
