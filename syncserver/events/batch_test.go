package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// batchRecorder is a batch consumer that records every event it is given,
// writing an effect per event in the consumer's transaction, and fails any
// batch holding an event named in poison.
type batchRecorder struct {
	mu      sync.Mutex
	batches [][]uuid.UUID
	at      []time.Time // when each batch began
	calls   map[uuid.UUID]int
	poison  map[uuid.UUID]bool
}

func (r *batchRecorder) handle(ctx context.Context, tx *postgres.Tx, evs []events.Event) error {
	began := time.Now()
	ids := make([]uuid.UUID, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
		if ev.Store != evs[0].Store {
			return errors.New("events of two stores in one batch")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if r.poison[id] {
			return errors.New("poisoned")
		}
	}
	for _, ev := range evs {
		if _, err := tx.Exec(ctx, `INSERT INTO audit_log (id, store_id, action, target_id) VALUES ($1, $2, 'test.batch', $3)`,
			uuid.New(), ev.Store, ev.ID.String()); err != nil {
			return err
		}
	}
	// Counted once the effects are written; a later failure of the
	// transaction is not expected here.
	for _, id := range ids {
		r.calls[id]++
	}
	r.batches = append(r.batches, ids)
	r.at = append(r.at, began)
	return nil
}

func (r *batchRecorder) snapshot() (map[uuid.UUID]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[uuid.UUID]int, len(r.calls))
	for k, v := range r.calls {
		out[k] = v
	}
	return out, len(r.batches)
}

// PublishMany's events reach a batch consumer in one transaction, each
// exactly once, in the order they were published, and a redelivered batch
// job changes nothing.
func TestBatchConsumerGetsPublishManyOnce(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "batch")
	ctx := context.Background()
	const kind = events.Kind("test.batch")
	rec := &batchRecorder{calls: map[uuid.UUID]int{}}
	env.Server.Events.SubscribeBatch("test.batch", 0, rec.handle, kind)

	evs := make([]events.Event, 50)
	for i := range evs {
		evs[i] = events.Event{ID: uuid.Must(uuid.NewV7()), Store: tn.StoreID, Kind: kind, AggregateType: "parcel", AggregateID: uuid.New()}
	}
	env.InStore(func(tx *postgres.Tx) error { return env.Server.Events.PublishMany(ctx, tx, evs) }, tn.StoreID)

	want := map[uuid.UUID]int{}
	ids := make([]uuid.UUID, len(evs))
	for i, ev := range evs {
		want[ev.ID] = 1
		ids[i] = ev.ID
	}
	require.Eventually(t, func() bool { got, _ := rec.snapshot(); return len(got) == len(evs) }, 20*time.Second, 20*time.Millisecond)
	got, batches := rec.snapshot()
	require.Equal(t, want, got)
	require.Equal(t, 1, batches, "one transaction for the whole batch")
	rec.mu.Lock()
	require.Equal(t, ids, rec.batches[0], "in publication order")
	rec.mu.Unlock()

	// The same batch delivered again, as a retry after a crash would.
	_, err := env.Server.River.Insert(ctx, events.ConsumeBatchArgs{StoreID: tn.StoreID, Consumer: "test.batch", EventIDs: ids}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var done int
		_ = env.DB.App.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed' AND kind = 'domain_events' AND args->>'consumer' = 'test.batch'`).Scan(&done)
		return done == 2
	}, 20*time.Second, 50*time.Millisecond)
	got, batches = rec.snapshot()
	require.Equal(t, want, got, "the redelivered job found every consumption record")
	require.Equal(t, 1, batches)
	var effects int
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'test.batch'`).Scan(&effects)
	}, tn.StoreID)
	require.Equal(t, len(evs), effects)
}

// An event the batch consumer cannot apply fails its own transaction only:
// the batch's other events are consumed, and the job is retried for it.
func TestBatchConsumerIsolatesAFailingEvent(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "poison")
	ctx := context.Background()
	const kind = events.Kind("test.poison")
	evs := make([]events.Event, 5)
	for i := range evs {
		evs[i] = events.Event{ID: uuid.Must(uuid.NewV7()), Store: tn.StoreID, Kind: kind, AggregateType: "parcel", AggregateID: uuid.New()}
	}
	bad := evs[2].ID
	rec := &batchRecorder{calls: map[uuid.UUID]int{}, poison: map[uuid.UUID]bool{bad: true}}
	env.Server.Events.SubscribeBatch("test.poison", 0, rec.handle, kind)
	env.InStore(func(tx *postgres.Tx) error { return env.Server.Events.PublishMany(ctx, tx, evs) }, tn.StoreID)

	require.Eventually(t, func() bool { got, _ := rec.snapshot(); return len(got) == len(evs)-1 }, 20*time.Second, 20*time.Millisecond)
	got, _ := rec.snapshot()
	require.NotContains(t, got, bad)
	require.Eventually(t, func() bool {
		var state string
		_ = env.DB.App.QueryRow(ctx, `SELECT state FROM river_job WHERE kind = 'domain_events' AND args->>'consumer' = 'test.poison'`).Scan(&state)
		return state == "retryable"
	}, 20*time.Second, 50*time.Millisecond)

	// Cured, the retry applies the failed event alone.
	rec.mu.Lock()
	rec.poison = nil
	rec.mu.Unlock()
	_, err := env.DB.App.Exec(ctx, `UPDATE river_job SET scheduled_at = now() WHERE state = 'retryable' AND kind = 'domain_events'`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { got, _ := rec.snapshot(); return len(got) == len(evs) }, 30*time.Second, 20*time.Millisecond)
	got, _ = rec.snapshot()
	for _, ev := range evs {
		require.Equal(t, 1, got[ev.ID], "event %v", ev.ID)
	}
}

// A batch job takes the events of its consumer and store still waiting
// since its own, so that a consumer behind catches up in few transactions;
// each event is still applied once, and the later jobs find theirs done.
func TestBatchJobTakesWaitingEvents(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "sweep")
	other := env.NewTenant(env.Admin(), "sweep other")
	ctx := context.Background()
	const kind = events.Kind("test.sweep")
	rec := &batchRecorder{calls: map[uuid.UUID]int{}}
	// Published while no consumer is subscribed: no jobs, the events wait.
	var waiting []events.Event
	for range 3 {
		ev := events.Event{ID: uuid.Must(uuid.NewV7()), Store: tn.StoreID, Kind: kind, AggregateType: "parcel", AggregateID: uuid.New()}
		waiting = append(waiting, ev)
		env.InStore(func(tx *postgres.Tx) error { return env.Server.Events.PublishMany(ctx, tx, []events.Event{ev}) }, tn.StoreID)
	}
	// Another store's waiting event, and one of another kind.
	env.InStore(func(tx *postgres.Tx) error {
		return env.Server.Events.PublishMany(ctx, tx, []events.Event{{Store: other.StoreID, Kind: kind, AggregateType: "parcel", AggregateID: uuid.New()}})
	}, other.StoreID)
	env.InStore(func(tx *postgres.Tx) error {
		return env.Server.Events.PublishMany(ctx, tx, []events.Event{{Store: tn.StoreID, Kind: "test.unrelated", AggregateType: "parcel", AggregateID: uuid.New()}})
	}, tn.StoreID)
	env.Server.Events.SubscribeBatch("test.sweep", 0, rec.handle, kind)
	_, err := env.Server.River.Insert(ctx, events.ConsumeBatchArgs{StoreID: tn.StoreID, Consumer: "test.sweep", EventIDs: []uuid.UUID{waiting[0].ID}}, nil)
	require.NoError(t, err)

	require.Eventually(t, func() bool { got, _ := rec.snapshot(); return len(got) == len(waiting) }, 20*time.Second, 20*time.Millisecond)
	got, batches := rec.snapshot()
	require.Equal(t, 1, batches)
	for _, ev := range waiting {
		require.Equal(t, 1, got[ev.ID])
	}
	// The other store's event and the unrelated kind were left alone.
	var consumed int
	require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM event_consumptions WHERE consumer = 'test.sweep'`).Scan(&consumed)
	}))
	require.Equal(t, len(waiting), consumed)
}

