package shop_test

// Conformance: every statement ../shared/CARRIERS.md makes about the
// Shopify, WooCommerce and YouCan APIs, checked against the fakes (so the
// fakes behave like the real services) and, where a client exists, through
// the client (so the same code works against the real ones).

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify/shopifytest"
	"github.com/leadify/leadify/syncserver/intake/shop/shoptest"
	"github.com/leadify/leadify/syncserver/intake/shop/woocommerce"
	"github.com/leadify/leadify/syncserver/intake/shop/woocommerce/woocommercetest"
	"github.com/leadify/leadify/syncserver/intake/shop/youcan"
	"github.com/leadify/leadify/syncserver/intake/shop/youcan/youcantest"
)

type captured struct {
	Method string
	Header http.Header
	Body   []byte
	Query  url.Values
}

// receiver records webhook deliveries and answers status (200 unless set).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []captured
	status int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, captured{Method: req.Method, Header: req.Header.Clone(), Body: b, Query: req.URL.Query()})
		st := r.status
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) all() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.got...)
}

func (r *receiver) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

func keys(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	return m
}

func requireKeys(t *testing.T, m map[string]any, names ...string) {
	t.Helper()
	for _, n := range names {
		require.Contains(t, m, n)
	}
}

func TestShopifyConformance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := []byte("shpss_conformance")
	fake := shopifytest.NewServer(t, shopifytest.Options{Secret: secret, AccessToken: "shpat_c", Domain: "argan.myshopify.com",
		Bucket: 120, RestoreRate: 100})
	rx1, rx2 := newReceiver(t), newReceiver(t)
	fake.Subscribe("orders/create", rx1.URL)
	fake.Subscribe("orders/create", rx2.URL)
	phone := "0612345678"
	id := fake.AddOrder(shopifytest.Order{Phone: &phone, Email: "a@b.ma", TotalPrice: "249.00", FinancialStatus: "pending",
		Gateways: []string{"Cash on Delivery (COD)"}, Customer: &shopifytest.Customer{ID: 1, Phone: phone},
		ShippingAddress: &shopifytest.Address{FirstName: "Salma", LastName: "B", Name: "Salma B", Address1: "x", City: "Casablanca", CountryCode: "MA", Phone: phone},
		LineItems:       []shopifytest.LineItem{{ID: 1, ProductID: 2, VariantID: 3, Title: "Huile", SKU: "ARG-100", Quantity: 2, Price: "124.50"}}})
	event, err := fake.Fire(ctx, "orders/create", id)
	require.NoError(t, err)
	d1, d2 := rx1.all()[0], rx2.all()[0]

	// Headers X-Shopify-Topic (orders/create), X-Shopify-Hmac-Sha256, X-Shopify-Shop-Domain,
	// X-Shopify-Webhook-Id (per delivery), X-Shopify-Event-Id (dedupe on it), X-Shopify-Triggered-At.
	require.Equal(t, "orders/create", d1.Header.Get("X-Shopify-Topic"))
	require.Equal(t, "argan.myshopify.com", d1.Header.Get("X-Shopify-Shop-Domain"))
	require.Equal(t, event, d1.Header.Get("X-Shopify-Event-Id"))
	require.Equal(t, d1.Header.Get("X-Shopify-Event-Id"), d2.Header.Get("X-Shopify-Event-Id"), "one event id per event")
	require.NotEqual(t, d1.Header.Get("X-Shopify-Webhook-Id"), d2.Header.Get("X-Shopify-Webhook-Id"), "a webhook id per delivery")
	_, err = time.Parse(time.RFC3339Nano, d1.Header.Get("X-Shopify-Triggered-At"))
	require.NoError(t, err)
	// …Hmac-Sha256 is the base64 HMAC-SHA256 of the raw body with the app secret.
	sig, err := base64.StdEncoding.DecodeString(d1.Header.Get("X-Shopify-Hmac-Sha256"))
	require.NoError(t, err)
	require.True(t, hmac.Equal(sig, shop.SumHMAC(secret, d1.Body)))
	_, err = shopify.Verify(secret, d1.Header, d1.Body)
	require.NoError(t, err)

	// Order: id, name ("#1001"), phone, email, created_at, currency, total_price (decimal string),
	// financial_status ("pending" for COD), payment_gateway_names, customer, shipping_address{…}, line_items[…], note, tags.
	m := keys(t, d1.Body)
	requireKeys(t, m, "id", "name", "phone", "email", "created_at", "currency", "total_price", "financial_status",
		"payment_gateway_names", "customer", "shipping_address", "line_items", "note", "tags")
	require.Equal(t, "#1001", m["name"])
	require.IsType(t, "", m["total_price"])
	require.Equal(t, "pending", m["financial_status"])
	requireKeys(t, m["shipping_address"].(map[string]any), "first_name", "last_name", "name", "address1", "address2", "city", "province",
		"zip", "country_code", "phone")
	requireKeys(t, m["line_items"].([]any)[0].(map[string]any), "id", "product_id", "variant_id", "title", "sku", "quantity", "price")
	o, err := shopify.ParseOrder(d1.Body)
	require.NoError(t, err)
	require.True(t, o.COD)

	// Backfill: POST {shop}/admin/api/2025-10/graphql.json with X-Shopify-Access-Token.
	post := func(token, path, query string, vars map[string]any) (int, map[string]any) {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		req, _ := http.NewRequest(http.MethodPost, fake.URL+path, bytes.NewReader(b))
		if token != "" {
			req.Header.Set("X-Shopify-Access-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, _ := post("", "/admin/api/2025-10/graphql.json", shopify.OrdersQuery, nil)
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = post("shpat_c", "/admin/api/"+shopify.APIVersion+"/graphql.json", `{ shop { name } }`, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "2025-10", shopify.APIVersion)

	// orders(first: 100, after: $cursor, query: "created_at:>…") { edges { node { id name createdAt phone
	// totalPriceSet { shopMoney { amount } } … } } pageInfo { hasNextPage endCursor } }
	for i := range 150 {
		p := fmt.Sprintf("06%08d", i)
		fake.AddOrder(shopifytest.Order{Phone: &p, TotalPrice: "10.00", FinancialStatus: "pending", Gateways: []string{"Cash on Delivery (COD)"},
			CreatedAt: time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC).Format(time.RFC3339)})
	}
	old := "0600000000"
	fake.AddOrder(shopifytest.Order{Phone: &old, TotalPrice: "10.00", CreatedAt: "2026-10-01T00:00:00Z"})
	time.Sleep(1100 * time.Millisecond) // let the bucket refill
	_, out := post("shpat_c", "/admin/api/2025-10/graphql.json", shopify.OrdersQuery, map[string]any{"query": "created_at:>2026-10-31T00:00:00Z"})
	data := out["data"].(map[string]any)["orders"].(map[string]any)
	edges := data["edges"].([]any)
	require.Len(t, edges, 100)
	node := edges[0].(map[string]any)["node"].(map[string]any)
	requireKeys(t, node, "id", "name", "createdAt", "phone", "totalPriceSet")
	require.True(t, strings.HasPrefix(node["id"].(string), "gid://shopify/Order/"))
	require.Contains(t, node["totalPriceSet"].(map[string]any)["shopMoney"].(map[string]any), "amount")
	pi := data["pageInfo"].(map[string]any)
	require.Equal(t, true, pi["hasNextPage"])
	require.NotEmpty(t, pi["endCursor"])

	// Rate limits are cost-based (a bucket that refills per second; throttled
	// answers say THROTTLED in errors[].extensions.code).
	_, out = post("shpat_c", "/admin/api/2025-10/graphql.json", shopify.OrdersQuery, map[string]any{"cursor": pi["endCursor"]})
	errs := out["errors"].([]any)
	require.Equal(t, "THROTTLED", errs[0].(map[string]any)["extensions"].(map[string]any)["code"])
	ts := out["extensions"].(map[string]any)["cost"].(map[string]any)["throttleStatus"].(map[string]any)
	requireKeys(t, ts, "maximumAvailable", "currentlyAvailable", "restoreRate")

	// The client pages through it all, waiting out THROTTLED answers.
	var slept time.Duration
	c, err := shopify.New(shopify.Config{BaseURL: fake.URL, AccessToken: "shpat_c", Sleep: func(ctx context.Context, d time.Duration) error {
		slept += d
		time.Sleep(d)
		return nil
	}})
	require.NoError(t, err)
	seen := map[string]bool{}
	require.NoError(t, c.Orders(ctx, time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC), func(p []shop.Order) error {
		for _, o := range p {
			seen[o.ID] = true
		}
		return nil
	}))
	require.Len(t, seen, 151, "created_at:> leaves out the order of October (the first order is from now)")
	require.Positive(t, slept)
	require.Equal(t, strconv.FormatInt(id, 10), shopify.LegacyID(shopifyGID(id)), "GraphQL ids map to webhook ids")

	// products and inventory likewise.
	fake.AddVariant(shopifytest.Variant{ID: 11, ProductID: 10, Product: "Huile", Title: "100ml", SKU: "ARG-100", Price: "124.50", Inventory: 7})
	var products []shop.Product
	require.NoError(t, c.Products(ctx, func(p []shop.Product) error { products = append(products, p...); return nil }))
	require.Len(t, products, 1)
	require.EqualValues(t, 7, *products[0].Stock)
	require.Equal(t, "11", products[0].ExternalID)

	// A wrong token is refused as credentials.
	bad, _ := shopify.New(shopify.Config{BaseURL: fake.URL, AccessToken: "nope"})
	require.ErrorIs(t, bad.Ping(ctx), shop.ErrCredentials)
}

