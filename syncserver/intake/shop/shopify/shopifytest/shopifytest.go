// Package shopifytest is a fake Shopify shop: it holds orders and products,
// signs and sends webhooks like Shopify (X-Shopify-Topic,
// X-Shopify-Hmac-Sha256 over the raw body, X-Shopify-Shop-Domain,
// X-Shopify-Webhook-Id per delivery, X-Shopify-Event-Id per event,
// X-Shopify-Triggered-At; retried, sometimes duplicated) and serves the
// GraphQL Admin API's orders and products with cursor pagination and the
// cost-based throttle (THROTTLED in errors[].extensions.code).
package shopifytest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/intake/shop/shoptest"
)

// Address is a REST order's shipping address.
type Address struct {
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	Name        string `json:"name"`
	Address1    string `json:"address1"`
	Address2    string `json:"address2"`
	City        string `json:"city"`
	Province    string `json:"province"`
	Zip         string `json:"zip"`
	CountryCode string `json:"country_code"`
	Phone       string `json:"phone"`
}

// LineItem is a REST order line.
type LineItem struct {
	ID        int64  `json:"id"`
	ProductID int64  `json:"product_id"`
	VariantID int64  `json:"variant_id"`
	Title     string `json:"title"`
	SKU       string `json:"sku"`
	Quantity  int32  `json:"quantity"`
	Price     string `json:"price"`
}

// Order is an order in Shopify's REST/webhook shape.
type Order struct {
	ID              int64      `json:"id"`
	Name            string     `json:"name"`
	Phone           *string    `json:"phone"`
	Email           string     `json:"email"`
	CreatedAt       string     `json:"created_at"`
	Currency        string     `json:"currency"`
	TotalPrice      string     `json:"total_price"`
	FinancialStatus string     `json:"financial_status"`
	Gateways        []string   `json:"payment_gateway_names"`
	CancelledAt     *string    `json:"cancelled_at"`
	Customer        *Customer  `json:"customer"`
	ShippingAddress *Address   `json:"shipping_address"`
	LineItems       []LineItem `json:"line_items"`
	Note            string     `json:"note"`
	Tags            string     `json:"tags"`
}

// Customer is an order's customer.
type Customer struct {
	ID    int64  `json:"id"`
	Phone string `json:"phone"`
}

// Variant is a product variant with its inventory.
type Variant struct {
	ID        int64
	ProductID int64
	Product   string
	Title     string
	SKU       string
	Price     string
	Inventory int32
}

// Options configure the fake.
type Options struct {
	Domain      string // "fake-shop.myshopify.com" when empty
	Secret      []byte // the app secret webhooks are signed with
	AccessToken string // the Admin API token
	Faults      shoptest.Faults
	// Bucket and RestoreRate shape the cost limit (defaults 1000 and 50 a
	// second, Shopify's standard plan).
	Bucket      float64
	RestoreRate float64
	// ThrottleEvery answers every Nth GraphQL query THROTTLED whatever the
	// bucket holds (0: only when the bucket is short), so tests meet the
	// throttle however fast or slow the machine is.
	ThrottleEvery int
}

// Server is the fake shop.
type Server struct {
	*httptest.Server
	opts   Options
	API    *shoptest.API
	Sender *shoptest.Sender

	mu        sync.Mutex
	orders    map[int64]*Order
	variants  []Variant
	hooks     map[string][]string // topic → addresses
	nextID    int64
	nextEvent int64
	available float64
	lastFill  time.Time
	// Throttled counts THROTTLED answers.
	Throttled int
	// Queries records the GraphQL variables of every query, in order.
	Queries []map[string]any
}

// NewServer starts a fake shop, closed at the end of the test.
func NewServer(t testing.TB, opts Options) *Server {
	s := New(opts)
	t.Cleanup(s.Close)
	return s
}

// New starts a fake shop; Close stops it.
func New(opts Options) *Server {
	if opts.Domain == "" {
		opts.Domain = "fake-shop.myshopify.com"
	}
	if opts.Bucket == 0 {
		opts.Bucket = 1000
	}
	if opts.RestoreRate == 0 {
		opts.RestoreRate = 50
	}
	s := &Server{opts: opts, API: &shoptest.API{Faults: opts.Faults}, Sender: shoptest.NewSender(opts.Faults.Seed),
		orders: map[int64]*Order{}, hooks: map[string][]string{}, nextID: 450789469, nextEvent: 1,
		available: opts.Bucket, lastFill: time.Now()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/api/{version}/graphql.json", s.graphql)
	s.Server = httptest.NewServer(s.API.Wrap(mux))
	return s
}

// AddOrder stores o (its id and name are assigned when zero) and returns
// its id.
func (s *Server) AddOrder(o Order) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.ID == 0 {
		o.ID = s.nextID
		s.nextID++
	}
	if o.Name == "" {
		o.Name = "#" + strconv.FormatInt(1000+int64(len(s.orders))+1, 10)
	}
	if o.CreatedAt == "" {
		o.CreatedAt = time.Now().UTC().Format(time.RFC3339)
	}
	if o.Currency == "" {
		o.Currency = "MAD"
	}
	cp := o
	s.orders[o.ID] = &cp
	return o.ID
}

