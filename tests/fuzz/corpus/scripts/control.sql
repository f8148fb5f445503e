V1.2__x.sql
CREATE TABLE t (); COMMIT; SELECT $$;$$, E'\'; BEGIN', "a;b" /* c /* d */ */ -- e
