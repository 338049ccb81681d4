package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/events"
	parcelstore "github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// racingSource streams its slice, then, with the run's rows evaluated but
// not yet written, runs during; the parcels' changes are read from the
// database, as the server's source reads them.
type racingSource struct {
	billing.SliceSource
	parcelstore.BillingSource
	during func()
}

func (s racingSource) Parcels(ctx context.Context, store uuid.UUID, from, to time.Time, fn func(billing.DeliveredParcel) error) error {
	if err := s.SliceSource.Parcels(ctx, store, from, to, fn); err != nil {
		return err
	}
	s.during()
	return nil
}

// TestRunCatchesUpWithParcelsThatChangedWhileItWrote: one parcel is refused
// and another delivered after the run read them in transit and before its
// entries are committed, and the consumers of both events run in between,
// finding nothing to reverse or earn. The run's catch-up does it: without it
// the refused parcel's entries stayed pending and the delivered one's never
// became earned, until a run of that month that might never come.
func TestRunCatchesUpWithParcelsThatChangedWhileItWrote(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "argan")
	f := &fixture{t: t, pool: env.DB.App, seller: tn.SellerID, agent: tn.Agent.UserID, store: tn.StoreID,
		reserve: postgres.NewSidePool(env.DB.App, 2)}
	t.Cleanup(f.reserve.Close)
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerConfirmed, 5_00), platformRule(uuid.New(), 300))
	ctx := context.Background()

	src := parcels(f.store, f.agent, 3, 5)
	leads := env.SeedLeads(f.store, len(src), "Course")
	account := uuid.New()
	setStatus := func(p uuid.UUID, st parcel.Status) {
		require.NoError(t, syncer.Write(ctx, f.pool, postgres.StoreScope(f.store), func(w *syncer.Writer) error {
			v, err := w.Reserve(f.store, 1)
			if err != nil {
				return err
			}
			_, err = w.Tx.Exec(ctx, `UPDATE parcels SET status = $3, version = $4, updated_at = now() WHERE store_id = $1 AND id = $2`,
				f.store, p, st.String(), v)
			return err
		}))
	}
	require.NoError(t, syncer.Write(ctx, f.pool, postgres.StoreScope(f.store), func(w *syncer.Writer) error {
		if _, err := w.Tx.Exec(ctx, `INSERT INTO carrier_accounts (id, store_id, carrier, credentials) VALUES ($1, $2, 'coliix', 'v1:x:y')`,
			account, f.store); err != nil {
			return err
		}
		v, err := w.Reserve(f.store, len(src))
		if err != nil {
			return err
		}
		for i := range src {
			src[i].Status = parcel.StatusInTransit // confirmed in March: pending
			if _, err := w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier, tracking, status, creation, cod)
VALUES ($1, $2, $3, now(), now(), $4, $5, 'coliix', $6, 'in_transit', 'created', $7)`,
				f.store, src[i].ID, v+int64(i), leads[i], account, src[i].Ref, int64(src[i].COD)); err != nil {
				return err
			}
		}
		return nil
	}))

	refused, delivered := src[0].ID, src[1].ID
	raced := false
	during := func() {
		raced = true
		setStatus(refused, parcel.StatusRefused)
		setStatus(delivered, parcel.StatusDelivered)
		f.reverse(refused, time.Now())
		require.NoError(t, postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
			return billing.EarnParcels(ctx, tx, []events.Event{{Store: f.store, Kind: events.ParcelDelivered, AggregateID: delivered}})
		}))
		require.Zero(t, f.ledger(f.store).Earn, "the consumers ran before the run wrote anything")
	}
	r := &billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: racingSource{SliceSource: src,
		BillingSource: parcelstore.BillingSource{Pool: f.pool}, during: during}}
	res, err := r.Run(ctx, f.store, march)
	require.NoError(t, err)
	require.True(t, raced)
	require.Equal(t, 4, res.Written, "three agents' entries, and the refused parcel's reversal")

	status := map[uuid.UUID]map[string]string{} // parcel → kind → status
	require.NoError(t, postgres.InSnapshot(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT parcel_id, kind, status FROM commission_entries WHERE store_id = $1`, f.store)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p uuid.UUID
			var kind, st string
			if err := rows.Scan(&p, &kind, &st); err != nil {
				return err
			}
			if status[p] == nil {
				status[p] = map[string]string{}
			}
			status[p][kind] = st
		}
		return rows.Err()
	}))
	require.Equal(t, map[string]string{"earn": billing.StatusReversed, "reversal": billing.StatusReversed}, status[refused])
	require.Equal(t, map[string]string{"earn": billing.StatusEarned}, status[delivered])
	require.Equal(t, map[string]string{"earn": billing.StatusPending}, status[src[2].ID], "unchanged: still in transit")
	l := f.ledger(f.store)
	require.Equal(t, 2*5_00, int(l.Agent), "the refused parcel's fee cancelled")

	// The consumers, running again (a redelivered event), change nothing;
	// neither does a re-run (whose catch-up finds no parcel changed since it
	// began).
	f.reverse(refused, time.Now())
	raced = false
	r.Source = racingSource{SliceSource: src, BillingSource: parcelstore.BillingSource{Pool: f.pool}, during: func() {}}
	res, err = r.Run(ctx, f.store, march)
	require.NoError(t, err)
	require.Zero(t, res.Written)
	require.Equal(t, l, f.ledger(f.store))
}
