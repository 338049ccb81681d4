package events_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// A consumer's effect happens once per event, however often River delivers it,
// and only for events whose transaction committed.
func TestConsumersRunOncePerCommittedEvent(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "events")
	ctx := context.Background()

	var calls atomic.Int32
	seen := make(chan events.Event, 10)
	env.Server.Events.Subscribe("test.counter", func(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
		calls.Add(1)
		// The effect is written in the consumer's transaction, scoped to the event's store.
		if _, err := tx.Exec(ctx, `INSERT INTO audit_log (id, store_id, action) VALUES ($1, $2, 'test.consumed')`, uuid.New(), ev.Store); err != nil {
			return err
		}
		seen <- ev
		return nil
	}, events.LeadConfirmed)

	leadID := uuid.New()
	env.InStore(func(tx *postgres.Tx) error {
		return env.Server.Events.Publish(ctx, tx, events.Event{Store: tn.StoreID, Kind: events.LeadConfirmed,
			AggregateType: "lead", AggregateID: leadID, Payload: map[string]any{"cod": 24900}})
	}, tn.StoreID)

	// A rolled-back publish never reaches consumers.
	err := postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
		if err := env.Server.Events.Publish(ctx, tx, events.Event{Store: tn.StoreID, Kind: events.LeadConfirmed,
			AggregateType: "lead", AggregateID: uuid.New()}); err != nil {
			return err
		}
		return context.Canceled
	})
	require.ErrorIs(t, err, context.Canceled)

	var ev events.Event
	select {
	case ev = <-seen:
	case <-time.After(20 * time.Second):
		t.Fatal("consumer did not run")
	}
	require.Equal(t, leadID, ev.AggregateID)
	require.JSONEq(t, `{"cod": 24900}`, string(ev.RawPayload))

	// Deliver the same event to the same consumer again, as a retry after a
	// crash would: the effect does not repeat.
	_, err = env.Server.River.Insert(ctx, events.ConsumeArgs{EventID: ev.ID, StoreID: tn.StoreID, Consumer: "test.counter"},
		&river.InsertOpts{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var done int
		_ = env.DB.App.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed' AND kind = 'domain_event' AND args->>'consumer' = 'test.counter'`).Scan(&done)
		return done == 2
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, int32(1), calls.Load(), "the redelivered job found the consumption record and did nothing")

	var effects int
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'test.consumed'`).Scan(&effects)
	}, tn.StoreID)
	require.Equal(t, 1, effects)
}

// A failing consumer rolls its effect back and is retried.
func TestFailingConsumerIsRetried(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "retry")
	ctx := context.Background()
	var attempts atomic.Int32
	done := make(chan struct{})
	env.Server.Events.Subscribe("test.flaky", func(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
		if attempts.Add(1) == 1 {
			return context.DeadlineExceeded
		}
		close(done)
		return nil
	}, events.ParcelDelivered)
	// River's first retry waits about a second; make it immediate for the test.
	env.InStore(func(tx *postgres.Tx) error {
		return env.Server.Events.Publish(ctx, tx, events.Event{Store: tn.StoreID, Kind: events.ParcelDelivered,
			AggregateType: "parcel", AggregateID: uuid.New()})
	}, tn.StoreID)
	require.Eventually(t, func() bool { return attempts.Load() >= 1 }, 20*time.Second, 20*time.Millisecond)
	_, err := env.DB.App.Exec(ctx, `UPDATE river_job SET scheduled_at = now() WHERE state = 'retryable'`)
	require.NoError(t, err)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("consumer was not retried")
	}
	require.Equal(t, int32(2), attempts.Load())
}
