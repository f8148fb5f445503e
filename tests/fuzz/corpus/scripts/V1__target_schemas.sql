V1__target_schemas.sql
-- V1__target_schemas.sql -- the schemas of the two new services, empty.
--
-- A versioned ("V") script: applied once, in version order, never edited
-- afterwards.  The transforms that fill these tables are in the repeatable
-- ("R") script R__transforms.sql.  For now the demo applies both with
-- psql -v ON_ERROR_STOP=1; pgxform will learn to apply them itself.
--
--   orders.customers    <- legacy.customers      (xf.customers)
--   orders.orders       <- legacy.shop_orders    (xf.shop_orders)
--   orders.order_lines  <- legacy.order_lines    (xf.order_lines, joins the order)
--   logistics.events    <- legacy.logistic_events (xf.events)
--
-- Inside the orders service the foreign keys are real, so the order of the
-- jobs matters: customers before orders before order lines (jobs.yaml says
-- so with "after:" and the job order inside a list).  logistics belongs to
-- another service and keeps order_id without a foreign key, so its list runs
-- independently, in parallel with the others.
--
-- Primary keys are the legacy ids, unchanged: every legacy row maps to
-- exactly one target row, which makes counting (check_counts.sql) and
-- re-running a batch after a failure straightforward.

CREATE SCHEMA orders;
COMMENT ON SCHEMA orders IS 'Orders service: customers, orders, order lines with VAT';

CREATE SCHEMA logistics;
COMMENT ON SCHEMA logistics IS 'Logistics service: parcel events';

CREATE TABLE orders.customers (
    customer_id  bigint       PRIMARY KEY,
    first_name   text         NOT NULL,
    last_name    text         NOT NULL,
    email        text         CHECK (email = lower(email) AND email = btrim(email)),
    country      char(2)      NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    created_at   timestamptz  NOT NULL,
    is_active    boolean      NOT NULL
);

CREATE TABLE orders.orders (
    order_id      bigint       PRIMARY KEY,
    customer_id   bigint       NOT NULL REFERENCES orders.customers (customer_id),
    ordered_at    timestamptz  NOT NULL,
    status        text         NOT NULL
                  CHECK (status IN ('new', 'paid', 'shipped', 'cancelled', 'returned')),
    currency      char(3)      NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    ship_country  char(2)      NOT NULL CHECK (ship_country ~ '^[A-Z]{2}$')
);
CREATE INDEX orders_customer_id_idx ON orders.orders (customer_id);
CREATE INDEX orders_ordered_at_idx  ON orders.orders (ordered_at);

-- Amounts in the order's currency, as decimals: net after discount, VAT
-- rounded half-up to the cent, gross = net + vat.
CREATE TABLE orders.order_lines (
    line_id       bigint         PRIMARY KEY,
    order_id      bigint         NOT NULL REFERENCES orders.orders (order_id),
    line_no       smallint       NOT NULL,
    sku           text           NOT NULL CHECK (sku = upper(btrim(sku))),
    quantity      integer        NOT NULL CHECK (quantity > 0),
    unit_price    numeric(12,2)  NOT NULL CHECK (unit_price >= 0),
    discount      numeric(12,2)  NOT NULL DEFAULT 0,
    vat_rate      numeric(5,4)   NOT NULL CHECK (vat_rate >= 0 AND vat_rate < 1),
    net_amount    numeric(12,2)  NOT NULL,
    vat_amount    numeric(12,2)  NOT NULL,
    gross_amount  numeric(12,2)  NOT NULL,
    currency      char(3)        NOT NULL,
    CHECK (gross_amount = net_amount + vat_amount),
    UNIQUE (order_id, line_no)
);

-- order_id refers to orders.orders of the other service: no foreign key.
CREATE TABLE logistics.events (
    event_id     bigint       PRIMARY KEY,
    order_id     bigint       NOT NULL,
    event_type   text         NOT NULL CHECK (event_type IN ('shipped', 'delivered', 'returned')),
    happened_at  timestamptz  NOT NULL,
    carrier      text,
    tracking_no  text,
    payload      jsonb
);
CREATE INDEX events_order_id_idx ON logistics.events (order_id, happened_at);
