package shopsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify/shopifytest"
	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
	"github.com/leadify/leadify/syncserver/intake/shop/shoptest"
	"github.com/leadify/leadify/syncserver/intake/shop/woocommerce/woocommercetest"
	"github.com/leadify/leadify/syncserver/intake/shop/youcan/youcantest"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

type fixture struct {
	t     *testing.T
	env   *servertest.Env
	store uuid.UUID
	tn    *servertest.Tenant
}

func newFixture(t *testing.T, name string) *fixture {
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), name)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// What the jobs did, to see why.
		rows, err := env.DB.App.Query(context.Background(), `SELECT kind, state, attempt, coalesce(errors::text, '') FROM river_job ORDER BY id`)
		if err != nil {
			return
		}
		defer rows.Close()
		for rows.Next() {
			var kind, state, errs string
			var attempt int
			if rows.Scan(&kind, &state, &attempt, &errs) == nil {
				t.Logf("job %s %s attempt %d %.300s", kind, state, attempt, errs)
			}
		}
	})
	return &fixture{t: t, env: env, store: tn.StoreID, tn: tn}
}

func (f *fixture) connect(platform, baseURL string, cr *leadifyv1.ShopCredentials, allOrders bool) *leadifyv1.ShopConnection {
	f.t.Helper()
	resp, err := f.tn.Seller.Shops.CreateShopConnection(context.Background(), connect.NewRequest(&leadifyv1.CreateShopConnectionRequest{
		StoreId: f.store.String(), Platform: platform, Name: platform + " shop", BaseUrl: baseURL, Credentials: cr, AllOrders: allOrders}))
	require.NoError(f.t, err)
	return resp.Msg.Connection
}

func (f *fixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	f.env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(context.Background(), q, append([]any{f.store}, args...)...).Scan(&n)
	}, f.store)
	return n
}

// settled waits until no webhook of the store is pending.
func (f *fixture) settled() {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		return f.count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1 AND status = 'pending'`) == 0
	}, 30*time.Second, 20*time.Millisecond)
}

type leadRow struct {
	ID                              uuid.UUID
	Status, Name, Phone, City, Addr string
	COD                             int64
	Source, Ref                     string
	Custom                          map[string]string
}

func (f *fixture) leadOf(conn, orderID string) leadRow {
	f.t.Helper()
	var l leadRow
	f.env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT l.id, l.status, l.customer_name, l.phone_e164, l.city_id, l.address, l.cod, l.source,
  l.external_ref, l.custom FROM shop_orders o JOIN leads l ON l.store_id = o.store_id AND l.id = o.lead_id
WHERE o.store_id = $1 AND o.connection_id = $2 AND o.order_id = $3`, f.store, uuid.MustParse(conn), orderID).
			Scan(&l.ID, &l.Status, &l.Name, &l.Phone, &l.City, &l.Addr, &l.COD, &l.Source, &l.Ref, &l.Custom)
	}, f.store)
	return l
}

