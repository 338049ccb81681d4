-- +goose Up

-- A carrier account's price list for one city ('' = every city without a
-- line of its own), valid over [valid_from, valid_until): the delivery fee of
-- a delivered parcel, the return fee of a refused or returned one, and the
-- COD fee (fixed, plus basis points of the cash collected). Amounts are
-- centimes. Lines of one account and city never overlap in time: the server
-- checks it on save under a per-account advisory lock.
CREATE TABLE carrier_price_lists (
  store_id       uuid NOT NULL REFERENCES stores (id),
  id             uuid NOT NULL,
  account_id     uuid NOT NULL REFERENCES carrier_accounts (id),
  city_id        text NOT NULL DEFAULT '',
  delivery_fee   bigint NOT NULL CHECK (delivery_fee >= 0),
  return_fee     bigint NOT NULL CHECK (return_fee >= 0),
  cod_fee_fixed  bigint NOT NULL CHECK (cod_fee_fixed >= 0),
  cod_fee_bp     bigint NOT NULL CHECK (cod_fee_bp BETWEEN 0 AND 10000),
  valid_from     date NOT NULL,
  valid_until    date,
  created_by     uuid,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, id),
  CHECK (valid_until IS NULL OR valid_until > valid_from)
);
CREATE INDEX carrier_price_lists_account_idx ON carrier_price_lists (store_id, account_id, city_id, valid_from);
ALTER TABLE carrier_price_lists ENABLE ROW LEVEL SECURITY;
CREATE POLICY carrier_price_lists_isolation ON carrier_price_lists USING (app_can_see_store(store_id));

-- What a carrier account paid out: one statement, entered by hand or
-- imported from the carrier's file. digest is the SHA-256 of the statement's
-- canonical lines: importing the same statement again (same reference or
-- same lines) finds this row and changes nothing.
CREATE TABLE remittances (
  store_id        uuid NOT NULL REFERENCES stores (id),
  id              uuid NOT NULL,
  account_id      uuid NOT NULL REFERENCES carrier_accounts (id),
  reference       text NOT NULL,
  paid_at         date NOT NULL,
  source          text NOT NULL CHECK (source IN ('manual', 'csv', 'xlsx')),
  digest          bytea NOT NULL,
  declared_total  bigint,
  line_count      integer NOT NULL,
  lines_total     bigint NOT NULL,
  created_by      uuid,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, id)
);
CREATE UNIQUE INDEX remittances_reference_key ON remittances (store_id, account_id, reference);
CREATE UNIQUE INDEX remittances_digest_key ON remittances (store_id, account_id, digest);
CREATE INDEX remittances_paid_idx ON remittances (store_id, paid_at);
ALTER TABLE remittances ENABLE ROW LEVEL SECURITY;
CREATE POLICY remittances_isolation ON remittances USING (app_can_see_store(store_id));

-- A statement's lines as the carrier wrote them: the parcel's tracking code,
-- its outcome, the cash collected, the fees charged and the net paid. Lines
-- are matched to parcels when read (by account and tracking), so a parcel the
-- carrier reports before its webhook arrives is reconciled once it does.
CREATE TABLE remittance_lines (
  store_id       uuid NOT NULL REFERENCES stores (id),
  remittance_id  uuid NOT NULL,
  line_no        integer NOT NULL,
  tracking       text NOT NULL,
  outcome        text NOT NULL CHECK (outcome IN ('delivered', 'returned')),
  cod            bigint NOT NULL CHECK (cod >= 0),
  delivery_fee   bigint,
  return_fee     bigint,
  cod_fee        bigint,
  fees           bigint NOT NULL CHECK (fees >= 0),
  net            bigint NOT NULL,
  PRIMARY KEY (store_id, remittance_id, line_no),
  FOREIGN KEY (store_id, remittance_id) REFERENCES remittances (store_id, id)
);
CREATE INDEX remittance_lines_tracking_idx ON remittance_lines (store_id, tracking);
ALTER TABLE remittance_lines ENABLE ROW LEVEL SECURITY;
CREATE POLICY remittance_lines_isolation ON remittance_lines USING (app_can_see_store(store_id));

-- An agent's payout: the earned commission entries it paid (earned → paid),
-- each recorded once in commission_payout_entries. Both are append-only.
CREATE TABLE commission_payouts (
  store_id    uuid NOT NULL REFERENCES stores (id),
  id          uuid NOT NULL,
  agent_id    uuid NOT NULL,
  cutoff      timestamptz NOT NULL,
  total       bigint NOT NULL,
  entries     integer NOT NULL,
  reference   text NOT NULL DEFAULT '',
  paid_at     timestamptz NOT NULL,
  created_by  uuid,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, id)
);
CREATE INDEX commission_payouts_agent_idx ON commission_payouts (store_id, agent_id, paid_at);
ALTER TABLE commission_payouts ENABLE ROW LEVEL SECURITY;
CREATE POLICY commission_payouts_isolation ON commission_payouts USING (app_can_see_store(store_id));

CREATE TABLE commission_payout_entries (
  store_id   uuid NOT NULL REFERENCES stores (id),
  entry_id   uuid NOT NULL,
  payout_id  uuid NOT NULL,
  amount     bigint NOT NULL,
  PRIMARY KEY (store_id, entry_id),
  FOREIGN KEY (store_id, payout_id) REFERENCES commission_payouts (store_id, id),
  FOREIGN KEY (store_id, entry_id) REFERENCES commission_entries (store_id, id)
);
CREATE INDEX commission_payout_entries_payout_idx ON commission_payout_entries (store_id, payout_id);
ALTER TABLE commission_payout_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY commission_payout_entries_isolation ON commission_payout_entries USING (app_can_see_store(store_id));

-- +goose StatementBegin
CREATE FUNCTION refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
-- +goose StatementEnd
CREATE TRIGGER remittances_append_only BEFORE UPDATE OR DELETE ON remittances
  FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER remittance_lines_append_only BEFORE UPDATE OR DELETE ON remittance_lines
  FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER commission_payouts_append_only BEFORE UPDATE OR DELETE ON commission_payouts
  FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER commission_payout_entries_append_only BEFORE UPDATE OR DELETE ON commission_payout_entries
  FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();

-- +goose Down
DROP TABLE commission_payout_entries, commission_payouts, remittance_lines, remittances, carrier_price_lists;
DROP FUNCTION refuse_rewrite();
