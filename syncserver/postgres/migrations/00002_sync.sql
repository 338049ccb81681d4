-- +goose Up

-- The caller's user id, for user-scoped rows (rejections).
CREATE FUNCTION app_user_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT nullif(current_setting('app.user_id', true), '')::uuid
$$;

-- One counter per scope (a store, a seller or a user). Every write to a synced
-- row takes the next numbers from its scope's counter; the row lock taken by
-- the increment makes version order equal commit order within the scope.
CREATE TABLE sync_scopes (
  scope_id      uuid PRIMARY KEY,
  kind          text NOT NULL CHECK (kind IN ('store', 'seller', 'user')),
  seq           bigint NOT NULL DEFAULT 0,
  purged_below  bigint NOT NULL DEFAULT 0
);

-- Synced rows may only be written by the versioned-write helper, which marks
-- its transaction; anything else touching a synced table fails loudly.
-- +goose StatementBegin
CREATE FUNCTION sync_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('app.sync_writer', true), '') <> 'on' THEN
    RAISE EXCEPTION 'synced table % must be written through the versioned-write helper', TG_TABLE_NAME
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.version <= OLD.version THEN
    RAISE EXCEPTION 'synced row %.% written without a new version (% -> %)', TG_TABLE_NAME, NEW.id, OLD.version, NEW.version;
  END IF;
  RETURN NEW;
END $$;
-- +goose StatementEnd

CREATE TABLE leads (
  store_id       uuid NOT NULL REFERENCES stores (id),
  id             uuid NOT NULL,
  version        bigint NOT NULL,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  deleted_at     timestamptz,
  status         text NOT NULL,
  customer_name  text NOT NULL DEFAULT '',
  phone_raw      text NOT NULL DEFAULT '',
  phone_e164     text NOT NULL DEFAULT '',
  city_id        text NOT NULL DEFAULT '',
  city_raw       text NOT NULL DEFAULT '',
  address        text NOT NULL DEFAULT '',
  items          jsonb NOT NULL DEFAULT '[]',
  cod            bigint NOT NULL DEFAULT 0,
  source         text NOT NULL DEFAULT '',
  external_ref   text NOT NULL DEFAULT '',
  custom         jsonb NOT NULL DEFAULT '{}',
  assigned_to    uuid,
  lease_until    timestamptz,
  call_attempts  integer NOT NULL DEFAULT 0,
  callback_at    timestamptz,
  cancel_reason  text NOT NULL DEFAULT '',
  duplicate_of   uuid,
  score          integer NOT NULL DEFAULT 0,
  PRIMARY KEY (store_id, id)
);
CREATE INDEX leads_version_idx ON leads (store_id, version);
CREATE INDEX leads_pool_idx ON leads (store_id, created_at) WHERE deleted_at IS NULL AND status IN ('new', 'no_answer', 'callback', 'unreachable');
CREATE INDEX leads_assignee_idx ON leads (store_id, assigned_to) WHERE assigned_to IS NOT NULL;

CREATE TABLE lead_events (
  store_id     uuid NOT NULL REFERENCES stores (id),
  id           uuid NOT NULL,
  lead_id      uuid NOT NULL,
  version      bigint NOT NULL,
  created_at   timestamptz NOT NULL,
  actor_id     uuid,
  kind         text NOT NULL,
  from_status  text NOT NULL DEFAULT '',
  to_status    text NOT NULL DEFAULT '',
  note         text NOT NULL DEFAULT '',
  data         jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (store_id, id),
  FOREIGN KEY (store_id, lead_id) REFERENCES leads (store_id, id)
);
CREATE INDEX lead_events_version_idx ON lead_events (store_id, version);
CREATE INDEX lead_events_lead_idx ON lead_events (store_id, lead_id);

-- A user's rejected mutations: user-scoped rows, so they reach the user's
-- replica even when the Push reply was lost.
CREATE TABLE rejections (
  user_id        uuid NOT NULL REFERENCES users (id),
  id             uuid NOT NULL,
  version        bigint NOT NULL,
  client_id      uuid NOT NULL,
  mutation_id    bigint NOT NULL,
  mutation_name  text NOT NULL,
  store_id       uuid,
  lead_id        uuid,
  code           text NOT NULL,
  reason         text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, id)
);
CREATE INDEX rejections_version_idx ON rejections (user_id, version);

