-- pgxform state schema, version 6: the size each batch asked for. Batches are sized by time
-- (target_batch_ms), so the size varies from batch to batch; a batch whose rows fall short of
-- its size is the last of its range, which the trend leaves out. NULL for an explicit range
-- (a bisected half, a retried failed range) and for rows logged before version 6.
ALTER TABLE @schema@.batch_log ADD COLUMN batch_size bigint;
