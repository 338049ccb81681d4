package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// Publish is PublishMany of one event: the same domain_events rows, the
// same batch jobs (none of the old one-event kind), and each event
// delivered once to each of its consumers, per-event and batch alike.
func TestPublishAndPublishManyAgree(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "publish many")
	ctx := context.Background()
	const kind = events.Kind("test.many")
	seen := make(chan events.Event, 10)
	env.Server.Events.Subscribe("test.many", func(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
		seen <- ev
		return nil
	}, kind)
	rec := &batchRecorder{calls: map[uuid.UUID]int{}}
	env.Server.Events.SubscribeBatch("test.many.batch", 0, rec.handle, kind)

	actor := env.CreateUser("actor@many.test", "Actor", false)
	one := events.Event{ID: uuid.Must(uuid.NewV7()), Store: tn.StoreID, Kind: kind, AggregateType: "parcel", AggregateID: uuid.New(), Actor: actor, Payload: map[string]any{"to": "delivered"}}
	many := []events.Event{
		{ID: uuid.Must(uuid.NewV7()), Store: tn.StoreID, Kind: kind, AggregateType: "parcel", AggregateID: one.AggregateID, Actor: actor, Payload: map[string]any{"to": "delivered"}},
		{Store: tn.StoreID, Kind: kind, AggregateType: "parcel", AggregateID: uuid.New()},
	}
	env.InStore(func(tx *postgres.Tx) error {
		if err := env.Server.Events.Publish(ctx, tx, one); err != nil {
			return err
		}
		return env.Server.Events.PublishMany(ctx, tx, many)
	}, tn.StoreID)
	require.NotEqual(t, uuid.Nil, many[1].ID, "a zero id is set")

	type row struct {
		Kind, AggregateType, Payload string
		AggregateID                  uuid.UUID
		Actor                        *uuid.UUID
	}
	read := func(id uuid.UUID) row {
		var r row
		env.InStore(func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT kind, aggregate_type, payload::text, aggregate_id, actor_user_id FROM domain_events WHERE id = $1`, id).
				Scan(&r.Kind, &r.AggregateType, &r.Payload, &r.AggregateID, &r.Actor)
		}, tn.StoreID)
		return r
	}
	first := read(one.ID)
	require.Equal(t, row{Kind: string(kind), AggregateType: "parcel", Payload: `{"to": "delivered"}`, AggregateID: one.AggregateID, Actor: &actor}, first)
	require.Equal(t, first, read(many[0].ID))
	second := read(many[1].ID)
	require.Nil(t, second.Actor)
	require.Equal(t, "{}", second.Payload)

	// One batch job per consumer for each call, Publish's naming its one
	// event, and no job of the old one-event kind.
	type job struct {
		Kind, Consumer string
		Events         []uuid.UUID
	}
	var jobs []job
	rows, err := env.DB.App.Query(ctx, `SELECT kind, args->>'consumer', args->'event_ids' FROM river_job ORDER BY args->>'consumer', id`)
	require.NoError(t, err)
	for rows.Next() {
		var j job
		require.NoError(t, rows.Scan(&j.Kind, &j.Consumer, &j.Events))
		if j.Consumer == "test.many" || j.Consumer == "test.many.batch" || j.Kind == "domain_event" {
			jobs = append(jobs, j)
		}
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []job{
		{"domain_events", "test.many", []uuid.UUID{one.ID}},
		{"domain_events", "test.many", []uuid.UUID{many[0].ID, many[1].ID}},
		{"domain_events", "test.many.batch", []uuid.UUID{one.ID}},
		{"domain_events", "test.many.batch", []uuid.UUID{many[0].ID, many[1].ID}},
	}, jobs)

	want := map[uuid.UUID]int{one.ID: 1, many[0].ID: 1, many[1].ID: 1}
	got := map[uuid.UUID]int{}
	for range 3 {
		select {
		case ev := <-seen:
			got[ev.ID]++
		case <-time.After(20 * time.Second):
			t.Fatal("consumer did not run")
		}
	}
	require.Equal(t, want, got, "the per-event consumer got each event once")
	require.Eventually(t, func() bool { got, _ := rec.snapshot(); return len(got) == len(want) }, 20*time.Second, 20*time.Millisecond)
	// Every job has run by now (the per-event consumer's have delivered,
	// the batch consumer's have claimed or found done): nothing more comes.
	require.Eventually(t, func() bool {
		var left int
		_ = env.DB.App.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state <> 'completed' AND args->>'consumer' LIKE 'test.many%'`).Scan(&left)
		return left == 0
	}, 20*time.Second, 50*time.Millisecond)
	got, _ = rec.snapshot()
	require.Equal(t, want, got, "the batch consumer got each event once")
	select {
	case ev := <-seen:
		t.Fatalf("event %v delivered twice", ev.ID)
	default:
	}
}
