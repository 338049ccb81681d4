package shopsync_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/servertest"
)

// A processed or failed batch of webhooks is marked by id even when the
// planner's statistics do not know the store's webhooks yet: not by a read
// of all of the store's webhooks (every one received is kept), filtered.
func TestWebhookUpdatesSearchByID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	ctx := context.Background()
	owner := env.DB.Owner(t)
	// A connection of each store and n of its webhooks, half of them
	// pending; ids are the stale store's pending ones.
	var ids []uuid.UUID
	store := env.StaleStore([]string{"shop_webhooks"}, 5_000, 40_000, func(store uuid.UUID, n int) {
		conn, hook := shopConnection(t, owner, store), uuid.New()
		_, err := owner.Exec(ctx, `INSERT INTO shop_webhooks (store_id, id, connection_id, platform, delivery_id, topic, body)
VALUES ($1, $2, $3, 'shopify', 'd0', 'orders/create', '{}')`, store, hook, conn)
		require.NoError(t, err)
		env.DB.Fill(t, "shop_webhooks", fmt.Sprintf("id = '%s'", hook), n, map[string]string{"id": "gen_random_uuid()",
			"delivery_id": "'d' || g", "status": "CASE WHEN g % 2 = 0 THEN 'done' ELSE 'pending' END"})
		env.InStore(func(tx *postgres.Tx) error {
			rows, err := tx.Query(ctx, `SELECT id FROM shop_webhooks WHERE store_id = $1 AND status = 'pending' LIMIT 500`, store)
			if err != nil {
				return err
			}
			ids, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			return err
		}, store)
	}).StoreID
	batch := append([]uuid.UUID{uuid.New(), ids[0]}, ids...) // a webhook of no store, and a repeat

	pgtest.RequireKeyed(t, env.DB.Explain(t, store, shopsync.MarkWebhooksSQL, store, batch, "done", ""), "shop_webhooks", "id")
	pgtest.RequireKeyed(t, env.DB.Explain(t, store, shopsync.FailWebhooksSQL, store, batch, "boom", shopsync.MaxWebhookAttempts),
		"shop_webhooks", "id")

	count := func(where string) int {
		return len(env.DB.Rows(t, store, false, `SELECT 1 FROM shop_webhooks WHERE store_id = $1 AND `+where, store))
	}
	// Each webhook's attempt is counted once, however often named.
	for range shopsync.MaxWebhookAttempts - 1 {
		env.DB.Rows(t, store, false, shopsync.FailWebhooksSQL+` RETURNING 1`, store, batch, "boom", shopsync.MaxWebhookAttempts)
	}
	require.Equal(t, 500, count(fmt.Sprintf("attempts = %d AND status = 'pending' AND last_error = 'boom'", shopsync.MaxWebhookAttempts-1)))
	env.DB.Rows(t, store, false, shopsync.FailWebhooksSQL+` RETURNING 1`, store, batch[:250], "boom", shopsync.MaxWebhookAttempts)
	require.Equal(t, 248, count("status = 'dead'"))
	env.DB.Rows(t, store, false, shopsync.MarkWebhooksSQL+` RETURNING 1`, store, batch, "done", "")
	require.Equal(t, 500, count("status = 'done' AND last_error = '' AND processed_at IS NOT NULL"))
	require.Equal(t, 248, count(fmt.Sprintf("attempts = %d", shopsync.MaxWebhookAttempts+1)))
}

// shopConnection writes, as the owner, a Shopify connection of the store.
func shopConnection(t *testing.T, owner *pgx.Conn, store uuid.UUID) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	conn := uuid.New()
	_, err := owner.Exec(ctx, `INSERT INTO intake_sources (store_id, id, kind, name) VALUES ($1, $2, 'shopify', 'shop')`, store, conn)
	require.NoError(t, err)
	_, err = owner.Exec(ctx, `INSERT INTO shop_connections (store_id, id, platform, name, base_url, credentials)
VALUES ($1, $2, 'shopify', 'shop', 'https://shop.test', 'v1:x:y')`, store, conn)
	require.NoError(t, err)
	return conn
}

// A batch's orders are looked up by order id even when the planner's
// statistics do not know the store's orders yet: not by a read of all of
// the connection's orders, filtered.
func TestShopOrdersSearchByOrderID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	owner := env.DB.Owner(t)
	var conn uuid.UUID // the stale store's connection
	store := env.StaleStore([]string{"shop_orders"}, 5_000, 20_000, func(store uuid.UUID, n int) {
		conn = shopConnection(t, owner, store)
		_, err := owner.Exec(context.Background(), `INSERT INTO shop_orders (store_id, connection_id, order_id, lead_id, digest, source)
VALUES ($1, $2, 'o0', gen_random_uuid(), '\x00', 'webhook')`, store, conn)
		require.NoError(t, err)
		env.DB.Fill(t, "shop_orders", fmt.Sprintf("connection_id = '%s'", conn), n,
			map[string]string{"order_id": "'o' || g", "lead_id": "gen_random_uuid()"})
	}).StoreID
	ids := []string{"o1", "o1", "unknown"} // a repeat, and an order never seen
	for i := range 500 {
		ids = append(ids, fmt.Sprintf("o%d", 2+i*7))
	}
	plan := env.DB.Explain(t, store, shopsync.ShopOrdersSQL, store, conn, ids)
	pgtest.RequireKeyed(t, plan, "shop_orders", "order_id")
	got := env.DB.Rows(t, store, true, shopsync.ShopOrdersSQL, store, conn, ids)
	require.Len(t, got, 502, "a repeated order is read twice, as the settle expects")
	// Once each, the rows of the statement it replaced.
	require.Equal(t, env.DB.Rows(t, store, true, `SELECT order_id, digest FROM shop_orders
WHERE store_id = $1 AND connection_id = $2 AND order_id = ANY($3)`, store, conn, ids), slices.Compact(got))
}