func shopifyGID(id int64) string { return "gid://shopify/Order/" + strconv.FormatInt(id, 10) }

func TestWooCommerceConformance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := []byte("woo_conformance")
	fake := woocommercetest.NewServer(t, woocommercetest.Options{Secret: secret, ConsumerKey: "ck_c", ConsumerSecret: "cs_c"})
	rx := newReceiver(t)

	// On creation WooCommerce first sends a form ping webhook_id=N and expects 200.
	wh, err := fake.AddWebhook(ctx, "order.created", rx.URL)
	require.NoError(t, err)
	ping := rx.all()[0]
	require.Equal(t, http.MethodPost, ping.Method)
	require.Equal(t, "webhook_id="+strconv.FormatInt(wh.ID, 10), string(ping.Body))
	require.True(t, woocommerce.IsPing(ping.Header, ping.Body))
	rx.setStatus(http.StatusUnauthorized)
	_, err = fake.AddWebhook(ctx, "order.updated", rx.URL)
	require.Error(t, err, "a webhook whose ping is not answered 200 is not saved")
	rx.setStatus(http.StatusOK)

	// POST JSON; headers X-WC-Webhook-Source, -Topic (order.created, order.updated), -Resource, -Event,
	// -Signature (base64 HMAC-SHA256 of the raw body), -ID, -Delivery-ID.
	id := fake.AddOrder(woocommercetest.Order{Total: "359.00", PaymentMethod: "cod",
		Billing:   woocommercetest.Party{FirstName: "Y", LastName: "F", Address1: "Hay Riad", City: "Rabat", Phone: "0612345678"},
		LineItems: []woocommercetest.LineItem{{ID: 1, Name: "Montre", ProductID: 9, Quantity: 1, SKU: "M-1", Price: 359, Total: "359.00"}}})
	require.NoError(t, fake.Fire(ctx, "order.created", id))
	d := rx.all()[len(rx.all())-1]
	require.Equal(t, "application/json", d.Header.Get("Content-Type"))
	require.Equal(t, "order.created", d.Header.Get("X-WC-Webhook-Topic"))
	require.Equal(t, "order", d.Header.Get("X-WC-Webhook-Resource"))
	require.Equal(t, "created", d.Header.Get("X-WC-Webhook-Event"))
	require.Equal(t, strconv.FormatInt(wh.ID, 10), d.Header.Get("X-WC-Webhook-ID"))
	require.NotEmpty(t, d.Header.Get("X-WC-Webhook-Delivery-ID"))
	require.NotEmpty(t, d.Header.Get("X-WC-Webhook-Source"))
	sig, err := base64.StdEncoding.DecodeString(d.Header.Get("X-WC-Webhook-Signature"))
	require.NoError(t, err)
	require.True(t, hmac.Equal(sig, shop.SumHMAC(secret, d.Body)))
	_, err = woocommerce.Verify(secret, d.Header, d.Body)
	require.NoError(t, err)

	// Order: id, number, status, currency, total (string), billing{first_name,last_name,address_1,city,phone,…},
	// shipping{…}, payment_method ("cod"), line_items[{id,name,product_id,quantity,sku,price,total}], customer_note, date_created.
	m := keys(t, d.Body)
	requireKeys(t, m, "id", "number", "status", "currency", "total", "billing", "shipping", "payment_method", "line_items", "customer_note", "date_created")
	require.IsType(t, "", m["total"])
	require.Equal(t, "cod", m["payment_method"])
	requireKeys(t, m["billing"].(map[string]any), "first_name", "last_name", "address_1", "city", "phone")
	requireKeys(t, m["line_items"].([]any)[0].(map[string]any), "id", "name", "product_id", "quantity", "sku", "price", "total")

	// After more than 5 failed deliveries in a row it disables the webhook.
	rx.setStatus(http.StatusInternalServerError)
	for i := range 6 {
		require.False(t, fake.Webhooks()[0].Disabled, "still active after %d failures", i)
		_ = fake.Fire(ctx, "order.created", id)
	}
	require.True(t, fake.Webhooks()[0].Disabled)

	// REST API v3: GET {site}/wp-json/wc/v3/orders?per_page=100&page=N&after=ISO8601 with the consumer key
	// and secret (HTTP Basic); totals in X-WP-Total and X-WP-TotalPages.
	for i := range 250 {
		fake.AddOrder(woocommercetest.Order{Total: "10.00", PaymentMethod: "cod", Billing: woocommercetest.Party{Phone: fmt.Sprintf("06%08d", i)},
			DateCreated: time.Date(2026, 11, 2, 0, 0, i, 0, time.UTC).Format("2006-01-02T15:04:05")})
	}
	fake.AddOrder(woocommercetest.Order{Total: "1.00", DateCreated: "2026-10-01T00:00:00"})
	get := func(user, pass, path string) (*http.Response, []map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, fake.URL+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out []map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	resp, _ := get("", "", "/wp-json/wc/v3/orders")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, page := get("ck_c", "cs_c", "/wp-json/wc/v3/orders?per_page=100&page=1&after=2026-11-01T00:00:00")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, page, 100)
	require.Equal(t, "251", resp.Header.Get("X-WP-Total"), "after= leaves out the order of October (the first is from now)")
	require.Equal(t, "3", resp.Header.Get("X-WP-TotalPages"))
	_, page3 := get("ck_c", "cs_c", "/wp-json/wc/v3/orders?per_page=100&page=3&after=2026-11-01T00:00:00")
	require.Len(t, page3, 51)
	// Products with stock_quantity at /wp-json/wc/v3/products.
	stock := int32(12)
	fake.AddProduct(woocommercetest.Product{ID: 9, Name: "Montre", SKU: "M-1", Price: "359.00", ManageStock: true, StockQuantity: &stock})
	_, prods := get("ck_c", "cs_c", "/wp-json/wc/v3/products")
	require.Contains(t, prods[0], "stock_quantity")

	// The client: all pages, retrying 429s.
	fake.API.Faults.RateLimitEvery = 2
	c, err := woocommerce.New(woocommerce.Config{BaseURL: fake.URL, ConsumerKey: "ck_c", ConsumerSecret: "cs_c",
		Sleep: func(context.Context, time.Duration) error { return nil }})
	require.NoError(t, err)
	n := 0
	require.NoError(t, c.Orders(ctx, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), func(p []shop.Order) error { n += len(p); return nil }))
	require.Equal(t, 251, n)
	var products []shop.Product
	require.NoError(t, c.Products(ctx, func(p []shop.Product) error { products = append(products, p...); return nil }))
	require.EqualValues(t, 12, *products[0].Stock)
	require.Positive(t, fake.API.Limited.Load())
	bad, _ := woocommerce.New(woocommerce.Config{BaseURL: fake.URL, ConsumerKey: "ck_c", ConsumerSecret: "wrong"})
	require.ErrorIs(t, bad.Ping(ctx), shop.ErrCredentials)
}

