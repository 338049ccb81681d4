package billing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
)

// The probe a re-run makes for every chunk looks the chunk's parcels up in
// the ledger's parcel key even when the planner's statistics do not know the
// store yet (the ledger was analysed before the store's month was written,
// the common case for a new store or a new month): a plan that reads all of
// the store's entries and filters them made a re-run quadratic.
func TestProbeLooksUpParcels(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	other := f.newStore("Autre")
	for _, s := range []uuid.UUID{f.store, other} {
		f.saveRules(s, agentRule(uuid.New(), commission.TriggerDelivered, 10_00), platformRule(uuid.New(), 300))
	}
	_, err := (&billing.Runner{Pool: f.pool, Source: parcels(other, f.agent, 5_000, 1)}).Run(ctx, other, march)
	require.NoError(t, err)
	owner, err := pgx.Connect(ctx, f.db.OwnerURL)
	require.NoError(t, err)
	defer owner.Close(ctx)
	_, err = owner.Exec(ctx, `ANALYZE commission_entries`)
	require.NoError(t, err)

	src := parcels(f.store, f.agent, 30_000, 2)
	_, err = (&billing.Runner{Pool: f.pool, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)

	ids := make([]uuid.UUID, 0, 1000)
	for _, p := range src[:1000] {
		ids = append(ids, p.ID)
	}
	var plan []string
	var got, want int
	err = postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `EXPLAIN `+billing.ProbeSQL, f.store, ids)
		if err != nil {
			return err
		}
		if plan, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (`+billing.ProbeSQL+`) p`, f.store, ids).Scan(&got); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM commission_entries WHERE store_id = $1 AND parcel_id = ANY($2)`,
			f.store, ids).Scan(&want)
	})
	require.NoError(t, err)
	text := strings.Join(plan, "\n")
	require.Contains(t, text, "commission_entries_parcel_key", text)
	require.NotContains(t, text, "commission_entries_version_idx", text)
	require.NotContains(t, text, "Seq Scan on commission_entries", text)
	for _, line := range plan {
		if strings.Contains(line, "Index Cond:") || strings.Contains(line, "Recheck Cond:") {
			require.Contains(t, line, "parcel_id", "the index is searched by parcel, not scanned by store:\n%s", text)
		}
	}
	require.Greater(t, want, len(ids), "entries of the parcels")
	require.Equal(t, want, got)
}
