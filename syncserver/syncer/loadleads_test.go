package syncer_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/postgres"
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

	ctx := context.Background()
	err := postgres.InTx(ctx, env.DB.App, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM (`+syncer.LeadsSQL(true)+`) l`, store, batch)
		if err != nil {
			return err
		}
		var got []uuid.UUID
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				return err
			}
			got = append(got, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		require.Len(t, got, 1_000, "each lead once, the unknown one not at all")
		require.True(t, slices.IsSortedFunc(got, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }), "in id order")
		return nil
	})
	require.NoError(t, err)
}
