R__transforms.sql
-- R__transforms.sql -- the transform functions that pgxform calls, one per
-- job of jobs.yaml.
--
-- A repeatable ("R") script: it may be applied again whenever it changes,
-- so it only uses CREATE ... IF NOT EXISTS and CREATE OR REPLACE (and sets
-- nothing that would outlive it in the applying session).
--
-- The contract between pgxform and a transform function:
--
--   xf.<name>(first_key bigint, last_key bigint) RETURNS bigint
--
--   * pgxform cuts the job's leading table into keyset batches and calls the
--     function once per batch, in the batch's own transaction, with the
--     first and the last key of the batch (both inclusive, in the type of
--     the key column: bigint for all four tables here).
--   * The function handles exactly the leading-table rows whose key lies in
--     [first_key, last_key] -- set-based, one INSERT ... SELECT, no loops --
--     and returns how many target rows it wrote.
--   * It is deliberately NOT idempotent: the target primary keys are the
--     legacy ids, so a batch applied twice fails with a unique violation
--     instead of silently double-counting.  pgxform must commit a batch and
--     its own progress record together.
--
-- All names are schema-qualified; the functions do not depend on search_path.
-- LANGUAGE sql functions are planned at each call with the actual bounds, so
-- every batch gets an index range scan of the leading table.

CREATE SCHEMA IF NOT EXISTS xf;
COMMENT ON SCHEMA xf IS 'pgxform sample: legacy -> orders/logistics transform functions';

-- ---------------------------------------------------------------------------
-- Helpers for the legacy quirks.
-- ---------------------------------------------------------------------------

