-- Customer history on the lead: what agents see about the person they are
-- calling. customer_orders is how many orders the seller had from this phone
-- before this lead arrived (fixed at intake); customer_delivered and
-- customer_refusals follow the customer's parcels (delivered, or refused and
-- returned) and are rewritten, with a new version, on the leads still being
-- worked. Being columns of the lead, they replicate with it and converge like
-- every other field.

-- +goose Up
ALTER TABLE leads
  ADD COLUMN customer_orders    integer NOT NULL DEFAULT 0,
  ADD COLUMN customer_delivered integer NOT NULL DEFAULT 0,
  ADD COLUMN customer_refusals  integer NOT NULL DEFAULT 0;

ALTER TABLE customers ADD COLUMN delivered integer NOT NULL DEFAULT 0;

-- One outcome per parcel, so a redelivered or repeated carrier event never
-- counts twice: the counts are recomputed from these rows.
CREATE TABLE customer_outcomes (
  parcel_id  uuid PRIMARY KEY,
  store_id   uuid NOT NULL REFERENCES stores (id),
  seller_id  uuid NOT NULL REFERENCES sellers (id),
  phone_e164 text NOT NULL,
  outcome    text NOT NULL CHECK (outcome IN ('delivered', 'failed')),
  at         timestamptz NOT NULL
);
CREATE INDEX customer_outcomes_customer_idx ON customer_outcomes (seller_id, phone_e164);
ALTER TABLE customer_outcomes ENABLE ROW LEVEL SECURITY;
CREATE POLICY customer_outcomes_isolation ON customer_outcomes USING (
  seller_id = ANY (ARRAY(SELECT s.seller_id FROM stores s WHERE app_can_see_store(s.id))));

-- +goose Down
DROP TABLE customer_outcomes;
ALTER TABLE customers DROP COLUMN delivered;
ALTER TABLE leads DROP COLUMN customer_orders, DROP COLUMN customer_delivered, DROP COLUMN customer_refusals;
