-- +goose Up

-- A store's shop (Shopify, WooCommerce, YouCan). Every connection is also an
-- intake source (same id): its orders become leads through the intake
-- pipeline, keyed by "id:<order id>" in intake_rows, so a webhook and a
-- backfill of the same order meet on the same lead. base_url is the shop
-- domain (Shopify), the site URL (WooCommerce) or the API base (YouCan);
-- credentials (API token or consumer key and secret, and the webhook secret)
-- are sealed, bound to the row. cod_only: only cash-on-delivery orders
-- become leads.
CREATE TABLE shop_connections (
  store_id          uuid NOT NULL REFERENCES stores (id),
  id                uuid NOT NULL,
  platform          text NOT NULL CHECK (platform IN ('shopify', 'woocommerce', 'youcan')),
  name              text NOT NULL,
  base_url          text NOT NULL,
  credentials       text NOT NULL,
  cod_only          boolean NOT NULL DEFAULT true,
  backfill_days     integer NOT NULL DEFAULT 30 CHECK (backfill_days BETWEEN 1 AND 365),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  last_backfill_at  timestamptz,
  last_backfill_error text NOT NULL DEFAULT '',
  products_synced_at timestamptz,
  deleted_at        timestamptz,
  PRIMARY KEY (store_id, id),
  FOREIGN KEY (store_id, id) REFERENCES intake_sources (store_id, id)
);
-- Webhooks name the connection alone.
CREATE UNIQUE INDEX shop_connections_id_idx ON shop_connections (id);

-- Shop webhooks as received (signature verified), stored before they are
-- acknowledged and processed by jobs. delivery_id is the platform's event or
-- delivery id (Shopify X-Shopify-Event-Id, WooCommerce
-- X-WC-Webhook-Delivery-ID; YouCan sends none: the body's SHA-256): a
-- redelivery is refused by the unique index. status: pending, done, ignored
-- (an unknown topic, a non-COD order of a COD-only shop: recorded, no
-- lead), dead (unreadable; listed, replayable).
CREATE TABLE shop_webhooks (
  store_id       uuid NOT NULL REFERENCES stores (id),
  id             uuid NOT NULL,
  connection_id  uuid NOT NULL,
  platform       text NOT NULL,
  delivery_id    text NOT NULL,
  topic          text NOT NULL,
  body           bytea NOT NULL,
  received_at    timestamptz NOT NULL DEFAULT now(),
  status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'ignored', 'dead')),
  attempts       integer NOT NULL DEFAULT 0,
  last_error     text NOT NULL DEFAULT '',
  processed_at   timestamptz,
  PRIMARY KEY (store_id, id),
  FOREIGN KEY (store_id, connection_id) REFERENCES shop_connections (store_id, id)
);
CREATE UNIQUE INDEX shop_webhooks_dedupe_idx ON shop_webhooks (store_id, connection_id, delivery_id);
CREATE INDEX shop_webhooks_pending_idx ON shop_webhooks (store_id, received_at) WHERE status = 'pending';

-- One row per shop order seen: the lead it became, its last shop status, its
-- lines (stock is reserved by them), and the changes the shop sent after the
-- lead left the open statuses (recorded, not applied).
CREATE TABLE shop_orders (
  store_id        uuid NOT NULL REFERENCES stores (id),
  connection_id   uuid NOT NULL,
  order_id        text NOT NULL,
  ref             text NOT NULL DEFAULT '',
  lead_id         uuid,
  shop_status     text NOT NULL DEFAULT '',
  cancelled       boolean NOT NULL DEFAULT false,
  cod             boolean NOT NULL DEFAULT true,
  items           jsonb NOT NULL DEFAULT '[]',
  outcome         text NOT NULL DEFAULT '',
  detail          text NOT NULL DEFAULT '',
  digest          bytea,
  source          text NOT NULL CHECK (source IN ('webhook', 'backfill')), -- how the order first arrived
  first_seen      timestamptz NOT NULL DEFAULT now(),
  last_seen       timestamptz NOT NULL DEFAULT now(),
  late_changes    integer NOT NULL DEFAULT 0,
  last_late_change text NOT NULL DEFAULT '',
  PRIMARY KEY (store_id, connection_id, order_id),
  FOREIGN KEY (store_id, connection_id) REFERENCES shop_connections (store_id, id)
);
CREATE INDEX shop_orders_lead_idx ON shop_orders (store_id, lead_id);

-- Products and stock as last read from the shop. stock is NULL when the shop
-- does not track it.
CREATE TABLE shop_products (
  store_id       uuid NOT NULL REFERENCES stores (id),
  connection_id  uuid NOT NULL,
  external_id    text NOT NULL,
  sku            text NOT NULL DEFAULT '',
  name           text NOT NULL DEFAULT '',
  price          bigint NOT NULL DEFAULT 0,
  stock          integer,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, connection_id, external_id),
  FOREIGN KEY (store_id, connection_id) REFERENCES shop_connections (store_id, id)
);
CREATE INDEX shop_products_sku_idx ON shop_products (store_id, sku);

-- Stock held for confirmed leads, per SKU, until the order is cancelled or
-- returned (state released). Written by domain-event consumers.
CREATE TABLE stock_reservations (
  store_id      uuid NOT NULL REFERENCES stores (id),
  lead_id       uuid NOT NULL,
  sku           text NOT NULL,
  qty           integer NOT NULL CHECK (qty > 0),
  state         text NOT NULL CHECK (state IN ('reserved', 'released')),
  reserved_at   timestamptz NOT NULL DEFAULT now(),
  released_at   timestamptz,
  release_reason text NOT NULL DEFAULT '',
  PRIMARY KEY (store_id, lead_id, sku)
);
CREATE INDEX stock_reservations_sku_idx ON stock_reservations (store_id, sku) WHERE state = 'reserved';

ALTER TABLE shop_connections ENABLE ROW LEVEL SECURITY;
CREATE POLICY shop_connections_isolation ON shop_connections USING (app_can_see_store(store_id));
ALTER TABLE shop_webhooks ENABLE ROW LEVEL SECURITY;
CREATE POLICY shop_webhooks_isolation ON shop_webhooks USING (app_can_see_store(store_id));
ALTER TABLE shop_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY shop_orders_isolation ON shop_orders USING (app_can_see_store(store_id));
ALTER TABLE shop_products ENABLE ROW LEVEL SECURITY;
CREATE POLICY shop_products_isolation ON shop_products USING (app_can_see_store(store_id));
ALTER TABLE stock_reservations ENABLE ROW LEVEL SECURITY;
CREATE POLICY stock_reservations_isolation ON stock_reservations USING (app_can_see_store(store_id));

-- +goose Down
DROP TABLE stock_reservations, shop_products, shop_orders, shop_webhooks, shop_connections;
