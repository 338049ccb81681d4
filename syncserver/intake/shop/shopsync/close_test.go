package shopsync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
)

// Close stores what the inbox was handed, enqueues the processing of every
// webhook stored, and only then returns, with its enqueueing goroutine
// ended; submits after it are refused.
func TestServiceCloseEnqueuesWhatItStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "service-close")
	svc := shopsync.New(f.env.DB.App, nil, nil, nil, func() *river.Client[pgx.Tx] { return f.env.Server.River })
	conn := f.connect("shopify", "service-close.myshopify.com", &leadifyv1.ShopCredentials{AccessToken: "t", WebhookSecret: "s"}, false)
	connection := uuid.MustParse(conn.Id)
	const n = 40
	for i := range n {
		out, err := svc.Inbox.Submit(ctx, shopsync.Delivery{Store: f.store, Connection: connection, Platform: "shopify",
			DeliveryID: fmt.Sprint("close-", i), Topic: "orders/create", Body: []byte(`{}`)})
		require.NoError(t, err)
		require.Equal(t, shopsync.Stored, out)
	}
	svc.Close()
	require.True(t, shopsync.KickLoopEnded(svc), "Close returns once its goroutine has ended")
	_, err := svc.Inbox.Submit(ctx, shopsync.Delivery{Store: f.store, Connection: connection, Platform: "shopify",
		DeliveryID: "after", Topic: "orders/create", Body: []byte(`{}`)})
	require.ErrorIs(t, err, shopsync.ErrInboxClosed)
	svc.Close() // again: nothing

	owner, err := pgx.Connect(ctx, f.env.DB.OwnerURL)
	require.NoError(t, err)
	defer owner.Close(ctx)
	stored := map[uuid.UUID]bool{}
	rows, err := owner.Query(ctx, `SELECT id FROM shop_webhooks WHERE store_id = $1 AND delivery_id LIKE 'close-%'`, f.store)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	require.NoError(t, err)
	require.Len(t, ids, n)
	for _, id := range ids {
		stored[id] = true
	}
	rows, err = owner.Query(ctx, `SELECT args FROM river_job WHERE kind = $1`, shopsync.ProcessArgs{}.Kind())
	require.NoError(t, err)
	all, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	require.NoError(t, err)
	for _, raw := range all {
		var a shopsync.ProcessArgs
		require.NoError(t, json.Unmarshal(raw, &a))
		for _, id := range a.IDs {
			delete(stored, id)
		}
	}
	require.Empty(t, stored, "every stored webhook's processing is enqueued by the time Close returns")
}
