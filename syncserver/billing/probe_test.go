package billing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
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
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: parcels(other, f.agent, 5_000, 1)}).Run(ctx, other, march)
	require.NoError(t, err)
	f.db.Analyze(t, "commission_entries")

	src := parcels(f.store, f.agent, 30_000, 2)
	_, err = (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)

	ids := make([]uuid.UUID, 0, 1000)
	for _, p := range src[:1000] {
		ids = append(ids, p.ID)
	}
	plan := f.db.Explain(t, f.store, billing.ProbeSQL, f.store, ids)
	require.Contains(t, strings.Join(plan, "\n"), "commission_entries_parcel_key", plan)
	pgtest.RequireKeyed(t, plan, "commission_entries", "parcel_id")
	want := f.db.Rows(t, f.store, true, `SELECT parcel_id, rule_id, kind, id, beneficiary, agent_id, status, base, amount,
  rule_name, calculation FROM commission_entries WHERE store_id = $1 AND parcel_id = ANY($2)`, f.store, ids)
	require.Greater(t, len(want), len(ids), "entries of the parcels")
	require.Equal(t, want, f.db.Rows(t, f.store, true, billing.ProbeSQL, f.store, ids))
}
