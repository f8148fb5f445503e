-- pgxform state schema, version 8: the number of workers of the running runners, set live with
-- `pgxform set --threads N` (or an UPDATE of the row scope 'all', name ''). A runner started
-- with this state schema reads it with the rest of the control rows and grows or shrinks its
-- worker pool to N; NULL: the --threads or defaults.threads it was started with.
ALTER TABLE @schema@.control ADD COLUMN threads integer CHECK (threads > 0);
