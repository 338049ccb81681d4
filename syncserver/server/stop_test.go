package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/servertest"
)

// goroutines counts the goroutines whose stack mentions fn.
func goroutines(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// Once the server has stopped, the side pools its capabilities opened (the
// carrier and shop webhook inboxes', webhook processing's) have closed their
// connections, and neither their pools' goroutines nor the inboxes'
// batchers are left. (Not parallel: it counts the process's goroutines.)
func TestStopClosesSidePools(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	// The server's own main pool, its sessions named: side pools copy its
	// settings, so every connection the server opens carries the name.
	cfg, err := pgxpool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	const name = "leadify-stop-test"
	cfg.ConnConfig.RuntimeParams["application_name"] = name
	main, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer main.Close()
	sessions := func() int {
		var n int
		require.NoError(t, db.App.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, name).Scan(&n))
		return n
	}
	// Each pool's health check, started or not yet.
	const healthCheck = "created by github.com/jackc/pgx/v5/pgxpool.NewWithConfig"
	pools := goroutines(healthCheck)

	env := servertest.StartOn(t, &pgtest.DB{Name: db.Name, App: main, AppURL: db.AppURL, OwnerURL: db.OwnerURL})
	tenant := env.NewTenant(env.Admin(), "stop")
	store := tenant.StoreID
	var (
		account uuid.UUID
		token   string
	)
	env.InStore(func(tx *postgres.Tx) error {
		var err error
		account, token, err = parcels.InsertAccount(ctx, tx, env.Server.Config().Secrets, parcels.NewAccount{
			Store: store, Carrier: ameex.Name, Credentials: parcels.Credentials{BaseURL: "https://api.ameex.app", APIID: "i", APIKey: "k"}})
		return err
	}, store)
	// A webhook is stored (the inbox's connections) and tried (processing's).
	resp, err := http.PostForm(parcels.WebhookURL(env.URL, ameex.Name, account, token), url.Values{"CODE": {"UNKNOWN"}, "STATUT": {"DELIVERED"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool {
		var tried bool
		env.InStore(func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT attempts > 0 FROM webhook_inbox WHERE store_id = $1`, store).Scan(&tried)
		}, store)
		return tried
	}, 20*time.Second, 20*time.Millisecond, "the webhook was not processed")
	// A shop webhook is stored (the shop inbox's connections).
	conn, err := tenant.Seller.Shops.CreateShopConnection(ctx, connect.NewRequest(&leadifyv1.CreateShopConnectionRequest{
		StoreId: store.String(), Platform: "shopify", BaseUrl: "https://stop.myshopify.com",
		Credentials: &leadifyv1.ShopCredentials{AccessToken: "shpat", WebhookSecret: "secret"}}))
	require.NoError(t, err)
	body := []byte(`{"id":1,"name":"#1","total_price":"10.00","phone":"0612345678","payment_gateway_names":["Cash on Delivery (COD)"]}`)
	req, err := http.NewRequest(http.MethodPost, env.URL+conn.Msg.Connection.WebhookPath, bytes.NewReader(body))
	require.NoError(t, err)
	shopify.Sign([]byte("secret"), req.Header, "orders/create", "e1", body)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.GreaterOrEqual(t, goroutines(healthCheck), pools+3, "the side pools were not opened")
	require.NotZero(t, goroutines("parcels.(*Inbox).loop"), "the inbox's batchers did not start")
	require.NotZero(t, goroutines("shopsync.(*Inbox).loop"), "the shop inbox's batchers did not start")

	require.NoError(t, env.Server.Stop(ctx))
	require.Eventually(t, func() bool { return goroutines(healthCheck) == pools }, 5*time.Second, 10*time.Millisecond,
		"a side pool's goroutines outlived the server")
	require.Zero(t, goroutines("parcels.(*Inbox).loop"), "the inbox's batchers outlived the server")
	// The shop inbox's batchers, and the Runs that started both inboxes'
	// (their groupcommit.Group's; a batcher's stack names Run as its
	// creator until it has exited).
	require.Eventually(t, func() bool {
		return goroutines("shopsync.(*Inbox).loop") == 0 && goroutines("groupcommit.(*Group[...]).Run") == 0
	}, time.Second, 5*time.Millisecond, "the shop inbox's batchers outlived the server")
	main.Close()
	require.Eventually(t, func() bool { return sessions() == 0 }, 10*time.Second, 20*time.Millisecond,
		"the server's connections outlived it and its main pool")
}