// Order returns a stored order.
func (s *Server) Order(id int64) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, false
	}
	return *o, true
}

// UpdateOrder changes a stored order.
func (s *Server) UpdateOrder(id int64, fn func(o *Order)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[id]; ok {
		fn(o)
	}
}

// AddVariant adds a product variant to the catalogue.
func (s *Server) AddVariant(v Variant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.variants = append(s.variants, v)
}

// Subscribe registers a webhook subscription (what an app does through
// webhookSubscriptionCreate).
func (s *Server) Subscribe(topic, address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[topic] = append(s.hooks[topic], address)
}

// Fire sends the order's webhook for topic to every subscription, as
// Shopify does: the REST order as the body, signed, one event id per event
// and a webhook id per delivery. It returns the event id.
func (s *Server) Fire(ctx context.Context, topic string, orderID int64) (string, error) {
	s.mu.Lock()
	o, ok := s.orders[orderID]
	var body []byte
	if ok {
		body, _ = json.Marshal(o)
	}
	if topic == "orders/delete" {
		body = []byte(fmt.Sprintf(`{"id":%d}`, orderID))
		ok = true
	}
	event := fmt.Sprintf("%08d-fake-%d", s.nextEvent, orderID)
	s.nextEvent++
	targets := append([]string(nil), s.hooks[topic]...)
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("no order %d", orderID)
	}
	for _, url := range targets {
		if _, err := s.SendRaw(ctx, url, topic, event, body); err != nil {
			return event, err
		}
	}
	return event, nil
}

// SendRaw signs body and posts it to url as one event.
func (s *Server) SendRaw(ctx context.Context, url, topic, event string, body []byte) (int, error) {
	h := s.Headers(topic, event, body)
	return s.Sender.Send(ctx, url, h, body, event, s.opts.Faults.DuplicateRate)
}

