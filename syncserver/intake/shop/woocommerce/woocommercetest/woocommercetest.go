// Package woocommercetest is a fake WooCommerce site: it holds orders and
// products, sends webhooks like WooCommerce (the unsigned form ping
// "webhook_id=N" on creation; then JSON with X-WC-Webhook-Source, -Topic,
// -Resource, -Event, -Signature (base64 HMAC-SHA256 of the raw body), -ID and
// -Delivery-ID; a webhook is disabled after more than 5 failed deliveries in
// a row) and serves REST API v3 (HTTP Basic with the consumer key and
// secret; per_page, page, after; X-WP-Total and X-WP-TotalPages).
package woocommercetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadify/leadify/syncserver/intake/shop/shoptest"
	"github.com/leadify/leadify/syncserver/intake/shop/woocommerce"
)

// Party is an order's billing or shipping party.
type Party struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Address1  string `json:"address_1"`
	Address2  string `json:"address_2"`
	City      string `json:"city"`
	Phone     string `json:"phone,omitempty"`
	Email     string `json:"email,omitempty"`
}

// LineItem is an order line.
type LineItem struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	ProductID int64   `json:"product_id"`
	Quantity  int32   `json:"quantity"`
	SKU       string  `json:"sku"`
	Price     float64 `json:"price"`
	Total     string  `json:"total"`
}

// Order is a WooCommerce order as the REST API and webhooks give it.
type Order struct {
	ID            int64      `json:"id"`
	Number        string     `json:"number"`
	Status        string     `json:"status"`
	Currency      string     `json:"currency"`
	Total         string     `json:"total"`
	Billing       Party      `json:"billing"`
	Shipping      Party      `json:"shipping"`
	PaymentMethod string     `json:"payment_method"`
	LineItems     []LineItem `json:"line_items"`
	CustomerNote  string     `json:"customer_note"`
	DateCreated   string     `json:"date_created"`
}

// Product is a catalogue product.
type Product struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	SKU           string `json:"sku"`
	Price         string `json:"price"`
	ManageStock   bool   `json:"manage_stock"`
	StockQuantity *int32 `json:"stock_quantity"`
}

// Options configure the fake.
type Options struct {
	Secret         []byte // each webhook's secret
	ConsumerKey    string
	ConsumerSecret string
	Faults         shoptest.Faults
}

// Webhook is a registered webhook.
type Webhook struct {
	ID       int64
	Topic    string
	Address  string
	Disabled bool
	failures int
}

// Server is the fake site.
type Server struct {
	*httptest.Server
	opts   Options
	API    *shoptest.API
	Sender *shoptest.Sender

	mu         sync.Mutex
	orders     map[int64]*Order
	products   []Product
	hooks      []*Webhook
	nextID     int64
	nextHook   int64
	nextDelivr int64
}

// NewServer starts a fake site, closed at the end of the test.
func NewServer(t testing.TB, opts Options) *Server {
	s := New(opts)
	t.Cleanup(s.Close)
	return s
}

// New starts a fake site; Close stops it.
func New(opts Options) *Server {
	s := &Server{opts: opts, API: &shoptest.API{Faults: opts.Faults}, Sender: shoptest.NewSender(opts.Faults.Seed),
		orders: map[int64]*Order{}, nextID: 727, nextHook: 15, nextDelivr: 1}
	s.Sender.Retries = 0 // WooCommerce does not retry at once: failures count towards disabling
	mux := http.NewServeMux()
	mux.HandleFunc("GET /wp-json/wc/v3/orders", s.listOrders)
	mux.HandleFunc("GET /wp-json/wc/v3/products", s.listProducts)
	s.Server = httptest.NewServer(s.API.Wrap(mux))
	return s
}

// AddOrder stores o (id and number assigned when zero) and returns its id.
func (s *Server) AddOrder(o Order) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.ID == 0 {
		o.ID = s.nextID
		s.nextID++
	}
	if o.Number == "" {
		o.Number = strconv.FormatInt(o.ID, 10)
	}
	if o.DateCreated == "" {
		o.DateCreated = time.Now().UTC().Format("2006-01-02T15:04:05")
	}
	if o.Currency == "" {
		o.Currency = "MAD"
	}
	if o.Status == "" {
		o.Status = "processing"
	}
	cp := o
	s.orders[o.ID] = &cp
	return o.ID
}

// UpdateOrder changes a stored order.
func (s *Server) UpdateOrder(id int64, fn func(o *Order)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[id]; ok {
		fn(o)
	}
}

// AddProduct adds a product to the catalogue.
func (s *Server) AddProduct(p Product) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.products = append(s.products, p)
}

// AddWebhook registers a webhook the way WooCommerce saves one: it first
// posts the unsigned ping "webhook_id=N" and keeps the webhook only when
// the ping is answered 200.
func (s *Server) AddWebhook(ctx context.Context, topic, address string) (*Webhook, error) {
	s.mu.Lock()
	id := s.nextHook
	s.nextHook++
	s.mu.Unlock()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	status, err := s.Sender.Send(ctx, address, h, []byte("webhook_id="+strconv.FormatInt(id, 10)), "ping", 0)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("ping answered %d: %v", status, err)
	}
	wh := &Webhook{ID: id, Topic: topic, Address: address}
	s.mu.Lock()
	s.hooks = append(s.hooks, wh)
	s.mu.Unlock()
	return wh, nil
}

