package intake_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/servertest"
)

// A re-import reads which of a chunk's changed rows' leads are open by id
// even when the planner's statistics do not know the store's leads yet: a
// plan reading all of the store's leads for every chunk made a re-import
// quadratic.
func TestOpenLeadsSearchesByID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn, ids := env.StaleLeads(1_500)
	batch := append(ids[:1_000:1_000], ids[0], uuid.New()) // a repeat, and a lead of no store
	pgtest.RequireKeyed(t, env.DB.Explain(t, tn.StoreID, intake.OpenLeadsSQL, tn.StoreID, batch), "leads", "id")
	got := env.DB.Rows(t, tn.StoreID, true, intake.OpenLeadsSQL, tn.StoreID, batch)
	require.Len(t, got, 1_000)
	require.Equal(t, env.DB.Rows(t, tn.StoreID, true, `SELECT id FROM leads WHERE store_id = $1 AND id = ANY($2) AND deleted_at IS NULL
  AND status IN ('new', 'no_answer', 'callback', 'unreachable')`, tn.StoreID, batch), got)
}
