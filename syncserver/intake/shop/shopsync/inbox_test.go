package shopsync_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
)

// Close waits for the deliveries the inbox was handed — those in batches
// being committed and those still queued behind them — to be stored and
// their Submits answered (a shop acknowledged is never lost), and Submit
// fails with ErrInboxClosed from the moment Close is called.
func TestInboxCloseStoresWhatItWasHanded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "inbox-close")
	in := shopsync.NewInbox(f.env.DB.App, nil, time.Millisecond)
	conn := f.connect("shopify", "close.myshopify.com", &leadifyv1.ShopCredentials{AccessToken: "t", WebhookSecret: "s"}, false)
	connection := uuid.MustParse(conn.Id)
	delivery := func(i int) shopsync.Delivery {
		return shopsync.Delivery{Store: f.store, Connection: connection, Platform: "shopify",
			DeliveryID: fmt.Sprint("evt-", i), Topic: "orders/create", Body: []byte(`{}`)}
	}

	// Inserts wait while the table is locked: the batches stay in flight.
	owner, err := pgx.Connect(ctx, f.env.DB.OwnerURL)
	require.NoError(t, err)
	defer owner.Close(ctx)
	lock, err := owner.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback(ctx) }()
	_, err = lock.Exec(ctx, `LOCK TABLE shop_webhooks IN SHARE MODE`)
	require.NoError(t, err)
	waiting := func() int {
		var n int
		require.NoError(t, f.env.DB.App.QueryRow(ctx, `SELECT count(*) FROM pg_locks
WHERE NOT granted AND relation = 'shop_webhooks'::regclass`).Scan(&n))
		return n
	}

	type answer struct {
		out shopsync.Outcome
		err error
	}
	answers := make(chan answer, 16)
	submit := func(i int) {
		go func() {
			out, err := in.Submit(ctx, delivery(i))
			answers <- answer{out, err}
		}()
	}
	// One delivery per batcher, each batch waiting on the lock...
	const flushers, queued = shopsync.InboxFlushers, 6
	for i := range flushers {
		submit(i)
		require.Eventually(t, func() bool { return waiting() == i+1 }, 10*time.Second, 5*time.Millisecond,
			"batch %d is not waiting on the lock", i)
	}
	// ... and more queued behind them.
	for i := range queued {
		submit(flushers + i)
	}
	require.Eventually(t, func() bool { return in.Queued() == queued }, 10*time.Second, 5*time.Millisecond)

	closed := make(chan struct{})
	go func() {
		in.Close()
		close(closed)
	}()
	<-in.Closing()
	_, err = in.Submit(ctx, delivery(100))
	require.ErrorIs(t, err, shopsync.ErrInboxClosed)
	require.ErrorContains(t, err, "inbox closed")
	select {
	case <-closed:
		t.Fatal("Close returned while batches were being committed")
	case a := <-answers:
		t.Fatalf("a delivery was answered while its batch waits: %v %v", a.out, a.err)
	case <-time.After(200 * time.Millisecond):
	}

	require.NoError(t, lock.Rollback(ctx))
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return once the batches could commit")
	}
	// Every delivery handed over was answered before Close returned.
	for range flushers + queued {
		select {
		case a := <-answers:
			require.NoError(t, a.err)
			require.Equal(t, shopsync.Stored, a.out)
		default:
			t.Fatal("Close returned before a delivery it was handed was answered")
		}
	}
	require.Equal(t, flushers+queued, f.count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1 AND delivery_id LIKE 'evt-%'`))

	_, err = in.Submit(ctx, delivery(101))
	require.True(t, errors.Is(err, shopsync.ErrInboxClosed), "Submit after Close: %v", err)
	_, err = in.StoreNow(ctx, delivery(102))
	require.ErrorIs(t, err, shopsync.ErrInboxClosed)
	in.Close() // again: nothing
	require.Equal(t, flushers+queued, f.count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1`))
}
