package shopify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/intake/shop"
)

// APIVersion is the Admin API version the client speaks.
const APIVersion = "2025-10"

// Config is a client's configuration.
type Config struct {
	// BaseURL is the shop's address: "https://arganbeauty.myshopify.com", or
	// a bare "arganbeauty.myshopify.com" (https is assumed), or a fake's URL.
	BaseURL     string
	AccessToken string
	HTTP        *http.Client
	// MaxWait bounds one wait for the cost bucket to refill (default 30 s);
	// a throttled answer asking for longer fails the call.
	MaxWait time.Duration
	// Sleep waits (tests replace it); nil means a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client reads orders and products through the GraphQL Admin API:
// POST {shop}/admin/api/2025-10/graphql.json with X-Shopify-Access-Token,
// cursor pagination (first/after, pageInfo), and the cost-based rate limit
// (a THROTTLED answer is retried once the bucket has refilled enough, from
// extensions.cost.throttleStatus).
type Client struct {
	cfg      Config
	endpoint string
}

// New returns a client. It fails without a base URL or token.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if base == "" || cfg.AccessToken == "" {
		return nil, fmt.Errorf("shopify: shop address and access token are required")
	}
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "https://" + base
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	return &Client{cfg: cfg, endpoint: base + "/admin/api/" + APIVersion + "/graphql.json"}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ThrottleStatus is the cost bucket's state as Shopify reports it.
type ThrottleStatus struct {
	MaximumAvailable   float64 `json:"maximumAvailable"`
	CurrentlyAvailable float64 `json:"currentlyAvailable"`
	RestoreRate        float64 `json:"restoreRate"`
}

// Cost is extensions.cost of an answer.
type Cost struct {
	RequestedQueryCost float64        `json:"requestedQueryCost"`
	ActualQueryCost    *float64       `json:"actualQueryCost"`
	ThrottleStatus     ThrottleStatus `json:"throttleStatus"`
}

// GraphQLError is one entry of errors[].
type GraphQLError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

type envelope struct {
	Data       json.RawMessage `json:"data"`
	Errors     []GraphQLError  `json:"errors"`
	Extensions struct {
		Cost Cost `json:"cost"`
	} `json:"extensions"`
}

// query runs one GraphQL query into out (the "data" member), waiting out
// THROTTLED answers and HTTP 429s.
func (c *Client) query(ctx context.Context, q string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": q, "variables": vars})
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Shopify-Access-Token", c.cfg.AccessToken)
		resp, err := c.cfg.HTTP.Do(req)
		if err != nil {
			return fmt.Errorf("shopify: %w", err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("shopify: read answer: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			wait := time.Second
			if s, err := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); err == nil && s > 0 {
				wait = time.Duration(s * float64(time.Second))
			}
			if err := c.wait(ctx, attempt, wait); err != nil {
				return err
			}
			continue
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return fmt.Errorf("shopify: %w (%d)", shop.ErrCredentials, resp.StatusCode)
		case resp.StatusCode != http.StatusOK:
			return &shop.APIError{Status: resp.StatusCode, Body: string(raw)}
		}
		var env envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			return fmt.Errorf("shopify: answer is not JSON: %w", err)
		}
		if throttled(env.Errors) {
			cost := env.Extensions.Cost
			need := cost.RequestedQueryCost - cost.ThrottleStatus.CurrentlyAvailable
			wait := time.Second
			if cost.ThrottleStatus.RestoreRate > 0 && need > 0 {
				wait = time.Duration(math.Ceil(need/cost.ThrottleStatus.RestoreRate*1000)) * time.Millisecond
			}
			if err := c.wait(ctx, attempt, wait); err != nil {
				return err
			}
			continue
		}
		if len(env.Errors) > 0 {
			return fmt.Errorf("shopify: %s", env.Errors[0].Message)
		}
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("shopify: data: %w", err)
		}
		return nil
	}
}

func throttled(errs []GraphQLError) bool {
	for _, e := range errs {
		if e.Extensions.Code == "THROTTLED" {
			return true
		}
	}
	return false
}

func (c *Client) wait(ctx context.Context, attempt int, d time.Duration) error {
	if attempt >= 20 {
		return fmt.Errorf("shopify: still throttled after %d attempts", attempt)
	}
	if d > c.cfg.MaxWait {
		return fmt.Errorf("shopify: throttled for %v, longer than %v", d, c.cfg.MaxWait)
	}
	return c.cfg.Sleep(ctx, d)
}

