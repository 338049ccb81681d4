-- A lead's store is checked once per statement instead of once per row. The
-- foreign key from leads to stores ran a lookup and a row lock on the store
-- for every inserted lead — 25–45 ms of each 2,000-lead chunk of a sheet
-- import, whose leads all belong to one store. The same guarantee now comes
-- from triggers:
--
--   * after each INSERT into leads, the distinct stores of the new rows are
--     locked FOR KEY SHARE (as the foreign key locks them, so a concurrent
--     delete of the store waits for this transaction) and the statement
--     fails with foreign_key_violation if one of them does not exist;
--   * an UPDATE that moves a lead to another store checks and locks that
--     store the same way;
--   * a store cannot be deleted, nor its id changed, while leads refer to it,
--     and stores cannot be truncated while there are leads. The check of the
--     leads needs a snapshot taken after the store's row lock (which waits for
--     the inserters holding KEY SHARE), which only READ COMMITTED gives a
--     trigger's query, so such changes are refused at other isolation levels.
--     (Stores are retired with deleted_at; nothing deletes them.)
--
-- The functions run as the tables' owner, like the foreign key's checks, so
-- row-level security hides no store or lead from them.

-- +goose Up
ALTER TABLE leads DROP CONSTRAINT leads_store_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION leads_check_stores() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  missing uuid;
BEGIN
  PERFORM 1 FROM stores s WHERE s.id IN (SELECT DISTINCT n.store_id FROM new_leads n) FOR KEY SHARE OF s;
  SELECT n.store_id INTO missing
  FROM (SELECT DISTINCT store_id FROM new_leads) n
  WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.id = n.store_id)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "leads" violates foreign key constraint "leads_store_id_fkey"'
      USING ERRCODE = 'foreign_key_violation', DETAIL = format('Key (store_id)=(%s) is not present in table "stores".', missing);
  END IF;
  RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER leads_check_stores AFTER INSERT ON leads REFERENCING NEW TABLE AS new_leads
  FOR EACH STATEMENT EXECUTE FUNCTION leads_check_stores();

-- +goose StatementBegin
CREATE FUNCTION leads_check_moved_store() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM 1 FROM stores s WHERE s.id = NEW.store_id FOR KEY SHARE OF s;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'insert or update on table "leads" violates foreign key constraint "leads_store_id_fkey"'
      USING ERRCODE = 'foreign_key_violation', DETAIL = format('Key (store_id)=(%s) is not present in table "stores".', NEW.store_id);
  END IF;
  RETURN NEW;
END $$;
-- +goose StatementEnd

CREATE TRIGGER leads_check_moved_store BEFORE UPDATE OF store_id ON leads
  FOR EACH ROW WHEN (NEW.store_id IS DISTINCT FROM OLD.store_id) EXECUTE FUNCTION leads_check_moved_store();

-- +goose StatementBegin
CREATE FUNCTION stores_keep_leads() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    IF EXISTS (SELECT 1 FROM leads) THEN
      RAISE EXCEPTION 'cannot truncate stores while leads refer to them' USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
    RETURN NEW;
  END IF;
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'a store is deleted or renumbered only in a READ COMMITTED transaction (its check of the leads needs a fresh snapshot)'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF EXISTS (SELECT 1 FROM leads l WHERE l.store_id = OLD.id) THEN
    RAISE EXCEPTION 'update or delete on table "stores" violates foreign key constraint "leads_store_id_fkey" on table "leads"'
      USING ERRCODE = 'foreign_key_violation', DETAIL = format('Key (id)=(%s) is still referenced from table "leads".', OLD.id);
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$;
-- +goose StatementEnd

CREATE TRIGGER stores_keep_leads BEFORE DELETE OR UPDATE OF id ON stores
  FOR EACH ROW EXECUTE FUNCTION stores_keep_leads();
CREATE TRIGGER stores_keep_leads_truncate BEFORE TRUNCATE ON stores
  FOR EACH STATEMENT EXECUTE FUNCTION stores_keep_leads();

-- +goose Down
DROP TRIGGER stores_keep_leads_truncate ON stores;
DROP TRIGGER stores_keep_leads ON stores;
DROP FUNCTION stores_keep_leads();
DROP TRIGGER leads_check_moved_store ON leads;
DROP FUNCTION leads_check_moved_store();
DROP TRIGGER leads_check_stores ON leads;
DROP FUNCTION leads_check_stores();
ALTER TABLE leads ADD CONSTRAINT leads_store_id_fkey FOREIGN KEY (store_id) REFERENCES stores (id);