func (f *fixture) setStatus(id uuid.UUID, status string) {
	f.t.Helper()
	err := syncer.Write(context.Background(), f.env.DB.App, postgres.StoreScope(f.store), func(w *syncer.Writer) error {
		v, err := w.Reserve(f.store, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(context.Background(), `UPDATE leads SET status = $3, version = $4 WHERE store_id = $1 AND id = $2`, f.store, id, status, v)
		return err
	})
	require.NoError(f.t, err)
}

func ptr(s string) *string { return &s }

func shopifyOrder(phone, city string, cod bool) shopifytest.Order {
	gw := []string{"Cash on Delivery (COD)"}
	fin := "pending"
	if !cod {
		gw, fin = []string{"shopify_payments"}, "paid"
	}
	return shopifytest.Order{Phone: ptr(phone), TotalPrice: "249.00", FinancialStatus: fin, Gateways: gw,
		ShippingAddress: &shopifytest.Address{Name: "Salma Bennani", Address1: "Bd Zerktouni 12", City: city, CountryCode: "MA"},
		LineItems:       []shopifytest.LineItem{{ID: 1, ProductID: 2, VariantID: 3, Title: "Huile d'argan 100ml", SKU: "ARG-100", Quantity: 2, Price: "124.50"}}}
}

// Shopify end to end: webhooks (duplicated, retried) become leads once,
// COD only; an update changes the open lead; after confirmation a change is
// recorded, not applied; a cancellation cancels an open lead; unknown
// topics and unreadable bodies are acknowledged and kept; the backfill
// (throttled) brings the orders webhooks missed and no second lead for the
// others.
func TestShopifyOrdersBecomeLeads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "shopifye2e")
	secret := []byte("shpss_e2e")
	fake := shopifytest.NewServer(t, shopifytest.Options{Secret: secret, AccessToken: "shpat_e2e",
		Faults: shoptest.Faults{DuplicateRate: 0.5, Seed: 7}, RestoreRate: 200, ThrottleEvery: 2})
	conn := f.connect("shopify", fake.URL, &leadifyv1.ShopCredentials{AccessToken: "shpat_e2e", WebhookSecret: string(secret)}, false)
	hook := f.env.URL + conn.WebhookPath
	for _, topic := range []string{"orders/create", "orders/updated", "orders/cancelled", "orders/delete", "app/uninstalled"} {
		fake.Subscribe(topic, hook)
	}
	test, err := f.tn.Seller.Shops.TestShopConnection(ctx, connect.NewRequest(&leadifyv1.TestShopConnectionRequest{ConnectionId: conn.Id}))
	require.NoError(t, err)
	require.True(t, test.Msg.Ok, test.Msg.Message)

	cod1 := fake.AddOrder(shopifyOrder("0612345678", "Casablanca", true))
	cod2 := fake.AddOrder(shopifyOrder("0698765432", "Rabat", true))
	card := fake.AddOrder(shopifyOrder("0661111111", "Fès", false))
	for _, id := range []int64{cod1, cod2, card} {
		_, err := fake.Fire(ctx, "orders/create", id)
		require.NoError(t, err)
	}
	f.settled()
	require.Equal(t, 2, f.count(`SELECT count(*) FROM leads WHERE store_id = $1 AND source = 'shopify'`), "COD orders only, each once")
	require.Equal(t, 1, f.count(`SELECT count(*) FROM shop_orders WHERE store_id = $1 AND outcome = 'skipped_not_cod'`))
	l1 := f.leadOf(conn.Id, fmt.Sprint(cod1))
	require.Equal(t, "new", l1.Status)
	require.Equal(t, "+212612345678", l1.Phone)
	require.Equal(t, "casablanca", l1.City)
	require.EqualValues(t, 24900, l1.COD)
	require.Equal(t, fmt.Sprint(cod1), l1.Ref)

	// An update of an open lead changes it.
	fake.UpdateOrder(cod1, func(o *shopifytest.Order) { o.ShippingAddress.Address1 = "Rue Ibn Batouta 5" })
	_, err = fake.Fire(ctx, "orders/updated", cod1)
	require.NoError(t, err)
	f.settled()
	require.Contains(t, f.leadOf(conn.Id, fmt.Sprint(cod1)).Addr, "Ibn Batouta")

	// Confirmed: a later change is recorded, not applied.
	f.setStatus(l1.ID, "confirmed")
	fake.UpdateOrder(cod1, func(o *shopifytest.Order) { o.ShippingAddress.Address1 = "Somewhere else" })
	_, err = fake.Fire(ctx, "orders/updated", cod1)
	require.NoError(t, err)
	f.settled()
	got := f.leadOf(conn.Id, fmt.Sprint(cod1))
	require.Equal(t, "confirmed", got.Status)
	require.Contains(t, got.Addr, "Ibn Batouta")
	require.Equal(t, 1, f.count(`SELECT late_changes FROM shop_orders WHERE store_id = $1 AND order_id = $2`, fmt.Sprint(cod1)))

	// A cancellation of an open lead cancels it.
	fake.UpdateOrder(cod2, func(o *shopifytest.Order) { o.CancelledAt = ptr(time.Now().UTC().Format(time.RFC3339)) })
	_, err = fake.Fire(ctx, "orders/cancelled", cod2)
	require.NoError(t, err)
	f.settled()
	require.Equal(t, "cancelled", f.leadOf(conn.Id, fmt.Sprint(cod2)).Status)
	require.Equal(t, 1, f.count(`SELECT count(*) FROM lead_events WHERE store_id = $1 AND kind = 'cancel'`))

	// Unknown topics and unreadable bodies: 200, kept, no lead.
	status, err := fake.SendRaw(ctx, hook, "app/uninstalled", "evt-unknown", []byte(`{"id":1}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	status, err = fake.SendRaw(ctx, hook, "orders/create", "evt-garbage", []byte(`{"id":"x","total_price":"lots"}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	f.settled()
	require.Equal(t, 1, f.count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1 AND status = 'ignored'`))
	require.Equal(t, 1, f.count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1 AND status = 'dead'`))

	// Every delivery id is stored once, however often it was sent.
	sent := map[string]bool{}
	dups := 0
	for _, a := range fake.Sender.Attempts() {
		if a.Duplicate {
			dups++
		}
		sent[a.DeliveryID] = true
	}
	require.Positive(t, dups, "the fake sent duplicates")
	require.Equal(t, len(sent), f.count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1`))

	// Backfill: the orders webhooks never announced arrive, the others keep
	// their lead; the small cost bucket throttles on the way.
	for i := range 120 {
		fake.AddOrder(shopifyOrder(fmt.Sprintf("06%08d", 20000000+i), "Tanger", true))
	}
	_, err = f.tn.Seller.Shops.BackfillShopOrders(ctx, connect.NewRequest(&leadifyv1.BackfillShopOrdersRequest{ConnectionId: conn.Id}))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return f.count(`SELECT count(*) FROM shop_connections WHERE store_id = $1 AND last_backfill_at IS NOT NULL`) == 1
	}, 2*time.Minute, 50*time.Millisecond)
	require.Equal(t, 122, f.count(`SELECT count(*) FROM leads WHERE store_id = $1 AND source = 'shopify'`))
	require.Equal(t, "confirmed", f.leadOf(conn.Id, fmt.Sprint(cod1)).Status, "the same order keeps its lead")
	require.Equal(t, 1, f.count(`SELECT late_changes FROM shop_orders WHERE store_id = $1 AND order_id = $2`, fmt.Sprint(cod1)),
		"the GraphQL form of an order reads the same as its webhook: no spurious change")
	require.Zero(t, f.count(`SELECT count(*) FROM intake_run_rows WHERE store_id = $1 AND outcome = 'updated' AND row_key = $2`, "id:"+fmt.Sprint(cod2)))
	require.Positive(t, fake.Throttled, "the backfill met THROTTLED answers and waited them out")
}

// WooCommerce end to end: the unsigned creation ping is answered 200 and
// stored nowhere, orders arrive signed, order.deleted cancels, REST v3
// backfill pages with X-WP-TotalPages under 429s and slow answers.
func TestWooCommerceOrdersBecomeLeads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "wooe2e")
	secret := []byte("woo-secret")
	fake := woocommercetest.NewServer(t, woocommercetest.Options{Secret: secret, ConsumerKey: "ck_e2e", ConsumerSecret: "cs_e2e",
		Faults: shoptest.Faults{RateLimitEvery: 3, Latency: 5 * time.Millisecond, DuplicateRate: 0.3, Seed: 3}})
	conn := f.connect("woocommerce", fake.URL, &leadifyv1.ShopCredentials{ConsumerKey: "ck_e2e", ConsumerSecret: "cs_e2e",
		WebhookSecret: string(secret)}, false)
	hook := f.env.URL + conn.WebhookPath
	created, err := fake.AddWebhook(ctx, "order.created", hook)
	require.NoError(t, err, "the ping is answered 200")
	_, err = fake.AddWebhook(ctx, "order.deleted", hook)
	require.NoError(t, err)
	require.Zero(t, f.count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1`), "pings are not stored")

	order := func(phone string) woocommercetest.Order {
		return woocommercetest.Order{Total: "359.00", PaymentMethod: "cod",
			Billing:   woocommercetest.Party{FirstName: "Youssef", LastName: "El Fassi", Address1: "Hay Riad", City: "Rabat", Phone: phone},
			LineItems: []woocommercetest.LineItem{{ID: 1, Name: "Montre", ProductID: 9, Quantity: 1, SKU: "M-1", Price: 359, Total: "359.00"}}}
	}
	a := fake.AddOrder(order("0612345678"))
	b := fake.AddOrder(order("0623456789"))
	require.NoError(t, fake.Fire(ctx, "order.created", a))
	require.NoError(t, fake.Fire(ctx, "order.created", b))
	require.NoError(t, fake.Fire(ctx, "order.deleted", b))
	f.settled()
	require.Equal(t, "new", f.leadOf(conn.Id, fmt.Sprint(a)).Status)
	require.Equal(t, "cancelled", f.leadOf(conn.Id, fmt.Sprint(b)).Status)

	// A forged delivery is refused with 401, which counts towards disabling.
	status, err := fake.Deliver(ctx, &woocommercetest.Webhook{ID: created.ID, Topic: "order.created", Address: hook + "x"}, []byte(`{}`))
	require.Error(t, err)
	require.NotEqual(t, http.StatusOK, status)

	for i := range 230 {
		fake.AddOrder(order(fmt.Sprintf("06%08d", 30000000+i)))
	}
	_, err = f.tn.Seller.Shops.BackfillShopOrders(ctx, connect.NewRequest(&leadifyv1.BackfillShopOrdersRequest{ConnectionId: conn.Id, Days: 2}))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return f.count(`SELECT count(*) FROM shop_connections WHERE store_id = $1 AND last_backfill_at IS NOT NULL`) == 1
	}, 2*time.Minute, 50*time.Millisecond)
	require.Equal(t, 232, f.count(`SELECT count(*) FROM leads WHERE store_id = $1 AND source = 'woocommerce'`))
	require.Equal(t, "cancelled", f.leadOf(conn.Id, fmt.Sprint(b)).Status, "the backfill does not revive a cancelled lead")
	require.Positive(t, fake.API.Limited.Load(), "the backfill met 429s and retried")
}

