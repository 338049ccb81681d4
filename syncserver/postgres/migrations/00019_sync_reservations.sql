-- +goose Up

-- Versions reserved aside. A writer of a scope normally holds the scope's
-- counter row lock from its reservation to its commit, which makes version
-- order commit order: a pull that sees the counter at N sees every row up to
-- N. A commission run writing a million ledger rows cannot be that writer —
-- one backend at a time would do all the inserting — so its chunks reserve
-- versions aside instead: in a short transaction of their own that bumps the
-- counter and records the range here, with the transaction id of the writing
-- transaction, which deletes the record when it commits. Several chunks then
-- insert at once, on as many backends.
--
-- Pulls and deliveries read a scope's counter through sync_visible_seq: the
-- counter, or just below the first range still reserved by a writing
-- transaction that has not committed in the reader's snapshot (and has not
-- aborted: an aborted writer's versions never appear). Such a pull stops
-- under the range and takes it, and whatever was committed above it, once
-- the writer commits; so no replica's cursor ever passes a version whose row
-- is still to come.
CREATE TABLE sync_reservations (
  scope_id   uuid NOT NULL REFERENCES sync_scopes (scope_id) ON DELETE CASCADE,
  first      bigint NOT NULL,
  last       bigint NOT NULL,
  writer     xid8 NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope_id, first),
  CHECK (first <= last)
);
ALTER TABLE sync_reservations ENABLE ROW LEVEL SECURITY;
CREATE POLICY sync_reservations_visible ON sync_reservations USING (app_can_see_store(scope_id));

-- +goose StatementBegin
CREATE FUNCTION sync_visible_seq(p_scope uuid, p_seq bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT least(p_seq, min(r.first) - 1) FROM sync_reservations r
  WHERE r.scope_id = p_scope
    AND pg_xact_status(r.writer) IS DISTINCT FROM 'aborted'
    AND NOT pg_visible_in_snapshot(r.writer, pg_current_snapshot())
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION sync_visible_seq(uuid, bigint);
DROP TABLE sync_reservations;
