-- Parcels and their carrier timelines, replicated in the store scope to
-- whoever sees the lead in full. Times are Unix microseconds (UTC), 0 for none.

-- +goose Up
CREATE TABLE parcels (
    id             TEXT    PRIMARY KEY,
    store_id       TEXT    NOT NULL,
    lead_id        TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    carrier        TEXT    NOT NULL,
    tracking       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    raw_status     TEXT    NOT NULL,
    status_known   INTEGER NOT NULL CHECK (status_known IN (0, 1)),
    creation       TEXT    NOT NULL,
    error          TEXT    NOT NULL,
    cod            INTEGER NOT NULL,
    city_id        TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_report_at INTEGER NOT NULL
) STRICT;
CREATE INDEX parcels_lead ON parcels (lead_id);
CREATE INDEX parcels_status ON parcels (store_id, status, updated_at);

CREATE TABLE parcel_events (
    id          TEXT    PRIMARY KEY,
    store_id    TEXT    NOT NULL,
    parcel_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    reported_at INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    raw_status  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    known       INTEGER NOT NULL CHECK (known IN (0, 1)),
    applied     INTEGER NOT NULL CHECK (applied IN (0, 1)),
    note        TEXT    NOT NULL
) STRICT;
CREATE INDEX parcel_events_parcel ON parcel_events (parcel_id, reported_at);
CREATE INDEX parcel_events_store ON parcel_events (store_id);

-- +goose Down
DROP TABLE parcel_events;
DROP TABLE parcels;
