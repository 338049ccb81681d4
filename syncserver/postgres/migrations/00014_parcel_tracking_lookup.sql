-- +goose Up
-- Carrier reports find their parcel by (account, tracking code). The index
-- led with store_id, like the primary key and every other index on parcels,
-- so with statistics taken before a store's parcels were loaded the planner
-- could not tell a probe of it from a walk of the store's whole primary key
-- and sometimes walked (5-15 s for a webhook batch of 1,000 against 10,000
-- parcels). Led by account_id — an account belongs to one store — it is the
-- only index a lookup by account and code can use; store_id stays as the
-- last column for the lookups that name all three.
DROP INDEX parcels_tracking_idx;
CREATE INDEX parcels_tracking_idx ON parcels (account_id, tracking, store_id);

-- +goose Down
DROP INDEX parcels_tracking_idx;
CREATE INDEX parcels_tracking_idx ON parcels (store_id, account_id, tracking);