// Ping reads the shop's name.
func (c *Client) Ping(ctx context.Context) error {
	var out struct {
		Shop struct {
			Name string `json:"name"`
		} `json:"shop"`
	}
	return c.query(ctx, `{ shop { name } }`, nil, &out)
}

// OrdersQuery is the backfill query: 100 orders a page, oldest first.
const OrdersQuery = `query Orders($cursor: String, $query: String) {
  orders(first: 100, after: $cursor, query: $query, sortKey: CREATED_AT) {
    edges { node {
      id name createdAt phone email cancelledAt note displayFinancialStatus paymentGatewayNames
      totalPriceSet { shopMoney { amount currencyCode } }
      customer { phone }
      shippingAddress { name firstName lastName address1 address2 city phone }
      lineItems(first: 50) { edges { node { title sku quantity originalUnitPriceSet { shopMoney { amount } } } } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}`

// GQLMoney is a MoneyBag's shopMoney.
type GQLMoney struct {
	ShopMoney struct {
		Amount       string `json:"amount"`
		CurrencyCode string `json:"currencyCode,omitempty"`
	} `json:"shopMoney"`
}

// GQLOrder is an order node of OrdersQuery.
type GQLOrder struct {
	ID                     string   `json:"id"`
	Name                   string   `json:"name"`
	CreatedAt              string   `json:"createdAt"`
	Phone                  *string  `json:"phone"`
	Email                  *string  `json:"email"`
	CancelledAt            *string  `json:"cancelledAt"`
	Note                   *string  `json:"note"`
	DisplayFinancialStatus string   `json:"displayFinancialStatus"`
	PaymentGatewayNames    []string `json:"paymentGatewayNames"`
	TotalPriceSet          GQLMoney `json:"totalPriceSet"`
	Customer               *struct {
		Phone *string `json:"phone"`
	} `json:"customer"`
	ShippingAddress *struct {
		Name      string  `json:"name"`
		FirstName string  `json:"firstName"`
		LastName  string  `json:"lastName"`
		Address1  string  `json:"address1"`
		Address2  string  `json:"address2"`
		City      string  `json:"city"`
		Phone     *string `json:"phone"`
	} `json:"shippingAddress"`
	LineItems struct {
		Edges []struct {
			Node struct {
				Title                string   `json:"title"`
				SKU                  *string  `json:"sku"`
				Quantity             int32    `json:"quantity"`
				OriginalUnitPriceSet GQLMoney `json:"originalUnitPriceSet"`
			} `json:"node"`
		} `json:"edges"`
	} `json:"lineItems"`
}

// PageInfo is a connection's pageInfo.
type PageInfo struct {
	HasNextPage bool    `json:"hasNextPage"`
	EndCursor   *string `json:"endCursor"`
}

