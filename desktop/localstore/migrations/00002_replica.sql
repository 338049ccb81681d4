-- The sync replica: the rows pulled from the server (in this user's view), the
-- cursors they were pulled to, the outbox of local mutations with the
-- before-images of the rows each one touched, and the conflicts list.
-- Times are Unix microseconds (UTC), 0 for none; ids are UUID text, '' for none.

-- +goose Up
CREATE TABLE replica_meta (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    client_id        TEXT    NOT NULL,
    next_mutation_id INTEGER NOT NULL,
    user_id          TEXT    NOT NULL DEFAULT '',
    user_name        TEXT    NOT NULL DEFAULT '',
    last_sync_at     INTEGER NOT NULL DEFAULT 0
) STRICT;

-- What the user may do in each store, as the server last said (for local apply).
CREATE TABLE memberships (
    store_id      TEXT    PRIMARY KEY,
    role          TEXT    NOT NULL,
    permissions   TEXT    NOT NULL, -- JSON array of permission names
    lease_minutes INTEGER NOT NULL
) STRICT;

CREATE TABLE leads (
    id            TEXT    PRIMARY KEY,
    store_id      TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    redacted      INTEGER NOT NULL CHECK (redacted IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    customer_name TEXT    NOT NULL,
    phone_raw     TEXT    NOT NULL,
    phone_e164    TEXT    NOT NULL,
    city_id       TEXT    NOT NULL,
    city_raw      TEXT    NOT NULL,
    address       TEXT    NOT NULL,
    items_json    BLOB    NOT NULL,
    cod           INTEGER NOT NULL,
    source        TEXT    NOT NULL,
    external_ref  TEXT    NOT NULL,
    custom_json   BLOB    NOT NULL,
    assigned_to   TEXT    NOT NULL,
    lease_until   INTEGER NOT NULL,
    call_attempts INTEGER NOT NULL,
    callback_at   INTEGER NOT NULL,
    cancel_reason TEXT    NOT NULL,
    duplicate_of  TEXT    NOT NULL,
    score         INTEGER NOT NULL
) STRICT;
-- The agent's queue and the seller's lists.
CREATE INDEX leads_queue ON leads (store_id, status, created_at);
CREATE INDEX leads_holder ON leads (store_id, assigned_to, status);

CREATE TABLE lead_events (
    id          TEXT    PRIMARY KEY,
    store_id    TEXT    NOT NULL,
    lead_id     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    actor_id    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    from_status TEXT    NOT NULL,
    to_status   TEXT    NOT NULL,
    note        TEXT    NOT NULL,
    data_json   BLOB    NOT NULL
) STRICT;
CREATE INDEX lead_events_lead ON lead_events (lead_id, created_at);
CREATE INDEX lead_events_store ON lead_events (store_id);

-- Rejections of this user's mutations (the user scope).
CREATE TABLE rejections (
    id            TEXT    PRIMARY KEY,
    client_id     TEXT    NOT NULL,
    mutation_id   INTEGER NOT NULL,
    mutation_name TEXT    NOT NULL,
    store_id      TEXT    NOT NULL,
    lead_id       TEXT    NOT NULL,
    code          TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    at            INTEGER NOT NULL
) STRICT;

CREATE TABLE cursors (
    scope_id TEXT    PRIMARY KEY,
    version  INTEGER NOT NULL,
    epoch    INTEGER NOT NULL
) STRICT;

-- Local mutations not yet known to be decided. result_* are set from a push
-- reply: the (scope, version) it wrote, or the rejection's.
CREATE TABLE outbox (
    mutation_id    INTEGER PRIMARY KEY,
    store_id       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    args           BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    result_scope   TEXT,
    result_version INTEGER,
    result_applied INTEGER,
    result_code    TEXT,
    result_reason  TEXT
) STRICT;

-- The rows each pending mutation touched, as they were before it (image NULL:
-- the row did not exist).
CREATE TABLE before_images (
    mutation_id INTEGER NOT NULL REFERENCES outbox (mutation_id) ON DELETE CASCADE,
    tbl         TEXT    NOT NULL,
    row_id      TEXT    NOT NULL,
    image       BLOB,
    PRIMARY KEY (mutation_id, tbl, row_id)
) STRICT;

CREATE TABLE conflicts (
    id          INTEGER PRIMARY KEY,
    mutation_id INTEGER NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    lead_id     TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    seen        INTEGER NOT NULL DEFAULT 0 CHECK (seen IN (0, 1))
) STRICT;
CREATE INDEX conflicts_unseen ON conflicts (seen, id);

-- +goose Down
DROP TABLE conflicts;
DROP TABLE before_images;
DROP TABLE outbox;
DROP TABLE cursors;
DROP TABLE rejections;
DROP TABLE lead_events;
DROP TABLE leads;
DROP TABLE memberships;
DROP TABLE replica_meta;