CREATE TRIGGER leads_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON leads FOR EACH ROW EXECUTE FUNCTION sync_guard();
CREATE TRIGGER lead_events_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON lead_events FOR EACH ROW EXECUTE FUNCTION sync_guard();
CREATE TRIGGER rejections_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON rejections FOR EACH ROW EXECUTE FUNCTION sync_guard();

-- A desktop replica and the last mutation id it had acknowledged.
CREATE TABLE sync_clients (
  client_id         uuid PRIMARY KEY,
  user_id           uuid NOT NULL REFERENCES users (id),
  device_name       text NOT NULL DEFAULT '',
  schema_version    integer NOT NULL,
  last_mutation_id  bigint NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  last_seen_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_clients_user_idx ON sync_clients (user_id);

-- The outcome of every pushed mutation, so that a repeat is answered from the
-- record and never applied twice.
CREATE TABLE sync_mutations (
  client_id    uuid NOT NULL REFERENCES sync_clients (client_id),
  mutation_id  bigint NOT NULL,
  name         text NOT NULL,
  applied      boolean NOT NULL,
  scope_id     uuid NOT NULL,
  version      bigint NOT NULL,
  code         text NOT NULL DEFAULT '',
  reason       text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, mutation_id)
);

-- Membership epochs: a change of role or permissions makes replicas re-sync the store.
ALTER TABLE store_members ADD COLUMN epoch bigint NOT NULL DEFAULT 1;

ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
CREATE POLICY leads_isolation ON leads USING (app_can_see_store(store_id));
ALTER TABLE lead_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY lead_events_isolation ON lead_events USING (app_can_see_store(store_id));
ALTER TABLE rejections ENABLE ROW LEVEL SECURITY;
CREATE POLICY rejections_owner ON rejections USING (user_id = app_user_id());
ALTER TABLE sync_scopes ENABLE ROW LEVEL SECURITY;
CREATE POLICY sync_scopes_visible ON sync_scopes USING (
  (kind = 'store' AND app_can_see_store(scope_id)) OR (kind = 'user' AND scope_id = app_user_id()) OR kind = 'seller');

-- Every existing store and user gets its scope; new ones get theirs on creation.
INSERT INTO sync_scopes (scope_id, kind) SELECT id, 'store' FROM stores;
INSERT INTO sync_scopes (scope_id, kind) SELECT id, 'user' FROM users;

-- +goose StatementBegin
CREATE FUNCTION create_store_scope() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO sync_scopes (scope_id, kind) VALUES (NEW.id, TG_ARGV[0]) ON CONFLICT DO NOTHING;
  RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER stores_scope AFTER INSERT ON stores FOR EACH ROW EXECUTE FUNCTION create_store_scope('store');
CREATE TRIGGER users_scope AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION create_store_scope('user');

-- Memberships now carry their epoch and the store's lease length.
DROP FUNCTION actor_memberships(uuid);
CREATE FUNCTION actor_memberships(p_user uuid)
RETURNS TABLE (store_id uuid, store_name text, seller_id uuid, role text, granted text[], revoked text[],
  epoch bigint, lead_lease_minutes integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT m.store_id, s.name, s.seller_id, m.role, m.granted, m.revoked, m.epoch, s.lead_lease_minutes
  FROM store_members m JOIN stores s ON s.id = m.store_id
  WHERE m.user_id = p_user AND s.deleted_at IS NULL
  ORDER BY s.name, s.id
$$;

-- +goose Down
DROP TRIGGER users_scope ON users;
DROP TRIGGER stores_scope ON stores;
DROP FUNCTION create_store_scope();
ALTER TABLE store_members DROP COLUMN epoch;
DROP TABLE sync_mutations, sync_clients, rejections, lead_events, leads, sync_scopes;
DROP FUNCTION sync_guard();
DROP FUNCTION app_user_id();
