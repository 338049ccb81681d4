-- +goose Up

-- The ledger's isolation policy reads the transaction's stores once per
-- statement instead of once per row. app_can_see_store(store_id) is inlined
-- into every row's check, parsing app.store_ids into a uuid[] each time:
-- 2 µs a row, a fifth of what a commission run's insert costs. The
-- sub-selects are evaluated once per statement (init plans); the rule is
-- the same.
ALTER POLICY commission_entries_isolation ON commission_entries
  USING ((SELECT app_all_stores()) OR store_id = ANY ((SELECT app_store_ids())::uuid[]));

-- +goose Down
ALTER POLICY commission_entries_isolation ON commission_entries USING (app_can_see_store(store_id));