// YouCan end to end: resthook subscription through the API, signatures
// over the PHP re-encoded body, both spellings of the shipping address,
// redeliveries of the same body stored once, and products with stock
// reserved on confirmation and released on return.
func TestYouCanOrdersAndStock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "youcane2e")
	secret := []byte("youcan-client-secret")
	fake := youcantest.NewServer(t, youcantest.Options{ClientSecret: secret, Token: "yc-token", SignReencoded: true,
		Faults: shoptest.Faults{DuplicateRate: 1, Seed: 5}})
	conn := f.connect("youcan", fake.URL, &leadifyv1.ShopCredentials{AccessToken: "yc-token", WebhookSecret: string(secret)}, false)
	// The server subscribes itself (POST /resthooks/subscribe) with the
	// event in the target URL.
	svc := shopsync.New(f.env.DB.App, f.env.Server.Config().Secrets, nil, f.env.Server.Log(), nil)
	svc.PublicURL = f.env.URL
	var c shopsync.Connection
	f.env.InStore(func(tx *postgres.Tx) (err error) {
		c, err = shopsync.LoadConnection(ctx, tx, uuid.MustParse(conn.Id))
		return err
	}, f.store)
	status, err := svc.SubscribeWebhooks(ctx, c)
	require.NoError(t, err)
	require.Equal(t, "subscribed to order.create", status)
	require.Equal(t, []youcantest.Subscription{{Event: "order.create", TargetURL: f.env.URL + conn.WebhookPath + "?event=order.create"}},
		fake.Subscriptions())

	o1 := youcantest.Order{Total: 199, Customer: youcantest.Customer{FirstName: "فاطمة", LastName: "Tazi", Phone: "0698765432"},
		Shipping: youcantest.Address{FirstLine: "Derb Sultan", City: "الدار البيضاء"},
		Lines:    []youcantest.Line{youcantest.NewLine("EC-1", "Écouteurs sans fil", 2, 99.5)}}
	o2 := o1
	o2.Customer.Phone, o2.ShippingNested, o2.Shipping.City = "0611223344", true, "Marrakech"
	id1, id2 := fake.AddOrder(o1), fake.AddOrder(o2)
	require.NoError(t, fake.Fire(ctx, "order.create", id1))
	require.NoError(t, fake.Fire(ctx, "order.create", id2))
	f.settled()
	require.Equal(t, 2, f.count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1`), "each body once, though sent twice")
	l1, l2 := f.leadOf(conn.Id, id1), f.leadOf(conn.Id, id2)
	require.Equal(t, "casablanca", l1.City)
	require.Equal(t, "marrakech", l2.City, "shipping.address is read too")

	fake.AddProduct(youcantest.Product{ID: "p1", Name: "Écouteurs sans fil", Variants: []youcantest.Variant{{ID: "v1", SKU: "EC-1", Price: 99.5, Inventory: 40}}})
	_, err = f.tn.Seller.Shops.SyncShopProducts(ctx, connect.NewRequest(&leadifyv1.SyncShopProductsRequest{ConnectionId: conn.Id}))
	require.NoError(t, err)
	products := func() []*leadifyv1.ShopProduct {
		resp, err := f.tn.Seller.Shops.ListShopProducts(ctx, connect.NewRequest(&leadifyv1.ListShopProductsRequest{StoreId: f.store.String()}))
		require.NoError(t, err)
		return resp.Msg.Products
	}
	require.Eventually(t, func() bool { return len(products()) == 1 }, 20*time.Second, 20*time.Millisecond)
	require.EqualValues(t, 40, products()[0].Available)

	publish := func(kind events.Kind, aggType string, agg uuid.UUID, payload any) {
		err := postgres.InTx(ctx, f.env.DB.App, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
			return f.env.Server.Events.Publish(ctx, tx, events.Event{Store: f.store, Kind: kind, AggregateType: aggType, AggregateID: agg, Payload: payload})
		})
		require.NoError(t, err)
	}
	f.setStatus(l1.ID, "confirmed")
	publish(events.LeadConfirmed, "lead", l1.ID, map[string]any{})
	require.Eventually(t, func() bool { return products()[0].Reserved == 2 }, 20*time.Second, 20*time.Millisecond)
	require.EqualValues(t, 38, products()[0].Available)
	publish(events.ParcelReturned, "parcel", uuid.New(), map[string]any{"lead_id": l1.ID})
	require.Eventually(t, func() bool { return products()[0].Reserved == 0 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, f.count(`SELECT count(*) FROM stock_reservations WHERE store_id = $1 AND state = 'released' AND release_reason = 'parcel.returned'`))
}

// Bodies over the limit are refused before anything else.
func TestOversizedWebhookRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "bigbody")
	conn := f.connect("shopify", "big.myshopify.com", &leadifyv1.ShopCredentials{AccessToken: "t", WebhookSecret: "s"}, true)
	body := bytes.Repeat([]byte("a"), shop.MaxBody+10)
	req, _ := http.NewRequest(http.MethodPost, f.env.URL+conn.WebhookPath, bytes.NewReader(body))
	shopify.Sign([]byte("s"), req.Header, "orders/create", "e", body)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	_, err = f.tn.Seller.Shops.CreateShopConnection(context.Background(), connect.NewRequest(&leadifyv1.CreateShopConnectionRequest{
		StoreId: f.store.String(), Platform: "magento", BaseUrl: "x", Credentials: &leadifyv1.ShopCredentials{WebhookSecret: "s"}}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	_, err = f.tn.Seller.Shops.CreateShopConnection(context.Background(), connect.NewRequest(&leadifyv1.CreateShopConnectionRequest{
		StoreId: f.store.String(), Platform: "shopify", BaseUrl: "x.myshopify.com", Credentials: &leadifyv1.ShopCredentials{AccessToken: "t"}}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "no webhook secret")
	list, err := f.tn.Seller.Shops.ListShopConnections(context.Background(), connect.NewRequest(&leadifyv1.ListShopConnectionsRequest{StoreId: f.store.String()}))
	require.NoError(t, err)
	js, _ := json.Marshal(list.Msg)
	require.NotContains(t, strings.ToLower(string(js)), `"s"`, "no credentials come back")
	require.Len(t, list.Msg.Connections, 1)
}

// Processing the same webhooks again — a job retried after its effects
// committed, or a crash between the import and the settling transaction —
// makes no second lead, customer order or cancellation.
func TestReprocessingChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "reprocess")
	secret := []byte("shpss_re")
	fake := shopifytest.NewServer(t, shopifytest.Options{Secret: secret, AccessToken: "shpat_re"})
	conn := f.connect("shopify", fake.URL, &leadifyv1.ShopCredentials{AccessToken: "shpat_re", WebhookSecret: string(secret)}, false)
	for _, topic := range []string{"orders/create", "orders/cancelled"} {
		fake.Subscribe(topic, f.env.URL+conn.WebhookPath)
	}
	a := fake.AddOrder(shopifyOrder("0612345678", "Casablanca", true))
	b := fake.AddOrder(shopifyOrder("0698765432", "Rabat", true))
	for _, id := range []int64{a, b} {
		_, err := fake.Fire(ctx, "orders/create", id)
		require.NoError(t, err)
	}
	_, err := fake.Fire(ctx, "orders/cancelled", b)
	require.NoError(t, err)
	f.settled()
	snapshot := func() [4]int {
		return [4]int{
			f.count(`SELECT count(*) FROM leads WHERE store_id = $1`),
			f.count(`SELECT count(*) FROM lead_events WHERE store_id = $1`),
			f.count(`SELECT coalesce(sum(orders), 0)::int FROM customers WHERE seller_id = (SELECT seller_id FROM stores WHERE id = $1)`),
			f.count(`SELECT count(*) FROM shop_orders WHERE store_id = $1`),
		}
	}
	before := snapshot()
	require.Equal(t, [4]int{2, 1, 2, 2}, before)

	svc := shopsync.New(f.env.DB.App, f.env.Server.Config().Secrets, nil, f.env.Server.Log(), nil)
	var ids []uuid.UUID
	f.env.InStore(func(tx *postgres.Tx) error {
		// As if the settling transaction never committed.
		if _, err := tx.Exec(ctx, `DELETE FROM shop_orders WHERE store_id = $1`, f.store); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE shop_webhooks SET status = 'pending', attempts = 0 WHERE store_id = $1 RETURNING id`, f.store)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	}, f.store)
	res, err := svc.ProcessWebhooks(ctx, f.store, ids)
	require.NoError(t, err)
	require.Zero(t, res.Imported+res.Cancelled+res.Duplicate)
	require.Equal(t, before, snapshot())
	require.Equal(t, "cancelled", f.leadOf(conn.Id, fmt.Sprint(b)).Status)
}

