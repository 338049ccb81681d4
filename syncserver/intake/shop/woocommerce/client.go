package woocommerce

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/intake/shop"
)

// Config is a client's configuration.
type Config struct {
	// BaseURL is the WordPress site: "https://techsouk.ma".
	BaseURL        string
	ConsumerKey    string
	ConsumerSecret string
	HTTP           *http.Client
	// Sleep waits before a retry (tests replace it); nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client reads orders and products through the REST API v3
// ({site}/wp-json/wc/v3/…, HTTP Basic with the consumer key and secret),
// page by page (per_page=100, page=N) up to X-WP-TotalPages.
type Client struct {
	cfg  Config
	base string
}

// PerPage is the page size the client asks for (the API's maximum).
const PerPage = 100

// New returns a client. It fails without a site or keys.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if base == "" || cfg.ConsumerKey == "" || cfg.ConsumerSecret == "" {
		return nil, fmt.Errorf("woocommerce: site address, consumer key and consumer secret are required")
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("woocommerce: %q is not a site address", cfg.BaseURL)
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return &Client{cfg: cfg, base: base + "/wp-json/wc/v3"}, nil
}

// get fetches one page, retrying 429 and 5xx answers a few times.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) (totalPages int, err error) {
	u := c.base + path + "?" + q.Encode()
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		req.SetBasicAuth(c.cfg.ConsumerKey, c.cfg.ConsumerSecret)
		req.Header.Set("Accept", "application/json")
		resp, err := c.cfg.HTTP.Do(req)
		if err != nil {
			return 0, fmt.Errorf("woocommerce: %w", err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("woocommerce: read answer: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			if attempt >= 5 {
				return 0, &shop.APIError{Status: resp.StatusCode, Body: string(raw)}
			}
			wait := time.Duration(1<<attempt) * 200 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return 0, err
			}
			continue
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return 0, fmt.Errorf("woocommerce: %w (%d)", shop.ErrCredentials, resp.StatusCode)
		case resp.StatusCode != http.StatusOK:
			return 0, &shop.APIError{Status: resp.StatusCode, Body: string(raw)}
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return 0, fmt.Errorf("woocommerce: answer is not a list: %w", err)
		}
		totalPages, _ = strconv.Atoi(resp.Header.Get("X-WP-TotalPages"))
		return totalPages, nil
	}
}

// Ping reads one order.
func (c *Client) Ping(ctx context.Context) error {
	var out []json.RawMessage
	_, err := c.get(ctx, "/orders", url.Values{"per_page": {"1"}}, &out)
	return err
}

// Orders pages through the orders created after since, oldest first.
func (c *Client) Orders(ctx context.Context, since time.Time, fn func([]shop.Order) error) error {
	for page := 1; ; page++ {
		var raw []json.RawMessage
		q := url.Values{"per_page": {strconv.Itoa(PerPage)}, "page": {strconv.Itoa(page)},
			"after": {since.UTC().Format("2006-01-02T15:04:05")}, "orderby": {"date"}, "order": {"asc"}}
		total, err := c.get(ctx, "/orders", q, &raw)
		if err != nil {
			return err
		}
		orders := make([]shop.Order, 0, len(raw))
		for _, r := range raw {
			o, err := ParseOrder(r)
			if err != nil {
				return err
			}
			orders = append(orders, o)
		}
		if len(orders) > 0 {
			if err := fn(orders); err != nil {
				return err
			}
		}
		// X-WP-TotalPages says when to stop; without it, a short page does.
		if (total > 0 && page >= total) || (total == 0 && len(raw) < PerPage) || len(raw) == 0 {
			return nil
		}
	}
}

type product struct {
	ID          json.Number `json:"id"`
	Name        string      `json:"name"`
	SKU         string      `json:"sku"`
	Price       string      `json:"price"`
	ManageStock bool        `json:"manage_stock"`
	Stock       *int32      `json:"stock_quantity"`
}

// Products pages through /products; stock_quantity is the stock when the
// product manages it.
func (c *Client) Products(ctx context.Context, fn func([]shop.Product) error) error {
	for page := 1; ; page++ {
		var raw []product
		total, err := c.get(ctx, "/products", url.Values{"per_page": {strconv.Itoa(PerPage)}, "page": {strconv.Itoa(page)}}, &raw)
		if err != nil {
			return err
		}
		out := make([]shop.Product, 0, len(raw))
		for _, p := range raw {
			price, err := money.Parse(p.Price)
			if err != nil {
				price = 0
			}
			sp := shop.Product{ExternalID: p.ID.String(), SKU: p.SKU, Name: p.Name, Price: price}
			if p.ManageStock || p.Stock != nil {
				sp.Stock = p.Stock
			}
			out = append(out, sp)
		}
		if len(out) > 0 {
			if err := fn(out); err != nil {
				return err
			}
		}
		if (total > 0 && page >= total) || (total == 0 && len(raw) < PerPage) || len(raw) == 0 {
			return nil
		}
	}
}
