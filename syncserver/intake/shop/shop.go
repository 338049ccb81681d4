// Package shop holds what the shop integrations (shopify, woocommerce,
// youcan) share: the order a webhook or a backfill turns into a lead, and
// constant-time signature checks.
package shop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/leadify/leadify/shared/money"
)

// The platforms.
const (
	Shopify     = "shopify"
	WooCommerce = "woocommerce"
	YouCan      = "youcan"
)

// Platforms lists the platforms in display order.
var Platforms = []string{Shopify, WooCommerce, YouCan}

// MaxBody bounds a webhook body; larger ones are refused before parsing.
const MaxBody = 2 << 20

// Errors of signature checks and parsing, for errors.Is.
var (
	ErrSignature = errors.New("webhook signature does not match")
	ErrTooLarge  = errors.New("webhook body too large")
	ErrBadOrder  = errors.New("not an order")
)

// Item is one line of an order.
type Item struct {
	SKU       string
	Name      string
	Qty       int32
	UnitPrice money.Amount
}

// Order is a shop order as Leadify needs it.
type Order struct {
	ID       string // the platform's order id
	Ref      string // what the seller calls it: "#1001"
	Name     string
	Phone    string // as the customer typed it
	City     string
	Address  string
	Items    []Item
	Total    money.Amount
	Currency string
	COD      bool // paid on delivery
	Status   string
	Note     string
	// Created is when the order was placed (zero when the body has no
	// readable date).
	Created time.Time
	// Cancelled marks an order the shop cancelled (or deleted).
	Cancelled bool
}

// Action is what a webhook topic asks of Leadify.
type Action int

// The actions.
const (
	ActionUnknown Action = iota // acknowledged and recorded, nothing else
	ActionOrder                 // an order was created or changed
	ActionCancel                // an order was cancelled or deleted
)

// Product is one sellable variant as the shop lists it.
type Product struct {
	ExternalID string // the variant's (or simple product's) id
	SKU        string
	Name       string
	Price      money.Amount
	Stock      *int32 // nil when the shop does not track it
}

// Client reads a shop's orders and catalogue through the platform's API.
type Client interface {
	// Ping checks the credentials with the smallest read the API offers.
	Ping(ctx context.Context) error
	// Orders pages through the orders placed since since, oldest first
	// where the API allows, calling fn once per page.
	Orders(ctx context.Context, since time.Time, fn func([]Order) error) error
	// Products pages through the catalogue, calling fn once per page.
	Products(ctx context.Context, fn func([]Product) error) error
}

// APIError is an answer of a shop API that is not a success.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string {
	b := e.Body
	if len(b) > 200 {
		b = b[:200] + "…"
	}
	return fmt.Sprintf("shop API answered %d: %s", e.Status, strings.TrimSpace(b))
}

// ErrCredentials is returned for an answer refusing the credentials.
var ErrCredentials = errors.New("the shop refused the credentials")

// ParseTime reads the dates shop APIs write (RFC 3339 with or without a
// zone, "2006-01-02 15:04:05"); it returns the zero time for anything else.
func ParseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// SumHMAC is HMAC-SHA256 of body under secret.
func SumHMAC(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// ParseID reads only the "id" of an order body (a number or a string): what
// a deletion webhook carries. It fails with ErrBadOrder.
func ParseID(body []byte) (string, error) {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOrder, err)
	}
	id := strings.Trim(string(v.ID), `"`)
	if id == "" || id == "null" || strings.ContainsAny(id, `"\{}[] `) {
		return "", fmt.Errorf("%w: no id", ErrBadOrder)
	}
	return id, nil
}