// Rotation re-seals shop credentials under the new active key; the
// connection's credentials still open.
func TestRotateShopSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldSpec, newSpec := secrets.GenerateKey("k1"), secrets.GenerateKey("k2")
	oldKR, err := secrets.ParseKeyring(oldSpec)
	require.NoError(t, err)
	env := servertest.Start(t, func(c *server.Config) { c.Secrets = oldKR })
	tn := env.NewTenant(env.Admin(), "rotate")
	f := &fixture{t: t, env: env, store: tn.StoreID, tn: tn}
	conn := f.connect("shopify", "rot.myshopify.com", &leadifyv1.ShopCredentials{AccessToken: "t", WebhookSecret: "rot-secret"}, false)

	newOnly, err := secrets.ParseKeyring(newSpec)
	require.NoError(t, err)
	_, err = shopsync.RotateSecrets(ctx, env.DB.App, newOnly)
	require.ErrorIs(t, err, secrets.ErrUnknownKey, "without the old key its values cannot be opened")
	// The real procedure: the new key first, the old one still listed.
	kr, err := secrets.ParseKeyring(newSpec + "," + oldSpec)
	require.NoError(t, err)
	n, err := shopsync.RotateSecrets(ctx, env.DB.App, kr)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = shopsync.RotateSecrets(ctx, env.DB.App, kr)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to rotate")
	svc := shopsync.New(env.DB.App, newOnly, nil, env.Server.Log(), nil)
	env.InStore(func(tx *postgres.Tx) error {
		c, err := shopsync.LoadConnection(ctx, tx, uuid.MustParse(conn.Id))
		require.NoError(t, err)
		cr, err := svc.Open(c)
		require.NoError(t, err, "opens with the new key alone")
		require.Equal(t, "rot-secret", cr.WebhookSecret)
		return nil
	}, f.store)
}

