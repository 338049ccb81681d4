-- A cursor of a sync from zero still catching up carries the scope's purge
-- mark from when it began (see sync.proto, Cursor.initial), so its pages under
-- the mark are not taken for a stale replica's.

-- +goose Up
ALTER TABLE cursors ADD COLUMN initial INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cursors ADD COLUMN initial_purged INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE cursors DROP COLUMN initial_purged;
ALTER TABLE cursors DROP COLUMN initial;
