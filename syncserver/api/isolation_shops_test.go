package api_test

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// canaryShops remembers store B's shop connection per store id.
var canaryShops sync.Map

func init() {
	addIsolationCases(shopsCases)
	canarySeeders = append(canarySeeders, func(t *testing.T, b *fixtureB) {
		resp, err := b.Seller.Shops.CreateShopConnection(context.Background(), connect.NewRequest(&leadifyv1.CreateShopConnectionRequest{
			StoreId: b.StoreID.String(), Platform: "shopify", Name: "CanaryB Shop", BaseUrl: "https://canaryb.myshopify.com",
			Credentials: &leadifyv1.ShopCredentials{AccessToken: "shpat_canaryb", WebhookSecret: "canaryb-secret"}}))
		require.NoError(t, err)
		canaryShops.Store(b.StoreID, resp.Msg.Connection.Id)
	})
}

func canaryShop(b *fixtureB) string {
	id, _ := canaryShops.Load(b.StoreID)
	return id.(string)
}

var shopsCases = map[string]isolationCase{
	"/leadify.v1.ShopsService/CreateShopConnection": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Shops.CreateShopConnection, &leadifyv1.CreateShopConnectionRequest{StoreId: b.StoreID.String(), Platform: "shopify",
			BaseUrl: "x.myshopify.com", Credentials: &leadifyv1.ShopCredentials{AccessToken: "t", WebhookSecret: "s"}})
	}},
	"/leadify.v1.ShopsService/UpdateShopConnection": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Shops.UpdateShopConnection, &leadifyv1.UpdateShopConnectionRequest{ConnectionId: canaryShop(b), Name: "pwned",
			Credentials: &leadifyv1.ShopCredentials{AccessToken: "mine", WebhookSecret: "mine"}})
	}},
	"/leadify.v1.ShopsService/ListShopConnections": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Shops.ListShopConnections, &leadifyv1.ListShopConnectionsRequest{StoreId: b.StoreID.String()})
	}},
	"/leadify.v1.ShopsService/TestShopConnection": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Shops.TestShopConnection, &leadifyv1.TestShopConnectionRequest{ConnectionId: canaryShop(b)})
	}},
	"/leadify.v1.ShopsService/BackfillShopOrders": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Shops.BackfillShopOrders, &leadifyv1.BackfillShopOrdersRequest{ConnectionId: canaryShop(b)})
	}},
	"/leadify.v1.ShopsService/SyncShopProducts": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Shops.SyncShopProducts, &leadifyv1.SyncShopProductsRequest{ConnectionId: canaryShop(b)})
	}},
	"/leadify.v1.ShopsService/ListShopProducts": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Shops.ListShopProducts, &leadifyv1.ListShopProductsRequest{StoreId: b.StoreID.String(), ConnectionId: canaryShop(b)})
	}},
}

// A webhook signed with store A's secret never lands on store B's
// connection; forged, unsigned and misrouted ones are refused and stored
// nowhere.
func TestShopWebhooksCannotCrossStores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t)
	admin := env.Admin()
	a, b := env.NewTenant(admin, "shopa"), env.NewTenant(admin, "shopb")
	mk := func(tn *servertest.Tenant, secret string) string {
		resp, err := tn.Seller.Shops.CreateShopConnection(ctx, connect.NewRequest(&leadifyv1.CreateShopConnectionRequest{
			StoreId: tn.StoreID.String(), Platform: "shopify", BaseUrl: "https://" + secret + ".myshopify.com",
			Credentials: &leadifyv1.ShopCredentials{AccessToken: "shpat", WebhookSecret: secret}}))
		require.NoError(t, err)
		return resp.Msg.Connection.WebhookPath
	}
	pathA, pathB := mk(a, "secret-a"), mk(b, "secret-b")
	body := []byte(`{"id":1,"name":"#1","total_price":"10.00","phone":"0612345678","payment_gateway_names":["Cash on Delivery (COD)"]}`)
	post := func(path string, secret []byte, event string) int {
		req, err := http.NewRequest(http.MethodPost, env.URL+path, bytes.NewReader(body))
		require.NoError(t, err)
		if secret != nil {
			shopify.Sign(secret, req.Header, "orders/create", event, body)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, post(pathB, []byte("secret-a"), "e1"), "A's secret on B's connection")
	require.Equal(t, http.StatusUnauthorized, post(pathB, nil, "e2"), "unsigned")
	require.Equal(t, http.StatusNotFound, post("/webhooks/shops/shopify/"+uuid.NewString(), []byte("secret-a"), "e3"), "unknown connection")
	require.Equal(t, http.StatusNotFound, post("/webhooks/shops/woocommerce/"+pathA[len("/webhooks/shops/shopify/"):], []byte("secret-a"), "e4"),
		"another platform's route")
	require.Equal(t, http.StatusOK, post(pathA, []byte("secret-a"), "e5"))
	count := func(store uuid.UUID) int {
		var n int
		env.InStore(func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM shop_webhooks WHERE store_id = $1`, store).Scan(&n)
		}, store)
		return n
	}
	require.Zero(t, count(b.StoreID))
	require.Equal(t, 1, count(a.StoreID))
	// A's lead appears in A only.
	require.Eventually(t, func() bool {
		var n int
		env.InStore(func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM leads WHERE store_id = $1 AND source = 'shopify'`, a.StoreID).Scan(&n)
		}, a.StoreID)
		return n == 1
	}, 20*time.Second, 20*time.Millisecond)
	var inB int
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM leads WHERE store_id = $1 AND source = 'shopify'`, b.StoreID).Scan(&inB)
	}, b.StoreID)
	require.Zero(t, inB)
}
