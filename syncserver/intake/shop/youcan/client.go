package youcan

import (
	"bytes"
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

// DefaultBaseURL is YouCan's API.
const DefaultBaseURL = "https://api.youcan.shop"

// Config is a client's configuration.
type Config struct {
	BaseURL string // empty: DefaultBaseURL
	Token   string // OAuth2 bearer token
	HTTP    *http.Client
	Sleep   func(ctx context.Context, d time.Duration) error
}

// Client reads orders and products through YouCan's API with a bearer
// token: GET /orders?page=N until a page is empty or the pagination says it
// was the last. The facts about its answers are thin, so the client accepts
// a bare list or {"data": […]} with or without meta.pagination.
type Client struct {
	cfg  Config
	base string
}

// New returns a client. It fails without a token.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("youcan: %q is not an API address", cfg.BaseURL)
	}
	if cfg.Token == "" {
		return nil, fmt.Errorf("youcan: an access token is required")
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
	return &Client{cfg: cfg, base: base}, nil
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.cfg.HTTP.Do(req)
		if err != nil {
			return fmt.Errorf("youcan: %w", err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("youcan: read answer: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			if attempt >= 5 {
				return &shop.APIError{Status: resp.StatusCode, Body: string(raw)}
			}
			wait := time.Duration(1<<attempt) * 200 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return err
			}
			continue
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return fmt.Errorf("youcan: %w (%d)", shop.ErrCredentials, resp.StatusCode)
		case resp.StatusCode/100 != 2:
			return &shop.APIError{Status: resp.StatusCode, Body: string(raw)}
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("youcan: answer is not JSON: %w", err)
		}
		return nil
	}
}

// Page is one page of a list answer, in either shape.
type Page struct {
	Items    []json.RawMessage
	LastPage int // 0 when the answer does not say
}

// UnmarshalJSON reads a bare list or {"data": […], "meta": {"pagination":
// {"total_pages": N}}} (or "last_page").
func (p *Page) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, &p.Items)
	}
	var v struct {
		Data json.RawMessage `json:"data"`
		Meta struct {
			Pagination struct {
				TotalPages int `json:"total_pages"`
				LastPage   int `json:"last_page"`
			} `json:"pagination"`
			LastPage int `json:"last_page"`
		} `json:"meta"`
		LastPage int `json:"last_page"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if len(v.Data) > 0 && string(v.Data) != "null" {
		if err := json.Unmarshal(v.Data, &p.Items); err != nil {
			return err
		}
	}
	p.LastPage = max(v.Meta.Pagination.TotalPages, v.Meta.Pagination.LastPage, v.Meta.LastPage, v.LastPage)
	return nil
}

// Ping reads the first page of orders.
func (c *Client) Ping(ctx context.Context) error {
	var p Page
	return c.do(ctx, http.MethodGet, "/orders?page=1", nil, &p)
}

// maxPages bounds a listing whose pagination never ends.
const maxPages = 10000

// Orders pages through /orders?page=N, passing on the orders placed since
// since (YouCan's filters are not documented: the client filters).
func (c *Client) Orders(ctx context.Context, since time.Time, fn func([]shop.Order) error) error {
	for page := 1; page <= maxPages; page++ {
		var p Page
		if err := c.do(ctx, http.MethodGet, "/orders?page="+strconv.Itoa(page), nil, &p); err != nil {
			return err
		}
		out := make([]shop.Order, 0, len(p.Items))
		for _, raw := range p.Items {
			o, err := ParseOrder(raw)
			if err != nil {
				return err
			}
			if !o.Created.IsZero() && o.Created.Before(since) {
				continue
			}
			out = append(out, o)
		}
		if len(out) > 0 {
			if err := fn(out); err != nil {
				return err
			}
		}
		if len(p.Items) == 0 || (p.LastPage > 0 && page >= p.LastPage) {
			return nil
		}
	}
	return nil
}

type product struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Price     json.Number `json:"price"`
	Inventory *int32      `json:"inventory"`
	Track     *bool       `json:"track_inventory"`
	Variants  []struct {
		ID        string      `json:"id"`
		SKU       string      `json:"sku"`
		Price     json.Number `json:"price"`
		Inventory *int32      `json:"inventory"`
	} `json:"variants"`
}

// Products pages through /products?page=N, one shop.Product per variant (or
// per product when it has none).
func (c *Client) Products(ctx context.Context, fn func([]shop.Product) error) error {
	for page := 1; page <= maxPages; page++ {
		var p Page
		if err := c.do(ctx, http.MethodGet, "/products?page="+strconv.Itoa(page), nil, &p); err != nil {
			return err
		}
		var out []shop.Product
		for _, raw := range p.Items {
			var pr product
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&pr); err != nil {
				return fmt.Errorf("youcan: product: %w", err)
			}
			if len(pr.Variants) == 0 {
				price, _ := money.Parse(pr.Price.String())
				out = append(out, shop.Product{ExternalID: pr.ID, Name: pr.Name, Price: price, Stock: pr.Inventory})
				continue
			}
			for _, v := range pr.Variants {
				price, _ := money.Parse(v.Price.String())
				out = append(out, shop.Product{ExternalID: v.ID, SKU: v.SKU, Name: pr.Name, Price: price, Stock: v.Inventory})
			}
		}
		if len(out) > 0 {
			if err := fn(out); err != nil {
				return err
			}
		}
		if len(p.Items) == 0 || (p.LastPage > 0 && page >= p.LastPage) {
			return nil
		}
	}
	return nil
}

// Subscribe registers a resthook: POST /resthooks/subscribe
// {"event": …, "target_url": …}.
func (c *Client) Subscribe(ctx context.Context, event, targetURL string) error {
	return c.do(ctx, http.MethodPost, "/resthooks/subscribe", map[string]string{"event": event, "target_url": targetURL}, nil)
}
