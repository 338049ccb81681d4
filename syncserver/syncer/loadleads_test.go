package syncer_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// A push reads (and locks) its batch's leads by id even when the planner's
// statistics do not know the store yet (leads analysed before the store's
// were written): a plan reading all of the store's leads for every push
// made pushes grow with the store.
func TestLoadLeadsSearchesByID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn, ids := env.StaleLeads(1_500)
	store := tn.StoreID

	batch := append(ids[:1_000:1_000], ids[0], uuid.New()) // a repeat, and a lead of no store
	for _, lock := range []bool{false, true} {
		plan := env.DB.Explain(t, store, syncer.LeadsSQL(lock), store, batch)
		pgtest.RequireKeyed(t, plan, "leads", "id")
	}

	got := env.DB.Rows(t, store, false, `SELECT id FROM (`+syncer.LeadsSQL(true)+`) l`, store, batch)
	require.Len(t, got, 1_000, "each lead once, the unknown one not at all")
	require.Equal(t, env.DB.Rows(t, store, false, `SELECT id FROM leads WHERE store_id = $1 AND id = ANY($2) ORDER BY id`, store, batch), got,
		"each once, in id order")
}

// A resent batch's recorded outcomes are read by mutation id even when the
// planner's statistics do not know the client yet: not by a read of every
// mutation the client ever pushed, filtered.
func TestRecordedResultsSearchByID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "client")
	ctx := context.Background()
	owner := env.DB.Owner(t)
	record := func(client uuid.UUID, n int) {
		_, err := owner.Exec(ctx, `INSERT INTO sync_clients (client_id, user_id, schema_version) VALUES ($1, $2, 1)`, client, tn.Agent.UserID)
		require.NoError(t, err)
		_, err = owner.Exec(ctx, `INSERT INTO sync_mutations (client_id, mutation_id, name, applied, scope_id, version)
SELECT $1, g, 'add_note', true, $2, g FROM generate_series(1, $3::int) g`, client, tn.StoreID, n)
		require.NoError(t, err)
	}
	record(uuid.New(), 5_000)
	env.DB.Analyze(t, "sync_mutations")
	client := uuid.New()
	record(client, 30_000)
	ids := []int64{40_000, 7} // one not recorded, and a repeat
	for i := range 1_000 {
		ids = append(ids, int64(7+i*3))
	}
	plan := env.DB.Explain(t, tn.StoreID, syncer.RecordedSQL, client, ids)
	pgtest.RequireKeyed(t, plan, "sync_mutations", "mutation_id")
	got := env.DB.Rows(t, tn.StoreID, false, syncer.RecordedSQL, client, ids)
	require.Len(t, got, 1_000)
	require.Equal(t, env.DB.Rows(t, tn.StoreID, false, `SELECT mutation_id, applied, scope_id, version, code, reason FROM sync_mutations
WHERE client_id = $1 AND mutation_id = ANY($2) ORDER BY mutation_id`, client, ids), got, "each once, in id order")
}
