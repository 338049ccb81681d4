-- The signed-in session, the cached store list and small settings.
-- Times are Unix milliseconds (UTC).

-- +goose Up
CREATE TABLE session (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    server_url     TEXT    NOT NULL,
    token          TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL,
    user_id        TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    full_name      TEXT    NOT NULL,
    platform_admin INTEGER NOT NULL CHECK (platform_admin IN (0, 1)),
    last_contact   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE stores (
    id             TEXT    PRIMARY KEY,
    position       INTEGER NOT NULL,
    seller_id      TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    primary_color  TEXT    NOT NULL,
    accent_color   TEXT    NOT NULL,
    logo           BLOB,
    logo_mime_type TEXT    NOT NULL,
    cached_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE settings;
DROP TABLE stores;
DROP TABLE session;
