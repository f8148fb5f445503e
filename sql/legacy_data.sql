-- legacy_data.sql -- fills the legacy tables of legacy_schema.sql with
-- 1,047,568 rows of sample data, entirely in SQL.
--
-- Deterministic: no random(); every value is computed from the row's number
-- with the integer hash h() below, so every run, on every machine, loads
-- the very same rows:
--
--   table                    rows     keys (min .. max)
--   legacy.customers          50,000  2 .. 209,998             (gap after #20,000)
--   legacy.shop_orders       200,000  1,000,002 .. 1,902,600   (gap after #120,000)
--   legacy.order_lines       483,913  5,000,006 .. 6,000,004   (1-4 per order, ~3 % deleted)
--   legacy.logistic_events   313,655  9,000,126,304 .. 9,000,799,972 (beyond int4)
--
-- Keys have gaps everywhere: a keyset batch never holds "last - first + 1"
-- rows, and some stretches of the key range are empty.
--
-- Rows are inserted first, primary keys built afterwards, then ANALYZE: a few
-- seconds on 2 cores (about 7 s).  Run with psql -v ON_ERROR_STOP=1 after
-- legacy_schema.sql.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET maintenance_work_mem = '256MB';
SET synchronous_commit = off;
-- The monolith stored shop-local time; all generated timestamps are meant as
-- Europe/Berlin wall-clock times.

-- ---------------------------------------------------------------------------
-- Helpers (session-temporary; they vanish when psql disconnects).  All are
-- one-line SQL functions that the planner inlines, so they cost little.
-- ---------------------------------------------------------------------------

-- h(n, s): a deterministic pseudo-random number in [0, 65535] for row n and
-- "stream" s.  hashint8extended() is the built-in 64-bit hash PostgreSQL
-- uses for hash partitioning: seeded, fast, well mixed, the same on every
-- platform and stable across versions (changing it would break
-- hash-partitioned tables on upgrade).
CREATE FUNCTION pg_temp.h(n bigint, s int) RETURNS int
LANGUAGE sql IMMUTABLE AS
$$ SELECT (hashint8extended(n, s) & 65535)::int $$;

-- Customer number k (1..50000) -> customer id.  Steps of 2 and 5, and the
-- ids of customers after #20,000 jump by 60,000 (a GDPR purge in 2019 removed
-- a whole block).
CREATE FUNCTION pg_temp.cust_id(k bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS
$$ SELECT k * 3 - k % 3 + CASE WHEN k > 20000 THEN 60000 ELSE 0 END $$;

-- Customer k's country as the monolith stored it: mixed case, stray blanks,
-- 'UK' and 'uk' for Great Britain.  Germany is the big market.
CREATE FUNCTION pg_temp.cust_country(k bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT (ARRAY['de','DE','De',' de','DE ','de','DE','at','AT','ch',
                 'CH ','uk','UK','gb','fr','FR','nl','it','pl','us'])[1 + pg_temp.h(k, 3) % 20] $$;

-- Order number j (1..200000) -> order id, customer number, order time.
-- Orders after #120,000 jump by 500,000 ids (the 2021 re-platforming started
-- a new id block).  Orders are spread evenly over 2017-01-01 .. 2024-11 in
-- shop-local time, about 1,245 s apart, and only go to customers that
-- already existed (customer k was created at about k * 4,980 s).
CREATE FUNCTION pg_temp.order_id(j bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS
$$ SELECT 1000000 + j * 2 + (j / 997) * 13 + CASE WHEN j > 120000 THEN 500000 ELSE 0 END $$;

CREATE FUNCTION pg_temp.order_cust(j bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS
$$ SELECT 1 + pg_temp.h(j, 11)::bigint * greatest(1, j / 4) / 65536 $$;

CREATE FUNCTION pg_temp.order_time(j bigint) RETURNS timestamp
LANGUAGE sql IMMUTABLE AS
$$ SELECT timestamp '2017-01-01 00:00' + (j * 1245 + pg_temp.h(j, 12) % 1200) * interval '1 second' $$;

-- Status codes: C cancelled 6 %, R returned 8 %, S shipped otherwise; the
-- newest 1,500 orders are still N new / P paid / S.
CREATE FUNCTION pg_temp.order_status(j bigint) RETURNS char
LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE
            WHEN j > 198500 THEN (ARRAY['N','P','S'])[1 + pg_temp.h(j, 13) % 3]
            WHEN pg_temp.h(j, 13) % 100 < 6 THEN 'C'
            WHEN pg_temp.h(j, 13) % 100 < 14 THEN 'R'
            ELSE 'S'
          END $$;

-- The VAT rate charged for an order shipped to country c at local time t:
-- 0 for exports (outside the EU; Great Britain only since Brexit on
-- 2021-01-01), German rates otherwise, including the temporary cut to 16 % /
-- 5 % from July to December 2020.
CREATE FUNCTION pg_temp.vat(c text, t timestamp, reduced boolean) RETURNS numeric
LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE
            WHEN upper(trim(c)) IN ('CH', 'US') THEN 0.000
            WHEN upper(trim(c)) IN ('GB', 'UK') AND t >= '2021-01-01' THEN 0.000
            WHEN t >= '2020-07-01' AND t < '2021-01-01' THEN CASE WHEN reduced THEN 0.050 ELSE 0.160 END
            ELSE CASE WHEN reduced THEN 0.070 ELSE 0.190 END
          END $$;

BEGIN;

-- ---------------------------------------------------------------------------
-- legacy.customers: 50,000 rows
-- ---------------------------------------------------------------------------
INSERT INTO legacy.customers (id, cust_name, email, country, created_at, deleted_flag)
SELECT pg_temp.cust_id(k),
       -- 'LASTNAME, firstname' with the first name in any case
       upper(ln) || ', ' || CASE pg_temp.h(k, 4) % 3 WHEN 0 THEN lower(fn) WHEN 1 THEN fn ELSE upper(fn) END,
       -- 2 % without address; the rest with blanks and capitals here and there
       CASE WHEN pg_temp.h(k, 5) % 50 = 0 THEN NULL
            WHEN pg_temp.h(k, 5) % 4 = 0 THEN '  ' || fn || '.' || mail_ln || k || '@Example.COM'
            WHEN pg_temp.h(k, 5) % 4 = 1 THEN upper(fn || '.' || mail_ln) || k || '@mail.example.org '
            ELSE lower(fn || '.' || mail_ln) || k || '@example.net'
       END,
       pg_temp.cust_country(k),
       timestamp '2017-01-01 00:00' + (k * 4980 - 4000 + pg_temp.h(k, 6) % 3600) * interval '1 second',
       CASE WHEN pg_temp.h(k, 7) % 25 = 0 THEN 'Y' ELSE 'N' END
FROM (
    SELECT k,
           (ARRAY['Anna','Jonas','Lea','Lukas','Mia','Finn','Emma','Paul','Sofia','Elias',
                  'Marie','Noah','Hanna','Ben','Lena','Felix','Clara','Jan','Ida','Tom'])[1 + pg_temp.h(k, 1) % 20] AS fn,
           ln,
           translate(lower(replace(ln, ' ', '')), 'äöü''', 'aou') AS mail_ln
    FROM (
        SELECT k,
               (ARRAY['Müller','Schmidt','Schneider','Fischer','Weber','Meyer','Wagner','Becker',
                      'Schulz','Hoffmann','Schäfer','Koch','Bauer','Richter','Klein','Wolf',
                      'van der Berg','O''Brien','Rossi','Nowak'])[1 + pg_temp.h(k, 2) % 20] AS ln
        FROM generate_series(1, 50000) AS k
    ) names
) c;

-- ---------------------------------------------------------------------------
-- legacy.shop_orders: 200,000 rows.  Ship country is the customer's, in its
-- own mixed case; the currency follows the country (and its case is as
-- careless as everything else).
-- ---------------------------------------------------------------------------
INSERT INTO legacy.shop_orders (id, customer_id, ordered_at, status, currency, ship_country)
SELECT pg_temp.order_id(j),
       pg_temp.cust_id(k),
       pg_temp.order_time(j),
       pg_temp.order_status(j),
       CASE upper(trim(ctry))
            WHEN 'CH' THEN 'CHF'
            WHEN 'US' THEN 'usd'
            WHEN 'GB' THEN 'GBP'
            WHEN 'UK' THEN 'gbp'
            ELSE (ARRAY['EUR','EUR','eur',' EUR','Eur'])[1 + pg_temp.h(j, 14) % 5]
       END,
       -- 5 % of orders went to a different country than the customer's own
       CASE WHEN pg_temp.h(j, 15) % 20 = 0 THEN 'de' ELSE ctry END
FROM (
    SELECT j, k, pg_temp.cust_country(k) AS ctry
    FROM (SELECT j, pg_temp.order_cust(j) AS k FROM generate_series(1, 200000) AS j) o
) o;

-- ---------------------------------------------------------------------------
-- legacy.order_lines: 1 to 4 lines per order (mean 2.5), ~3 % deleted.
-- Line id = 5,000,000 + 5 * order number + line number, so ids of one order
-- are adjacent and there is a gap of at least one after every order.
-- ---------------------------------------------------------------------------
INSERT INTO legacy.order_lines (id, order_id, line_no, sku, qty, unit_price_cents, discount_cents, vat_rate)
SELECT lid,
       pg_temp.order_id(j),
       l,
       CASE p % 3 WHEN 0 THEN 'sku-' WHEN 1 THEN 'SKU-' ELSE ' Sku-' END
           || lpad(p::text, 5, '0') || CASE WHEN p % 7 = 0 THEN ' ' ELSE '' END,
       qty,
       price,
       -- one line in ten carries a 10 % discount
       CASE WHEN pg_temp.h(lid, 25) % 10 = 0 THEN qty * price / 10 ELSE 0 END,
       -- reduced-rate goods (books, food: every tenth product) always have
       -- their rate; standard-rate lines before 2019 mostly have none
       CASE WHEN p % 10 <> 0 AND ordered_at < '2019-01-01' AND pg_temp.h(lid, 26) % 4 <> 0 THEN NULL
            ELSE pg_temp.vat(ctry, ordered_at, p % 10 = 0)
       END
FROM (
    SELECT j, l, 5000000 + j * 5 + l AS lid, ctry, ordered_at,
           pg_temp.h(j * 5 + l, 23) % 5000 AS p,
           CASE WHEN pg_temp.h(j * 5 + l, 24) % 10 < 7 THEN 1 ELSE 2 + pg_temp.h(j * 5 + l, 24) % 3 END AS qty,
           199 + (pg_temp.h(j * 5 + l, 23) % 5000) * 7919 % 20000 AS price
    FROM (
        SELECT j,
               CASE WHEN pg_temp.h(j, 15) % 20 = 0 THEN 'de' ELSE pg_temp.cust_country(pg_temp.order_cust(j)) END AS ctry,
               pg_temp.order_time(j) AS ordered_at
        FROM generate_series(1, 200000) AS j
    ) o
    CROSS JOIN LATERAL generate_series(1, 1 + pg_temp.h(j, 21) % 4) AS l
) x
WHERE pg_temp.h(lid, 22) % 32 <> 0;

-- ---------------------------------------------------------------------------
-- legacy.logistic_events: the warehouse integration went live on
-- 2018-04-01, so older orders have no events.  Every shipped or returned
-- order has a 'shipped' event; 90 % of the shipped ones (all returned ones)
-- a 'delivered' event; returned ones a 'return' event.
-- event_id = 9,000,000,000 + 4 * order number + event number.
-- ---------------------------------------------------------------------------
INSERT INTO legacy.logistic_events (event_id, order_id, event_type, happened_at, payload)
SELECT 9000000000 + j * 4 + e,
       pg_temp.order_id(j),
       CASE e WHEN 0 THEN (ARRAY['SHIPPED','shipped','Shipped '])[1 + pg_temp.h(j, 32) % 3]
              WHEN 1 THEN (ARRAY['DELIVERED','delivered','Delivered'])[1 + pg_temp.h(j, 33) % 3]
              ELSE (ARRAY['RETURN','returned','Returned'])[1 + pg_temp.h(j, 34) % 3]
       END,
       ordered_at + (CASE e WHEN 0 THEN 86400 + pg_temp.h(j, 35) % 86400
                            WHEN 1 THEN 3 * 86400 + pg_temp.h(j, 36) % 172800
                            ELSE 10 * 86400 + pg_temp.h(j, 37) % (20 * 86400)
                       END) * interval '1 second',
       CASE WHEN e = 0 AND pg_temp.h(j, 38) % 20 = 0 THEN ''
            WHEN e = 0 AND pg_temp.h(j, 38) % 20 = 1 THEN NULL
            WHEN e = 0 THEN '{"carrier":"' || carrier || '","tracking":"JJD' || lpad((j * 7919 % 10000000)::text, 10, '0') || '"}'
            WHEN e = 1 AND pg_temp.h(j, 39) % 3 = 0 THEN '{"carrier":"' || carrier || '","signed_by":"neighbour"}'
            WHEN e = 1 THEN '{"carrier":"' || carrier || '"}'
            ELSE '{"carrier":"' || carrier || '","reason":"' || (ARRAY['size','damaged','late','other'])[1 + pg_temp.h(j, 40) % 4] || '"}'
       END
FROM (
    SELECT j, pg_temp.order_status(j) AS status, pg_temp.order_time(j) AS ordered_at,
           (ARRAY['dhl','DHL','dpd','ups','Hermes'])[1 + pg_temp.h(j, 31) % 5] AS carrier
    FROM generate_series(1, 200000) AS j
) o
CROSS JOIN generate_series(0, 2) AS e
WHERE o.status IN ('S', 'R')
  AND o.ordered_at >= '2018-04-01'
  AND (e = 0
       OR (e = 1 AND (o.status = 'R' OR pg_temp.h(j, 30) % 10 <> 0))
       OR (e = 2 AND o.status = 'R'));

COMMIT;

-- ---------------------------------------------------------------------------
-- Keys and indexes after the load, then fresh statistics.
-- ---------------------------------------------------------------------------
ALTER TABLE legacy.customers       ADD CONSTRAINT customers_pkey       PRIMARY KEY (id);
ALTER TABLE legacy.shop_orders     ADD CONSTRAINT shop_orders_pkey     PRIMARY KEY (id);
ALTER TABLE legacy.order_lines     ADD CONSTRAINT order_lines_pkey     PRIMARY KEY (id);
ALTER TABLE legacy.logistic_events ADD CONSTRAINT logistic_events_pkey PRIMARY KEY (event_id);
CREATE INDEX order_lines_order_id_idx ON legacy.order_lines (order_id);

VACUUM ANALYZE legacy.customers, legacy.shop_orders, legacy.order_lines, legacy.logistic_events;

-- What was loaded (keys are not dense: compare rows with max - min).
SELECT "table", "rows", min_key, max_key FROM (
              SELECT 1 AS ord, 'legacy.customers' AS "table", count(*) AS "rows", min(id) AS min_key, max(id) AS max_key FROM legacy.customers
    UNION ALL SELECT 2, 'legacy.shop_orders', count(*), min(id), max(id) FROM legacy.shop_orders
    UNION ALL SELECT 3, 'legacy.order_lines', count(*), min(id), max(id) FROM legacy.order_lines
    UNION ALL SELECT 4, 'legacy.logistic_events', count(*), min(event_id), max(event_id) FROM legacy.logistic_events
) t ORDER BY ord;
