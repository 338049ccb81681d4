-- +goose Up

-- Carrier accounts receive webhooks at /webhooks/carriers/<account id>.<token>;
-- only the token's SHA-256 is kept. The account's concurrency bounds parallel
-- creation calls.
ALTER TABLE carrier_accounts
  ADD COLUMN webhook_token_hash bytea,
  ADD COLUMN concurrency integer NOT NULL DEFAULT 4 CHECK (concurrency BETWEEN 1 AND 64),
  ADD COLUMN deleted_at timestamptz;

-- A store's parcels: synced rows (store scope). creation is the state of the
-- creation call, recorded before the call is made: calling (made or about to
-- be, outcome unknown), created, review (outcome unknown and the carrier
-- cannot be asked: a person must check), failed (refused; see error).
CREATE TABLE parcels (
  store_id        uuid NOT NULL REFERENCES stores (id),
  id              uuid NOT NULL,
  version         bigint NOT NULL,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  deleted_at      timestamptz,
  lead_id         uuid NOT NULL,
  account_id      uuid NOT NULL REFERENCES carrier_accounts (id),
  carrier         text NOT NULL,
  tracking        text NOT NULL DEFAULT '',
  status          text NOT NULL,
  raw_status      text NOT NULL DEFAULT '',
  status_known    boolean NOT NULL DEFAULT true,
  creation        text NOT NULL CHECK (creation IN ('calling', 'created', 'review', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  error           text NOT NULL DEFAULT '',
  cod             bigint NOT NULL DEFAULT 0,
  city_id         text NOT NULL DEFAULT '',
  last_report_at  timestamptz,
  PRIMARY KEY (store_id, id),
  FOREIGN KEY (store_id, lead_id) REFERENCES leads (store_id, id)
);
CREATE INDEX parcels_version_idx ON parcels (store_id, version);
CREATE UNIQUE INDEX parcels_lead_idx ON parcels (store_id, lead_id) WHERE deleted_at IS NULL;
-- Not partial: a prepared statement's generic plan cannot prove tracking <> ''.
CREATE INDEX parcels_tracking_idx ON parcels (store_id, account_id, tracking);
CREATE INDEX parcels_active_idx ON parcels (store_id, last_report_at)
  WHERE creation = 'created' AND status IN ('sent', 'picked_up', 'in_transit', 'out_for_delivery', 'postponed', 'refused');

-- Every status report about a parcel, applied or not (a late "En Voyage"
-- after "Livré" is kept here and changes nothing): the parcel's timeline.
CREATE TABLE parcel_events (
  store_id     uuid NOT NULL REFERENCES stores (id),
  id           uuid NOT NULL,
  parcel_id    uuid NOT NULL,
  version      bigint NOT NULL,
  created_at   timestamptz NOT NULL,
  reported_at  timestamptz,
  source       text NOT NULL CHECK (source IN ('create', 'webhook', 'poll', 'review')),
  raw_status   text NOT NULL,
  status       text NOT NULL DEFAULT '',
  known        boolean NOT NULL,
  applied      boolean NOT NULL,
  note         text NOT NULL DEFAULT '',
  PRIMARY KEY (store_id, id),
  FOREIGN KEY (store_id, parcel_id) REFERENCES parcels (store_id, id)
);
CREATE INDEX parcel_events_version_idx ON parcel_events (store_id, version);
-- The same report twice (a duplicated webhook, a poll repeating a webhook) is
-- one event.
CREATE UNIQUE INDEX parcel_events_dedupe_idx ON parcel_events (store_id, parcel_id, raw_status, coalesce(reported_at, 'epoch'));

CREATE TRIGGER parcels_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON parcels FOR EACH ROW EXECUTE FUNCTION sync_guard();
CREATE TRIGGER parcel_events_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON parcel_events FOR EACH ROW EXECUTE FUNCTION sync_guard();

-- Carrier webhooks as received, stored before they are acknowledged and
-- processed by jobs. digest identifies a delivery (carriers send no delivery
-- id): a byte-identical repeat is the same delivery. status: pending, done,
-- dead (gave up; listed for admins, replayable).
CREATE TABLE webhook_inbox (
  store_id      uuid NOT NULL REFERENCES stores (id),
  id            uuid NOT NULL,
  account_id    uuid NOT NULL REFERENCES carrier_accounts (id),
  carrier       text NOT NULL,
  digest        bytea NOT NULL,
  method        text NOT NULL,
  content_type  text NOT NULL DEFAULT '',
  query         text NOT NULL DEFAULT '',
  body          bytea NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
  attempts      integer NOT NULL DEFAULT 0,
  last_error    text NOT NULL DEFAULT '',
  processed_at  timestamptz,
  PRIMARY KEY (store_id, id)
);
CREATE UNIQUE INDEX webhook_inbox_digest_idx ON webhook_inbox (store_id, account_id, digest);
CREATE INDEX webhook_inbox_status_idx ON webhook_inbox (store_id, status, received_at) WHERE status <> 'done';

ALTER TABLE parcels ENABLE ROW LEVEL SECURITY;
CREATE POLICY parcels_isolation ON parcels USING (app_can_see_store(store_id));
ALTER TABLE parcel_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY parcel_events_isolation ON parcel_events USING (app_can_see_store(store_id));
ALTER TABLE webhook_inbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY webhook_inbox_isolation ON webhook_inbox USING (app_can_see_store(store_id));

-- Per-city overrides of the store's default carrier: leads of city_id (a
-- canonical city id) go to account_id.
CREATE TABLE carrier_city_rules (
  store_id    uuid NOT NULL REFERENCES stores (id),
  city_id     text NOT NULL,
  account_id  uuid NOT NULL REFERENCES carrier_accounts (id),
  PRIMARY KEY (store_id, city_id)
);
ALTER TABLE carrier_city_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY carrier_city_rules_isolation ON carrier_city_rules USING (app_can_see_store(store_id));

-- +goose Down
DROP TABLE carrier_city_rules, webhook_inbox, parcel_events, parcels;
ALTER TABLE carrier_accounts DROP COLUMN webhook_token_hash, DROP COLUMN concurrency, DROP COLUMN deleted_at;