// Events published one at a time (Publish) reach a batch consumer as
// PublishMany's do: in its batches of the store, under its pace. Two
// events published alone in one transaction while the consumer's pace
// holds its next batch back come in one batch, that pace after the last.
func TestPublishedAloneReachesBatchesUnderPace(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "paced")
	ctx := context.Background()
	const (
		kind  = events.Kind("test.paced")
		every = time.Second
	)
	rec := &batchRecorder{calls: map[uuid.UUID]int{}}
	env.Server.Events.SubscribeBatch("test.paced", every, rec.handle, kind)
	publish := func(n int) []uuid.UUID {
		ids := make([]uuid.UUID, n)
		env.InStore(func(tx *postgres.Tx) error {
			for i := range ids {
				ids[i] = uuid.Must(uuid.NewV7())
				if err := env.Server.Events.Publish(ctx, tx, events.Event{ID: ids[i], Store: tn.StoreID, Kind: kind,
					AggregateType: "parcel", AggregateID: uuid.New()}); err != nil {
					return err
				}
			}
			return nil
		}, tn.StoreID)
		return ids
	}

	first := publish(1)
	require.Eventually(t, func() bool { got, _ := rec.snapshot(); return len(got) == 1 }, 20*time.Second, 20*time.Millisecond)
	then := publish(2)
	require.Eventually(t, func() bool { got, _ := rec.snapshot(); return len(got) == 3 }, 20*time.Second, 20*time.Millisecond)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, [][]uuid.UUID{first, then}, rec.batches, "the two published alone came in one batch")
	// The pacer starts its clock before the handler runs: allow for that.
	require.GreaterOrEqual(t, rec.at[1].Sub(rec.at[0]), every/2, "the second batch waited for the pace")
}
