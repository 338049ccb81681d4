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
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// TestEventsReverseThroughTheBus publishes a ParcelReturned event on a real
// server: the billing consumer, run by River, reverses the parcel's entries
// exactly once, and a ParcelDelivered event earns pending ones.
func TestEventsReverseThroughTheBus(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "argan")
	f := &fixture{t: t, pool: env.DB.App, seller: tn.SellerID, agent: tn.Agent.UserID, store: tn.StoreID}
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerConfirmed, 5_00), platformRule(uuid.New(), 300))
	src := deliveredParcels(f.store, f.agent, 4, 11)
	src[1].Status = parcel.StatusOutForDelivery // confirmed, not yet delivered: pending
	ctx := context.Background()
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)
	before := f.ledger(f.store)
	require.Equal(t, 1, before.ByStatus[billing.StatusPending])

	publish := func(kind events.Kind, p uuid.UUID) {
		require.NoError(t, postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
			return env.Server.Events.Publish(ctx, tx, events.Event{Store: f.store, Kind: kind, AggregateType: "parcel", AggregateID: p})
		}))
	}
	publish(events.ParcelReturned, src[0].ID)
	publish(events.ParcelReturned, src[0].ID) // a carrier reporting it twice
	publish(events.ParcelDelivered, src[1].ID)
	want := before.Earn
	require.Eventually(t, func() bool {
		l := f.ledger(f.store)
		return l.Reversal == 2 && l.ByStatus[billing.StatusPending] == 0 && l.Earn == want
	}, 30*time.Second, 50*time.Millisecond, "the consumers ran")
	after := f.ledger(f.store)
	fee, err := src[0].COD.MulRate(300)
	require.NoError(t, err)
	require.Equal(t, before.Agent-5_00, after.Agent)
	require.Equal(t, before.Platform-fee, after.Platform)
}

// TestEventsPublishedTogether publishes a webhook batch's events together
// (as carrier webhooks do, so the consumers get them as batches: that the
// bus delivers them so is events.TestBatchConsumerGetsPublishManyOnce's):
// each returned parcel's entries are reversed once — a parcel reported
// twice included — and the delivered one's earned.
func TestEventsPublishedTogether(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "argan")
	f := &fixture{t: t, pool: env.DB.App, seller: tn.SellerID, agent: tn.Agent.UserID, store: tn.StoreID}
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerConfirmed, 5_00), platformRule(uuid.New(), 300))
	src := deliveredParcels(f.store, f.agent, 5, 11)
	src[2].Status = parcel.StatusOutForDelivery // pending until delivered
	ctx := context.Background()
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)
	before := f.ledger(f.store)
	require.Equal(t, 1, before.ByStatus[billing.StatusPending])

	var evs []events.Event
	for _, e := range []struct {
		kind events.Kind
		p    uuid.UUID
	}{{events.ParcelReturned, src[0].ID}, {events.ParcelRefused, src[1].ID}, {events.ParcelDelivered, src[2].ID},
		{events.ParcelReturned, src[1].ID}, {events.ParcelReturned, uuid.New()}} {
		evs = append(evs, events.Event{Store: f.store, Kind: e.kind, AggregateType: "parcel", AggregateID: e.p})
	}
	require.NoError(t, postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		return env.Server.Events.PublishMany(ctx, tx, evs)
	}))
	require.Eventually(t, func() bool {
		l := f.ledger(f.store)
		return l.Reversal == 4 && l.ByStatus[billing.StatusPending] == 0 && l.Earn == before.Earn
	}, 30*time.Second, 50*time.Millisecond, "the consumers ran")
	after := f.ledger(f.store)
	require.Equal(t, before.Agent-2*5_00, after.Agent)
}
