-- The money rows the server replicates in the store scope: invoices with
-- their sealed PDFs (to whoever sees the whole store) and commission entries
-- (an agent gets their own). invoice_keys caches the server's invoice public
-- keys, so that a sealed PDF is checked offline. Times are Unix microseconds
-- (UTC), 0 for none; amounts centimes.

-- +goose Up
CREATE TABLE invoices (
    id            TEXT    PRIMARY KEY,
    store_id      TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    number        TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    period_start  INTEGER NOT NULL,
    period_end    INTEGER NOT NULL,
    issued_at     INTEGER NOT NULL,
    cod           INTEGER NOT NULL,
    delivery_fees INTEGER NOT NULL,
    cod_fees      INTEGER NOT NULL,
    return_fees   INTEGER NOT NULL,
    platform_fees INTEGER NOT NULL,
    vat_rate_bp   INTEGER NOT NULL,
    vat           INTEGER NOT NULL,
    net           INTEGER NOT NULL,
    paid          INTEGER NOT NULL,
    line_count    INTEGER NOT NULL,
    pdf           BLOB    NOT NULL
) STRICT;
CREATE INDEX invoices_store ON invoices (store_id, period_start);

CREATE TABLE commission_entries (
    id          TEXT    PRIMARY KEY,
    store_id    TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    rule_id     TEXT    NOT NULL,
    rule_name   TEXT    NOT NULL,
    parcel_id   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    beneficiary TEXT    NOT NULL,
    agent_id    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    base        INTEGER NOT NULL,
    amount      INTEGER NOT NULL,
    calculation TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL
) STRICT;
CREATE INDEX commission_entries_store ON commission_entries (store_id, occurred_at);

CREATE TABLE invoice_keys (
    id         TEXT    PRIMARY KEY,
    public_key BLOB    NOT NULL,
    fetched_at INTEGER NOT NULL
) STRICT;

-- A store scope dropped (membership gone, or re-sync) takes its money rows
-- with it: the replica forgets a scope by deleting its cursor.
-- +goose StatementBegin
CREATE TRIGGER cursors_drop_money AFTER DELETE ON cursors
BEGIN
    DELETE FROM invoices WHERE store_id = OLD.scope_id;
    DELETE FROM commission_entries WHERE store_id = OLD.scope_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER cursors_drop_money;
DROP TABLE invoice_keys;
DROP TABLE commission_entries;
DROP TABLE invoices;
