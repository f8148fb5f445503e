R__y.sql
-- pgxform: no-transaction
CREATE INDEX CONCURRENTLY i ON t (a);  

