-- +goose Up

-- Row-level security reads the caller's stores from per-transaction settings
-- (postgres.InTx sets them with set_config(..., true)). A missing setting means
-- "no stores": a query that forgot to set them sees nothing.
CREATE FUNCTION app_store_ids() RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(nullif(current_setting('app.store_ids', true), ''), '{}')::uuid[]
$$;

CREATE FUNCTION app_all_stores() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(current_setting('app.all_stores', true), '') = 'on'
$$;

CREATE FUNCTION app_can_see_store(store uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT app_all_stores() OR store = ANY (app_store_ids())
$$;

CREATE TABLE users (
  id              uuid PRIMARY KEY,
  email           text NOT NULL,
  full_name       text NOT NULL DEFAULT '',
  password_hash   text NOT NULL,
  platform_admin  boolean NOT NULL DEFAULT false,
  disabled_at     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
  id            uuid PRIMARY KEY,
  user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash    bytea NOT NULL UNIQUE,
  device_name   text NOT NULL DEFAULT '',
  client_ip     text NOT NULL DEFAULT '',
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  revoked_at    timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Login throttling lives here, not in memory, so that it holds across server
-- instances. key is 'account:<email>' or 'ip:<address>'.
CREATE TABLE login_throttle (
  key           text PRIMARY KEY,
  failures      integer NOT NULL,
  window_start  timestamptz NOT NULL,
  locked_until  timestamptz
);

CREATE TABLE sellers (
  id             uuid PRIMARY KEY,
  name           text NOT NULL,
  owner_user_id  uuid NOT NULL REFERENCES users (id),
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sellers_owner_idx ON sellers (owner_user_id);

CREATE TABLE stores (
  id                   uuid PRIMARY KEY,
  seller_id            uuid NOT NULL REFERENCES sellers (id),
  name                 text NOT NULL,
  logo                 bytea,
  logo_mime_type       text NOT NULL DEFAULT '',
  primary_color        text NOT NULL DEFAULT '',
  accent_color         text NOT NULL DEFAULT '',
  default_carrier      text NOT NULL DEFAULT '',
  auto_create_parcels  boolean NOT NULL DEFAULT false,
  lead_lease_minutes   integer NOT NULL DEFAULT 1440,
  invoice              jsonb NOT NULL DEFAULT '{}',
  currency             text NOT NULL DEFAULT 'MAD',
  timezone             text NOT NULL DEFAULT 'Africa/Casablanca',
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  deleted_at           timestamptz
);
CREATE INDEX stores_seller_idx ON stores (seller_id);

CREATE TABLE store_members (
  store_id  uuid NOT NULL REFERENCES stores (id),
  user_id   uuid NOT NULL REFERENCES users (id),
  role      text NOT NULL CHECK (role IN ('seller', 'agent', 'admin')),
  granted   text[] NOT NULL DEFAULT '{}',
  revoked   text[] NOT NULL DEFAULT '{}',
  added_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, user_id)
);

CREATE TABLE store_invitations (
  id           uuid PRIMARY KEY,
  store_id     uuid NOT NULL REFERENCES stores (id),
  email        text NOT NULL,
  role         text NOT NULL CHECK (role IN ('seller', 'agent', 'admin')),
  token_hash   bytea NOT NULL UNIQUE,
  invited_by   uuid NOT NULL REFERENCES users (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  accepted_at  timestamptz
);
CREATE INDEX store_invitations_store_idx ON store_invitations (store_id, created_at);

-- Carrier, sheet, shop and AI credentials: always ciphertext from the secrets
-- package, never replicated to desktops.
CREATE TABLE carrier_accounts (
  id           uuid PRIMARY KEY,
  store_id     uuid NOT NULL REFERENCES stores (id),
  carrier      text NOT NULL,
  label        text NOT NULL DEFAULT '',
  credentials  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX carrier_accounts_store_idx ON carrier_accounts (store_id, carrier);

-- Append-only: the application role may insert and read, never update or delete.
CREATE TABLE audit_log (
  id             uuid PRIMARY KEY,
  store_id       uuid,
  actor_user_id  uuid,
  action         text NOT NULL,
  target_type    text NOT NULL DEFAULT '',
  target_id      text NOT NULL DEFAULT '',
  summary        jsonb NOT NULL DEFAULT '{}',
  at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_store_at_idx ON audit_log (store_id, at DESC, id DESC);

CREATE TABLE domain_events (
  id              uuid PRIMARY KEY,
  store_id        uuid NOT NULL,
  kind            text NOT NULL,
  aggregate_type  text NOT NULL,
  aggregate_id    uuid NOT NULL,
  actor_user_id   uuid,
  payload         jsonb NOT NULL DEFAULT '{}',
  occurred_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX domain_events_store_idx ON domain_events (store_id, occurred_at);

-- One row per (consumer, event) once the consumer's effect has committed: the
-- idempotency record that makes redelivered River jobs harmless.
CREATE TABLE event_consumptions (
  store_id     uuid NOT NULL,
  event_id     uuid NOT NULL REFERENCES domain_events (id),
  consumer     text NOT NULL,
  consumed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, event_id, consumer)
);

-- Row-level security on every store-owned table.
ALTER TABLE stores ENABLE ROW LEVEL SECURITY;
CREATE POLICY stores_isolation ON stores USING (app_can_see_store(id));

ALTER TABLE store_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_members_isolation ON store_members USING (app_can_see_store(store_id));

ALTER TABLE store_invitations ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_invitations_isolation ON store_invitations USING (app_can_see_store(store_id));

ALTER TABLE carrier_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY carrier_accounts_isolation ON carrier_accounts USING (app_can_see_store(store_id));

ALTER TABLE domain_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY domain_events_isolation ON domain_events USING (app_can_see_store(store_id));

ALTER TABLE event_consumptions ENABLE ROW LEVEL SECURITY;
CREATE POLICY event_consumptions_isolation ON event_consumptions USING (app_can_see_store(store_id));

-- Platform-level audit rows (no store) are visible to platform admins only, but
-- anyone may write their own.
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_read ON audit_log FOR SELECT USING (app_can_see_store(store_id));
CREATE POLICY audit_log_write ON audit_log FOR INSERT
  WITH CHECK (store_id IS NULL OR app_can_see_store(store_id));

-- Narrow, named holes through RLS for the steps that must run before the
-- caller's stores are known. SECURITY DEFINER runs them as the table owner.
CREATE FUNCTION actor_memberships(p_user uuid)
RETURNS TABLE (store_id uuid, store_name text, seller_id uuid, role text, granted text[], revoked text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT m.store_id, s.name, s.seller_id, m.role, m.granted, m.revoked
  FROM store_members m JOIN stores s ON s.id = m.store_id
  WHERE m.user_id = p_user AND s.deleted_at IS NULL
  ORDER BY s.name, s.id
$$;

CREATE FUNCTION invitation_by_token(p_token_hash bytea)
RETURNS TABLE (id uuid, store_id uuid, email text, role text, expires_at timestamptz, accepted_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT i.id, i.store_id, i.email, i.role, i.expires_at, i.accepted_at
  FROM store_invitations i WHERE i.token_hash = p_token_hash
$$;

-- +goose Down
DROP FUNCTION invitation_by_token(bytea);
DROP FUNCTION actor_memberships(uuid);
DROP TABLE event_consumptions, domain_events, audit_log, carrier_accounts,
  store_invitations, store_members, stores, sellers, login_throttle, sessions, users;
DROP FUNCTION app_can_see_store(uuid);
DROP FUNCTION app_all_stores();
DROP FUNCTION app_store_ids();
