-- pgxform state schema, version 5: the database's own counters for each batch, from the top
-- node of the batch statement's EXPLAIN (ANALYZE, BUFFERS): every 8 kB block the batch
-- touched, the function's own statements included (as pg_stat_statements names them).
-- NULL for rows logged before version 5.
ALTER TABLE @schema@.batch_log
  ADD COLUMN shared_blks_hit bigint,      -- found in shared buffers
  ADD COLUMN shared_blks_read bigint,     -- read from the OS (page cache or disk)
  ADD COLUMN shared_blks_dirtied bigint,  -- first changed by this batch
  ADD COLUMN shared_blks_written bigint,  -- written out by this batch to make room
  ADD COLUMN local_blks_hit bigint,       -- temporary tables' blocks, found in local buffers
  ADD COLUMN local_blks_read bigint,      -- temporary tables' blocks, read
  ADD COLUMN temp_blks_read bigint,       -- sorts and hashes that spilled past work_mem, read
  ADD COLUMN temp_blks_written bigint;    -- ... and written
