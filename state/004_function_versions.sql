-- pgxform state schema, version 4: which version of its function processed a job's batches.
-- job_state.fn_version is the md5 of the function's definition (whitespace folded) that the job
-- is pinned to; a run refuses a resumed job whose function changed, unless told to accept it.
ALTER TABLE @schema@.job_state ADD COLUMN fn_version text;
ALTER TABLE @schema@.batch_log ADD COLUMN fn_version text;
