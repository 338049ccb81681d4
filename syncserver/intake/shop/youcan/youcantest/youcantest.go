// Package youcantest is a fake YouCan store: OAuth2 bearer tokens on
// https://api.youcan.shop-like routes, resthook subscriptions (POST
// /resthooks/subscribe {"event","target_url"}), webhooks signed in
// x-youcan-signature with hex HMAC-SHA256 under the client secret — of the
// raw body, or, like YouCan's own example, of the PHP re-encoded body — and
// GET /orders?page=N and /products?page=N, paginated.
package youcantest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/intake/shop/shoptest"
)

// Customer is an order's customer.
type Customer struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Phone     string `json:"phone"`
}

// Address is a shipping address.
type Address struct {
	FirstLine string `json:"first_line"`
	City      string `json:"city"`
	Phone     string `json:"phone,omitempty"`
}

// Line is an order line ("variants").
type Line struct {
	Price    float64 `json:"price"`
	Quantity int32   `json:"quantity"`
	Variant  struct {
		SKU     string `json:"sku"`
		Product struct {
			Name string `json:"name"`
		} `json:"product"`
	} `json:"variant"`
}

// NewLine returns an order line.
func NewLine(sku, name string, qty int32, price float64) Line {
	var l Line
	l.Price, l.Quantity, l.Variant.SKU, l.Variant.Product.Name = price, qty, sku, name
	return l
}

// Order is a YouCan order. ShippingNested puts the address under
// "shipping.address" instead of "shipping_address" (both are seen).
type Order struct {
	ID             string
	Ref            string
	Total          float64
	Currency       string
	Status         string
	CreatedAt      time.Time
	Customer       Customer
	Shipping       Address
	ShippingNested bool
	Lines          []Line
}

// MarshalJSON writes the order in YouCan's shape.
func (o Order) MarshalJSON() ([]byte, error) {
	m := map[string]any{"id": o.ID, "ref": o.Ref, "total": o.Total, "currency": o.Currency, "status": o.Status,
		"created_at": o.CreatedAt.UTC().Format("2006-01-02 15:04:05"), "customer": o.Customer, "variants": o.Lines}
	if o.ShippingNested {
		m["shipping"] = map[string]any{"address": o.Shipping}
	} else {
		m["shipping_address"] = o.Shipping
	}
	return json.Marshal(m)
}

// Product is a catalogue product with variants.
type Product struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Price    float64   `json:"price"`
	Variants []Variant `json:"variants"`
}

// Variant is a product variant.
type Variant struct {
	ID        string  `json:"id"`
	SKU       string  `json:"sku"`
	Price     float64 `json:"price"`
	Inventory int32   `json:"inventory"`
}

// Options configure the fake.
type Options struct {
	ClientSecret []byte // webhooks are signed with it
	Token        string // the bearer token the API accepts
	// SignReencoded signs the PHP re-encoding of the body (YouCan's own
	// example) instead of the raw body sent.
	SignReencoded bool
	// PerPage is the page size of lists (default 20).
	PerPage int
	Faults  shoptest.Faults
}

// Subscription is a resthook subscription.
type Subscription struct {
	Event     string
	TargetURL string
}

// Server is the fake store.
type Server struct {
	*httptest.Server
	opts   Options
	API    *shoptest.API
	Sender *shoptest.Sender

	mu       sync.Mutex
	orders   map[string]*Order
	products []Product
	subs     []Subscription
	next     int
}

// NewServer starts a fake, closed at the end of the test.
func NewServer(t testing.TB, opts Options) *Server {
	s := New(opts)
	t.Cleanup(s.Close)
	return s
}

// New starts a fake; Close stops it.
func New(opts Options) *Server {
	if opts.PerPage == 0 {
		opts.PerPage = 20
	}
	s := &Server{opts: opts, API: &shoptest.API{Faults: opts.Faults}, Sender: shoptest.NewSender(opts.Faults.Seed), orders: map[string]*Order{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders", s.listOrders)
	mux.HandleFunc("GET /products", s.listProducts)
	mux.HandleFunc("POST /resthooks/subscribe", s.subscribe)
	s.Server = httptest.NewServer(s.API.Wrap(mux))
	return s
}

// AddOrder stores o (id, ref and date assigned when empty) and returns its id.
func (s *Server) AddOrder(o Order) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	if o.ID == "" {
		o.ID = fmt.Sprintf("8f2c6a1e-6f0b-4f55-9a43-%012d", s.next)
	}
	if o.Ref == "" {
		o.Ref = "YC-" + strconv.Itoa(1000+s.next)
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = time.Now().UTC().Truncate(time.Second)
	}
	if o.Currency == "" {
		o.Currency = "MAD"
	}
	if o.Status == "" {
		o.Status = "pending"
	}
	cp := o
	s.orders[o.ID] = &cp
	return o.ID
}

// UpdateOrder changes a stored order.
func (s *Server) UpdateOrder(id string, fn func(o *Order)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[id]; ok {
		fn(o)
	}
}

// AddProduct adds a product.
func (s *Server) AddProduct(p Product) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.products = append(s.products, p)
}