// Webhooks lists the registered webhooks.
func (s *Server) Webhooks() []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Webhook, len(s.hooks))
	for i, h := range s.hooks {
		out[i] = *h
	}
	return out
}

// Fire delivers the order to every active webhook of topic, signed, one
// delivery id per delivery. A failed delivery counts towards disabling the
// webhook (more than 5 in a row).
func (s *Server) Fire(ctx context.Context, topic string, orderID int64) error {
	s.mu.Lock()
	o, ok := s.orders[orderID]
	var body []byte
	if ok {
		body, _ = json.Marshal(o)
	}
	var targets []*Webhook
	for _, h := range s.hooks {
		if h.Topic == topic && !h.Disabled {
			targets = append(targets, h)
		}
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no order %d", orderID)
	}
	var firstErr error
	for _, h := range targets {
		if _, err := s.Deliver(ctx, h, body); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Deliver posts body to one webhook as a new delivery.
func (s *Server) Deliver(ctx context.Context, wh *Webhook, body []byte) (int, error) {
	s.mu.Lock()
	delivery := strconv.FormatInt(s.nextDelivr, 10)
	s.nextDelivr++
	s.mu.Unlock()
	h := s.Headers(wh, delivery, body)
	status, err := s.Sender.Send(ctx, wh.Address, h, body, delivery, s.opts.Faults.DuplicateRate)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		wh.failures++
		if wh.failures > 5 {
			wh.Disabled = true
		}
		return status, err
	}
	wh.failures = 0
	return status, nil
}

// Headers are the headers WooCommerce sends with a delivery.
func (s *Server) Headers(wh *Webhook, delivery string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	resource, event, _ := strings.Cut(wh.Topic, ".")
	woocommerce.Sign(s.opts.Secret, h, wh.Topic, delivery, body)
	h.Set("X-WC-Webhook-Source", s.URL+"/")
	h.Set("X-WC-Webhook-Resource", resource)
	h.Set("X-WC-Webhook-Event", event)
	h.Set("X-WC-Webhook-ID", strconv.FormatInt(wh.ID, 10))
	return h
}

func (s *Server) authorised(w http.ResponseWriter, r *http.Request) bool {
	k, sec, ok := r.BasicAuth()
	if !ok || k != s.opts.ConsumerKey || sec != s.opts.ConsumerSecret || k == "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"code":"woocommerce_rest_cannot_view","message":"Sorry, you cannot list resources.","data":{"status":401}}`))
		return false
	}
	return true
}

func paging(w http.ResponseWriter, q url.Values) (perPage, page int, ok bool) {
	perPage, page = 10, 1
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"code":"rest_invalid_param","message":"Invalid parameter(s): per_page","data":{"status":400}}`))
			return 0, 0, false
		}
		perPage = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			w.WriteHeader(http.StatusBadRequest)
			return 0, 0, false
		}
		page = n
	}
	return perPage, page, true
}

func writePage[T any](w http.ResponseWriter, all []T, perPage, page int) {
	total := len(all)
	pages := (total + perPage - 1) / perPage
	w.Header().Set("X-WP-Total", strconv.Itoa(total))
	w.Header().Set("X-WP-TotalPages", strconv.Itoa(pages))
	w.Header().Set("Content-Type", "application/json")
	start := min((page-1)*perPage, total)
	end := min(start+perPage, total)
	out := all[start:end]
	if out == nil {
		out = []T{}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	q := r.URL.Query()
	perPage, page, ok := paging(w, q)
	if !ok {
		return
	}
	var after time.Time
	if v := q.Get("after"); v != "" {
		var err error
		if after, err = time.Parse("2006-01-02T15:04:05", strings.TrimSuffix(v, "Z")); err != nil {
			if after, err = time.Parse(time.RFC3339, v); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"code":"rest_invalid_param","message":"Invalid parameter(s): after","data":{"status":400}}`))
				return
			}
		}
	}
	s.mu.Lock()
	var all []Order
	for _, o := range s.orders {
		if c, err := time.Parse("2006-01-02T15:04:05", o.DateCreated); err == nil && !after.IsZero() && !c.After(after) {
			continue
		}
		all = append(all, *o)
	}
	s.mu.Unlock()
	asc := q.Get("order") == "asc"
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.DateCreated != b.DateCreated {
			return (a.DateCreated < b.DateCreated) == asc
		}
		return (a.ID < b.ID) == asc
	})
	writePage(w, all, perPage, page)
}

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	perPage, page, ok := paging(w, r.URL.Query())
	if !ok {
		return
	}
	s.mu.Lock()
	all := append([]Product(nil), s.products...)
	s.mu.Unlock()
	writePage(w, all, perPage, page)
}
