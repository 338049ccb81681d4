-- +goose Up

-- Where a store's leads come from: uploaded files, Google Sheets, shops. A
-- sheet keeps its spreadsheet, range, header row, sealed credentials (bound
-- to this table and row) and its column mapping.
CREATE TABLE intake_sources (
  store_id          uuid NOT NULL REFERENCES stores (id),
  id                uuid NOT NULL,
  kind              text NOT NULL CHECK (kind IN ('file', 'sheet', 'shopify', 'woocommerce', 'youcan')),
  name              text NOT NULL,
  mapping           jsonb NOT NULL DEFAULT '{"bindings":[]}',
  spreadsheet_id    text NOT NULL DEFAULT '',
  sheet_range       text NOT NULL DEFAULT '',
  header_row        integer NOT NULL DEFAULT 1 CHECK (header_row >= 1),
  credentials       bytea,
  sync_minutes      integer NOT NULL DEFAULT 15 CHECK (sync_minutes BETWEEN 1 AND 1440),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  last_sync_at      timestamptz,
  deleted_at        timestamptz,
  PRIMARY KEY (store_id, id)
);

-- A store has one upload source, shared by every uploaded file.
CREATE UNIQUE INDEX intake_sources_file_idx ON intake_sources (store_id) WHERE kind = 'file' AND deleted_at IS NULL;

-- One row per imported row key of a source: the lead it became and the
-- checksum of its mapped cells, so an unchanged row costs no write. No
-- foreign key: these rows are written by the hundred thousand and a per-row
-- check costs a fifth of an import; sources are only ever soft-deleted.
CREATE TABLE intake_rows (
  store_id   uuid NOT NULL,
  source_id  uuid NOT NULL,
  row_key    text NOT NULL,
  lead_id    uuid NOT NULL,
  checksum   bytea NOT NULL,
  PRIMARY KEY (store_id, source_id, row_key)
);

-- A run of a source (an upload or a sheet sync): its counters and its
-- checkpoint (every row numbered up to checkpoint_row is committed), so a run resumes
-- after a crash at the chunk it was writing.
CREATE TABLE intake_runs (
  store_id     uuid NOT NULL,
  id           uuid NOT NULL,
  source_id    uuid NOT NULL,
  state        text NOT NULL CHECK (state IN ('running', 'done', 'failed')),
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  rows_done    integer NOT NULL DEFAULT 0,
  checkpoint_row integer NOT NULL DEFAULT 0,
  rows_total   integer NOT NULL DEFAULT 0,
  imported     integer NOT NULL DEFAULT 0,
  updated      integer NOT NULL DEFAULT 0,
  unchanged    integer NOT NULL DEFAULT 0,
  duplicate    integer NOT NULL DEFAULT 0,
  rejected     integer NOT NULL DEFAULT 0,
  empty        integer NOT NULL DEFAULT 0,
  error        text NOT NULL DEFAULT '',
  PRIMARY KEY (store_id, id),
  FOREIGN KEY (store_id, source_id) REFERENCES intake_sources (store_id, id)
);
CREATE INDEX intake_runs_source_idx ON intake_runs (store_id, source_id, started_at);

-- The rows of a run worth a look: updated, duplicate and rejected ones
-- (imported and unchanged rows are only counted).
CREATE TABLE intake_run_rows (
  store_id  uuid NOT NULL,
  run_id    uuid NOT NULL,
  row_num   integer NOT NULL,
  row_key   text NOT NULL DEFAULT '',
  outcome   text NOT NULL,
  reason    text NOT NULL DEFAULT '',
  detail    text NOT NULL DEFAULT '',
  lead_id   uuid,
  PRIMARY KEY (store_id, run_id, row_num),
  FOREIGN KEY (store_id, run_id) REFERENCES intake_runs (store_id, id)
);

-- A seller's customers, one per E.164 phone across all the seller's stores.
CREATE TABLE customers (
  seller_id   uuid NOT NULL REFERENCES sellers (id),
  phone_e164  text NOT NULL,
  name        text NOT NULL DEFAULT '',
  first_seen  timestamptz NOT NULL,
  last_seen   timestamptz NOT NULL,
  orders      integer NOT NULL DEFAULT 0,
  refusals    integer NOT NULL DEFAULT 0,
  PRIMARY KEY (seller_id, phone_e164)
);

-- How far apart two orders of one customer for one product count as the same.
ALTER TABLE sellers ADD COLUMN duplicate_window_hours integer NOT NULL DEFAULT 72
  CHECK (duplicate_window_hours BETWEEN 0 AND 8760);

-- Duplicate detection looks leads up by phone.
CREATE INDEX leads_phone_idx ON leads (store_id, phone_e164, created_at);

ALTER TABLE intake_sources ENABLE ROW LEVEL SECURITY;
CREATE POLICY intake_sources_isolation ON intake_sources USING (app_can_see_store(store_id));
ALTER TABLE intake_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY intake_rows_isolation ON intake_rows USING (app_can_see_store(store_id));
ALTER TABLE intake_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY intake_runs_isolation ON intake_runs USING (app_can_see_store(store_id));
ALTER TABLE intake_run_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY intake_run_rows_isolation ON intake_run_rows USING (app_can_see_store(store_id));
ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
-- The sellers visible to the transaction are computed once per statement
-- (an InitPlan), not once per row.
CREATE POLICY customers_isolation ON customers USING (
  seller_id = ANY (ARRAY(SELECT s.seller_id FROM stores s WHERE app_can_see_store(s.id))));

-- +goose Down
DROP INDEX leads_phone_idx;
ALTER TABLE sellers DROP COLUMN duplicate_window_hours;
DROP TABLE customers, intake_run_rows, intake_runs, intake_rows, intake_sources;
