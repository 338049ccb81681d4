package api_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/api"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/servertest"
)

// CreateParcels reads which of up to 5,000 named leads are confirmed by id
// even when the planner's statistics do not know the store's leads yet:
// not all of the store's leads, filtered.
func TestConfirmedLeadsSearchesByID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn, ids := env.StaleLeads(1_500)
	owner := env.DB.Owner(t)
	_, err := owner.Exec(context.Background(), `SELECT set_config('app.sync_writer', 'on', false)`)
	require.NoError(t, err)
	_, err = owner.Exec(context.Background(), `UPDATE leads SET status = 'confirmed', version = version + 100000
WHERE store_id = $1 AND id = ANY($2)`, tn.StoreID, ids[:300])
	require.NoError(t, err)
	batch := append([]uuid.UUID{uuid.New(), ids[0]}, ids[:1_000]...) // a lead of no store, and a repeat
	pgtest.RequireKeyed(t, env.DB.Explain(t, tn.StoreID, api.ConfirmedLeadsSQL, tn.StoreID, batch), "leads", "id")
	got := env.DB.Rows(t, tn.StoreID, false, api.ConfirmedLeadsSQL, tn.StoreID, batch)
	require.Len(t, got, 300)
	require.Equal(t, env.DB.Rows(t, tn.StoreID, false, `SELECT id FROM leads
WHERE store_id = $1 AND id = ANY($2) AND status = 'confirmed' AND deleted_at IS NULL ORDER BY id`, tn.StoreID, batch), got, "each once, in id order")
}
