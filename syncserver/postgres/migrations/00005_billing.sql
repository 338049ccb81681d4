-- +goose Up

-- Commission rules of a store: shared/commission.Rule as JSON, validated by
-- the server on save. A change never edits a rule in place: it closes the
-- rule (valid_until) and starts a new one, so history is never rewritten.
CREATE TABLE commission_rules (
  store_id    uuid NOT NULL REFERENCES stores (id),
  id          uuid NOT NULL,
  rule        jsonb NOT NULL,
  created_by  uuid,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, id)
);
ALTER TABLE commission_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY commission_rules_isolation ON commission_rules USING (app_can_see_store(store_id));

-- The commission ledger (synced, store scope): append-only. An entry's
-- amounts never change; only its status moves (pending → earned → paid, or
-- reversed). A refused, returned or cancelled parcel gets a new 'reversal'
-- entry of the opposite amount. (store, rule, parcel, kind) is unique: that is
-- what makes every commission run re-runnable.
CREATE TABLE commission_entries (
  store_id     uuid NOT NULL REFERENCES stores (id),
  id           uuid NOT NULL,
  version      bigint NOT NULL,
  rule_id      uuid NOT NULL,
  parcel_id    uuid NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('earn', 'reversal')),
  beneficiary  text NOT NULL CHECK (beneficiary IN ('agent', 'platform')),
  agent_id     uuid,
  status       text NOT NULL CHECK (status IN ('pending', 'earned', 'paid', 'reversed')),
  base         bigint NOT NULL,
  amount       bigint NOT NULL,
  rule_name    text NOT NULL,
  calculation  text NOT NULL,
  reverses     uuid,
  occurred_at  timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, id),
  CHECK ((kind = 'reversal') = (reverses IS NOT NULL))
);
CREATE UNIQUE INDEX commission_entries_key ON commission_entries (store_id, rule_id, parcel_id, kind);
CREATE INDEX commission_entries_version_idx ON commission_entries (store_id, version);
CREATE INDEX commission_entries_parcel_idx ON commission_entries (store_id, parcel_id);
CREATE INDEX commission_entries_agent_idx ON commission_entries (store_id, agent_id, id);
ALTER TABLE commission_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY commission_entries_isolation ON commission_entries USING (app_can_see_store(store_id));
CREATE TRIGGER commission_entries_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON commission_entries
  FOR EACH ROW EXECUTE FUNCTION sync_guard();

-- +goose StatementBegin
CREATE FUNCTION commission_entries_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'commission entries are append-only' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW.store_id, NEW.id, NEW.rule_id, NEW.parcel_id, NEW.kind, NEW.beneficiary, NEW.agent_id, NEW.base,
      NEW.amount, NEW.rule_name, NEW.calculation, NEW.reverses, NEW.occurred_at)
     IS DISTINCT FROM
     (OLD.store_id, OLD.id, OLD.rule_id, OLD.parcel_id, OLD.kind, OLD.beneficiary, OLD.agent_id, OLD.base,
      OLD.amount, OLD.rule_name, OLD.calculation, OLD.reverses, OLD.occurred_at) THEN
    RAISE EXCEPTION 'commission entry %: only its status may change', OLD.id USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER commission_entries_append_only BEFORE UPDATE OR DELETE ON commission_entries
  FOR EACH ROW EXECUTE FUNCTION commission_entries_append_only();

-- Invoice numbers are continuous per seller: the counter row is locked and
-- incremented in the transaction that issues the invoice, so a rolled-back
-- issue leaves no gap and concurrent issues are serialised.
CREATE TABLE invoice_counters (
  seller_id  uuid PRIMARY KEY REFERENCES sellers (id),
  last       bigint NOT NULL DEFAULT 0
);
ALTER TABLE invoice_counters ENABLE ROW LEVEL SECURITY;
CREATE POLICY invoice_counters_isolation ON invoice_counters USING (
  app_all_stores() OR EXISTS (SELECT 1 FROM stores s WHERE s.seller_id = invoice_counters.seller_id AND app_can_see_store(s.id)));

-- A store's invoice for one period (synced, store scope). number is assigned
-- when the invoice is issued; a draft has none. digest is the SHA-256 of the
-- invoice's canonical form and signature the server's ed25519 signature over
-- it: the QR code on the PDF carries both.
CREATE TABLE invoices (
  store_id      uuid NOT NULL REFERENCES stores (id),
  id            uuid NOT NULL,
  version       bigint NOT NULL,
  seller_id     uuid NOT NULL REFERENCES sellers (id),
  number        bigint,
  period_start  date NOT NULL,
  period_end    date NOT NULL,
  status        text NOT NULL CHECK (status IN ('draft', 'issued', 'partly_paid', 'paid')),
  body          jsonb NOT NULL,
  total         bigint NOT NULL,
  paid          bigint NOT NULL DEFAULT 0,
  digest        bytea,
  signature     bytea,
  pdf           bytea,
  issued_at     timestamptz,
  emailed_at    timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, id),
  CHECK (period_end > period_start),
  CHECK ((status = 'draft') = (number IS NULL))
);
CREATE UNIQUE INDEX invoices_period_key ON invoices (store_id, period_start, period_end);
CREATE INDEX invoices_version_idx ON invoices (store_id, version);
-- The one index that does not lead with store_id: numbers are unique per seller.
CREATE UNIQUE INDEX invoices_number_key ON invoices (seller_id, number) WHERE number IS NOT NULL;
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY invoices_isolation ON invoices USING (app_can_see_store(store_id));
CREATE TRIGGER invoices_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON invoices
  FOR EACH ROW EXECUTE FUNCTION sync_guard();

-- Payments received against an invoice.
CREATE TABLE invoice_payments (
  store_id    uuid NOT NULL REFERENCES stores (id),
  id          uuid NOT NULL,
  invoice_id  uuid NOT NULL,
  amount      bigint NOT NULL CHECK (amount > 0),
  paid_at     timestamptz NOT NULL,
  reference   text NOT NULL DEFAULT '',
  created_by  uuid,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (store_id, id),
  FOREIGN KEY (store_id, invoice_id) REFERENCES invoices (store_id, id)
);
CREATE INDEX invoice_payments_invoice_idx ON invoice_payments (store_id, invoice_id);
ALTER TABLE invoice_payments ENABLE ROW LEVEL SECURITY;
CREATE POLICY invoice_payments_isolation ON invoice_payments USING (app_can_see_store(store_id));

-- The server's invoice-signing keys (platform-wide, not store data): the
-- private key sealed with the secrets keyring, bound to its row id. The
-- newest is active; older ones still verify the invoices they signed.
CREATE TABLE invoice_signing_keys (
  id              text PRIMARY KEY,
  public_key      bytea NOT NULL,
  private_sealed  text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE invoice_signing_keys;
DROP TABLE invoice_payments;
DROP TABLE invoices;
DROP TABLE invoice_counters;
DROP TABLE commission_entries;
DROP FUNCTION commission_entries_append_only();
DROP TABLE commission_rules;