// Subscriptions lists the resthook subscriptions.
func (s *Server) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Subscription(nil), s.subs...)
}

// Subscribe registers a subscription directly (what the API route does).
func (s *Server) Subscribe(event, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, Subscription{Event: event, TargetURL: target})
}

// Body is the pretty JSON body YouCan sends for an order.
func Body(o Order) []byte {
	b, _ := json.MarshalIndent(o, "", "  ")
	return b
}

// Fire sends the order to every subscription of event.
func (s *Server) Fire(ctx context.Context, event, orderID string) error {
	s.mu.Lock()
	o, ok := s.orders[orderID]
	var body []byte
	if ok {
		body = Body(*o)
	}
	var targets []string
	for _, sub := range s.subs {
		if sub.Event == event {
			targets = append(targets, sub.TargetURL)
		}
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no order %s", orderID)
	}
	for _, t := range targets {
		if _, err := s.Sender.Send(ctx, t, s.Headers(body), body, orderID+"/"+event, s.opts.Faults.DuplicateRate); err != nil {
			return err
		}
	}
	return nil
}

// Headers are the headers sent with body.
func (s *Server) Headers(body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	signed := body
	if s.opts.SignReencoded {
		signed = PHPEncode(body)
	}
	h.Set("x-youcan-signature", hex.EncodeToString(shop.SumHMAC(s.opts.ClientSecret, signed)))
	return h
}

// PHPEncode re-encodes a JSON body as PHP's json_encode writes it: compact,
// "/" escaped, non-ASCII as \uXXXX.
func PHPEncode(body []byte) []byte {
	var compact bytes.Buffer
	if json.Compact(&compact, body) != nil {
		return body
	}
	var out bytes.Buffer
	inString, escaped := false, false
	for _, r := range compact.String() {
		switch {
		case escaped:
			out.WriteRune(r)
			escaped = false
		case inString && r == '\\':
			out.WriteRune(r)
			escaped = true
		case r == '"':
			inString = !inString
			out.WriteRune(r)
		case inString && r == '/':
			out.WriteString(`\/`)
		case r > 0xffff:
			a, z := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, a, z)
		case r > 0x7f:
			fmt.Fprintf(&out, `\u%04x`, r)
		default:
			out.WriteRune(r)
		}
	}
	return out.Bytes()
}

func (s *Server) authorised(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Token == "" || r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"message":"Unauthenticated."}`)
		return false
	}
	return true
}

func (s *Server) page(w http.ResponseWriter, r *http.Request, items []any) {
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	per := s.opts.PerPage
	total := len(items)
	pages := max(1, (total+per-1)/per)
	start := min((page-1)*per, total)
	end := min(start+per, total)
	data := items[start:end]
	if data == nil {
		data = []any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data, "meta": map[string]any{"pagination": map[string]any{
		"total": total, "count": len(data), "per_page": per, "current_page": page, "total_pages": pages}}})
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	s.mu.Lock()
	list := make([]*Order, 0, len(s.orders))
	for _, o := range s.orders {
		list = append(list, o)
	}
	// Newest first, like the dashboard.
	sort.Slice(list, func(i, j int) bool {
		if !list[i].CreatedAt.Equal(list[j].CreatedAt) {
			return list[i].CreatedAt.After(list[j].CreatedAt)
		}
		return list[i].ID > list[j].ID
	})
	items := make([]any, len(list))
	for i, o := range list {
		items[i] = *o
	}
	s.mu.Unlock()
	s.page(w, r, items)
}

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	s.mu.Lock()
	items := make([]any, len(s.products))
	for i, p := range s.products {
		items[i] = p
	}
	s.mu.Unlock()
	s.page(w, r, items)
}

func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	var req struct {
		Event     string `json:"event"`
		TargetURL string `json:"target_url"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.Event == "" ||
		!strings.HasPrefix(req.TargetURL, "http") {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"message":"The given data was invalid."}`)
		return
	}
	s.Subscribe(req.Event, req.TargetURL)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": fmt.Sprintf("sub-%d", len(s.Subscriptions())), "event": req.Event, "target_url": req.TargetURL})
}