func TestYouCanConformance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := []byte("youcan_client_secret")
	fake := youcantest.NewServer(t, youcantest.Options{ClientSecret: secret, Token: "yc_token", SignReencoded: true,
		Faults: shoptest.Faults{Latency: 2 * time.Millisecond}})
	rx := newReceiver(t)

	// OAuth2 bearer tokens. Subscribe with POST /resthooks/subscribe {"event":"order.create","target_url":…}.
	c, err := youcan.New(youcan.Config{BaseURL: fake.URL, Token: "yc_token"})
	require.NoError(t, err)
	require.NoError(t, c.Subscribe(ctx, "order.create", rx.URL))
	require.Equal(t, []youcantest.Subscription{{Event: "order.create", TargetURL: rx.URL}}, fake.Subscriptions())
	bad, _ := youcan.New(youcan.Config{BaseURL: fake.URL, Token: "nope"})
	require.ErrorIs(t, bad.Subscribe(ctx, "order.create", rx.URL), shop.ErrCredentials)

	o := youcantest.Order{Total: 199, Customer: youcantest.Customer{FirstName: "فاطمة", LastName: "Tazi", Email: "f@t.ma", Phone: "0698765432"},
		Shipping: youcantest.Address{FirstLine: "Derb Sultan", City: "الدار البيضاء"},
		Lines:    []youcantest.Line{youcantest.NewLine("EC-1", "Écouteurs/sans fil", 1, 199)}}
	id := fake.AddOrder(o)
	require.NoError(t, fake.Fire(ctx, "order.create", id))
	d := rx.all()[0]

	// Signature header x-youcan-signature: hex HMAC-SHA256 with the OAuth client secret; their example
	// signs a re-encoded JSON body: verify against the raw body first, then the re-encoded form.
	sig, err := hex.DecodeString(d.Header.Get("x-youcan-signature"))
	require.NoError(t, err, "hex")
	require.False(t, hmac.Equal(sig, shop.SumHMAC(secret, d.Body)), "this fake signs the re-encoded body, not the raw one")
	require.True(t, hmac.Equal(sig, shop.SumHMAC(secret, youcantest.PHPEncode(d.Body))))
	require.NoError(t, youcan.Verify(secret, d.Header, d.Body))
	raw := youcantest.New(youcantest.Options{ClientSecret: secret})
	defer raw.Close()
	require.NoError(t, youcan.Verify(secret, raw.Headers(d.Body), d.Body), "a raw-body signature verifies too")

	// Order: id (uuid), ref, total (number), currency, status, customer{first_name,last_name,email,phone},
	// variants[{price,quantity,variant{sku,product{name}}}]; shipping.address vs shipping_address: accept both.
	m := keys(t, d.Body)
	requireKeys(t, m, "id", "ref", "total", "currency", "status", "customer", "variants", "shipping_address")
	require.IsType(t, float64(0), m["total"])
	requireKeys(t, m["customer"].(map[string]any), "first_name", "last_name", "email", "phone")
	v := m["variants"].([]any)[0].(map[string]any)
	requireKeys(t, v, "price", "quantity", "variant")
	require.Equal(t, "Écouteurs/sans fil", v["variant"].(map[string]any)["product"].(map[string]any)["name"])
	nested := o
	nested.ID, nested.ShippingNested = id, true
	nm := keys(t, youcantest.Body(nested))
	require.Contains(t, nm["shipping"].(map[string]any), "address")
	for _, body := range [][]byte{d.Body, youcantest.Body(nested)} {
		po, err := youcan.ParseOrder(body)
		require.NoError(t, err)
		require.Equal(t, "الدار البيضاء", po.City)
	}

	// Backfill: GET /orders?page=N with the bearer token (paginated).
	for i := range 45 {
		fake.AddOrder(youcantest.Order{Total: 10, Customer: youcantest.Customer{Phone: fmt.Sprintf("06%08d", i)}})
	}
	req, _ := http.NewRequest(http.MethodGet, fake.URL+"/orders?page=2", nil)
	req.Header.Set("Authorization", "Bearer yc_token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var page youcan.Page
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	require.Len(t, page.Items, 20)
	require.Equal(t, 3, page.LastPage)
	n := 0
	require.NoError(t, c.Orders(ctx, time.Now().Add(-time.Hour), func(p []shop.Order) error { n += len(p); return nil }))
	require.Equal(t, 46, n)
}
