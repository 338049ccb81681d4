-- +goose Up

-- Commission runs write millions of ledger rows; what each row costs is
-- mostly index maintenance and per-row triggers.
--
-- One index for the idempotency key and the parcel lookups: leading with the
-- parcel (ids are UUIDv7, so a month's run inserts into a narrow, cached
-- stretch of the index instead of all over it) it serves both the run's
-- "already written?" probe and every "entries of this parcel" query, which
-- made commission_entries_parcel_idx redundant.
CREATE UNIQUE INDEX commission_entries_parcel_key ON commission_entries (store_id, parcel_id, rule_id, kind);
DROP INDEX commission_entries_key;
DROP INDEX commission_entries_parcel_idx;
-- Only agents' entries are ever looked up by agent.
CREATE INDEX commission_entries_agent_only_idx ON commission_entries (store_id, agent_id, id) WHERE agent_id IS NOT NULL;
DROP INDEX commission_entries_agent_idx;

-- Inserts are checked once per statement instead of once per row: the
-- versioned-write flag (an insert has no old version to compare) and that
-- every store written exists, which replaces the per-row foreign-key check
-- (stores are only ever soft-deleted). Updates and deletes keep the row-level
-- sync_guard: their version check is per row.
-- +goose StatementBegin
CREATE FUNCTION commission_entries_insert_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('app.sync_writer', true), '') <> 'on' THEN
    RAISE EXCEPTION 'synced table % must be written through the versioned-write helper', TG_TABLE_NAME
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF EXISTS (SELECT 1 FROM (SELECT DISTINCT store_id FROM inserted) n
             WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.id = n.store_id)) THEN
    RAISE EXCEPTION 'commission entries of an unknown store' USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;
-- +goose StatementEnd
DROP TRIGGER commission_entries_sync_guard ON commission_entries;
CREATE TRIGGER commission_entries_sync_guard BEFORE UPDATE OR DELETE ON commission_entries
  FOR EACH ROW EXECUTE FUNCTION sync_guard();
CREATE TRIGGER commission_entries_insert_guard AFTER INSERT ON commission_entries
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION commission_entries_insert_guard();
ALTER TABLE commission_entries DROP CONSTRAINT commission_entries_store_id_fkey;

-- +goose Down
ALTER TABLE commission_entries ADD FOREIGN KEY (store_id) REFERENCES stores (id);
DROP TRIGGER commission_entries_insert_guard ON commission_entries;
DROP TRIGGER commission_entries_sync_guard ON commission_entries;
CREATE TRIGGER commission_entries_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON commission_entries
  FOR EACH ROW EXECUTE FUNCTION sync_guard();
DROP FUNCTION commission_entries_insert_guard();
CREATE INDEX commission_entries_agent_idx ON commission_entries (store_id, agent_id, id);
DROP INDEX commission_entries_agent_only_idx;
CREATE INDEX commission_entries_parcel_idx ON commission_entries (store_id, parcel_id);
CREATE UNIQUE INDEX commission_entries_key ON commission_entries (store_id, rule_id, parcel_id, kind);
DROP INDEX commission_entries_parcel_key;