// Shop orders get the intake's customer and duplicate treatment: the same
// customer ordering the same product again within the window is marked a
// duplicate of the first lead (never dropped), and counted on the
// customer. The periodic sweep backfills every connection.
func TestShopOrdersShareCustomersAndDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "shopdups")
	secret := []byte("shpss_dups")
	fake := shopifytest.NewServer(t, shopifytest.Options{Secret: secret, AccessToken: "shpat_dups"})
	conn := f.connect("shopify", fake.URL, &leadifyv1.ShopCredentials{AccessToken: "shpat_dups", WebhookSecret: string(secret)}, false)
	fake.Subscribe("orders/create", f.env.URL+conn.WebhookPath)
	first := fake.AddOrder(shopifyOrder("0612345678", "Casablanca", true))
	again := fake.AddOrder(shopifyOrder("+212 6 12 34 56 78", "Casablanca", true))
	for _, id := range []int64{first, again} {
		_, err := fake.Fire(ctx, "orders/create", id)
		require.NoError(t, err)
		f.settled()
	}
	l1, l2 := f.leadOf(conn.Id, fmt.Sprint(first)), f.leadOf(conn.Id, fmt.Sprint(again))
	require.Equal(t, "new", l1.Status)
	require.Equal(t, "duplicate", l2.Status)
	require.Equal(t, 1, f.count(`SELECT count(*) FROM leads WHERE store_id = $1 AND duplicate_of = $2`, l1.ID))
	require.Equal(t, 2, f.count(`SELECT orders FROM customers WHERE phone_e164 = '+212612345678'
  AND seller_id = (SELECT seller_id FROM stores WHERE id = $1)`))

	// A duplicate cannot be cancelled (the lead rules): the shop's
	// cancellation is recorded on the order, not applied.
	fake.Subscribe("orders/cancelled", f.env.URL+conn.WebhookPath)
	fake.UpdateOrder(again, func(o *shopifytest.Order) { o.CancelledAt = ptr(time.Now().UTC().Format(time.RFC3339)) })
	_, err := fake.Fire(ctx, "orders/cancelled", again)
	require.NoError(t, err)
	f.settled()
	require.Equal(t, "duplicate", f.leadOf(conn.Id, fmt.Sprint(again)).Status)
	require.Equal(t, 1, f.count(`SELECT late_changes FROM shop_orders WHERE store_id = $1 AND order_id = $2`, fmt.Sprint(again)))

	// The sweep queues a backfill of every connection: the order the shop
	// never announced arrives.
	fake.AddOrder(shopifyOrder("0633445566", "Oujda", true))
	_, err = f.env.Server.River.Insert(ctx, shopsync.SweepArgs{Days: 1}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return f.count(`SELECT count(*) FROM leads WHERE store_id = $1 AND phone_e164 = '+212633445566'`) == 1
	}, 2*time.Minute, 50*time.Millisecond)
}

