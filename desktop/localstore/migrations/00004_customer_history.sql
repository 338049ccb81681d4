-- The customer's history with the seller, as the server writes it on the lead
-- (orders before this one, parcels delivered, parcels refused or returned):
-- what the agent sees before calling. Local mutations never change it.

-- +goose Up
ALTER TABLE leads ADD COLUMN customer_orders INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN customer_delivered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN customer_refusals INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE leads DROP COLUMN customer_refusals;
ALTER TABLE leads DROP COLUMN customer_delivered;
ALTER TABLE leads DROP COLUMN customer_orders;
