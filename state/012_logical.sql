-- pgxform state schema, version 12: capture through a logical replication slot (`changes:
-- logical`, logical_capture.h), and what pgxform knows of a capture that was lost.
--
-- capture_slot: the slot and publication of the schema's jobs with changes: logical (one per
-- state schema). consumed_lsn: every change of a captured table whose transaction's commit
-- record starts before it is in change_log (or was consumed from it already). A reader moves
-- it in the transaction that inserts the change_log rows it decoded, and moves the slot to it
-- only after that transaction committed (slot_reader.h): the slot never passes a change that is
-- not durably here, and a change read twice (a kill between the COMMIT and the slot's move) is
-- recognised by its position and skipped.
CREATE TABLE @schema@.capture_slot (
  slot         text PRIMARY KEY,
  publication  text NOT NULL,
  consumed_lsn pg_lsn NOT NULL,
  read_at      timestamptz,                                   -- the last read that committed
  created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- capture_table: what the slot's reader records for each job with changes: logical: the column
-- whose values go to change_log (via 0: the leading table's key; via N: the column of the job's
-- N-th `changes.also:` table) and its type, as installed. Any runner or catch-up of the schema
-- reads the slot for every job, with no jobs file: this is what it needs to know.
CREATE TABLE @schema@.capture_table (
  job             text NOT NULL,
  via             smallint NOT NULL,
  table_oid       oid NOT NULL,
  table_name      text NOT NULL,  -- "schema"."table", for messages
  column_name     text NOT NULL,
  column_type     text NOT NULL,  -- format_type() of the column
  column_category text NOT NULL,  -- pg_type.typcategory of it
  PRIMARY KEY (job, via)
);

-- Why a capturing job's change log may lack changes: a TRUNCATE the slot saw, a capture found
-- missing and installed again. Status and catch-up say it until `pgxform reset JOB` clears it.
ALTER TABLE @schema@.job_state ADD COLUMN capture_lost text;

-- Whether `value` (a key as change_log holds it) is a value of `type`: catch-up sets aside, with
-- the reason, a key its job's key type cannot read (a log row written before the key's type
-- changed, or by hand), instead of failing on it for ever (change_log.h: unreadable_keys_query).
CREATE FUNCTION @schema@.key_reads_as(value text, type regtype) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
BEGIN
  EXECUTE 'SELECT $1::' || type::text USING value;
  RETURN true;
EXCEPTION WHEN others THEN
  RETURN false;
END $$;