-- ' de', 'De ', 'uk' ... -> 'DE', 'GB': ISO 3166 alpha-2, upper case.
CREATE OR REPLACE FUNCTION xf.iso_country(code text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE upper(btrim(code)) WHEN 'UK' THEN 'GB' ELSE upper(btrim(code)) END $$;

-- The VAT rate the monolith applied to an order line without a stored rate
-- (only standard-rate goods lack one): nothing on exports, else the German
-- standard rate, 16 % during the cut of July-December 2020.  GB was in the
-- EU until the end of 2020.  ordered_at is shop-local time, as in legacy.
CREATE OR REPLACE FUNCTION xf.vat_rate_default(ship_country text, ordered_at timestamp) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE
            WHEN xf.iso_country(ship_country) IN ('CH', 'US') THEN 0.000
            WHEN xf.iso_country(ship_country) = 'GB' AND ordered_at >= '2021-01-01' THEN 0.000
            WHEN ordered_at >= '2020-07-01' AND ordered_at < '2021-01-01' THEN 0.160
            ELSE 0.190
          END $$;

-- ---------------------------------------------------------------------------
-- Job "customers": legacy.customers (key id) -> orders.customers
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION xf.customers(first_key bigint, last_key bigint) RETURNS bigint
LANGUAGE sql AS
$$
WITH ins AS (
    INSERT INTO orders.customers (customer_id, first_name, last_name, email, country, created_at, is_active)
    SELECT c.id,
           initcap(btrim(split_part(c.cust_name, ',', 2))),   -- 'MÜLLER, anna' -> 'Anna'
           initcap(btrim(split_part(c.cust_name, ',', 1))),   --                -> 'Müller'
           nullif(lower(btrim(c.email)), ''),
           xf.iso_country(c.country),
           c.created_at AT TIME ZONE 'Europe/Berlin',
           c.deleted_flag <> 'Y'                              -- soft-deleted customers stay, inactive
    FROM legacy.customers AS c
    WHERE c.id BETWEEN first_key AND last_key
    RETURNING 1
)
SELECT count(*) FROM ins
$$;
COMMENT ON FUNCTION xf.customers(bigint, bigint) IS
    'pgxform job customers: legacy.customers[id in first_key..last_key] -> orders.customers; returns rows inserted';

-- ---------------------------------------------------------------------------
-- Job "shop_orders": legacy.shop_orders (key id) -> orders.orders
-- Needs the customers first (foreign key).
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION xf.shop_orders(first_key bigint, last_key bigint) RETURNS bigint
LANGUAGE sql AS
$$
WITH ins AS (
    INSERT INTO orders.orders (order_id, customer_id, ordered_at, status, currency, ship_country)
    SELECT o.id,
           o.customer_id,
           o.ordered_at AT TIME ZONE 'Europe/Berlin',
           CASE o.status                 -- an unknown code gives NULL: the NOT NULL stops the batch
               WHEN 'N' THEN 'new'
               WHEN 'P' THEN 'paid'
               WHEN 'S' THEN 'shipped'
               WHEN 'C' THEN 'cancelled'
               WHEN 'R' THEN 'returned'
           END,
           upper(btrim(o.currency)),
           xf.iso_country(o.ship_country)
    FROM legacy.shop_orders AS o
    WHERE o.id BETWEEN first_key AND last_key
    RETURNING 1
)
SELECT count(*) FROM ins
$$;
COMMENT ON FUNCTION xf.shop_orders(bigint, bigint) IS
    'pgxform job shop_orders: legacy.shop_orders[id in first_key..last_key] -> orders.orders; returns rows inserted';

-- ---------------------------------------------------------------------------
-- Job "order_lines": legacy.order_lines (key id) -> orders.order_lines
-- Joins each line's order (primary key lookup in legacy.shop_orders) for the
-- currency and, where the line has no VAT rate, for the rate's default.
-- Needs the orders first (foreign key).
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION xf.order_lines(first_key bigint, last_key bigint) RETURNS bigint
LANGUAGE sql AS
$$
WITH ins AS (
    INSERT INTO orders.order_lines (line_id, order_id, line_no, sku, quantity, unit_price, discount,
                                    vat_rate, net_amount, vat_amount, gross_amount, currency)
    SELECT x.id, x.order_id, x.line_no, x.sku, x.qty, x.unit_price, x.discount,
           x.vat_rate, x.net, round(x.net * x.vat_rate, 2), x.net + round(x.net * x.vat_rate, 2), x.currency
    FROM (
        SELECT l.id,
               l.order_id,
               l.line_no,
               upper(btrim(l.sku)) AS sku,
               l.qty,
               l.unit_price_cents / 100.0 AS unit_price,
               l.discount_cents / 100.0 AS discount,
               coalesce(l.vat_rate, xf.vat_rate_default(o.ship_country, o.ordered_at)) AS vat_rate,
               (l.qty * l.unit_price_cents - l.discount_cents) / 100.0 AS net,
               upper(btrim(o.currency)) AS currency
        FROM legacy.order_lines AS l
        JOIN legacy.shop_orders AS o ON o.id = l.order_id
        WHERE l.id BETWEEN first_key AND last_key
    ) AS x
    RETURNING 1
)
SELECT count(*) FROM ins
$$;
COMMENT ON FUNCTION xf.order_lines(bigint, bigint) IS
    'pgxform job order_lines: legacy.order_lines[id in first_key..last_key] (+ its order) -> orders.order_lines; returns rows inserted';

-- ---------------------------------------------------------------------------
-- Job "events": legacy.logistic_events (key event_id) -> logistics.events
-- Independent of the orders service: order_id is copied without a check.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION xf.events(first_key bigint, last_key bigint) RETURNS bigint
LANGUAGE sql AS
$$
WITH ins AS (
    INSERT INTO logistics.events (event_id, order_id, event_type, happened_at, carrier, tracking_no, payload)
    SELECT e.event_id,
           e.order_id,
           CASE lower(btrim(e.event_type)) WHEN 'return' THEN 'returned' ELSE lower(btrim(e.event_type)) END,
           e.happened_at AT TIME ZONE 'Europe/Berlin',
           upper(p.doc ->> 'carrier'),
           p.doc ->> 'tracking',
           p.doc
    FROM legacy.logistic_events AS e
    CROSS JOIN LATERAL (SELECT nullif(btrim(e.payload), '')::jsonb AS doc) AS p
    WHERE e.event_id BETWEEN first_key AND last_key
    RETURNING 1
)
SELECT count(*) FROM ins
$$;
COMMENT ON FUNCTION xf.events(bigint, bigint) IS
    'pgxform job events: legacy.logistic_events[event_id in first_key..last_key] -> logistics.events; returns rows inserted';
