-- +goose Up

-- The ledger's primary key is the entry id alone. Ids are UUIDv7s, increasing
-- across every store, so a commission run appends to the key's last page
-- (Postgres's fast path for the rightmost leaf, pages split at 90 %). Under
-- (store_id, id) each store's entries went into the middle of the index, at
-- the end of that store's range: a search from the root for every entry and
-- half-full pages (54 % after a run of a million entries), 1 s of a run's
-- Postgres CPU per million entries. A store's entries are still found by
-- (store_id, id) through it, the store checked on the row; the store's
-- ledger is paged through the parcel key (billing.ListEntries).
ALTER TABLE commission_payout_entries DROP CONSTRAINT commission_payout_entries_store_id_entry_id_fkey;
ALTER TABLE commission_entries DROP CONSTRAINT commission_entries_pkey;
ALTER TABLE commission_entries ADD CONSTRAINT commission_entries_pkey PRIMARY KEY (id);
ALTER TABLE commission_payout_entries ADD CONSTRAINT commission_payout_entries_entry_id_fkey
  FOREIGN KEY (entry_id) REFERENCES commission_entries (id);

-- +goose Down
ALTER TABLE commission_payout_entries DROP CONSTRAINT commission_payout_entries_entry_id_fkey;
ALTER TABLE commission_entries DROP CONSTRAINT commission_entries_pkey;
ALTER TABLE commission_entries ADD CONSTRAINT commission_entries_pkey PRIMARY KEY (store_id, id);
ALTER TABLE commission_payout_entries ADD CONSTRAINT commission_payout_entries_store_id_entry_id_fkey
  FOREIGN KEY (store_id, entry_id) REFERENCES commission_entries (store_id, id);