// A webhook stored but never enqueued (the server died between the inbox's
// commit and the enqueue) is processed once recovery finds it.
func TestStoredButNotEnqueuedIsRecovered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "recover")
	conn := f.connect("shopify", "rec.myshopify.com", &leadifyv1.ShopCredentials{AccessToken: "t", WebhookSecret: "s"}, false)
	cut := shopsync.New(f.env.DB.App, f.env.Server.Config().Secrets, nil, f.env.Server.Log(), nil)
	cut.Inbox.OnCommit = nil // the enqueue never happens
	body := []byte(fmt.Sprintf(benchOrder, 42, 42, 42, 42, 42, 42))
	out, err := cut.Inbox.Submit(ctx, shopsync.Delivery{Store: f.store, Connection: uuid.MustParse(conn.Id), Platform: "shopify",
		DeliveryID: "evt-lost", Topic: "orders/create", Body: body})
	require.NoError(t, err)
	require.Equal(t, shopsync.Stored, out)
	out, err = cut.Inbox.Submit(ctx, shopsync.Delivery{Store: f.store, Connection: uuid.MustParse(conn.Id), Platform: "shopify",
		DeliveryID: "evt-lost", Topic: "orders/create", Body: body})
	require.NoError(t, err)
	require.Equal(t, shopsync.Duplicate, out)
	require.Equal(t, 1, f.count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1 AND status = 'pending'`))

	rec := shopsync.New(f.env.DB.App, f.env.Server.Config().Secrets, nil, f.env.Server.Log(), func() *river.Client[pgx.Tx] { return f.env.Server.River })
	n, err := rec.Recover(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	f.settled()
	require.Equal(t, "new", f.leadOf(conn.Id, "42").Status)
}
