-- legacy_schema.sql -- the source side of the sample migration.
--
-- Story: from 2017 to 2024 a single "fulfilment" monolith handled customers,
-- shop orders, order lines and parcel tracking for a European web shop.  Its
-- tables were bulk-copied into PostgreSQL as they were, into schema "legacy".
-- The migration (R__transforms.sql, driven by pgxform and jobs.yaml) splits
-- them into the schemas of two new services: "orders" and "logistics".
--
-- The tables keep the monolith's quirks on purpose, so that the transforms
-- really have something to transform:
--   * money is stored as integer cents, VAT rates as fractions (0.19), and
--     older order lines have no VAT rate at all (the monolith used a default);
--   * country and currency codes come in mixed case with stray blanks, and
--     the monolith wrote 'UK' where ISO 3166 says 'GB';
--   * names are stored as 'LASTNAME, firstname', e-mail addresses unnormalised;
--   * timestamps are "timestamp without time zone" in shop-local time
--     (Europe/Berlin);
--   * order status is a one-letter code, event types are free text and the
--     event payload is JSON kept in a text column (sometimes empty);
--   * there are no foreign keys, and the ids have gaps (deleted rows, purged
--     ranges), like any 7-year-old table.
--
-- Primary keys and indexes are NOT created here: legacy_data.sql adds them
-- after the bulk insert, which is much faster.
--
-- Not idempotent on purpose (it never drops anything): to start again, run
-- reset_sample.sql first.

CREATE SCHEMA legacy;
COMMENT ON SCHEMA legacy IS 'Raw copy of the 2017-2024 fulfilment monolith (pgxform sample data)';

-- Customers of the shop.  cust_name is 'LASTNAME, firstname'; email may carry
-- blanks and capitals, or be missing; country is a 2-letter code in any case,
-- 'UK' for Great Britain; deleted_flag is 'Y'/'N' (soft delete).
CREATE TABLE legacy.customers (
    id            bigint      NOT NULL,
    cust_name     text        NOT NULL,
    email         text,
    country       varchar(4)  NOT NULL,
    created_at    timestamp   NOT NULL,   -- Europe/Berlin local time
    deleted_flag  char(1)     NOT NULL DEFAULT 'N'
);

-- Orders.  status: N = new, P = paid, S = shipped, C = cancelled,
-- R = returned.  currency and ship_country in mixed case; ship_country is
-- usually, not always, the customer's country.
CREATE TABLE legacy.shop_orders (
    id            bigint      NOT NULL,
    customer_id   bigint      NOT NULL,
    ordered_at    timestamp   NOT NULL,   -- Europe/Berlin local time
    status        char(1)     NOT NULL,
    currency      varchar(5)  NOT NULL,
    ship_country  varchar(4)  NOT NULL
);

-- Order lines.  Prices in cents of the order's currency.  vat_rate is a
-- fraction (0.19, 0.07, 0.16 / 0.05 during the German VAT cut of
-- July-December 2020, 0 for exports), or NULL on lines written before the
-- monolith stored it: then the rate follows from the order (see
-- xf.vat_rate_default in R__transforms.sql).  sku has blanks and mixed case.
CREATE TABLE legacy.order_lines (
    id                bigint        NOT NULL,
    order_id          bigint        NOT NULL,
    line_no           smallint      NOT NULL,
    sku               varchar(20)   NOT NULL,
    qty               integer       NOT NULL,
    unit_price_cents  bigint        NOT NULL,
    discount_cents    bigint        NOT NULL DEFAULT 0,
    vat_rate          numeric(4,3)
);

-- Parcel tracking events, written by the warehouse integration.  event_type
-- is free text ('SHIPPED', 'Delivered', 'return', ...).  payload is JSON as
-- text, e.g. {"carrier":"dhl","tracking":"JJD0001234"}, or '' / NULL.
-- event_id comes from a sequence started at 9,000,000,000 (beyond int4).
CREATE TABLE legacy.logistic_events (
    event_id      bigint      NOT NULL,
    order_id      bigint      NOT NULL,
    event_type    varchar(20) NOT NULL,
    happened_at   timestamp   NOT NULL,   -- Europe/Berlin local time
    payload       text
);