// LegacyID turns a GraphQL global id ("gid://shopify/Order/450789469") into
// the numeric id webhooks carry, so a backfilled order and its webhook key
// the same lead.
func LegacyID(gid string) string {
	if i := strings.LastIndexByte(gid, '/'); i >= 0 {
		gid = gid[i+1:]
	}
	if i := strings.IndexByte(gid, '?'); i >= 0 {
		gid = gid[:i]
	}
	return gid
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Order converts a GraphQL order node to the order a webhook would give.
func (g GQLOrder) Order() (shop.Order, error) {
	total, err := money.Parse(g.TotalPriceSet.ShopMoney.Amount)
	if err != nil {
		return shop.Order{}, fmt.Errorf("%w: order %s total: %v", shop.ErrBadOrder, g.ID, err)
	}
	o := shop.Order{ID: LegacyID(g.ID), Ref: g.Name, Phone: deref(g.Phone), Total: total, Currency: g.TotalPriceSet.ShopMoney.CurrencyCode,
		Status: strings.ToLower(g.DisplayFinancialStatus), Note: deref(g.Note), Created: shop.ParseTime(g.CreatedAt)}
	if o.ID == "" {
		return shop.Order{}, fmt.Errorf("%w: no id", shop.ErrBadOrder)
	}
	if deref(g.CancelledAt) != "" {
		o.Status, o.Cancelled = "cancelled", true
	}
	o.COD = codGateway(g.PaymentGatewayNames)
	if s := g.ShippingAddress; s != nil {
		o.Name, o.City = s.Name, s.City
		if o.Name == "" {
			o.Name = strings.TrimSpace(s.FirstName + " " + s.LastName)
		}
		o.Address = strings.TrimSpace(s.Address1 + " " + s.Address2)
		if o.Phone == "" {
			o.Phone = deref(s.Phone)
		}
	}
	if o.Phone == "" && g.Customer != nil {
		o.Phone = deref(g.Customer.Phone)
	}
	for _, e := range g.LineItems.Edges {
		p, err := money.Parse(e.Node.OriginalUnitPriceSet.ShopMoney.Amount)
		if err != nil {
			return shop.Order{}, fmt.Errorf("%w: order %s line price: %v", shop.ErrBadOrder, g.ID, err)
		}
		o.Items = append(o.Items, shop.Item{SKU: deref(e.Node.SKU), Name: e.Node.Title, Qty: e.Node.Quantity, UnitPrice: p})
	}
	return o, nil
}

func codGateway(names []string) bool {
	for _, g := range names {
		l := strings.ToLower(g)
		if strings.Contains(l, "cash on delivery") || strings.Contains(l, "cod") {
			return true
		}
	}
	return false
}

// Orders pages through the orders created after since (the search syntax
// "created_at:>…"), 100 a page, following endCursor while hasNextPage.
func (c *Client) Orders(ctx context.Context, since time.Time, fn func([]shop.Order) error) error {
	vars := map[string]any{"query": "created_at:>" + since.UTC().Format(time.RFC3339)}
	for {
		var out struct {
			Orders struct {
				Edges []struct {
					Node GQLOrder `json:"node"`
				} `json:"edges"`
				PageInfo PageInfo `json:"pageInfo"`
			} `json:"orders"`
		}
		if err := c.query(ctx, OrdersQuery, vars, &out); err != nil {
			return err
		}
		page := make([]shop.Order, 0, len(out.Orders.Edges))
		for _, e := range out.Orders.Edges {
			o, err := e.Node.Order()
			if err != nil {
				return err
			}
			page = append(page, o)
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		pi := out.Orders.PageInfo
		if !pi.HasNextPage || deref(pi.EndCursor) == "" {
			return nil
		}
		vars["cursor"] = *pi.EndCursor
	}
}

// ProductsQuery reads the catalogue: variants with their SKU, price and
// inventory quantity (the sum of the inventory levels).
const ProductsQuery = `query Products($cursor: String) {
  products(first: 50, after: $cursor) {
    edges { node { id title variants(first: 100) { edges { node { id sku title price inventoryQuantity } } } } }
    pageInfo { hasNextPage endCursor }
  }
}`

// GQLProduct is a product node of ProductsQuery.
type GQLProduct struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Variants struct {
		Edges []struct {
			Node GQLVariant `json:"node"`
		} `json:"edges"`
	} `json:"variants"`
}

// GQLVariant is a variant node.
type GQLVariant struct {
	ID                string  `json:"id"`
	SKU               *string `json:"sku"`
	Title             string  `json:"title"`
	Price             string  `json:"price"`
	InventoryQuantity *int32  `json:"inventoryQuantity"`
}

// Products pages through the catalogue, one shop.Product per variant.
func (c *Client) Products(ctx context.Context, fn func([]shop.Product) error) error {
	vars := map[string]any{}
	for {
		var out struct {
			Products struct {
				Edges []struct {
					Node GQLProduct `json:"node"`
				} `json:"edges"`
				PageInfo PageInfo `json:"pageInfo"`
			} `json:"products"`
		}
		if err := c.query(ctx, ProductsQuery, vars, &out); err != nil {
			return err
		}
		var page []shop.Product
		for _, e := range out.Products.Edges {
			for _, v := range e.Node.Variants.Edges {
				price, err := money.Parse(v.Node.Price)
				if err != nil {
					price = 0
				}
				name := e.Node.Title
				if v.Node.Title != "" && v.Node.Title != "Default Title" {
					name += " — " + v.Node.Title
				}
				page = append(page, shop.Product{ExternalID: LegacyID(v.Node.ID), SKU: deref(v.Node.SKU), Name: name, Price: price,
					Stock: v.Node.InventoryQuantity})
			}
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		pi := out.Products.PageInfo
		if !pi.HasNextPage || deref(pi.EndCursor) == "" {
			return nil
		}
		vars["cursor"] = *pi.EndCursor
	}
}
