package parcels_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/carrier/ameex/ameextest"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/servertest"
)

// An account's concurrency holds across server instances: two instances,
// eight job workers each, create 40 parcels at an Ameex fake answering in
// 100 ms; the fake never sees more creation calls at once than the
// account's limit of 3, though both instances made calls.
func TestConcurrencyAcrossInstances(t *testing.T) {
	t.Parallel()
	const limit, n = 3, 40
	ctx := context.Background()
	a := servertest.Start(t, func(c *server.Config) { c.JobWorkers = 8 })
	servertest.StartOn(t, a.DB, func(c *server.Config) { c.JobWorkers = 8; c.Secrets = a.Server.Config().Secrets })
	tenant := a.NewTenant(a.Admin(), "two instances")
	fake := ameextest.NewServer(t, ameextest.Options{MissingCodeRate: -1, Faults: ameextest.Faults{Latency: 100 * time.Millisecond}})
	a.InStore(func(tx *postgres.Tx) error {
		_, _, err := parcels.InsertAccount(ctx, tx, a.Server.Config().Secrets, parcels.NewAccount{Store: tenant.StoreID, Carrier: ameex.Name,
			Credentials: parcels.Credentials{BaseURL: fake.URL, APIID: "test-id", APIKey: "test-key"}, Concurrency: limit})
		return err
	}, tenant.StoreID)
	f := fixture{env: a, store: tenant.StoreID}
	leads := f.confirm(t, n)
	params := make([]river.InsertManyParams, len(leads))
	for i, id := range leads {
		params[i] = river.InsertManyParams{Args: parcels.CreateArgs{Store: tenant.StoreID, Lead: id}}
	}
	_, err := a.Server.River.InsertMany(ctx, params)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return f.count(t, `SELECT count(*) FROM parcels WHERE creation = 'created'`) == n
	}, time.Minute, 50*time.Millisecond)

	var workers int
	require.NoError(t, a.DB.App.QueryRow(ctx, `SELECT count(DISTINCT attempted_by[array_length(attempted_by, 1)]) FROM river_job WHERE kind = 'parcel_create'`).Scan(&workers))
	require.Equal(t, 2, workers, "both instances created parcels")
	peak := fake.Sim.PeakConcurrency("/Parcels/Action/Type/Add")
	t.Logf("peak concurrent creation calls: %d (limit %d)", peak, limit)
	require.LessOrEqual(t, peak, limit)
	require.Len(t, fake.Sim.All(), n)
}