// Headers are the headers Shopify sends with body.
func (s *Server) Headers(topic, event string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	shopify.Sign(s.opts.Secret, h, topic, event, body)
	h.Set("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(shop.SumHMAC(s.opts.Secret, body)))
	h.Set("X-Shopify-Shop-Domain", s.opts.Domain)
	h.Set("X-Shopify-Webhook-Id", fmt.Sprintf("wh-%s-%d", event, time.Now().UnixNano()))
	h.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
	h.Set("X-Shopify-API-Version", shopify.APIVersion)
	return h
}

type gqlError struct {
	Message    string            `json:"message"`
	Extensions map[string]string `json:"extensions,omitempty"`
}

var (
	firstRe = regexp.MustCompile(`(orders|products)\(first:\s*(\d+)`)
	sinceRe = regexp.MustCompile(`created_at:>(\S+)`)
)

// refill restores the bucket for the time passed; call with mu held.
func (s *Server) refill() {
	now := time.Now()
	s.available = min(s.opts.Bucket, s.available+now.Sub(s.lastFill).Seconds()*s.opts.RestoreRate)
	s.lastFill = now
}

func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Shopify-Access-Token") != s.opts.AccessToken || s.opts.AccessToken == "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`)
		return
	}
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, `{"errors":"bad JSON"}`, http.StatusBadRequest)
		return
	}
	first := 1
	kind := "shop"
	if m := firstRe.FindStringSubmatch(req.Query); m != nil {
		kind = m[1]
		first, _ = strconv.Atoi(m[2])
	}
	if first < 1 || first > 250 {
		s.answer(w, nil, []gqlError{{Message: "first must be between 1 and 250"}}, 1)
		return
	}
	cost := float64(2 + first)
	s.mu.Lock()
	s.Queries = append(s.Queries, req.Variables)
	s.refill()
	if e := s.opts.ThrottleEvery; e > 0 && len(s.Queries)%e == 0 {
		s.available = min(s.available, cost/2)
	}
	if s.available < cost {
		s.Throttled++
		avail := s.available
		s.mu.Unlock()
		s.answerThrottled(w, cost, avail)
		return
	}
	s.available -= cost
	var data any
	switch kind {
	case "orders":
		data = s.ordersPage(first, req.Variables)
	case "products":
		data = s.productsPage(first, req.Variables)
	default:
		data = map[string]any{"shop": map[string]any{"name": s.opts.Domain}}
	}
	s.mu.Unlock()
	s.answer(w, data, nil, cost)
}

func (s *Server) answerThrottled(w http.ResponseWriter, cost, avail float64) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []gqlError{{Message: "Throttled", Extensions: map[string]string{"code": "THROTTLED",
			"documentation": "https://shopify.dev/api/usage/rate-limits"}}},
		"extensions": map[string]any{"cost": map[string]any{"requestedQueryCost": cost, "actualQueryCost": nil,
			"throttleStatus": map[string]any{"maximumAvailable": s.opts.Bucket, "currentlyAvailable": avail, "restoreRate": s.opts.RestoreRate}}},
	})
}

func (s *Server) answer(w http.ResponseWriter, data any, errs []gqlError, cost float64) {
	s.mu.Lock()
	avail := s.available
	s.mu.Unlock()
	out := map[string]any{"extensions": map[string]any{"cost": map[string]any{"requestedQueryCost": cost, "actualQueryCost": cost,
		"throttleStatus": map[string]any{"maximumAvailable": s.opts.Bucket, "currentlyAvailable": avail, "restoreRate": s.opts.RestoreRate}}}}
	if data != nil {
		out["data"] = data
	}
	if errs != nil {
		out["errors"] = errs
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func cursorOf(i int) string {
	return base64.StdEncoding.EncodeToString([]byte("idx:" + strconv.Itoa(i)))
}

func afterOf(v map[string]any) int {
	c, _ := v["cursor"].(string)
	if c == "" {
		c, _ = v["after"].(string)
	}
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "idx:") {
		return -1
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(string(b), "idx:"))
	return n
}

func gid(kind string, id int64) string {
	return "gid://shopify/" + kind + "/" + strconv.FormatInt(id, 10)
}

func money(amount, currency string) map[string]any {
	m := map[string]any{"amount": amount}
	if currency != "" {
		m["currencyCode"] = currency
	}
	return map[string]any{"shopMoney": m}
}

// ordersPage answers orders(first, after, query): oldest first; call with
// mu held.
func (s *Server) ordersPage(first int, vars map[string]any) any {
	var since time.Time
	if q, _ := vars["query"].(string); q != "" {
		if m := sinceRe.FindStringSubmatch(q); m != nil {
			since, _ = time.Parse(time.RFC3339, strings.Trim(m[1], `'"`))
		}
	}
	var list []*Order
	for _, o := range s.orders {
		if c, err := time.Parse(time.RFC3339, o.CreatedAt); err == nil && !since.IsZero() && !c.After(since) {
			continue
		}
		list = append(list, o)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].CreatedAt != list[j].CreatedAt {
			return list[i].CreatedAt < list[j].CreatedAt
		}
		return list[i].ID < list[j].ID
	})
	start := afterOf(vars) + 1
	var edges []any
	end := min(len(list), start+first)
	for i := start; i < end; i++ {
		o := list[i]
		var lines []any
		for _, li := range o.LineItems {
			lines = append(lines, map[string]any{"node": map[string]any{"title": li.Title, "sku": li.SKU, "quantity": li.Quantity,
				"originalUnitPriceSet": money(li.Price, "")}})
		}
		node := map[string]any{"id": gid("Order", o.ID), "name": o.Name, "createdAt": o.CreatedAt, "phone": o.Phone, "email": o.Email,
			"cancelledAt": o.CancelledAt, "note": o.Note, "displayFinancialStatus": strings.ToUpper(o.FinancialStatus),
			"paymentGatewayNames": o.Gateways, "totalPriceSet": money(o.TotalPrice, o.Currency),
			"lineItems": map[string]any{"edges": lines}}
		if o.Customer != nil {
			node["customer"] = map[string]any{"phone": o.Customer.Phone}
		}
		if a := o.ShippingAddress; a != nil {
			node["shippingAddress"] = map[string]any{"name": a.Name, "firstName": a.FirstName, "lastName": a.LastName, "address1": a.Address1,
				"address2": a.Address2, "city": a.City, "phone": a.Phone}
		}
		edges = append(edges, map[string]any{"cursor": cursorOf(i), "node": node})
	}
	pi := map[string]any{"hasNextPage": end < len(list), "endCursor": nil}
	if end > start {
		pi["endCursor"] = cursorOf(end - 1)
	}
	if edges == nil {
		edges = []any{}
	}
	return map[string]any{"orders": map[string]any{"edges": edges, "pageInfo": pi}}
}

// productsPage answers products(first, after) with their variants; call
// with mu held.
func (s *Server) productsPage(first int, vars map[string]any) any {
	type product struct {
		id       int64
		title    string
		variants []Variant
	}
	var products []*product
	byID := map[int64]*product{}
	for _, v := range s.variants {
		p := byID[v.ProductID]
		if p == nil {
			p = &product{id: v.ProductID, title: v.Product}
			byID[v.ProductID] = p
			products = append(products, p)
		}
		p.variants = append(p.variants, v)
	}
	start := afterOf(vars) + 1
	end := min(len(products), start+first)
	edges := []any{}
	for i := start; i < end; i++ {
		p := products[i]
		var vs []any
		for _, v := range p.variants {
			vs = append(vs, map[string]any{"node": map[string]any{"id": gid("ProductVariant", v.ID), "sku": v.SKU, "title": v.Title,
				"price": v.Price, "inventoryQuantity": v.Inventory}})
		}
		edges = append(edges, map[string]any{"cursor": cursorOf(i), "node": map[string]any{"id": gid("Product", p.id), "title": p.title,
			"variants": map[string]any{"edges": vs}}})
	}
	pi := map[string]any{"hasNextPage": end < len(products), "endCursor": nil}
	if end > start {
		pi["endCursor"] = cursorOf(end - 1)
	}
	return map[string]any{"products": map[string]any{"edges": edges, "pageInfo": pi}}
}
