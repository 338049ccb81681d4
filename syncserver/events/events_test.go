package events_test

import (
	"context"
	"sync"
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

	// A rolled-back publish never reaches consumers.
	rolledBack := uuid.Must(uuid.NewV7())
	err := postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
		if err := env.Server.Events.Publish(ctx, tx, events.Event{ID: rolledBack, Store: tn.StoreID, Kind: events.LeadConfirmed,
			AggregateType: "lead", AggregateID: uuid.New()}); err != nil {
			return err
		}
		return context.Canceled
	})
	require.ErrorIs(t, err, context.Canceled)

	leadID := uuid.New()
	env.InStore(func(tx *postgres.Tx) error {
		return env.Server.Events.Publish(ctx, tx, events.Event{Store: tn.StoreID, Kind: events.LeadConfirmed,
			AggregateType: "lead", AggregateID: leadID, Payload: map[string]any{"cod": 24900}})
	}, tn.StoreID)

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
	_, err = env.Server.River.Insert(ctx, events.ConsumeBatchArgs{StoreID: tn.StoreID, Consumer: "test.counter", EventIDs: []uuid.UUID{ev.ID}}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var done int
		_ = env.DB.App.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed' AND kind = 'domain_events' AND args->>'consumer' = 'test.counter'`).Scan(&done)
		return done == 2
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, int32(1), calls.Load(), "the redelivered job found the consumption record and did nothing")
	select {
	case other := <-seen:
		t.Fatalf("event %v delivered again, or the rolled-back one delivered", other.ID)
	default:
	}

	var effects, rolledRows int
	env.InStore(func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM domain_events WHERE id = $1`, rolledBack).Scan(&rolledRows); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'test.consumed'`).Scan(&effects)
	}, tn.StoreID)
	require.Equal(t, 1, effects)
	require.Zero(t, rolledRows, "the rolled-back event was not recorded")
	// The server's own consumers of the kind get jobs too: count the test's
	// consumer's, and any consumer's of the rolled-back event.
	jobsNaming := func(id uuid.UUID, consumer string) (n int) {
		require.NoError(t, env.DB.App.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->'event_ids' ? $1 AND args->>'consumer' LIKE $2`,
			id.String(), consumer).Scan(&n))
		return n
	}
	require.Equal(t, 2, jobsNaming(ev.ID, "test.counter"), "published, then redelivered")
	require.Zero(t, jobsNaming(rolledBack, "%"), "the rolled-back event's jobs went with it")
}

// Jobs of the kind Publish enqueued one per event and consumer until it
// went through PublishMany ('domain_event') may still be queued in a
// deployed database: they still deliver their event, to a per-event
// consumer and as a batch of one to a batch consumer, once in effect.
func TestOldConsumeJobsStillDeliver(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "legacy jobs")
	ctx := context.Background()
	const (
		kind      = events.Kind("test.legacy")
		batchKind = events.Kind("test.legacy.batch")
	)
	// Published while no consumer is subscribed: no jobs, the events wait
	// for the old-style jobs inserted below.
	single := events.Event{ID: uuid.Must(uuid.NewV7()), Store: tn.StoreID, Kind: kind, AggregateType: "lead", AggregateID: uuid.New()}
	batched := events.Event{ID: uuid.Must(uuid.NewV7()), Store: tn.StoreID, Kind: batchKind, AggregateType: "parcel", AggregateID: uuid.New()}
	env.InStore(func(tx *postgres.Tx) error {
		if err := env.Server.Events.Publish(ctx, tx, single); err != nil {
			return err
		}
		return env.Server.Events.Publish(ctx, tx, batched)
	}, tn.StoreID)

	var calls sync.Map // event id → *atomic.Int32
	env.Server.Events.Subscribe("test.legacy", func(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
		n, _ := calls.LoadOrStore(ev.ID, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		return nil
	}, kind)
	rec := &batchRecorder{calls: map[uuid.UUID]int{}}
	env.Server.Events.SubscribeBatch("test.legacy.batch", 0, rec.handle, batchKind)

	enqueue := func() {
		_, err := env.Server.River.InsertMany(ctx, []river.InsertManyParams{
			{Args: events.ConsumeArgs{EventID: single.ID, StoreID: tn.StoreID, Consumer: "test.legacy"}},
			{Args: events.ConsumeArgs{EventID: batched.ID, StoreID: tn.StoreID, Consumer: "test.legacy.batch"}},
		})
		require.NoError(t, err)
	}
	completed := func(n int) {
		require.Eventually(t, func() bool {
			var done int
			_ = env.DB.App.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed' AND kind = 'domain_event'`).Scan(&done)
			return done == n
		}, 20*time.Second, 50*time.Millisecond)
	}
	enqueue()
	completed(2)
	// Delivered again, as a retry after a crash would: nothing repeats.
	enqueue()
	completed(4)

	n, ok := calls.Load(single.ID)
	require.True(t, ok, "the per-event consumer got its event")
	require.Equal(t, int32(1), n.(*atomic.Int32).Load())
	got, batches := rec.snapshot()
	require.Equal(t, map[uuid.UUID]int{batched.ID: 1}, got, "the batch consumer got its event")
	require.Equal(t, 1, batches)
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
