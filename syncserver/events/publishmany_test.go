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

// PublishMany writes the same rows and enqueues the same consumer jobs as
// Publish called once per event.
func TestPublishManyMatchesPublish(t *testing.T) {
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

	actor := env.CreateUser("actor@many.test", "Actor", false)
	one := events.Event{ID: uuid.New(), Store: tn.StoreID, Kind: kind, AggregateType: "parcel", AggregateID: uuid.New(), Actor: actor, Payload: map[string]any{"to": "delivered"}}
	many := []events.Event{
		{ID: uuid.New(), Store: tn.StoreID, Kind: kind, AggregateType: "parcel", AggregateID: one.AggregateID, Actor: actor, Payload: map[string]any{"to": "delivered"}},
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
	require.Equal(t, read(one.ID), read(many[0].ID))
	second := read(many[1].ID)
	require.Nil(t, second.Actor)
	require.Equal(t, "{}", second.Payload)

	got := map[uuid.UUID]int{}
	for range 3 {
		select {
		case ev := <-seen:
			got[ev.ID]++
		case <-time.After(20 * time.Second):
			t.Fatal("consumer did not run")
		}
	}
	require.Equal(t, map[uuid.UUID]int{one.ID: 1, many[0].ID: 1, many[1].ID: 1}, got)
}
