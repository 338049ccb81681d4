package shopsync_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/servertest"
)

// Settling a batch of orders reads and locks their leads by id even when
// the planner's statistics do not know the store's leads yet: a plan
// reading all of the store's leads for every batch made a backfill
// quadratic.
func TestLockLeadsSearchesByID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn, ids := env.StaleLeads(1_500)
	batch := append([]uuid.UUID{uuid.New(), ids[0]}, ids[:1_000]...) // a lead of no store, and a repeat
	pgtest.RequireKeyed(t, env.DB.Explain(t, tn.StoreID, shopsync.LockLeadsSQL, tn.StoreID, batch), "leads", "id")
	got := env.DB.Rows(t, tn.StoreID, false, shopsync.LockLeadsSQL, tn.StoreID, batch)
	require.Len(t, got, 1_000)
	require.Equal(t, env.DB.Rows(t, tn.StoreID, false, `SELECT id, status FROM leads
WHERE store_id = $1 AND id = ANY($2) AND deleted_at IS NULL ORDER BY id FOR UPDATE`, tn.StoreID, batch), got, "each once, in id order")
}
